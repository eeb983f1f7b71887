/* The first layer: uint8 pixels times +-1 weights (FORMAT.md section 2).
 *
 * acc_j = sum_i w_ji x_i = 2 S_j - T, with T = sum_i x_i (once per image) and S_j the sum of
 * the pixels whose weight bit is 1: a masked sum, no multiply. Every kernel computes exactly
 * these integers, so all of them agree bit for bit; mbnn_internal.h picks one per target:
 *  - portable (this file, C99, the reference; 32-bit targets such as the Cortex-M4): each
 *    4-bit nibble of a sign word selects 4 pixel bytes through a 16-entry byte-mask table,
 *    and the masked bytes are summed in 16-bit SWAR lanes (one USADA8 on Arm cores with the DSP
 *    extension): 5-8 instructions per 4 pixels where a bit-plane popcount costs a libgcc call
 *    per 32 bits;
 *  - bit planes (dense_pixels_planes.c; AVX-512 VPOPCNTDQ, or any 64-bit host with a popcount
 *    builtin): S_j = sum_b 2^b popcount(P_b AND w_j) over the pixels' 8 bit planes P_b;
 *  - AVX2 (dense_pixels_avx2.c): the sign bits expanded to byte masks, the masked pixels
 *    summed with VPSADBW.
 * The tests hold every kernel a build can compile to mbnn_dense_pixels_portable and numpy. */
#include "mbnn_internal.h"

/* Bit i of the index selects byte i (little-endian: pixel 4k + i of nibble k). */
static const uint32_t NIBBLE_BYTES[16] = {
    0x00000000u, 0x000000FFu, 0x0000FF00u, 0x0000FFFFu, 0x00FF0000u, 0x00FF00FFu, 0x00FFFF00u, 0x00FFFFFFu,
    0xFF000000u, 0xFF0000FFu, 0xFF00FF00u, 0xFF00FFFFu, 0xFFFF0000u, 0xFFFF00FFu, 0xFFFFFF00u, 0xFFFFFFFFu};

#if defined(__ARM_FEATURE_SIMD32) && !defined(MBNN_PORTABLE_POPCOUNT)
/* Arm cores with the DSP extension (Cortex-M4/M7/M33): USADA8 adds the 4 bytes of v to e in one
 * instruction (the sum of |v_i - 0|), so e is the plain sum and o stays 0. */
#include <arm_acle.h>
#define ADD_BYTES(v) (e = __usada8((v), 0u, e))
#define FOLD(e, o) ((e) + (o))
#else
/* The even bytes of v into the 16-bit lanes of e, the odd ones into those of o. */
#define ADD_BYTES(v) (e += (v) & 0x00FF00FFu, o += ((v) >> 8) & 0x00FF00FFu)
#define FOLD(e, o) (((e) & 0xFFFFu) + ((e) >> 16) + ((o) & 0xFFFFu) + ((o) >> 16))
#endif

/* The 4 pixels p[4k..4k+3] under nibble k of r, added to the sums. */
#define NIBBLE(k)                                                                                  \
    do {                                                                                           \
        uint32_t v_;                                                                               \
        memcpy(&v_, p + 4u * (k), 4);                                                              \
        v_ &= NIBBLE_BYTES[(r >> (4u * (k))) & 15u];                                               \
        ADD_BYTES(v_);                                                                             \
    } while (0)

/* S of one row: W sign words over the pixels x, the last partial word's pixels in `tail`
 * (zero-padded; the padding bits of the row are 0 as well). Each 16-bit lane gains at most 255
 * per nibble, so the lanes are folded into s every 32 words (256 x 255 < 2^16). */
static uint32_t masked_sum(const uint32_t *row, const uint8_t *x, const uint8_t *tail, uint32_t W, uint32_t Wf)
{
    uint32_t s = 0;
    for (uint32_t w0 = 0; w0 < W; w0 += 32u) {
        const uint32_t we = W - w0 > 32u ? w0 + 32u : W;
        uint32_t e = 0, o = 0;
        for (uint32_t w = w0; w < we; w++) {
            const uint32_t r = row[w];
            const uint8_t *p = w < Wf ? x + 32u * w : tail;
            NIBBLE(0); NIBBLE(1); NIBBLE(2); NIBBLE(3); NIBBLE(4); NIBBLE(5); NIBBLE(6); NIBBLE(7);
        }
        s += FOLD(e, o);
    }
    return s;
}

static mbnn_status check(const mbnn_layer *layer, const uint8_t *x, const int32_t *acc)
{
    if (layer == NULL || x == NULL || acc == NULL) return MBNN_ERR_NULL;
    return layer->in_kind == MBNN_PIXELS ? MBNN_OK : MBNN_ERR_ARG;
}

mbnn_status mbnn_dense_pixels_portable(const mbnn_layer *layer, const uint8_t *x, int32_t *acc)
{
    const mbnn_status st = check(layer, x, acc);
    if (st != MBNN_OK) return st;
    const uint32_t K = layer->K, W = layer->W, Wf = K / 32u;
    uint8_t tail[32] = {0};
    memcpy(tail, x + 32u * Wf, K - 32u * Wf);
    int32_t total = 0;
    for (uint32_t i = 0; i < K; i++) total += x[i];
    for (uint32_t j = 0; j < layer->N; j++)
        acc[j] = 2 * (int32_t)masked_sum(layer->signs + (size_t)j * W, x, tail, W, Wf) - total;
    return MBNN_OK;
}

mbnn_status mbnn_dense_pixels(const mbnn_layer *layer, const uint8_t *x, uint32_t *planes, int32_t *acc)
{
    const mbnn_status st = check(layer, x, acc);
    if (st != MBNN_OK) return st;
#if defined(MBNN_PIXEL_PLANES)
    if (planes == NULL) return MBNN_ERR_NULL;
    if (((uintptr_t)planes & 7u) != 0) return MBNN_ERR_ALIGN;
    mbnn_pixels_planes(layer, x, (uint64_t *)(void *)planes, acc);
    return MBNN_OK;
#elif defined(MBNN_PIXELS_AVX2)
    (void)planes;
    mbnn_pixels_avx2(layer, x, acc);
    return MBNN_OK;
#else
    (void)planes;
    return mbnn_dense_pixels_portable(layer, x, acc);
#endif
}

const char *mbnn_dense_pixels_kernel(void)
{
#if defined(MBNN_PIXELS_AVX512)
    return "avx512-planes";
#elif defined(MBNN_PIXELS_AVX2)
    return "avx2-sad";
#elif defined(MBNN_PIXELS_POPCNT)
    return "popcount-planes";
#else
    return "portable";
#endif
}
