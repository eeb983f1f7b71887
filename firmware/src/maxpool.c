/* 2 x 2 max-pool, stride 2, on sign bits (FORMAT.md 3.3): the pooled bit is +1 iff one of its window's
 * four bits is +1, so on a channel-packed map (metabnn.h) a pooled position is the OR of four positions'
 * words, 32 channels per OR. An odd last row or column is dropped (torch's floor mode). */
#include "mbnn_internal.h"

mbnn_status mbnn_maxpool2(const uint32_t *in_map, uint32_t C, uint32_t H, uint32_t W, uint32_t *out_map)
{
    if (in_map == NULL || out_map == NULL) return MBNN_ERR_NULL;
    if (C == 0 || H < 2 || W < 2) return MBNN_ERR_ARG;
    const uint32_t CW = mbnn_words(C), PH = H / 2u, PW = W / 2u;
    for (uint32_t y = 0; y < PH; y++) {
        for (uint32_t x = 0; x < PW; x++) {
            const uint32_t *t = in_map + ((size_t)2u * y * W + 2u * x) * CW, *b = t + (size_t)W * CW;
            uint32_t *o = out_map + ((size_t)y * PW + x) * CW;
            for (uint32_t w = 0; w < CW; w++) o[w] = t[w] | t[CW + w] | b[w] | b[CW + w];
        }
    }
    return MBNN_OK;
}
