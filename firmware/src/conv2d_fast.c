/* The conv ops' inference kernel (FORMAT.md 3.3): one pass over the output positions with every output channel
 * of a position computed together, the same integers as the reference kernels (conv2d_pixels.c,
 * conv2d_bits.c, which stay the C99 reference and the learning forward's kernels; the tests hold this one
 * equal to them and to the golden model, bit for bit).
 *
 * The window of a position is never gathered: for each kernel row ky the in-map taps kx in [lo, hi) are one run
 * of consecutive map positions, so on a bit map (position-major, channel-packed) they are one run of
 * (hi - lo) ceil(C/32) words, and in the weights, laid out tap-major with each tap's C bits starting a word,
 * one run too. Taps off the map are simply not visited, which is FORMAT.md's "contribute nothing":
 *
 *   bits:   acc_j = n_in - 2 sum over the runs of popcount(map words XOR w_j words)   (n_in = C x in-map taps)
 *   pixels: acc_j = sum over the in-map taps and channels of x w_j  (int8 +-1 weights, uint8 pixels)
 *
 * then d_j = acc_j 256 - M_j and bit_j = (d_j >= C_j) XOR f_j of the bank's record (mbnn_activate's rule; a
 * conv has no stream adaptation, the loader refuses it).
 *
 * Kernels, by the target (as the dense kernels, mbnn_internal.h): x86 with AVX-512 F and VPOPCNTDQ: 16 output
 * channels per 32-bit vector lane group, four groups per pass; a bits tap word is broadcast, XORed with the 16
 * channels' weight words, VPOPCNTD; a pixel is broadcast and added under the 16 channels' +1 mask (acc = 2 S -
 * T); the threshold is a vector compare whose mask is the channel-packed output word. Elsewhere (and with
 * MBNN_PORTABLE_POPCOUNT) plain C: per position and channel, bits through mbnn_xor_popcount over each run;
 * pixels as int16 dot products of the window with the +-1 weights (two per SMLAD on Arm cores with the DSP
 * extension). The weights are rearranged into the caller's scratch at every call (N K bits: a small fraction of
 * the positions' work), so no state outlives a call. */
#include "mbnn_internal.h"

#if !defined(MBNN_PORTABLE_POPCOUNT) && defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__)
#define MBNN_CONV_AVX512 1
#include <immintrin.h>
#endif
#if defined(__ARM_FEATURE_SIMD32) && !defined(MBNN_PORTABLE_POPCOUNT) && !defined(MBNN_CONV_AVX512)
#include <arm_acle.h>
#define MBNN_CONV_SMLAD 1
#endif

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* The in-map taps of output coordinate o along an axis of S values: k in [*lo, *hi) (empty if none). */
static inline void tap_range(uint32_t o, uint32_t s, uint32_t p, uint32_t k, uint32_t S, uint32_t *lo, uint32_t *hi)
{
    const uint32_t base = o * s; /* the padded coordinate of tap 0; tap t reads base + t - p */
    const uint32_t h = base >= S + p ? 0u : (S + p - base < k ? S + p - base : k);
    const uint32_t l = base < p ? p - base : 0u;
    *lo = l < h ? l : h;
    *hi = h;
}

/* The in-map taps of output position (oy, ox): kernel rows [ylo, yhi), columns [xlo, xhi); on a bit map also the
 * words of one kernel row's run (run), the input bits of all the runs (n_in) and the first run's first word
 * (first; NULL when the position has no tap on the map, or for pixels). */
typedef struct {
    uint32_t ylo, yhi, xlo, xhi, run;
    int32_t n_in;
    const uint32_t *first;
} mbnn_taps;

static inline mbnn_taps taps_at(const mbnn_layer *l, uint32_t oy, uint32_t ox, const uint32_t *map)
{
    mbnn_taps t;
    const uint32_t s = l->stride, p = l->pad, CWin = mbnn_words(l->in_c);
    tap_range(oy, s, p, l->kernel, l->in_h, &t.ylo, &t.yhi);
    tap_range(ox, s, p, l->kernel, l->in_w, &t.xlo, &t.xhi);
    t.run = (t.xhi - t.xlo) * CWin;
    t.n_in = (int32_t)(l->in_c * (t.xhi - t.xlo) * (t.yhi - t.ylo));
    t.first = map != NULL && t.run != 0u && t.yhi > t.ylo
                  ? map + ((size_t)(oy * s + t.ylo - p) * l->in_w + (ox * s + t.xlo - p)) * CWin
                  : NULL;
    return t;
}

