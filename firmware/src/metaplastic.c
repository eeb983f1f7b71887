/* THE metaplastic update rule (FORMAT.md 4.2, 4.3 step 5 and 4.4), mirroring sim/metaplastic.py.
 *
 * For every synapse, with x_i the layer input (+-1 for BITS, the pixel for PIXELS):
 *   grad = delta_j x_i                          (int32)
 *   u    = sat(-rsr(grad, lr_shift), -65535, 65535)
 *   toward zero ((h > 0, u < 0) or (h < 0, u > 0)): u = sgn(u) ((|u| F[idx(h)] + 16384) >> 15)
 *   h'   = sat(h + u, -2^(b-1), 2^(b-1) - 1);   sign bit' = h' >= 0
 * with idx(h) = min(|h| >> (b-1-k), 2^k - 1). An update that pushes a hidden weight toward
 * a sign flip is shrunk by f_meta(|h|); one that consolidates it passes unchanged, or, in a layer
 * with an away table (FORMAT.md 4.2.1), is scaled by G[idx(h)] with the same rounding.
 * |u| <= 65535 and F, G <= 32768 keep the product in an unsigned 32-bit multiply.
 *
 * A layer with stochastic rounding (4.4) replaces the two roundings by draws (r0, r1) of
 * Threefry-2x32-20 on the counter (j K + i, sr_step), key (sr_seed, 0):
 *   u = sat(-sgn(grad) ((|grad| + (r0 & (2^s - 1))) >> s));   the product adds r1 & 0x7FFF, not 16384.
 * The rule itself is the same function; only its rounding constants differ. */
#include "mbnn_internal.h"

typedef struct {
    const uint16_t *F, *G; /* G: NULL without an away table */
    uint32_t tshift, kmax;
    int32_t hmin, hmax;
} rule;

/* One synapse: the rule itself; `c` rounds the f_meta product (16384: half up; r1 & 0x7FFF: stochastic). */
static inline int32_t meta_synapse(const rule *r, int32_t h, int32_t u, uint32_t c)
{
    /* toward zero: f_meta; away from zero (or from h = 0): the away table, when the layer has one */
    const uint16_t *T = (h > 0 && u < 0) || (h < 0 && u > 0) ? r->F : r->G;
    if (T != NULL) {
        const uint32_t ah = (uint32_t)(h < 0 ? -h : h), au = (uint32_t)(u < 0 ? -u : u);
        uint32_t idx = ah >> r->tshift;
        if (idx > r->kmax) idx = r->kmax;
        const int32_t mag = (int32_t)((au * T[idx] + c) >> 15); /* < 2^31 + 2^15: fits u32 */
        u = u < 0 ? -mag : mag;
    }
    h += u; /* |h| < 2^15, |u| <= 65535: no overflow */
    return h < r->hmin ? r->hmin : (h > r->hmax ? r->hmax : h);
}

static inline int32_t step_u(int32_t grad, uint32_t lr_shift)
{
    return (int32_t)mbnn_sat(-mbnn_rsr(grad, lr_shift), -MBNN_U_MAX, MBNN_U_MAX);
}

/* The same u for a PIXELS synapse, grad = delta * pixel with |grad| <= 32767 * 255 < 2^23, in
 * 32-bit arithmetic (|grad| + 2^30 < 2^31): on a 32-bit core the 64-bit mbnn_rsr costs a dozen
 * instructions per synapse. */
static inline int32_t step_u_pixel(int32_t grad, uint32_t lr_shift)
{
    uint32_t mag = (uint32_t)(grad < 0 ? -grad : grad);
    if (lr_shift) mag = (mag + (1u << (lr_shift - 1u))) >> lr_shift;
    if (mag > (uint32_t)MBNN_U_MAX) mag = (uint32_t)MBNN_U_MAX;
    return grad < 0 ? (int32_t)mag : -(int32_t)mag;
}

/* u of 4.4: the shift rounded up with probability (|grad| mod 2^s) / 2^s. |grad| <= 32767 * 255 < 2^23
 * and r0 & (2^s - 1) < 2^31, so the sum fits 32 bits (the spec's 64-bit intermediate is not needed). */
static inline int32_t step_u_sr(int32_t grad, uint32_t lr_shift, uint32_t r0)
{
    uint32_t mag = (uint32_t)(grad < 0 ? -grad : grad);
    mag = (mag + (r0 & ((1u << lr_shift) - 1u))) >> lr_shift; /* 1u << 31 is defined for u32 */
    if (mag > (uint32_t)MBNN_U_MAX) mag = (uint32_t)MBNN_U_MAX;
    return grad < 0 ? (int32_t)mag : -(int32_t)mag;
}

