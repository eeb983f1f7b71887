/* A binary layer: acc_j = K - 2 popcount(x XOR w_j) over the packed words (FORMAT.md section 2).
 *
 * The plain form is one mbnn_xor_popcount(x, w_j, W) per row; the tests hold this kernel equal
 * to it (and to numpy) on sizes that exercise every tail below. On a large layer the plain form
 * spends much of its time per row (the call, loop set-up, the final reduction, a fresh load of
 * x for every row) and waits on weights streamed from L2/L3. With AVX-512 VPOPCNTDQ the kernel
 * is dense_bits_avx512 below; on other 64-bit targets it:
 *  - takes rows 4 at a time: each block of x is loaded once and XORed with the same block of
 *    the 4 rows (register blocking), 4 independent 64-bit lane sums per row;
 *  - makes the block a fixed 4 x 64 bits per row, copied into small arrays (memcpy: a row
 *    starts on any 4-byte boundary), so -O2's SLP vectorizer turns each row's block into one
 *    vector load, XOR, popcount (AVX-512 VPOPCNTQ where the target has it) and add, with the
 *    sums held in registers across the loop (sums indexed through pointers or kept in one 2-D
 *    array stay in memory, and the store-to-load round trip then limits the loop);
 *  - with GNU C, prefetches the next 4 rows while summing these 4, so the next rows' streams
 *    are in flight before the hardware prefetcher would find them;
 *  - sums the words after the last full block (K not a multiple of 256) with scalar 64/32-bit
 *    popcounts, and leaves the rows after the last block of 4 to mbnn_xor_popcount.
 * Sums are exact in any order (integers), so the result is bit-identical to the plain form.
 * 32-bit targets (Cortex-M) keep the plain form: without a vector popcount the per-word bit
 * count dominates, and the blocked code would cost ~660 bytes of flash for little gain. */
#include "mbnn_internal.h"

#if defined(MBNN_BITS_AVX512)
#include <immintrin.h>

/* popcount(x XOR row) of the 16 words at w, as 8 64-bit lanes; the masked form reads only the
 * words of mask m (the last, partial chunk). */
#define XOR_POPCOUNT(r, w) \
    _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_loadu_si512(x + (w)), _mm512_loadu_si512((r) + (w))))
#define XOR_POPCOUNT_MASKED(r, w, m) \
    _mm512_popcnt_epi64(_mm512_xor_si512(_mm512_maskz_loadu_epi32((m), x + (w)), _mm512_maskz_loadu_epi32((m), (r) + (w))))

/* The 8 64-bit lane sums of one row: 32 words per step into two sums, then a full 16-word chunk
 * by plain loads, the last partial one by masked loads. */
static inline __m512i row_sum(const uint32_t *x, const uint32_t *r, uint32_t W)
{
    __m512i s0 = _mm512_setzero_si512(), s1 = s0;
    uint32_t w = 0;
    for (; w + 32u <= W; w += 32u) {
        s0 = _mm512_add_epi64(s0, XOR_POPCOUNT(r, w));
        s1 = _mm512_add_epi64(s1, XOR_POPCOUNT(r, w + 16u));
    }
    if (w + 16u <= W) {
        s1 = _mm512_add_epi64(s1, XOR_POPCOUNT(r, w));
        w += 16u;
    }
    if (w < W) s0 = _mm512_add_epi64(s0, XOR_POPCOUNT_MASKED(r, w, (__mmask16)((1u << (W - w)) - 1u)));
    return _mm512_add_epi64(s0, s1);
}

/* Lane k of the result = the sum of the 8 lanes of v_k: the reduction of 8 rows in 7 adds and 14
 * shuffles instead of 8 horizontal reductions (a 512-input row is one chunk, so its reduction
 * cost as much as its popcount: 1.07 -> 0.44 us for the demo net's 512 x 512 layer). Named
 * arguments, not an array: with an array GCC kept the 8 sums on the stack and gained nothing. */
