/* Popcount kernels: sum over W words of popcount(a OP b).
 *
 * The default versions use the compiler's popcount builtin (one POPCNT instruction per 64 bits
 * on x86-64 with -mpopcnt, a short library routine on a Cortex-M); on 64-bit targets two
 * 32-bit words are combined into one 64-bit popcount (bit order is irrelevant to a count).
 * The _portable versions are the classic SWAR bit count in plain C99; the tests hold the two
 * equal, and MBNN_PORTABLE_POPCOUNT makes the default versions use the portable code. */
#include "mbnn_internal.h"

static uint32_t swar32(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    return (v * 0x01010101u) >> 24;
}

uint32_t mbnn_xor_popcount_portable(const uint32_t *a, const uint32_t *b, uint32_t W)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < W; w++) n += swar32(a[w] ^ b[w]);
    return n;
}

uint32_t mbnn_and_popcount_portable(const uint32_t *a, const uint32_t *b, uint32_t W)
{
    uint32_t n = 0;
    for (uint32_t w = 0; w < W; w++) n += swar32(a[w] & b[w]);
    return n;
}

#if defined(__GNUC__) && !defined(MBNN_PORTABLE_POPCOUNT)
#if UINTPTR_MAX > 0xFFFFFFFFu
#define MBNN_POPCOUNT_64 1
#endif

#define MBNN_DEFINE_POPCOUNT(name, OP)                                                  \
    uint32_t name(const uint32_t *a, const uint32_t *b, uint32_t W)                     \
    {                                                                                   \
        uint32_t w = 0, n0 = 0, n1 = 0;                                                 \
        MBNN_POPCOUNT_PAIRS(OP)                                                         \
        for (; w < W; w++) n0 += (uint32_t)__builtin_popcount(a[w] OP b[w]);            \
        return n0 + n1;                                                                 \
    }

#ifdef MBNN_POPCOUNT_64
/* two independent sums so consecutive POPCNTs do not wait on one adder chain */
#define MBNN_POPCOUNT_PAIRS(OP)                                                         \
    for (; w + 4u <= W; w += 4u) {                                                      \
        uint64_t x0, y0, x1, y1;                                                        \
        memcpy(&x0, a + w, 8); memcpy(&y0, b + w, 8);                                   \
        memcpy(&x1, a + w + 2, 8); memcpy(&y1, b + w + 2, 8);                           \
        n0 += (uint32_t)__builtin_popcountll(x0 OP y0);                                 \
        n1 += (uint32_t)__builtin_popcountll(x1 OP y1);                                 \
    }
#else
#define MBNN_POPCOUNT_PAIRS(OP)
#endif

MBNN_DEFINE_POPCOUNT(mbnn_xor_popcount, ^)
MBNN_DEFINE_POPCOUNT(mbnn_and_popcount, &)

#else /* no builtin, or the portable code forced */

uint32_t mbnn_xor_popcount(const uint32_t *a, const uint32_t *b, uint32_t W)
{
    return mbnn_xor_popcount_portable(a, b, W);
}

uint32_t mbnn_and_popcount(const uint32_t *a, const uint32_t *b, uint32_t W)
{
    return mbnn_and_popcount_portable(a, b, W);
}
#endif
