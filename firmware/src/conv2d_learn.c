/* The learning step through conv models (FORMAT.md 4.5), batch 1, the op sequence walked backward as
 * metabnn.sim/learn.py does, with the binary weights of before the step:
 *
 *  - flatten:  the first dense layer's error at its inputs, back_i = sum_j w_ji delta_j (4.3 step 4), put back
 *              on the conv map it read (i = c H' W' + y W' + x); then that dense layer is updated on the
 *              flattened bits;
 *  - max-pool: the error of a pooled bit goes to one position of its window, the first in (0,0), (0,1), (1,0),
 *              (1,1) whose bit equals the pooled bit (the forward's map before the pool says which); the others
 *              and a dropped odd row or column get 0;
 *  - conv:     per position and channel delta = sat(sgn rsr(back, bshift), +-32767) inside the channel's
 *              window [lo, hi] (the forward's window bits), else 0; the error at the input map below
 *              (a conv under it) is the transposed convolution sum over positions and in-map taps of w delta;
 *              the gradient of synapse (j, i) is the sum over positions of delta_j(p) x_i(p), 0 off the map,
 *              and THE rule applies it once (mbnn_metaplastic_row).
 * Every map is position-major, channel innermost (metabnn.h); the errors are int64 (a conv's sums exceed 2^31
 * on large layers). Channels with no non-zero delta are skipped: their gradients are all 0. */
#include "mbnn_internal.h"

static inline int bit_at(const uint32_t *w, uint32_t i) { return (int)((w[i >> 5] >> (i & 31u)) & 1u); }

/* back[q N + c] = sum_j w_j,(c Q + q) delta_j: the dense layer's input error on the C x Q map it flattened */
static void flatten_back(const mbnn_layer *dense, const int32_t *delta, uint32_t C, uint32_t Q, int64_t *back)
{
    for (size_t i = 0; i < (size_t)C * Q; i++) back[i] = 0;
    for (uint32_t j = 0; j < dense->N; j++) {
        const int32_t d = delta[j];
        if (d == 0) continue;
        const uint32_t *row = dense->signs + (size_t)j * dense->W;
        for (uint32_t c = 0; c < C; c++)
            for (uint32_t q = 0; q < Q; q++) back[(size_t)q * C + c] += bit_at(row, c * Q + q) ? d : -d;
    }
}

/* The pool's error routed to the positions before it (pre: that map's bits, out_h x out_w x N). */
static void pool_back(const mbnn_layer *l, const uint32_t *pre, const int64_t *back, int64_t *back_pre)
{
    const uint32_t N = l->N, CW = mbnn_words(N), OW = l->out_w, PH = l->map_h, PW = l->map_w;
    for (size_t i = 0; i < (size_t)l->out_h * OW * N; i++) back_pre[i] = 0;
    for (uint32_t y = 0; y < PH; y++)
        for (uint32_t x = 0; x < PW; x++) {
            const uint32_t cell[4] = {2u * y * OW + 2u * x, 2u * y * OW + 2u * x + 1u, (2u * y + 1u) * OW + 2u * x,
                                      (2u * y + 1u) * OW + 2u * x + 1u};
            for (uint32_t c = 0; c < N; c++) {
                int any = 0;
                for (uint32_t k = 0; k < 4u; k++) any |= bit_at(pre + (size_t)cell[k] * CW, c);
                uint32_t k = 0;
                while (bit_at(pre + (size_t)cell[k] * CW, c) != any) k++; /* the first holding the pooled bit */
                back_pre[(size_t)cell[k] * N + c] = back[((size_t)y * PW + x) * N + c];
            }
        }
}

/* Whether tap (ky, kx) of output position (oy, ox) lies on the map; (y, x) its input position. */
static inline int tap(const mbnn_layer *l, uint32_t oy, uint32_t ox, uint32_t ky, uint32_t kx, uint32_t *y,
                      uint32_t *x)
{
    const uint32_t py = oy * l->stride + ky, px = ox * l->stride + kx; /* in the padded map */
    if (py < l->pad || px < l->pad || py - l->pad >= l->in_h || px - l->pad >= l->in_w) return 0;
    *y = py - l->pad;
    *x = px - l->pad;
    return 1;
}

/* back_in[(y W + x) C + c] = sum over positions and the taps reading (c, y, x) of w delta (transposed conv). */
static void conv_back(const mbnn_layer *l, const int32_t *cd, int64_t *back_in)
{
    const uint32_t C = l->in_c, N = l->N, k = l->kernel, OW = l->out_w;
    for (size_t i = 0; i < (size_t)l->in_h * l->in_w * C; i++) back_in[i] = 0;
    for (uint32_t p = 0; p < (uint32_t)l->out_h * OW; p++) {
        const int32_t *dp = cd + (size_t)p * N;
        for (uint32_t ky = 0; ky < k; ky++)
            for (uint32_t kx = 0; kx < k; kx++) {
                uint32_t y, x;
                if (!tap(l, p / OW, p % OW, ky, kx, &y, &x)) continue;
                int64_t *b = back_in + ((size_t)y * l->in_w + x) * C;
                for (uint32_t c = 0; c < C; c++) {
                    const uint32_t i = (ky * k + kx) * C + c;
                    int64_t s = 0;
                    for (uint32_t j = 0; j < N; j++)
                        if (dp[j]) s += bit_at(l->signs + (size_t)j * l->W, i) ? dp[j] : -dp[j];
                    b[c] += s;
                }
            }
    }
}

