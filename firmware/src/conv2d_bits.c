/* Binary conv2d on a +-1 map (FORMAT.md 3.3), through the binary layer's popcount kernel.
 *
 * The map is position-major and channel-packed (metabnn.h), so the window of an output position is
 * k^2 channel groups of C bits, copied into one packed vector in synapse order (bit (ky k + kx) C + c)
 * and fed to mbnn_dense_bits: acc_full_j = K - 2 popcount(a XOR w_j), with 0 (-1) at the taps off the
 * map. Those taps must contribute nothing, and acc_full counted -w_ji for each, so a border position
 * adds them back:
 *
 *   acc_j = acc_full_j + sum_{i off the map} w_ji = acc_full_j + 2 popcount(w_j AND off) - n_off
 *
 * which is FORMAT.md's K_in - 2 popcount((a XOR w_j) AND inside) (tested equal to the golden model at
 * every border). Interior positions cost one mbnn_dense_bits call, border ones one AND-popcount per
 * channel more. */
#include "mbnn_internal.h"

/* dst bits [at, at + n) |= the first n bits of src (dst words past W are never touched: every bit written
 * lies below K <= 32 W). */
static void put_bits(uint32_t *dst, uint32_t W, uint32_t at, const uint32_t *src, uint32_t n)
{
    for (uint32_t b = 0; b < n; b += 32u) {
        uint32_t v = src[b >> 5];
        if (n - b < 32u) v &= (1u << (n - b)) - 1u;
        const uint32_t pos = at + b, wi = pos >> 5, sh = pos & 31u;
        dst[wi] |= v << sh;
        if (sh != 0u && wi + 1u < W) dst[wi + 1u] |= v >> (32u - sh);
    }
}

/* dst bits [at, at + n) = 1 */
static void set_bits(uint32_t *dst, uint32_t at, uint32_t n)
{
    for (uint32_t i = at; i < at + n; i++) dst[i >> 5] |= 1u << (i & 31u);
}

mbnn_status mbnn_conv2d_bits(mbnn_layer *layer, uint32_t bank, const uint32_t *in_map, uint32_t *window,
                             int32_t *acc, uint32_t *out_map, uint32_t *window_map)
{
    if (layer == NULL || in_map == NULL || window == NULL || acc == NULL || out_map == NULL) return MBNN_ERR_NULL;
    if (layer->op != MBNN_OP_CONV2D || layer->in_kind != MBNN_BITS || layer->out_kind != MBNN_SIGN)
        return MBNN_ERR_ARG;
    const uint32_t C = layer->in_c, H = layer->in_h, Wm = layer->in_w, k = layer->kernel;
    const uint32_t s = layer->stride, p = layer->pad, OH = layer->out_h, OW = layer->out_w;
    const uint32_t N = layer->N, W = layer->W, CWin = mbnn_words(C), CW = mbnn_words(N);
    uint32_t *a = window, *off = window + W;
    for (uint32_t oy = 0; oy < OH; oy++) {
        for (uint32_t ox = 0; ox < OW; ox++) {
            memset(a, 0, 4u * (size_t)W);
            uint32_t n_off = 0;
            for (uint32_t ky = 0; ky < k; ky++) {
                const uint32_t y = oy * s + ky; /* in the padded map */
                for (uint32_t kx = 0; kx < k; kx++) {
                    const uint32_t xx = ox * s + kx, at = (ky * k + kx) * C;
                    if (y < p || y - p >= H || xx < p || xx - p >= Wm) {
                        if (n_off == 0) memset(off, 0, 4u * (size_t)W);
                        set_bits(off, at, C);
                        n_off += C;
                        continue;
                    }
                    put_bits(a, W, at, in_map + ((size_t)(y - p) * Wm + (xx - p)) * CWin, C);
                }
            }
            mbnn_status st = mbnn_dense_bits(layer, a, acc);
            if (st != MBNN_OK) return st;
            if (n_off != 0)
                for (uint32_t j = 0; j < N; j++)
                    acc[j] += 2 * (int32_t)mbnn_and_popcount(layer->signs + (size_t)j * W, off, W) - (int32_t)n_off;
            st = mbnn_activate(layer, bank, 0, acc, out_map + ((size_t)oy * OW + ox) * CW,
                                   window_map ? window_map + ((size_t)oy * OW + ox) * CW : NULL, NULL);
            if (st != MBNN_OK) return st;
        }
    }
    return MBNN_OK;
}
