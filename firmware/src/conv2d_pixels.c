/* Binary conv2d on uint8 pixels, the first layer of a conv model (FORMAT.md 3.3).
 *
 *   acc_j(oy, ox) = sum over the in-map taps (ky, kx) and channels c of w_j,(ky k + kx) C + c * x_c(y, x),
 *   y = oy s + ky - p, x = ox s + kx - p
 *
 * A conv layer is a dense layer applied to the window of every output position: the window is gathered
 * in synapse order ((ky k + kx) C + c: taps row-major, channels innermost) with 0 for the taps off the
 * map, which is exactly "they contribute nothing" for pixels, and goes through mbnn_dense_pixels, the
 * build's first-layer row kernel (so every kernel of dense_pixels*.c serves conv too, held to the
 * portable reference by the kernel tests). The threshold is the dense layer's (mbnn_activate: one
 * record per output channel, the same at every position). */
#include "mbnn_internal.h"

mbnn_status mbnn_conv2d_pixels(mbnn_layer *layer, uint32_t bank, const uint8_t *x, uint8_t *window,
                               uint32_t *planes, int32_t *acc, uint32_t *out_map, uint32_t *window_map)
{
    if (layer == NULL || x == NULL || window == NULL || acc == NULL || out_map == NULL) return MBNN_ERR_NULL;
    if (layer->op != MBNN_OP_CONV2D || layer->in_kind != MBNN_PIXELS || layer->out_kind != MBNN_SIGN)
        return MBNN_ERR_ARG;
    const uint32_t C = layer->in_c, H = layer->in_h, Wm = layer->in_w, k = layer->kernel;
    const uint32_t s = layer->stride, p = layer->pad, OH = layer->out_h, OW = layer->out_w;
    const uint32_t CW = mbnn_words(layer->N);
    for (uint32_t oy = 0; oy < OH; oy++) {
        for (uint32_t ox = 0; ox < OW; ox++) {
            for (uint32_t ky = 0; ky < k; ky++) {
                const uint32_t y = oy * s + ky; /* + p: the padded row */
                for (uint32_t kx = 0; kx < k; kx++) {
                    const uint32_t xx = ox * s + kx;
                    uint8_t *w = window + (size_t)(ky * k + kx) * C;
                    if (y < p || y - p >= H || xx < p || xx - p >= Wm) {
                        memset(w, 0, C);
                        continue;
                    }
                    const uint8_t *src = x + (size_t)(y - p) * Wm + (xx - p);
                    for (uint32_t c = 0; c < C; c++) w[c] = src[(size_t)c * H * Wm];
                }
            }
            mbnn_status st = mbnn_dense_pixels(layer, window, planes, acc);
            if (st == MBNN_OK)
                st = mbnn_activate(layer, bank, 0, acc, out_map + ((size_t)oy * OW + ox) * CW,
                                   window_map ? window_map + ((size_t)oy * OW + ox) * CW : NULL, NULL);
            if (st != MBNN_OK) return st;
        }
    }
    return MBNN_OK;
}
