/* The first layer on x86 with AVX2 but no vector popcount (dense_pixels.c): S_j, the sum of the
 * pixels whose weight bit is 1, 32 pixels per step. The 32 sign bits of a row word become 32
 * byte masks (broadcast, shuffle byte k of the word to bytes 8k..8k+7, test one bit per byte),
 * the masked pixels are summed by VPSADBW into four 64-bit lanes. acc_j = 2 S_j - T. The last
 * partial word reads its pixels from a zero-padded copy, so nothing past x[K-1] is read. */
#include "mbnn_internal.h"

#ifdef MBNN_PIXELS_AVX2
#include <immintrin.h>

void mbnn_pixels_avx2(const mbnn_layer *layer, const uint8_t *x, int32_t *acc)
{
    const uint32_t K = layer->K, W = layer->W, Wf = K / 32u;
    uint8_t tail[32] = {0};
    memcpy(tail, x + 32u * Wf, K - 32u * Wf);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                            3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll), zero = _mm256_setzero_si256();
    __m256i t = zero;
    for (uint32_t w = 0; w < W; w++)
        t = _mm256_add_epi64(t, _mm256_sad_epu8(_mm256_loadu_si256((const void *)(w < Wf ? x + 32u * w : tail)), zero));
    for (uint32_t j = 0; j < layer->N; j++) {
        const uint32_t *row = layer->signs + (size_t)j * W;
        __m256i s = zero;
        for (uint32_t w = 0; w < W; w++) {
            __m256i m = _mm256_shuffle_epi8(_mm256_set1_epi32((int)row[w]), spread);
            m = _mm256_cmpeq_epi8(_mm256_and_si256(m, bit), bit);
            const __m256i px = _mm256_loadu_si256((const void *)(w < Wf ? x + 32u * w : tail));
            s = _mm256_add_epi64(s, _mm256_sad_epu8(_mm256_and_si256(px, m), zero));
        }
        s = _mm256_sub_epi64(_mm256_slli_epi64(s, 1), t); /* 2 S - T, lane by lane */
        const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        acc[j] = (int32_t)(_mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1));
    }
}
#endif
