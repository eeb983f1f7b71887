/* The workspace: one caller-owned buffer carved into the scratch arrays of a mode.
 *
 * Inference keeps only two packed activation vectors (ping-pong); learning keeps every SIGN
 * layer's output bits (the inputs of the layers above, needed by the update) and a 1-bit
 * straight-through window mask per neuron (all the backward pass needs of d), plus two delta
 * vectors: layers are updated top-down right after the layer below has its deltas, so only
 * two layers of deltas are ever live. Builds with the column kernel put the pixel-major copy of
 * layer 0's signs first, at the same offset in both modes: a writable session may infer with
 * its learning workspace, and both calls then share one copy. */
#include "mbnn_internal.h"

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

static void *carve(uint8_t *base, size_t *pos, size_t bytes)
{
    void *p = base ? base + *pos : NULL;
    *pos += align8(bytes);
    return p;
}

size_t mbnn_ws_layout(const mbnn_model *m, mbnn_mode mode, void *base, mbnn_ws *ws)
{
    uint8_t *b = (uint8_t *)base;
    size_t pos = 0;
    uint32_t max_n = 0, max_w = 0;
    const uint32_t L = m->n_layers;
    uint32_t win_w = 0, pool_w = 0, flat_w = 0;          /* conv models */
    size_t back_n = 0, pre_n = 0, cdelta_n = 0, grad_n = 0; /* conv models, learning */
    for (uint32_t l = 0; l < L; l++) {
        const mbnn_layer *lay = &m->layers[l];
        if (lay->op == MBNN_OP_CONV2D) {
            const size_t P = (size_t)lay->out_h * lay->out_w, outs = (size_t)lay->N * lay->map_h * lay->map_w;
            if (outs > back_n) back_n = outs; /* the error at its (pooled) outputs, and at the next conv's inputs */
            if (lay->pool && P * lay->N > pre_n) pre_n = P * lay->N;
            if (P * lay->N > cdelta_n) cdelta_n = P * lay->N;
            if (lay->K > grad_n) grad_n = lay->K;
        }
        if (lay->N > max_n) max_n = lay->N;
        if (l + 1 < L && mbnn_out_words(lay) > max_w) max_w = mbnn_out_words(lay);
        if (lay->op == MBNN_OP_CONV2D && lay->in_kind == MBNN_BITS && 2u * lay->W > win_w) win_w = 2u * lay->W;
        if (lay->op == MBNN_OP_CONV2D && lay->pool) {
            const uint32_t w = (uint32_t)lay->out_h * lay->out_w * mbnn_words(lay->N);
            if (w > pool_w) pool_w = w;
        }
        if (l > 0 && lay->op == MBNN_OP_DENSE && m->layers[l - 1].op == MBNN_OP_CONV2D) flat_w = lay->W;
    }
    const int conv = m->layers[0].op == MBNN_OP_CONV2D;
#ifdef MBNN_PIXEL_COLUMNS
    const size_t col_words = conv ? 0 : mbnn_pixel_columns_words(&m->layers[0]);
#else
    const size_t col_words = 0;
#endif
    ws->cols_tag = col_words ? (uint32_t *)carve(b, &pos, 64u) : NULL;
    /* the copy on a cache line whatever the buffer's alignment (8 is all the API asks): a pixel's 512 signs
     * are then one line, not two */
    uint8_t *cols = col_words ? (uint8_t *)carve(b, &pos, 4u * col_words + 56u) : NULL;
    ws->cols = cols ? (uint32_t *)(void *)(cols + ((64u - ((uintptr_t)cols & 63u)) & 63u)) : NULL;
    ws->scores = (int64_t *)carve(b, &pos, sizeof(int64_t) * m->layers[L - 1].N);
    ws->acc = (int32_t *)carve(b, &pos, sizeof(int32_t) * max_n);
#ifdef MBNN_PIXEL_PLANES /* only the bit-plane kernels of the first layer need scratch */
    ws->planes = (uint32_t *)carve(b, &pos, sizeof(uint32_t) * 8u * (m->layers[0].W + 1u));
#else
    ws->planes = NULL;
#endif
    for (uint32_t l = 0; l < MBNN_MAX_LAYERS; l++) ws->bits[l] = ws->window[l] = ws->pre[l] = NULL;
    ws->delta_a = ws->delta_b = NULL;
    ws->back = ws->back_pre = ws->grad = NULL;
    ws->cdelta = NULL;
    ws->win_pixels = conv ? (uint8_t *)carve(b, &pos, m->layers[0].K) : NULL;
    ws->win_bits = win_w ? (uint32_t *)carve(b, &pos, 4u * win_w) : NULL;
    ws->flat = flat_w ? (uint32_t *)carve(b, &pos, 4u * flat_w) : NULL;
    ws->conv_fast = NULL;
    if (mode == MBNN_MODE_INFER) {
        size_t fast = 0; /* the conv layers' inference kernel (conv2d_fast.c) */
        for (uint32_t l = 0; l < L; l++)
            if (mbnn_conv2d_fast_bytes(&m->layers[l]) > fast) fast = mbnn_conv2d_fast_bytes(&m->layers[l]);
        ws->conv_fast = fast ? carve(b, &pos, fast) : NULL;
        uint32_t *pool_in = pool_w ? (uint32_t *)carve(b, &pos, 4u * pool_w) : NULL; /* shared by every pool */
        uint32_t *ping = (uint32_t *)carve(b, &pos, 4u * max_w), *pong = (uint32_t *)carve(b, &pos, 4u * max_w);
        for (uint32_t l = 0; l + 1 < L; l++) {
            ws->bits[l] = (l & 1u) ? pong : ping;
            ws->pre[l] = m->layers[l].pool ? pool_in : NULL;
        }
    } else {
        /* every layer's output bits and window mask (a conv: per position, and its map before the pool, which
         * routes the pool's error) */
        for (uint32_t l = 0; l + 1 < L; l++) {
            const mbnn_layer *lay = &m->layers[l];
            const size_t pre_w = (size_t)lay->out_h * lay->out_w * mbnn_words(lay->N);
            ws->bits[l] = (uint32_t *)carve(b, &pos, 4u * mbnn_out_words(lay));
            ws->window[l] = (uint32_t *)carve(b, &pos, 4u * (lay->op == MBNN_OP_CONV2D ? pre_w : mbnn_words(lay->N)));
            ws->pre[l] = lay->pool ? (uint32_t *)carve(b, &pos, 4u * pre_w) : NULL;
        }
        ws->delta_a = (int32_t *)carve(b, &pos, sizeof(int32_t) * max_n);
        ws->delta_b = (int32_t *)carve(b, &pos, sizeof(int32_t) * max_n);
        ws->back = back_n ? (int64_t *)carve(b, &pos, sizeof(int64_t) * back_n) : NULL;
        ws->back_pre = pre_n ? (int64_t *)carve(b, &pos, sizeof(int64_t) * pre_n) : NULL;
        ws->cdelta = cdelta_n ? (int32_t *)carve(b, &pos, sizeof(int32_t) * cdelta_n) : NULL;
        ws->grad = grad_n ? (int64_t *)carve(b, &pos, sizeof(int64_t) * grad_n) : NULL;
    }
    return pos;
}

