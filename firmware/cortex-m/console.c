#include "console.h"

#include "semihost.h"

#define LINE_CAP 512u

static char line[LINE_CAP + 1u];
static uint32_t used;

static void flush(void)
{
    line[used] = '\0';
    if (used) semihost_write0(line);
    used = 0u;
}

static void put(char c)
{
    if (used == LINE_CAP) flush(); /* a long line goes out in pieces; the host joins them */
    line[used++] = c;
}

void out_str(const char *s)
{
    while (*s) put(*s++);
}

void out_u32(uint32_t v) { out_i64((int64_t)v); }

void out_i64(int64_t v)
{
    char digits[20];
    uint32_t n = 0u;
    /* magnitude as unsigned so INT64_MIN works */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + (int)(m % 10u));
        m /= 10u;
    } while (m);
    if (v < 0) put('-');
    while (n) put(digits[--n]);
}

static const char hex[] = "0123456789abcdef";

void out_hex32(uint32_t v)
{
    for (int shift = 28; shift >= 0; shift -= 4) put(hex[(v >> shift) & 15u]);
}

void out_hex_bytes(const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        put(hex[p[i] >> 4]);
        put(hex[p[i] & 15u]);
    }
}

void out_nl(void)
{
    put('\n');
    flush();
}
