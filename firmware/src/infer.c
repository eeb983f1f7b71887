/* The forward pass (FORMAT.md 3): layer by layer, accumulate then activate. With `learn`,
 * the workspace keeps every SIGN layer's output and window mask for the learning step. Layer 0
 * goes by columns where the build and the workspace's copy allow (dense_pixels_columns.c). */
#include "mbnn_internal.h"

/* A conv layer (FORMAT.md 3.3): the conv op into bits[l], or into pre[l] and then max-pooled into bits[l];
 * learning keeps the window bits of every position too. */
static mbnn_status conv_layer(mbnn_model *m, uint32_t l, const uint8_t *pixels, mbnn_ws *ws, int learn)
{
    mbnn_layer *lay = &m->layers[l];
    uint32_t *out = lay->pool ? ws->pre[l] : ws->bits[l], *win = learn ? ws->window[l] : NULL;
    const void *in = l == 0 ? (const void *)pixels : (const void *)ws->bits[l - 1];
    mbnn_status st = !learn ? mbnn_conv2d_fast(lay, m->bank, in, ws->conv_fast, out)
                   : l == 0 ? mbnn_conv2d_pixels(lay, m->bank, pixels, ws->win_pixels, ws->planes, ws->acc, out, win)
                            : mbnn_conv2d_bits(lay, m->bank, ws->bits[l - 1], ws->win_bits, ws->acc, out, win);
    if (st == MBNN_OK && lay->pool) st = mbnn_maxpool2(out, lay->N, lay->out_h, lay->out_w, ws->bits[l]);
    return st;
}

mbnn_status mbnn_forward_record(mbnn_model *m, const uint8_t *pixels, mbnn_ws *ws, int learn)
{
    mbnn_status st = MBNN_OK;
    const uint32_t L = m->n_layers;
    for (uint32_t l = 0; l < L && st == MBNN_OK; l++) {
        mbnn_layer *lay = &m->layers[l];
        if (lay->op == MBNN_OP_CONV2D) {
            st = conv_layer(m, l, pixels, ws, learn);
            continue;
        }
        if (l > 0 && m->layers[l - 1].op == MBNN_OP_CONV2D) { /* flatten, then the dense layer */
            const mbnn_layer *pr = &m->layers[l - 1];
            st = mbnn_flatten(ws->bits[l - 1], pr->N, pr->map_h, pr->map_w, ws->flat);
            if (st == MBNN_OK) st = mbnn_dense_bits(lay, ws->flat, ws->acc);
        } else if (l > 0)
            st = mbnn_dense_bits(lay, ws->bits[l - 1], ws->acc);
        else if (!MBNN_BY_COLUMNS(lay, pixels, ws, !learn, ws->acc)) /* learning: the copy is */
            st = mbnn_dense_pixels(lay, pixels, ws->planes, ws->acc); /* not rebuilt (most steps flip a sign) */
        if (st == MBNN_OK)
            st = mbnn_activate(lay, m->bank, m->adapt, ws->acc, ws->bits[l], learn ? ws->window[l] : NULL,
                               ws->scores);
    }
    return st;
}

static mbnn_status check_call(const mbnn_model *m, const uint8_t *pixels, size_t n_pixels)
{
    if (m == NULL || pixels == NULL || m->image == NULL) return MBNN_ERR_NULL;
    if (n_pixels != m->n_inputs) return MBNN_ERR_ARG;
    if (m->bank >= m->n_banks) return MBNN_ERR_BANK;
    return MBNN_OK;
}

mbnn_status mbnn_forward(mbnn_model *model, const uint8_t *pixels, size_t n_pixels,
                         void *workspace, size_t ws_size, int64_t *scores, size_t n_scores)
{
    mbnn_status st = check_call(model, pixels, n_pixels);
    if (st != MBNN_OK) return st;
    if (scores == NULL) return MBNN_ERR_NULL;
    const uint32_t C = model->layers[model->n_layers - 1].N;
    if (n_scores < C) return MBNN_ERR_ARG;
    mbnn_ws ws;
    st = mbnn_ws_check(model, MBNN_MODE_INFER, workspace, ws_size, &ws);
    if (st == MBNN_OK) st = mbnn_forward_record(model, pixels, &ws, 0);
    if (st == MBNN_OK)
        for (uint32_t j = 0; j < C; j++) scores[j] = ws.scores[j];
    return st;
}

mbnn_status mbnn_predict(mbnn_model *model, const uint8_t *pixels, size_t n_pixels,
                         void *workspace, size_t ws_size, uint32_t *label)
{
    mbnn_status st = check_call(model, pixels, n_pixels);
    if (st != MBNN_OK) return st;
    if (label == NULL) return MBNN_ERR_NULL;
    mbnn_ws ws;
    st = mbnn_ws_check(model, MBNN_MODE_INFER, workspace, ws_size, &ws);
    if (st == MBNN_OK) st = mbnn_forward_record(model, pixels, &ws, 0);
    if (st == MBNN_OK) st = mbnn_argmax(ws.scores, model->layers[model->n_layers - 1].N, label);
    return st;
}