mbnn_status mbnn_workspace_size(const mbnn_model *model, mbnn_mode mode, size_t *bytes)
{
    if (model == NULL || bytes == NULL || model->image == NULL) return MBNN_ERR_NULL;
    if (mode != MBNN_MODE_INFER && mode != MBNN_MODE_LEARN) return MBNN_ERR_ARG;
    mbnn_ws ws;
    *bytes = mbnn_ws_layout(model, mode, NULL, &ws);
    /* a learning workspace serves inference too (mbnn_forward checks the inference layout) */
    if (mode == MBNN_MODE_LEARN) {
        const size_t infer = mbnn_ws_layout(model, MBNN_MODE_INFER, NULL, &ws);
        if (infer > *bytes) *bytes = infer;
    }
    return MBNN_OK;
}

mbnn_status mbnn_ws_check(const mbnn_model *model, mbnn_mode mode, void *ws, size_t ws_size, mbnn_ws *out)
{
    if (ws == NULL) return MBNN_ERR_NULL;
    if (((uintptr_t)ws & 7u) != 0) return MBNN_ERR_ALIGN;
    if (mbnn_ws_layout(model, mode, NULL, out) > ws_size) return MBNN_ERR_WORKSPACE;
    mbnn_ws_layout(model, mode, ws, out);
    return MBNN_OK;
}
