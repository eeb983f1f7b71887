/* The first layer: uint8 pixels times +-1 weights.
 *
 * acc_j = sum_i w_ji x_i = 2 S_j - T with T = sum_i x_i and S_j = sum of the pixels whose
 * weight is +1. Splitting every pixel into its 8 bit planes P_b (packed like the weights)
 * gives S_j = sum_b 2^b popcount(P_b AND w_j): 8 AND-popcounts per machine word of pixels
 * instead of one multiply-add per pixel. The planes are interleaved (word w of plane b at
 * 8w + b) so a row word is loaded once and the 8 popcounts form one fixed-width block the
 * compiler can vectorize. Padding bits are 0 in both operands, so they never count.
 * On 64-bit targets two 32-bit sign words form one 64-bit word (planes hold 8 x ceil(W/2)
 * 64-bit words, i.e. at most 8 (W + 1) 32-bit words of scratch). */
#include "mbnn_internal.h"

#if UINTPTR_MAX > 0xFFFFFFFFu
typedef uint64_t word_t;
#define WORD_BITS 64u
#if defined(__GNUC__) && !defined(MBNN_PORTABLE_POPCOUNT)
#define POPCOUNT(v) ((uint32_t)__builtin_popcountll(v))
#else
#define POPCOUNT(v) (mbnn_and_popcount_portable((const uint32_t *)&(v), ones, 2))
#endif
#else
typedef uint32_t word_t;
#define WORD_BITS 32u
#if defined(__GNUC__) && !defined(MBNN_PORTABLE_POPCOUNT)
#define POPCOUNT(v) ((uint32_t)__builtin_popcount(v))
#else
#define POPCOUNT(v) (mbnn_and_popcount_portable((const uint32_t *)&(v), ones, 1))
#endif
#endif

static word_t row_word(const uint32_t *row, uint32_t W, uint32_t w)
{
#if UINTPTR_MAX > 0xFFFFFFFFu
    const uint64_t lo = row[2u * w], hi = 2u * w + 1u < W ? row[2u * w + 1u] : 0u;
    return lo | (hi << 32);
#else
    (void)W;
    return row[w];
#endif
}

mbnn_status mbnn_dense_pixels(const mbnn_layer *layer, const uint8_t *x, uint32_t *planes32, int32_t *acc)
{
    if (layer == NULL || x == NULL || planes32 == NULL || acc == NULL) return MBNN_ERR_NULL;
    if (layer->in_kind != MBNN_PIXELS) return MBNN_ERR_ARG;
    static const uint32_t ones[2] = {0xFFFFFFFFu, 0xFFFFFFFFu};
    (void)ones;
    const uint32_t K = layer->K, W = layer->W, NW = (K + WORD_BITS - 1u) / WORD_BITS;
    word_t *planes = (word_t *)(void *)planes32; /* workspace is 8-byte aligned */
    int32_t total = 0;
    for (uint32_t p = 0; p < 8u * NW; p++) planes[p] = 0;
    for (uint32_t i = 0; i < K; i++) {
        const uint32_t v = x[i];
        word_t *pw = planes + 8u * (i / WORD_BITS);
        const uint32_t bit = i % WORD_BITS;
        total += (int32_t)v;
        for (uint32_t b = 0; b < 8u; b++) pw[b] |= (word_t)((v >> b) & 1u) << bit;
    }
    for (uint32_t j = 0; j < layer->N; j++) {
        const uint32_t *row = layer->signs + (size_t)j * W;
        uint32_t c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (uint32_t w = 0; w < NW; w++) {
            const word_t r = row_word(row, W, w);
            const word_t *pw = planes + 8u * w;
            for (uint32_t b = 0; b < 8u; b++) {
                const word_t v = pw[b] & r;
                c[b] += POPCOUNT(v);
            }
        }
        int32_t s = 0;
        for (uint32_t b = 0; b < 8u; b++) s += (int32_t)(c[b] << b);
        acc[j] = 2 * s - total;
    }
    return MBNN_OK;
}
