/* From accumulators to a layer's output (FORMAT.md 3 and 3.1), for the active bank:
 *   d_j = acc_j * 256 - M_j
 *   SIGN:   out_j = (d_j >= C_j) XOR f_j, packed; window_j = lo_j <= d_j <= hi_j (learning only)
 *   SCORES: s_j = g_j d_j + b_j (int64)
 * then, with adaptation on and a > 0, M_j += rsr(d_j, a): the outputs used the old M. */
#include "mbnn_internal.h"

mbnn_status mbnn_activate(mbnn_layer *layer, uint32_t bank, int adapt, const int32_t *acc,
                          uint32_t *out_bits, uint32_t *window, int64_t *scores)
{
    if (layer == NULL || acc == NULL) return MBNN_ERR_NULL;
    const int sign = layer->out_kind == MBNN_SIGN;
    if (sign ? out_bits == NULL : scores == NULL) return MBNN_ERR_NULL;
    const int moves = adapt && layer->adapt_shift > 0;
    uint32_t word = 0, wmask = 0;
    for (uint32_t j = 0; j < layer->N; j++) {
        uint8_t *r = mbnn_norm_rec(layer, bank, j);
        const int32_t M = mbnn_rd_i32(r);
        const int32_t d = (int32_t)((int64_t)acc[j] * 256 - M); /* |d| <= 512 R < 2^31 */
        if (sign) {
            const uint32_t bit = (uint32_t)(d >= mbnn_rd_i32(r + 4)) ^ (uint32_t)mbnn_rd_i32(r + 16);
            word |= bit << (j & 31u);
            wmask |= (uint32_t)(d >= mbnn_rd_i32(r + 8) && d <= mbnn_rd_i32(r + 12)) << (j & 31u);
            if ((j & 31u) == 31u || j + 1 == layer->N) {
                out_bits[j >> 5] = word; /* padding bits stay 0 */
                if (window) window[j >> 5] = wmask;
                word = wmask = 0;
            }
        } else {
            scores[j] = (int64_t)mbnn_rd_i32(r + 4) * d + mbnn_rd_i64(r + 8);
        }
        if (moves) mbnn_wr_i32(r, (int32_t)(M + mbnn_rsr(d, layer->adapt_shift)));
    }
    return MBNN_OK;
}
