/* From accumulators to a layer's output (FORMAT.md 3 and 3.1), for the active bank:
 *   d_j = acc_j * 256 - M_j
 *   SIGN:   out_j = (d_j >= C_j) XOR f_j, packed; window_j = lo_j <= d_j <= hi_j (learning only)
 *   SCORES: s_j = g_j d_j + b_j (int64)
 * then, with adaptation on and a > 0, M_j += rsr(d_j, a): the outputs used the old M.
 * The SIGN loop packs 32 neurons per word in an inner loop and walks the records by pointer:
 * on the demo net this is 1,034 neurons per image, and per-neuron bookkeeping (the record
 * address, a branch for the word boundary, a window nobody asked for) cost as much as a layer. */
#include "mbnn_internal.h"

/* d of neuron j, moving M afterwards if adaptation is on. */
static inline int32_t pre_activation(uint8_t *r, int32_t acc, uint32_t adapt_shift)
{
    const int32_t M = mbnn_rd_i32(r);
    const int32_t d = (int32_t)((int64_t)acc * 256 - M); /* |d| <= 512 R < 2^31 */
    if (adapt_shift) mbnn_wr_i32(r, (int32_t)(M + mbnn_rsr(d, adapt_shift)));
    return d;
}

/* Up to 32 SIGN neurons from record r on: their output bits, and their window bits if `with_window`
 * (a constant at both calls, so the inference loop carries no window code). Returns the next record. */
static inline uint8_t *sign_word(uint8_t *r, const int32_t *acc, uint32_t n, uint32_t a, int with_window,
                                 uint32_t *word, uint32_t *wmask)
{
    uint32_t bits = 0, win = 0;
    for (uint32_t k = 0; k < n; k++, r += MBNN_SIGN_REC) {
        const int32_t d = pre_activation(r, acc[k], a);
        bits |= ((uint32_t)(d >= mbnn_rd_i32(r + 4)) ^ (uint32_t)mbnn_rd_i32(r + 16)) << k;
        if (with_window) win |= (uint32_t)(d >= mbnn_rd_i32(r + 8) && d <= mbnn_rd_i32(r + 12)) << k;
    }
    *word = bits; /* padding bits stay 0 */
    *wmask = win;
    return r;
}

mbnn_status mbnn_activate(mbnn_layer *layer, uint32_t bank, int adapt, const int32_t *acc,
                          uint32_t *out_bits, uint32_t *window, int64_t *scores)
{
    if (layer == NULL || acc == NULL) return MBNN_ERR_NULL;
    const int sign = layer->out_kind == MBNN_SIGN;
    if (sign ? out_bits == NULL : scores == NULL) return MBNN_ERR_NULL;
    const uint32_t a = adapt ? layer->adapt_shift : 0u, N = layer->N;
    uint8_t *r = mbnn_norm_rec(layer, bank, 0);
    if (!sign) {
        for (uint32_t j = 0; j < N; j++, r += MBNN_SCORE_REC) {
            const int32_t d = pre_activation(r, acc[j], a);
            scores[j] = (int64_t)mbnn_rd_i32(r + 4) * d + mbnn_rd_i64(r + 8);
        }
        return MBNN_OK;
    }
    for (uint32_t j0 = 0; j0 < N; j0 += 32u) {
        const uint32_t n = N - j0 < 32u ? N - j0 : 32u;
        uint32_t wmask;
        if (window) {
            r = sign_word(r, acc + j0, n, a, 1, &out_bits[j0 >> 5], &wmask);
            window[j0 >> 5] = wmask;
        } else {
            r = sign_word(r, acc + j0, n, a, 0, &out_bits[j0 >> 5], &wmask);
        }
    }
    return MBNN_OK;
}
