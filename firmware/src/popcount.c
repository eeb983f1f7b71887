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
/* Blocks of 8 x 64 bits into 8 independent sums: consecutive popcounts never wait on one
 * adder chain, and the fixed-width block lets -O2's SLP vectorizer use vector popcounts
 * (AVX-512 VPOPCNTQ) where the target has them. */
#define MBNN_POPCOUNT_PAIRS(OP)                                                         \
    uint64_t c[8] = {0};                                             \
    for (; w + 16u <= W; w += 16u) {                                                    \
        uint64_t x[8], y[8];                                                            \
        memcpy(x, a + w, 64);                                                           \
        memcpy(y, b + w, 64);                                                           \
        for (int k = 0; k < 8; k++) c[k] += (uint64_t)__builtin_popcountll(x[k] OP y[k]); \
    }                                                                                   \
    for (; w + 2u <= W; w += 2u) {                                                      \
        uint64_t x, y;                                                                  \
        memcpy(&x, a + w, 8);                                                           \
        memcpy(&y, b + w, 8);                                                           \
        c[0] += (uint64_t)__builtin_popcountll(x OP y);                                 \
    }                                                                                   \
    for (int k = 0; k < 8; k++) n1 += (uint32_t)c[k];
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
