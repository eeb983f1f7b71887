/* The output layer's deltas (FORMAT.md 4.3 steps 2-3): softmax cross-entropy error by table.
 *   z_j = s_j - max s;  u_j = min(-z_j >> (Q-4), 255);  p_j = floor(E[u_j] 32768 / sum E[u])
 *   e_j = p_j - 32768 [j == y];  delta_j = sat(sgn(g_j) e_j, -32767, 32767)
 * E[u] <= 32768 and N <= 65536 keep the sum and E * 32768 inside uint32. */
#include "mbnn_internal.h"

static uint32_t gap_index(int64_t top, int64_t s, uint32_t q)
{
    const uint64_t u = (uint64_t)(top - s) >> (q - 4u); /* top - s >= 0 and < 2^49 */
    return u > 255u ? 255u : (uint32_t)u;
}

mbnn_status mbnn_output_delta(const mbnn_model *model, const int64_t *scores, uint32_t label, int32_t *delta)
{
    if (model == NULL || scores == NULL || delta == NULL) return MBNN_ERR_NULL;
    const mbnn_layer *out = &model->layers[model->n_layers - 1];
    const uint32_t N = out->N, q = out->score_frac;
    if (label >= N) return MBNN_ERR_LABEL;
    int64_t top = scores[0];
    for (uint32_t j = 1; j < N; j++)
        if (scores[j] > top) top = scores[j];
    uint32_t total = 0;
    for (uint32_t j = 0; j < N; j++) total += model->exp_table[gap_index(top, scores[j], q)];
    /* total >= E[0] = 32768: the top score has u = 0 */
    for (uint32_t j = 0; j < N; j++) {
        const uint32_t p = ((uint32_t)model->exp_table[gap_index(top, scores[j], q)] * 32768u) / total;
        const int32_t e = (int32_t)p - (j == label ? MBNN_Q15_ONE : 0);
        const int32_t g = mbnn_rd_i32(mbnn_norm_rec(out, model->bank, j) + 4);
        const int32_t sg = (g > 0) - (g < 0);
        delta[j] = (int32_t)mbnn_sat((int64_t)sg * e, -MBNN_DELTA_MAX, MBNN_DELTA_MAX);
    }
    return MBNN_OK;
}