static inline int four_zero(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v == 0;
}

static inline int32_t load16(const uint8_t *p)
{
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline void store16(uint8_t *p, int32_t v)
{
    const int16_t h = (int16_t)v;
    memcpy(p, &h, 2);
}

/* One row of one storage width: new hidden weights, new sign words, flips counted. A synapse
 * with u = 0 keeps h and its sign bit exactly (h is always in range), so it is skipped: in the
 * pixel layer every pixel 0 (most of an MNIST image) and every step that rounds to 0. */
#define MBNN_UPDATE_ROW(LOAD, STORE)                                                                 \
    for (uint32_t w = 0; w < W; w++) {                                                               \
        const uint32_t old = row_signs[w], xw = pixels ? 0u : xbits[w];                              \
        uint32_t word = old;                                                                         \
        const uint32_t end = (w + 1u) * 32u < K ? (w + 1u) * 32u : K;                                \
        for (uint32_t i = w * 32u; i < end; i++) {                                                   \
            int32_t u;                                                                               \
            if (pixels) {                                                                            \
                if ((i & 3u) == 0 && i + 4u <= end && four_zero(pixels + i)) {                       \
                    i += 3u; /* 4 pixels 0 (an MNIST border): one test instead of four */            \
                    continue;                                                                        \
                }                                                                                    \
                if (pixels[i] == 0) continue;                                                        \
                u = step_u_pixel(dj * (int32_t)pixels[i], layer->lr_shift);                          \
                if (u == 0) continue;                                                                \
            } else {                                                                                 \
                u = ((xw >> (i & 31u)) & 1u) ? u_pos : -u_pos;                                       \
            }                                                                                        \
            const int32_t h = meta_synapse(&r, LOAD(i), u, 16384u);                                  \
            STORE(i, h);                                                                             \
            const uint32_t bit = 1u << (i & 31u);                                                    \
            word = h >= 0 ? word | bit : word & ~bit;                                                \
        }                                                                                            \
        if (word != old) {                                                                           \
            n_flips += mbnn_xor_popcount(&word, &old, 1);                                            \
            row_signs[w] = word;                                                                     \
        }                                                                                            \
    }

/* The rule on synapse (j, i) with step u and product rounding c, in plain loads and stores: h and its sign bit
 * written back; 1 if the sign flipped. */
static uint32_t rule_at(mbnn_layer *layer, const rule *r, uint32_t *row_signs, uint32_t j, uint32_t i, int32_t u,
                        uint32_t c)
{
    const size_t at = (size_t)j * layer->K + i;
    const int32_t h_old = mbnn_hidden_get(layer, at);
    const int32_t h = meta_synapse(r, h_old, u, c);
    if (layer->bits <= 8) {
        layer->hidden[at] = (uint8_t)(int8_t)h;
    } else {
        store16(layer->hidden + 2u * at, h);
    }
    if ((h >= 0) == (h_old >= 0)) return 0;
    row_signs[i >> 5] ^= 1u << (i & 31u);
    return 1;
}

/* One row j with stochastic rounding: one draw per synapse with a non-zero gradient (a zero one gives
 * u = 0 whatever the draw, 4.4, so pixels 0 are skipped as in the nearest path). Plain loads and stores:
 * the 20 Threefry rounds, not the access, are the cost here. */
static uint32_t update_row_sr(mbnn_layer *layer, const rule *r, uint32_t j, int32_t dj, const uint8_t *pixels,
                              const uint32_t *xbits, uint32_t step)
{
    const uint32_t K = layer->K, base = j * K; /* j K + i < 2^32: K, N <= 65536 */
    uint32_t *row_signs = layer->signs + (size_t)j * layer->W;
    uint32_t n_flips = 0;
    for (uint32_t i = 0; i < K; i++) {
        int32_t grad;
        if (pixels) {
            if (pixels[i] == 0) continue;
            grad = dj * (int32_t)pixels[i];
        } else {
            grad = ((xbits[i >> 5] >> (i & 31u)) & 1u) ? dj : -dj;
        }
        uint32_t draw[2];
        mbnn_threefry2x32_20(base + i, step, layer->sr_seed, 0u, draw);
        const int32_t u = step_u_sr(grad, layer->lr_shift, draw[0]);
        if (u == 0) continue; /* h and its sign bit stay */
        n_flips += rule_at(layer, r, row_signs, j, i, u, draw[1] & 0x7FFFu);
    }
    return n_flips;
}

mbnn_status mbnn_metaplastic_update(mbnn_layer *layer, const void *x, const int32_t *delta, uint32_t *flips)
{
    if (layer == NULL || x == NULL || delta == NULL) return MBNN_ERR_NULL;
    if (layer->rounding && layer->desc == NULL) return MBNN_ERR_NULL; /* its sr_step lives in the descriptor */
    const rule r = {layer->table, layer->away, (uint32_t)(layer->bits - 1 - layer->table_bits),
                    (1u << layer->table_bits) - 1u, -(1 << (layer->bits - 1)), (1 << (layer->bits - 1)) - 1};
    const uint32_t K = layer->K, W = layer->W;
    const uint8_t *pixels = layer->in_kind == MBNN_PIXELS ? (const uint8_t *)x : NULL;
    const uint32_t *xbits = layer->in_kind == MBNN_BITS ? (const uint32_t *)x : NULL;
    uint32_t n_flips = 0;
    for (uint32_t j = 0; j < layer->N; j++) {
        const int32_t dj = delta[j];
        if (dj == 0) continue; /* grad = 0 -> u = 0 -> h unchanged (h is always in range) */
        if (layer->rounding) {
            n_flips += update_row_sr(layer, &r, j, dj, pixels, xbits, mbnn_rd_u32(layer->desc + MBNN_DESC_SR_STEP));
            continue;
        }
        const int32_t u_pos = step_u(dj, layer->lr_shift); /* BITS: x = +1; x = -1 gives -u_pos */
        if (!pixels && u_pos == 0) continue;                /* every u of the row is 0 */
        uint32_t *row_signs = layer->signs + (size_t)j * W;
        if (layer->bits <= 8) {
            int8_t *hrow = (int8_t *)(void *)(layer->hidden + (size_t)j * K);
#define LOAD8(i) ((int32_t)hrow[i])
#define STORE8(i, v) (hrow[i] = (int8_t)(v))
            MBNN_UPDATE_ROW(LOAD8, STORE8)
        } else {
            uint8_t *hrow = layer->hidden + (size_t)j * K * 2u;
#define LOAD16(i) load16(hrow + 2u * (i))
#define STORE16(i, v) store16(hrow + 2u * (i), (v))
            MBNN_UPDATE_ROW(LOAD16, STORE16)
        }
    }
    if (flips) *flips += n_flips;
    if (n_flips) layer->sign_version++; /* invalidates a workspace's column copy of this layer */
    return MBNN_OK;
}

/* The same rule from per-synapse gradients (FORMAT.md 4.5: a conv synapse's gradient is the exact sum of
 * delta x over the output positions, |grad| < 2^43, so 64 bits; rounded once, like a dense one):
 *   u = sat(-rsr(grad, s))  or, stochastic, sat(-sgn(grad) ((|grad| + (r0 & (2^s - 1))) >> s)),
 * then meta_synapse as above. A zero gradient gives u = 0 either way (r0 & (2^s - 1) < 2^s), so it is skipped;
 * the draws depend on the synapse and the step only. Returns the flips of row j. */
uint32_t mbnn_metaplastic_row(mbnn_layer *layer, uint32_t j, const int64_t *grad)
{
    const rule r = {layer->table, layer->away, (uint32_t)(layer->bits - 1 - layer->table_bits),
                    (1u << layer->table_bits) - 1u, -(1 << (layer->bits - 1)), (1 << (layer->bits - 1)) - 1};
    const uint32_t K = layer->K, s = layer->lr_shift;
    const uint32_t step = layer->rounding ? mbnn_rd_u32(layer->desc + MBNN_DESC_SR_STEP) : 0u;
    uint32_t *row_signs = layer->signs + (size_t)j * layer->W, n_flips = 0;
    for (uint32_t i = 0; i < K; i++) {
        const int64_t g = grad[i];
        if (g == 0) continue;
        int64_t u;
        uint32_t c = 16384u;
        if (layer->rounding) {
            uint32_t draw[2];
            mbnn_threefry2x32_20(j * K + i, step, layer->sr_seed, 0u, draw); /* j K + i < 2^32 */
            const uint64_t mag = ((uint64_t)(g < 0 ? -g : g) + (draw[0] & (uint32_t)((1ull << s) - 1u))) >> s;
            u = g < 0 ? (int64_t)mag : -(int64_t)mag;
            c = draw[1] & 0x7FFFu;
        } else {
            u = -mbnn_rsr(g, s);
        }
        u = mbnn_sat(u, -MBNN_U_MAX, MBNN_U_MAX);
        if (u == 0) continue; /* h and its sign bit stay */
        n_flips += rule_at(layer, &r, row_signs, j, i, (int32_t)u, c);
    }
    if (n_flips) layer->sign_version++;
    return n_flips;
}