/* n <= 32 bits of row from bit b (a tap's channel group), padding bits 0; reads no word past the row's. */
static inline uint32_t get_bits(const uint32_t *row, uint32_t b, uint32_t n)
{
    const uint32_t w = b >> 5, sh = b & 31u;
    uint32_t v = row[w] >> sh;
    if (sh != 0u && sh + n > 32u) v |= row[w + 1u] << (32u - sh);
    return n < 32u ? v & ((1u << n) - 1u) : v;
}

/* Weight word q = t CWin + w of output channel j: word w of tap t's C channel bits (the layer's [j][t][c] order),
 * padding bits 0. Both kernels pack their weight table from it, each in its own layout. */
static inline uint32_t tap_word(const mbnn_layer *l, uint32_t j, uint32_t q, uint32_t C, uint32_t CWin)
{
    const uint32_t t = q / CWin, w = q % CWin, n = C - 32u * w < 32u ? C - 32u * w : 32u;
    return get_bits(l->signs + (size_t)j * l->W, t * C + 32u * w, n);
}

static mbnn_status check(const mbnn_layer *l, const void *in, const void *scratch, const uint32_t *out)
{
    if (l == NULL || in == NULL || out == NULL) return MBNN_ERR_NULL;
    if (l->op != MBNN_OP_CONV2D || l->out_kind != MBNN_SIGN) return MBNN_ERR_ARG;
    if (scratch == NULL && mbnn_conv2d_fast_bytes(l) != 0) return MBNN_ERR_NULL;
    if (((uintptr_t)scratch & 7u) != 0) return MBNN_ERR_ALIGN;
    return MBNN_OK;
}

#ifdef MBNN_CONV_AVX512

static inline uint32_t ceil16(uint32_t n) { return (n + 15u) & ~15u; }

size_t mbnn_conv2d_fast_bytes(const mbnn_layer *l)
{
    if (l == NULL || l->op != MBNN_OP_CONV2D) return 0;
    const size_t Np = ceil16(l->N), G = Np / 16u, T = (size_t)l->kernel * l->kernel;
    const size_t thr = 4u * (2u * Np + G); /* M, C per channel; the f bits of each group */
    const size_t w = l->in_kind == MBNN_PIXELS ? 2u * l->K * G : 4u * T * mbnn_words(l->in_c) * Np;
    return align8(thr) + align8(w);
}

const char *mbnn_conv2d_fast_kernel(void) { return "avx512-lanes"; }

/* M, C and the f bits of the bank's records, channels N..Np-1 zero. */
static void thresholds(const mbnn_layer *l, uint32_t bank, int32_t *M, int32_t *C, uint32_t *fm)
{
    const uint32_t N = l->N, Np = ceil16(N);
    for (uint32_t g = 0; g < Np / 16u; g++) fm[g] = 0;
    for (uint32_t j = 0; j < Np; j++) {
        if (j >= N) {
            M[j] = C[j] = 0;
            continue;
        }
        const uint8_t *r = mbnn_norm_rec(l, bank, j);
        M[j] = mbnn_rd_i32(r);
        C[j] = mbnn_rd_i32(r + 4);
        fm[j >> 4] |= ((uint32_t)mbnn_rd_i32(r + 16) & 1u) << (j & 15u);
    }
}

/* The 16 output bits of group g from its accumulators. */
static inline uint32_t threshold16(__m512i acc, const int32_t *M, const int32_t *C, const uint32_t *fm, uint32_t g,
                                   uint32_t N)
{
    const __m512i d = _mm512_sub_epi32(_mm512_slli_epi32(acc, 8), _mm512_loadu_si512((const void *)(M + 16u * g)));
    const uint32_t left = N - 16u * g, valid = left >= 16u ? 0xFFFFu : (1u << left) - 1u;
    const __mmask16 ge = _mm512_cmpge_epi32_mask(d, _mm512_loadu_si512((const void *)(C + 16u * g)));
    return ((uint32_t)ge ^ fm[g]) & valid;
}

static inline void put16(uint32_t *o, uint32_t g, uint32_t bits)
{
    if (g & 1u)
        o[g >> 1] |= bits << 16;
    else
        o[g >> 1] = bits;
}