static inline __m512i pair(__m512i a, __m512i b) /* 128-bit block q: (a, b) partial sums */
{
    return _mm512_add_epi64(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
}
static inline __m512i halves(__m512i a, __m512i b) /* even blocks of (a, b) + odd blocks */
{
    return _mm512_add_epi64(_mm512_shuffle_i64x2(a, b, 0x88), _mm512_shuffle_i64x2(a, b, 0xDD));
}
static inline __m512i reduce8(__m512i v0, __m512i v1, __m512i v2, __m512i v3, __m512i v4, __m512i v5,
                              __m512i v6, __m512i v7)
{
    return halves(halves(pair(v0, v1), pair(v2, v3)), halves(pair(v4, v5), pair(v6, v7)));
}

/* AVX-512 VPOPCNTDQ: 512 synapses per XOR-popcount, one row after the other with two sums in
 * flight. Rows follow each other in memory, so the weights are one sequential stream, which
 * the hardware prefetcher follows best (measured on 4096 x 4096 on the build machine: 4
 * interleaved rows sharing each load of x reach 4.5e11 binops/s, one row at a time 7.7e11 with
 * the rows on 64-byte boundaries); x stays in L1. The words past W of the last chunk are
 * masked off: nothing is read past x or a row. Rows that start 8 bytes past a line (a .mbnn
 * section is only 8-byte aligned) run at 6.0e11, and so they did with every load made aligned
 * (x copied to the rows' offset, the row's first line read by an aligned masked load; 6.0e11)
 * or realigned in registers (VALIGND, 6.4e11; VPERMT2D, 5.0e11); 4 sums per row, 4 rows per
 * pass and software prefetch were slower. This plain loop is the fastest general form found.
 * Rows of at most 512 inputs (one chunk) are reduced 8 at a time (reduce8). */
static void dense_bits_avx512(const mbnn_layer *layer, const uint32_t *x, int32_t *acc)
{
    const uint32_t K = layer->K, N = layer->N, W = layer->W;
    const uint32_t *S = layer->signs;
    uint32_t j = 0;
    /* rows of one chunk: 8 at a time (on 4,096-input rows this form ran at 5.6e11 binops/s
     * against the per-row loop's 7.5e11, so long rows keep that) */
    for (; W <= 16u && j + 8u <= N; j += 8u) {
        const uint32_t *r = S + (size_t)j * W;
        const __m512i c = reduce8(row_sum(x, r, W), row_sum(x, r + W, W), row_sum(x, r + 2u * W, W),
                                  row_sum(x, r + 3u * W, W), row_sum(x, r + 4u * W, W), row_sum(x, r + 5u * W, W),
                                  row_sum(x, r + 6u * W, W), row_sum(x, r + 7u * W, W));
        const __m512i a = _mm512_sub_epi64(_mm512_set1_epi64((long long)K), _mm512_slli_epi64(c, 1));
        _mm256_storeu_si256((void *)(acc + j), _mm512_cvtepi64_epi32(a));
    }
    for (; j < N; j++)
        acc[j] = (int32_t)K - 2 * (int32_t)_mm512_reduce_add_epi64(row_sum(x, S + (size_t)j * W, W));
}

#elif UINTPTR_MAX > 0xFFFFFFFFu
#define MBNN_DENSE_BITS_BLOCKED 1
typedef uint64_t word_t;
#define LANES 4u     /* 64-bit words per row per block */
#define BLOCK_U32 8u /* the same block in 32-bit words */

#if defined(__GNUC__) && !defined(MBNN_PORTABLE_POPCOUNT)
#define POPCOUNT(v) ((word_t)__builtin_popcountll(v))
#else
/* SWAR bit count of one 64-bit word (the portable build). */
static word_t popcount_portable(word_t v)
{
    v = v - ((v >> 1) & 0x5555555555555555ull);
    v = (v & 0x3333333333333333ull) + ((v >> 2) & 0x3333333333333333ull);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0Full;
    return (v * 0x0101010101010101ull) >> 56;
}
#define POPCOUNT(v) popcount_portable(v)
#endif

#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* s[k] += popcount(xv[k] XOR row block k), the row block at r + w (32-bit words). */
#define ACCUMULATE(s, r)                                                                \
    do {                                                                                \
        word_t y_[LANES];                                                               \
        memcpy(y_, (r) + w, sizeof y_);                                                 \
        for (uint32_t k = 0; k < LANES; k++) (s)[k] += POPCOUNT(xv[k] ^ y_[k]);         \
    } while (0)

/* acc of one row: its lane sums plus the words from w (after the full blocks) to W, inline: a
 * call per row here would cost as much as the row's blocks on a 4096-input layer. */
static int32_t finish(uint32_t K, const word_t *s, const uint32_t *x, const uint32_t *r, uint32_t w,
                      uint32_t W)
{
    word_t t = 0;
    for (uint32_t k = 0; k < LANES; k++) t += s[k];
    for (; w + 2u <= W; w += 2u) {
        word_t a, b;
        memcpy(&a, x + w, 8);
        memcpy(&b, r + w, 8);
        t += POPCOUNT(a ^ b);
    }
    if (w < W) t += POPCOUNT((word_t)(x[w] ^ r[w]));
    return (int32_t)K - 2 * (int32_t)t;
}
#endif /* MBNN_DENSE_BITS_BLOCKED */

mbnn_status mbnn_dense_bits(const mbnn_layer *layer, const uint32_t *x, int32_t *acc)
{
    if (layer == NULL || x == NULL || acc == NULL) return MBNN_ERR_NULL;
    if (layer->in_kind != MBNN_BITS) return MBNN_ERR_ARG;
#if defined(MBNN_BITS_AVX512)
    dense_bits_avx512(layer, x, acc);
    return MBNN_OK;
#else
    const uint32_t K = layer->K, N = layer->N, W = layer->W;
    uint32_t j = 0;
#endif
#ifdef MBNN_DENSE_BITS_BLOCKED
    const uint32_t Wb = W - W % BLOCK_U32; /* words covered by full blocks */
    for (; j + 4u <= N; j += 4u) {
        const uint32_t *r0 = layer->signs + (size_t)j * W, *r1 = r0 + W, *r2 = r1 + W, *r3 = r2 + W;
        /* the next block's rows, or these again at the end (never a pointer past the array) */
        const uint32_t *p0 = j + 8u <= N ? r0 + (size_t)4u * W : r0;
        const uint32_t *p1 = p0 + W, *p2 = p1 + W, *p3 = p2 + W;
        word_t s0[LANES] = {0}, s1[LANES] = {0}, s2[LANES] = {0}, s3[LANES] = {0};
        for (uint32_t w = 0; w < Wb; w += BLOCK_U32) {
            word_t xv[LANES];
            PREFETCH(p0 + w);
            PREFETCH(p1 + w);
            PREFETCH(p2 + w);
            PREFETCH(p3 + w);
            memcpy(xv, x + w, sizeof xv);
            ACCUMULATE(s0, r0);
            ACCUMULATE(s1, r1);
            ACCUMULATE(s2, r2);
            ACCUMULATE(s3, r3);
        }
        acc[j] = finish(K, s0, x, r0, Wb, W);
        acc[j + 1u] = finish(K, s1, x, r1, Wb, W);
        acc[j + 2u] = finish(K, s2, x, r2, Wb, W);
        acc[j + 3u] = finish(K, s3, x, r3, Wb, W);
    }
#endif
#if !defined(MBNN_BITS_AVX512)
    for (; j < N; j++)
        acc[j] = (int32_t)K - 2 * (int32_t)mbnn_xor_popcount(x, layer->signs + (size_t)j * W, W);
    return MBNN_OK;
#endif
}
