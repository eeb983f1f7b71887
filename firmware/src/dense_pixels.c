/* The first layer: uint8 pixels times +-1 weights.
 *
 * acc_j = sum_i w_ji x_i = 2 S_j - T with T = sum_i x_i and S_j = sum of the pixels whose
 * weight is +1. Splitting every pixel into its 8 bit planes P_b (packed like the weights)
 * gives S_j = sum_b 2^b popcount(P_b AND w_j): 8 AND-popcounts per 32 pixels instead of
 * 32 multiply-adds. Padding bits are 0 in both operands, so they never count. */
#include "mbnn_internal.h"

mbnn_status mbnn_dense_pixels(const mbnn_layer *layer, const uint8_t *x, uint32_t *planes, int32_t *acc)
{
    if (layer == NULL || x == NULL || planes == NULL || acc == NULL) return MBNN_ERR_NULL;
    if (layer->in_kind != MBNN_PIXELS) return MBNN_ERR_ARG;
    const uint32_t K = layer->K, W = layer->W;
    int32_t total = 0;
    for (uint32_t p = 0; p < 8u * W; p++) planes[p] = 0;
    for (uint32_t i = 0; i < K; i++) {
        const uint32_t v = x[i], word = i >> 5, bit = i & 31u;
        total += (int32_t)v;
        for (uint32_t b = 0; b < 8u; b++) planes[b * W + word] |= ((v >> b) & 1u) << bit;
    }
    for (uint32_t j = 0; j < layer->N; j++) {
        const uint32_t *row = layer->signs + (size_t)j * W;
        int32_t s = 0;
        for (uint32_t b = 0; b < 8u; b++) s += (int32_t)(mbnn_and_popcount(planes + b * W, row, W) << b);
        acc[j] = 2 * s - total;
    }
    return MBNN_OK;
}
