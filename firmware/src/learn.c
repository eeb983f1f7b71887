/* One on-device learning step (FORMAT.md 4.3; 4.4 in stochastic layers; 4.5 through conv layers, whose part
 * is conv2d_learn.c's), batch 1, integers only.
 *
 * Forward (keeping every layer's input bits and window mask; adaptation moves M if on), the
 * output deltas, then top-down: deltas of layer l from layer l+1 (old weights), and only then
 * layer l+1's update. Each layer's update reads nothing the lower layers' backward needs, so
 * this order gives exactly "backward with the weights before the step, then update all".
 * Frozen layers (model->frozen, FORMAT.md 4.5) are not updated; the error is not carried below the lowest
 * layer that learns. */
#include "mbnn_internal.h"

mbnn_status mbnn_set_frozen(mbnn_model *model, uint32_t mask)
{
    if (model == NULL) return MBNN_ERR_NULL;
    const uint32_t all = model->n_layers >= 32u ? 0xffffffffu : (1u << model->n_layers) - 1u;
    if ((mask & ~all) != 0 || mask == all) return MBNN_ERR_ARG;
    model->frozen = mask;
    return MBNN_OK;
}

static int is_frozen(const mbnn_model *model, uint32_t l) { return (model->frozen >> l) & 1u; }

mbnn_status mbnn_learn_step(mbnn_model *model, const uint8_t *pixels, size_t n_pixels, uint32_t label,
                            void *workspace, size_t ws_size, mbnn_step_info *info)
{
    if (model == NULL || pixels == NULL || model->image == NULL) return MBNN_ERR_NULL;
    if (!model->writable) return MBNN_ERR_READONLY;
    if (n_pixels != model->n_inputs) return MBNN_ERR_ARG;
    if (model->bank >= model->n_banks) return MBNN_ERR_BANK;
    const uint32_t L = model->n_layers;
    if (label >= model->layers[L - 1].N) return MBNN_ERR_LABEL;
    mbnn_ws ws;
    mbnn_status st = mbnn_ws_check(model, MBNN_MODE_LEARN, workspace, ws_size, &ws);
    if (st != MBNN_OK) return st;

    st = mbnn_forward_record(model, pixels, &ws, 1);
    uint32_t predicted = 0, flips = 0;
    if (st == MBNN_OK) st = mbnn_argmax(ws.scores, model->layers[L - 1].N, &predicted);
    uint32_t first_dense = 0; /* a conv model's first dense layer (convs come first, FORMAT.md 3.3) */
    while (model->layers[first_dense].op == MBNN_OP_CONV2D) first_dense++;
    uint32_t lowest = 0; /* the lowest layer that learns (mbnn_set_frozen never freezes them all) */
    while (is_frozen(model, lowest)) lowest++;
    int32_t *cur = ws.delta_a, *below = ws.delta_b;
    if (st == MBNN_OK) st = mbnn_output_delta(model, ws.scores, label, cur);
    for (uint32_t l = L - 1; l > first_dense && l >= lowest && st == MBNN_OK; l--) {
        if (l - 1 >= lowest) st = mbnn_backward(model, l - 1, cur, ws.window[l - 1], below);
        if (st == MBNN_OK && !is_frozen(model, l))
            st = mbnn_metaplastic_update(&model->layers[l], ws.bits[l - 1], cur, &flips);
        int32_t *t = cur;
        cur = below;
        below = t;
    }
    if (st == MBNN_OK && first_dense == 0 && lowest == 0)
        st = mbnn_metaplastic_update(&model->layers[0], pixels, cur, &flips);
    if (st == MBNN_OK && first_dense > 0 && lowest <= first_dense)
        st = mbnn_conv_learn(model, pixels, &ws, first_dense, cur, &flips);
    /* every stochastic layer that learns counts the step, changed or not (FORMAT.md 4.4); u32 wraps */
    for (uint32_t l = 0; l < L && st == MBNN_OK; l++) {
        uint8_t *d = model->layers[l].desc;
        if (model->layers[l].rounding && !is_frozen(model, l))
            mbnn_wr_u32(d + MBNN_DESC_SR_STEP, mbnn_rd_u32(d + MBNN_DESC_SR_STEP) + 1u);
    }
    if (st == MBNN_OK && info != NULL) {
        info->predicted = predicted;
        info->flips = flips;
    }
    return st;
}
