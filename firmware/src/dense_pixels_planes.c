/* The first layer through the pixels' bit planes (64-bit hosts with a popcount instruction):
 *   S_j = sum_b 2^b popcount(P_b AND w_j),  acc_j = 2 S_j - T   (dense_pixels.c)
 * where P_b packs bit b of every pixel like the sign bits: 8 AND-popcounts per 64 synapses
 * instead of 64 additions. The planes are interleaved: plane b of pixels 64w..64w+63 is the
 * 64-bit word planes[8w + b], so the 8 planes of one row word are one 512-bit vector (AVX-512)
 * or one fixed block of 8 the compiler can vectorize. Padding bits are 0 in both operands.
 * Scratch: 8 x ceil(K/64) 64-bit words, which the workspace's 8 x (W0 + 1) 32-bit words hold. */
#include "mbnn_internal.h"

#ifdef MBNN_PIXEL_PLANES

#ifdef MBNN_PIXELS_AVX512
#include <immintrin.h>
#endif

/* Row word w (64 bits) of a row of W 32-bit words; the last one alone when W is odd. */
static inline uint64_t row_word(const uint32_t *row, uint32_t W, uint32_t w)
{
    uint64_t v;
    if (2u * w + 1u < W) {
        memcpy(&v, row + 2u * w, 8); /* rows start on 4-byte boundaries */
        return v;
    }
    return row[2u * w];
}

/* The planes and T = sum of the pixels. */
static int32_t build_planes(const uint8_t *x, uint32_t K, uint64_t *planes)
{
    const uint32_t NW = (K + 63u) / 64u;
#ifdef MBNN_PIXELS_AVX512
    __m512i total = _mm512_setzero_si512();
    for (uint32_t w = 0; w < NW; w++) {
        const uint32_t left = K - 64u * w;
        const __mmask64 in = left >= 64u ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1u);
        const __m512i v = _mm512_maskz_loadu_epi8(in, x + 64u * w); /* never reads past x[K-1] */
        total = _mm512_add_epi64(total, _mm512_sad_epu8(v, _mm512_setzero_si512()));
        for (uint32_t b = 0; b < 8u; b++) /* plane b = the bytes whose bit b is set */
            planes[8u * w + b] = _mm512_test_epi8_mask(v, _mm512_set1_epi8((char)(1u << b)));
    }
    return (int32_t)_mm512_reduce_add_epi64(total);
#else
    /* Bit b of 8 pixels in one multiply: ((v >> b) & 0x01..01) * 0x0102040810204080 moves the
     * bit of byte k to bit 56 + k without carries (the partial products never overlap). */
    int32_t total = 0;
    for (uint32_t w = 0; w < NW; w++) {
        uint8_t chunk[64] = {0};
        const uint32_t n = K - 64u * w < 64u ? K - 64u * w : 64u;
        memcpy(chunk, x + 64u * w, n);
        uint64_t p[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (uint32_t c = 0; c < 8u; c++) {
            uint64_t v;
            memcpy(&v, chunk + 8u * c, 8);
            for (uint32_t b = 0; b < 8u; b++)
                p[b] |= ((((v >> b) & 0x0101010101010101ull) * 0x0102040810204080ull) >> 56) << (8u * c);
        }
        for (uint32_t b = 0; b < 8u; b++) planes[8u * w + b] = p[b];
        for (uint32_t i = 0; i < n; i++) total += chunk[i];
    }
    return total;
#endif
}

#ifdef MBNN_PIXELS_AVX512
/* S of the 8 plane counts of one row: counts[b] << b, summed. */
static inline int32_t weigh(__m512i counts)
{
    return (int32_t)_mm512_reduce_add_epi64(_mm512_sllv_epi64(counts, _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7)));
}

#define AND_POPCOUNT(s, row) \
    (s) = _mm512_add_epi64((s), _mm512_popcnt_epi64(_mm512_and_si512(_mm512_set1_epi64((long long)row_word((row), W, w)), p)))

void mbnn_pixels_planes(const mbnn_layer *layer, const uint8_t *x, uint64_t *planes, int32_t *acc)
{
    const uint32_t K = layer->K, N = layer->N, W = layer->W, NW = (K + 63u) / 64u;
    const int32_t total = build_planes(x, K, planes);
    uint32_t j = 0;
    /* 4 rows per pass: each plane vector is loaded once for 4 AND-popcounts (4 sums in flight). */
    for (; j + 4u <= N; j += 4u) {
        const uint32_t *r0 = layer->signs + (size_t)j * W, *r1 = r0 + W, *r2 = r1 + W, *r3 = r2 + W;
        __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
        for (uint32_t w = 0; w < NW; w++) {
            const __m512i p = _mm512_loadu_si512(planes + 8u * w);
            AND_POPCOUNT(s0, r0);
            AND_POPCOUNT(s1, r1);
            AND_POPCOUNT(s2, r2);
            AND_POPCOUNT(s3, r3);
        }
        acc[j] = 2 * weigh(s0) - total;
        acc[j + 1u] = 2 * weigh(s1) - total;
        acc[j + 2u] = 2 * weigh(s2) - total;
        acc[j + 3u] = 2 * weigh(s3) - total;
    }
    for (; j < N; j++) {
        const uint32_t *r0 = layer->signs + (size_t)j * W;
        __m512i s0 = _mm512_setzero_si512();
        for (uint32_t w = 0; w < NW; w++) {
            const __m512i p = _mm512_loadu_si512(planes + 8u * w);
            AND_POPCOUNT(s0, r0);
        }
        acc[j] = 2 * weigh(s0) - total;
    }
}
#else
void mbnn_pixels_planes(const mbnn_layer *layer, const uint8_t *x, uint64_t *planes, int32_t *acc)
{
    const uint32_t K = layer->K, W = layer->W, NW = (K + 63u) / 64u;
    const int32_t total = build_planes(x, K, planes);
    for (uint32_t j = 0; j < layer->N; j++) {
        const uint32_t *row = layer->signs + (size_t)j * W;
        uint64_t c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (uint32_t w = 0; w < NW; w++) {
            const uint64_t r = row_word(row, W, w);
            for (uint32_t b = 0; b < 8u; b++) c[b] += (uint64_t)__builtin_popcountll(planes[8u * w + b] & r);
        }
        int32_t s = 0;
        for (uint32_t b = 0; b < 8u; b++) s += (int32_t)(c[b] << b);
        acc[j] = 2 * s - total;
    }
}
#endif

#endif /* MBNN_PIXEL_PLANES */