mbnn_status mbnn_conv2d_fast(mbnn_layer *layer, uint32_t bank, const void *in, void *scratch, uint32_t *out_map)
{
    const mbnn_status st = check(layer, in, scratch, out_map);
    if (st != MBNN_OK) return st;
    const mbnn_layer *l = layer;
    const uint32_t C = l->in_c, H = l->in_h, Wm = l->in_w, k = l->kernel, s = l->stride, p = l->pad;
    const uint32_t OH = l->out_h, OW = l->out_w, N = l->N, Np = ceil16(N), G = Np / 16u, CW = mbnn_words(N);
    int32_t *M = (int32_t *)scratch, *Cth = M + Np;
    uint32_t *fm = (uint32_t *)(Cth + Np);
    uint8_t *wbase = (uint8_t *)scratch + align8(4u * (2u * Np + G));
    thresholds(l, bank, M, Cth, fm);
    if (l->in_kind == MBNN_PIXELS) {
        /* masks[i G + g]: the +1 weights of synapse i for channels 16g..16g+15 */
        uint16_t *masks = (uint16_t *)(void *)wbase;
        const uint32_t K = l->K;
        for (uint32_t i = 0; i < K * G; i++) masks[i] = 0;
        for (uint32_t j = 0; j < N; j++) {
            const uint32_t *row = l->signs + (size_t)j * l->W;
            for (uint32_t i = 0; i < K; i++)
                masks[(size_t)i * G + (j >> 4)] |= (uint16_t)(((row[i >> 5] >> (i & 31u)) & 1u) << (j & 15u));
        }
        const uint8_t *x = (const uint8_t *)in;
        const size_t plane = (size_t)H * Wm;
        for (uint32_t oy = 0; oy < OH; oy++) {
            for (uint32_t ox = 0; ox < OW; ox++) {
                const mbnn_taps tp = taps_at(l, oy, ox, NULL);
                const uint32_t ylo = tp.ylo, yhi = tp.yhi, xlo = tp.xlo, xhi = tp.xhi;
                uint32_t *o = out_map + ((size_t)oy * OW + ox) * CW;
                for (uint32_t g0 = 0; g0 < G; g0 += 4u) {
                    const uint32_t ng = G - g0 < 4u ? G - g0 : 4u;
                    __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
                    int32_t T = 0;
                    for (uint32_t ky = ylo; ky < yhi; ky++) {
                        const uint8_t *src = x + (size_t)(oy * s + ky - p) * Wm;
                        for (uint32_t kx = xlo; kx < xhi; kx++) {
                            const uint16_t *mk = masks + (size_t)(ky * k + kx) * C * G + g0;
                            for (uint32_t c = 0; c < C; c++, mk += G) {
                                const int v = src[ox * s + kx - p + (size_t)c * plane];
                                const __m512i xv = _mm512_set1_epi32(v);
                                T += v;
                                s0 = _mm512_mask_add_epi32(s0, mk[0], s0, xv);
                                if (ng > 1u) s1 = _mm512_mask_add_epi32(s1, mk[1], s1, xv);
                                if (ng > 2u) s2 = _mm512_mask_add_epi32(s2, mk[2], s2, xv);
                                if (ng > 3u) s3 = _mm512_mask_add_epi32(s3, mk[3], s3, xv);
                            }
                        }
                    }
                    const __m512i t = _mm512_set1_epi32(T);
                    const __m512i a[4] = {s0, s1, s2, s3};
                    for (uint32_t q = 0; q < ng; q++) /* acc = 2 S - T */
                        put16(o, g0 + q, threshold16(_mm512_sub_epi32(_mm512_slli_epi32(a[q], 1), t), M, Cth, fm,
                                                     g0 + q, N));
                }
            }
        }
        return MBNN_OK;
    }
    /* wt[(t CWin + w) Np + j]: word w of tap t's channel group of channel j, padding bits 0 */
    uint32_t *wt = (uint32_t *)(void *)wbase;
    const uint32_t CWin = mbnn_words(C), TW = k * k * CWin;
    for (uint32_t q = 0; q < TW; q++)
        for (uint32_t j = 0; j < Np; j++) wt[(size_t)q * Np + j] = j < N ? tap_word(l, j, q, C, CWin) : 0u;
    const uint32_t *map = (const uint32_t *)in;
    for (uint32_t oy = 0; oy < OH; oy++) {
        for (uint32_t ox = 0; ox < OW; ox++) {
            const mbnn_taps tp = taps_at(l, oy, ox, map);
            const uint32_t run = tp.run;
            uint32_t *o = out_map + ((size_t)oy * OW + ox) * CW;
            for (uint32_t g0 = 0; g0 < G; g0 += 4u) {
                const uint32_t ng = G - g0 < 4u ? G - g0 : 4u;
                __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
                for (uint32_t ky = tp.ylo; tp.first != NULL && ky < tp.yhi; ky++) {
                    const uint32_t *a = tp.first + (size_t)(ky - tp.ylo) * Wm * CWin;
                    const uint32_t *wq = wt + (size_t)(ky * k + tp.xlo) * CWin * Np + 16u * g0;
                    for (uint32_t q = 0; q < run; q++, wq += Np) {
                        const __m512i av = _mm512_set1_epi32((int)a[q]);
                        s0 = _mm512_add_epi32(s0, _mm512_popcnt_epi32(_mm512_xor_si512(av, _mm512_loadu_si512(wq))));
                        if (ng > 1u)
                            s1 = _mm512_add_epi32(s1, _mm512_popcnt_epi32(_mm512_xor_si512(av, _mm512_loadu_si512(wq + 16))));
                        if (ng > 2u)
                            s2 = _mm512_add_epi32(s2, _mm512_popcnt_epi32(_mm512_xor_si512(av, _mm512_loadu_si512(wq + 32))));
                        if (ng > 3u)
                            s3 = _mm512_add_epi32(s3, _mm512_popcnt_epi32(_mm512_xor_si512(av, _mm512_loadu_si512(wq + 48))));
                    }
                }
                const __m512i nv = _mm512_set1_epi32(tp.n_in);
                const __m512i a[4] = {s0, s1, s2, s3};
                for (uint32_t q = 0; q < ng; q++) /* acc = n_in - 2 popcount */
                    put16(o, g0 + q, threshold16(_mm512_sub_epi32(nv, _mm512_slli_epi32(a[q], 1)), M, Cth, fm, g0 + q,
                                                 N));
            }
        }
    }
    return MBNN_OK;
}

