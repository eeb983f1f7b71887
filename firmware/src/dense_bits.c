/* A binary layer: dot = K - 2 popcount(x XOR w) over the packed words (FORMAT.md section 2). */
#include "mbnn_internal.h"

mbnn_status mbnn_dense_bits(const mbnn_layer *layer, const uint32_t *x, int32_t *acc)
{
    if (layer == NULL || x == NULL || acc == NULL) return MBNN_ERR_NULL;
    if (layer->in_kind != MBNN_BITS) return MBNN_ERR_ARG;
    const uint32_t W = layer->W;
    for (uint32_t j = 0; j < layer->N; j++)
        acc[j] = (int32_t)layer->K - 2 * (int32_t)mbnn_xor_popcount(x, layer->signs + (size_t)j * W, W);
    return MBNN_OK;
}
