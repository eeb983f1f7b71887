/* Deltas of SIGN layer l from those of layer l+1 (FORMAT.md 4.3 step 4), with the binary
 * weights of layer l+1 as they were in the forward pass (the caller updates layer l+1 only
 * after this):
 *   back_i = sum_j w_ji delta_j   (int32: |back| <= 65536 * 32767 < 2^31)
 *   back_i = 0 outside the straight-through window [lo_i, hi_i] (a bit mask from the forward)
 *   delta_i = sat((f_i ? -1 : +1) rsr(back_i, bshift), -32767, 32767) */
#include "mbnn_internal.h"

mbnn_status mbnn_backward(const mbnn_model *model, uint32_t layer, const int32_t *delta_above,
                          const uint32_t *window, int32_t *delta)
{
    if (model == NULL || delta_above == NULL || window == NULL || delta == NULL) return MBNN_ERR_NULL;
    if (layer + 1 >= model->n_layers) return MBNN_ERR_ARG;
    const mbnn_layer *lay = &model->layers[layer], *above = &model->layers[layer + 1];
    const uint32_t K = above->K, W = above->W; /* K == lay->N */
    for (uint32_t i = 0; i < K; i++) delta[i] = 0;
    for (uint32_t j = 0; j < above->N; j++) {
        const int32_t dj = delta_above[j];
        if (dj == 0) continue;
        const uint32_t *row = above->signs + (size_t)j * W;
        for (uint32_t i = 0; i < K; i++) {
            const int32_t m = (int32_t)((row[i >> 5] >> (i & 31u)) & 1u) - 1; /* +1 -> 0, -1 -> -1 */
            delta[i] += (dj ^ m) - m;                                       /* +dj or -dj */
        }
    }
    for (uint32_t i = 0; i < K; i++) {
        if (!((window[i >> 5] >> (i & 31u)) & 1u)) {
            delta[i] = 0;
            continue;
        }
        const uint8_t *r = mbnn_norm_rec(lay, model->bank, i);
        const int64_t v = mbnn_rsr(delta[i], lay->bshift);
        delta[i] = (int32_t)mbnn_sat(mbnn_rd_i32(r + 16) ? -v : v, -MBNN_DELTA_MAX, MBNN_DELTA_MAX);
    }
    return MBNN_OK;
}