/* Row j's gradients: grad_i = sum_p delta_j(p) x_i(p), x the pixels (CHW) or the +-1 map below. */
static void conv_grad(const mbnn_layer *l, uint32_t j, const int32_t *cd, const uint8_t *pixels,
                      const uint32_t *map, int64_t *grad)
{
    const uint32_t C = l->in_c, N = l->N, k = l->kernel, OW = l->out_w, CWin = mbnn_words(C);
    for (uint32_t i = 0; i < l->K; i++) grad[i] = 0;
    for (uint32_t p = 0; p < (uint32_t)l->out_h * OW; p++) {
        const int64_t d = cd[(size_t)p * N + j];
        if (d == 0) continue;
        for (uint32_t ky = 0; ky < k; ky++)
            for (uint32_t kx = 0; kx < k; kx++) {
                uint32_t y, x;
                if (!tap(l, p / OW, p % OW, ky, kx, &y, &x)) continue;
                int64_t *g = grad + (ky * k + kx) * C;
                if (pixels) {
                    const uint8_t *px = pixels + (size_t)y * l->in_w + x;
                    for (uint32_t c = 0; c < C; c++) g[c] += d * px[(size_t)c * l->in_h * l->in_w];
                } else {
                    const uint32_t *w = map + ((size_t)y * l->in_w + x) * CWin;
                    for (uint32_t c = 0; c < C; c++) g[c] += bit_at(w, c) ? d : -d;
                }
            }
    }
}

mbnn_status mbnn_conv_learn(mbnn_model *m, const uint8_t *pixels, mbnn_ws *ws, uint32_t first_dense,
                            const int32_t *delta_dense, uint32_t *flips)
{
    if (first_dense == 0 || first_dense >= m->n_layers) return MBNN_ERR_ARG;
    mbnn_layer *dense = &m->layers[first_dense];
    const mbnn_layer *top = &m->layers[first_dense - 1];
    flatten_back(dense, delta_dense, top->N, (uint32_t)top->map_h * top->map_w, ws->back);
    /* frozen layers (m->frozen, FORMAT.md 4.5): not updated; the walk ends at the lowest layer that learns */
    mbnn_status st = (m->frozen >> first_dense) & 1u ? MBNN_OK
                                                     : mbnn_metaplastic_update(dense, ws->flat, delta_dense, flips);
    uint32_t lowest = 0;
    while ((m->frozen >> lowest) & 1u) lowest++;
    for (uint32_t l = first_dense; l-- > lowest && st == MBNN_OK;) {
        mbnn_layer *lay = &m->layers[l];
        const uint32_t N = lay->N, CW = mbnn_words(N), P = (uint32_t)lay->out_h * lay->out_w;
        const int64_t *bp = ws->back;
        if (lay->pool) {
            pool_back(lay, ws->pre[l], ws->back, ws->back_pre);
            bp = ws->back_pre;
        }
        const uint32_t *win = ws->window[l];
        for (uint32_t p = 0; p < P; p++) {
            for (uint32_t j = 0; j < N; j++) {
                const size_t at = (size_t)p * N + j;
                if (!bit_at(win + (size_t)p * CW, j)) {
                    ws->cdelta[at] = 0;
                    continue;
                }
                const uint8_t *r = mbnn_norm_rec(lay, m->bank, j);
                const int64_t v = mbnn_rsr(bp[at], lay->bshift);
                ws->cdelta[at] = (int32_t)mbnn_sat(mbnn_rd_i32(r + 16) ? -v : v, -MBNN_DELTA_MAX, MBNN_DELTA_MAX);
            }
        }
        if (l > lowest) conv_back(lay, ws->cdelta, ws->back); /* before the update: this step's old weights */
        if ((m->frozen >> l) & 1u) continue;
        uint32_t n_flips = 0;
        for (uint32_t j = 0; j < N; j++) {
            uint32_t p = 0;
            while (p < P && ws->cdelta[(size_t)p * N + j] == 0) p++;
            if (p == P) continue; /* grad = 0 on the whole row */
            conv_grad(lay, j, ws->cdelta, l == 0 ? pixels : NULL, l == 0 ? NULL : ws->bits[l - 1], ws->grad);
            n_flips += mbnn_metaplastic_row(lay, j, ws->grad);
        }
        if (flips) *flips += n_flips;
    }
    return st;
}