#else /* plain C */

static inline uint32_t even(uint32_t n) { return (n + 1u) & ~1u; }

size_t mbnn_conv2d_fast_bytes(const mbnn_layer *l)
{
    if (l == NULL || l->op != MBNN_OP_CONV2D) return 0;
    if (l->in_kind == MBNN_PIXELS) return align8(2u * (size_t)even(l->K) * (l->N + 1u)); /* weights, window */
    /* bits: the rows themselves when each tap's channel group starts a word (C a multiple of 32), else a copy */
    const uint32_t C = l->in_c;
    return C % 32u == 0u ? 0u : align8(4u * (size_t)l->kernel * l->kernel * mbnn_words(C) * l->N);
}

const char *mbnn_conv2d_fast_kernel(void)
{
#ifdef MBNN_CONV_SMLAD
    return "c-smlad";
#else
    return "c";
#endif
}

/* The 32 (or fewer) output bits of channels j0.. from their accumulators. */
static inline uint32_t threshold_word(const mbnn_layer *l, uint32_t bank, uint32_t j0, uint32_t n, const int32_t *acc)
{
    const uint8_t *r = mbnn_norm_rec(l, bank, j0);
    uint32_t bits = 0;
    for (uint32_t q = 0; q < n; q++, r += MBNN_SIGN_REC) {
        const int32_t d = (int32_t)((int64_t)acc[q] * 256 - mbnn_rd_i32(r)); /* |d| <= 512 R < 2^31 */
        bits |= ((uint32_t)(d >= mbnn_rd_i32(r + 4)) ^ (uint32_t)mbnn_rd_i32(r + 16)) << q;
    }
    return bits;
}

