/* Flatten (FORMAT.md 3.3): a channel-packed C x H x W map (metabnn.h) into the vector a dense layer reads,
 * in torch's NCHW order: map bit (c, y, x) becomes vector bit c H W + y W + x. Only the bit order changes. */
#include "mbnn_internal.h"

mbnn_status mbnn_flatten(const uint32_t *map, uint32_t C, uint32_t H, uint32_t W, uint32_t *out)
{
    if (map == NULL || out == NULL) return MBNN_ERR_NULL;
    if (C == 0 || H == 0 || W == 0 || (uint64_t)C * H * W > 0x7FFFFFFFu) return MBNN_ERR_ARG;
    const uint32_t CW = mbnn_words(C), P = H * W;
    memset(out, 0, 4u * (size_t)mbnn_words(C * P));
    for (uint32_t q = 0; q < P; q++) {
        const uint32_t *pos = map + (size_t)q * CW;
        for (uint32_t c = 0; c < C; c++) {
            const uint32_t i = c * P + q;
            out[i >> 5] |= ((pos[c >> 5] >> (c & 31u)) & 1u) << (i & 31u);
        }
    }
    return MBNN_OK;
}