mbnn_status mbnn_conv2d_fast(mbnn_layer *layer, uint32_t bank, const void *in, void *scratch, uint32_t *out_map)
{
    const mbnn_status st = check(layer, in, scratch, out_map);
    if (st != MBNN_OK) return st;
    const mbnn_layer *l = layer;
    const uint32_t C = l->in_c, H = l->in_h, Wm = l->in_w, k = l->kernel, s = l->stride, p = l->pad;
    const uint32_t OH = l->out_h, OW = l->out_w, N = l->N, CW = mbnn_words(N);
    int32_t acc[32];
    if (l->in_kind == MBNN_PIXELS) {
        /* wt[j Kp + i] = +-1 (0 past K), the window xw[Kp] (0 off the map) */
        const uint32_t K = l->K, Kp = even(K);
        int16_t *wt = (int16_t *)scratch, *xw = wt + (size_t)N * Kp;
        for (uint32_t j = 0; j < N; j++) {
            const uint32_t *row = l->signs + (size_t)j * l->W;
            for (uint32_t i = 0; i < Kp; i++)
                wt[(size_t)j * Kp + i] = (int16_t)(i >= K ? 0 : ((row[i >> 5] >> (i & 31u)) & 1u) ? 1 : -1);
        }
        const uint8_t *x = (const uint8_t *)in;
        const size_t plane = (size_t)H * Wm;
        for (uint32_t oy = 0; oy < OH; oy++) {
            for (uint32_t ox = 0; ox < OW; ox++) {
                const mbnn_taps tp = taps_at(l, oy, ox, NULL);
                const uint32_t ylo = tp.ylo, yhi = tp.yhi, xlo = tp.xlo, xhi = tp.xhi;
                for (uint32_t i = 0; i < Kp; i++) xw[i] = 0;
                for (uint32_t ky = ylo; ky < yhi; ky++) {
                    const uint8_t *src = x + (size_t)(oy * s + ky - p) * Wm;
                    for (uint32_t kx = xlo; kx < xhi; kx++)
                        for (uint32_t c = 0; c < C; c++)
                            xw[(ky * k + kx) * C + c] = src[ox * s + kx - p + (size_t)c * plane];
                }
                uint32_t *o = out_map + ((size_t)oy * OW + ox) * CW;
                for (uint32_t j0 = 0; j0 < N; j0 += 32u) {
                    const uint32_t n = N - j0 < 32u ? N - j0 : 32u;
                    for (uint32_t q = 0; q < n; q++) {
                        const int16_t *w = wt + (size_t)(j0 + q) * Kp;
                        int32_t a = 0;
#ifdef MBNN_CONV_SMLAD
                        for (uint32_t i = 0; i < Kp; i += 2u) {
                            int16x2_t xv, wv;
                            memcpy(&xv, xw + i, 4);
                            memcpy(&wv, w + i, 4);
                            a = __smlad(xv, wv, a);
                        }
#else
                        for (uint32_t i = 0; i < Kp; i++) a += (int32_t)xw[i] * w[i];
#endif
                        acc[q] = a;
                    }
                    o[j0 >> 5] = threshold_word(l, bank, j0, n, acc);
                }
            }
        }
        return MBNN_OK;
    }
    const uint32_t CWin = mbnn_words(C), TW = k * k * CWin;
    const uint32_t *rows = l->signs;
    size_t stride = l->W;
    if (C % 32u != 0u) { /* tap t's group at words t CWin.. of each row */
        uint32_t *wt = (uint32_t *)scratch;
        for (uint32_t j = 0; j < N; j++)
            for (uint32_t q = 0; q < TW; q++) wt[(size_t)j * TW + q] = tap_word(l, j, q, C, CWin);
        rows = wt;
        stride = TW;
    }
    const uint32_t *map = (const uint32_t *)in;
    for (uint32_t oy = 0; oy < OH; oy++) {
        for (uint32_t ox = 0; ox < OW; ox++) {
            const mbnn_taps tp = taps_at(l, oy, ox, map);
            const uint32_t run = tp.run;
            uint32_t *o = out_map + ((size_t)oy * OW + ox) * CW;
            for (uint32_t j0 = 0; j0 < N; j0 += 32u) {
                const uint32_t n = N - j0 < 32u ? N - j0 : 32u;
                for (uint32_t q = 0; q < n; q++) {
                    uint32_t pc = 0;
                    if (tp.first != NULL) { /* a position may have no tap on the map */
                        const uint32_t *w = rows + (size_t)(j0 + q) * stride + (tp.ylo * k + tp.xlo) * CWin;
                        const uint32_t *a = tp.first;
                        for (uint32_t ky = tp.ylo; ky < tp.yhi; ky++) {
                            pc += mbnn_xor_popcount(a, w, run);
                            if (ky + 1u < tp.yhi) a += (size_t)Wm * CWin, w += k * CWin; /* no pointer past the map */
                        }
                    }
                    acc[q] = tp.n_in - 2 * (int32_t)pc;
                }
                o[j0 >> 5] = threshold_word(l, bank, j0, n, acc);
            }
        }
    }
    return MBNN_OK;
}

#endif
