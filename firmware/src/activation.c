/* From accumulators to a layer's output (FORMAT.md 3 and 3.1), for the active bank:
 *   d_j = acc_j * 256 - M_j
 *   SIGN:   out_j = (d_j >= C_j) XOR f_j, packed; window_j = lo_j <= d_j <= hi_j (learning only)
 *   SCORES: s_j = g_j d_j + b_j (int64)
 * then, with adaptation on and a > 0, M_j += rsr(d_j, a): the outputs used the old M.
 * The SIGN loop packs 32 neurons per word in an inner loop and walks the records by pointer:
 * on the demo net this is 1,034 neurons per image, and per-neuron bookkeeping (the record
 * address, a branch for the word boundary, a window nobody asked for) cost as much as a layer.
 * With AVX-512 plain inference (no window, no adaptation) takes 16 neurons per step: M, C and f
 * gathered from the 20-byte records, d in 32-bit lanes (the scalar code's int64 d cast to int32
 * is the same value modulo 2^32, and the loader bounds |d| < 2^31), the comparison a mask; 0.50
 * us per 512-neuron layer before, measured on the build machine. */
#include "mbnn_internal.h"

#ifdef MBNN_ACTIVATE_AVX512
#include <immintrin.h>

/* Field `o` (dword offset in the record) of 16 consecutive 20-byte records, loaded as 5 vectors:
 * record k's field is dword 5k + o of the 80, taken by three permutes (dwords 0-31, 32-63, 64-79;
 * gathers measured 3x slower on the build machine). */
typedef struct { __m512i i1, i2, i3; __mmask16 m2, m3; } mbnn_field;

static inline mbnn_field field_at(uint32_t o)
{
    const __m512i e = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                                           12, 13, 14, 15), _mm512_set1_epi32(5)),
                                       _mm512_set1_epi32((int)o));
    mbnn_field f;
    f.i1 = e;
    f.i2 = _mm512_sub_epi32(e, _mm512_set1_epi32(32));
    f.i3 = _mm512_sub_epi32(e, _mm512_set1_epi32(64));
    f.m3 = _mm512_cmpge_epi32_mask(e, _mm512_set1_epi32(64));
    f.m2 = (__mmask16)(_mm512_cmpge_epi32_mask(e, _mm512_set1_epi32(32)) & ~f.m3);
    return f;
}

static inline __m512i gather_field(const __m512i *v, const mbnn_field *f)
{
    __m512i r = _mm512_permutex2var_epi32(v[0], f->i1, v[1]);
    r = _mm512_mask_blend_epi32(f->m2, r, _mm512_permutex2var_epi32(v[2], f->i2, v[3]));
    return _mm512_mask_permutexvar_epi32(r, f->m3, f->i3, v[4]);
}

/* Output bits of 16 neurons from record r on (no window, M not moved). */
static inline uint32_t sign16(const uint8_t *r, const int32_t *acc, const mbnn_field *fm, const mbnn_field *fc,
                              const mbnn_field *ff)
{
    __m512i v[5];
    for (uint32_t k = 0; k < 5u; k++) v[k] = _mm512_loadu_si512((const void *)(r + 64u * k));
    const __m512i M = gather_field(v, fm), C = gather_field(v, fc), f = gather_field(v, ff);
    const __m512i d = _mm512_sub_epi32(_mm512_slli_epi32(_mm512_loadu_si512((const void *)acc), 8), M);
    return (uint32_t)(_mm512_cmpge_epi32_mask(d, C) ^ _mm512_test_epi32_mask(f, f));
}
#endif

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
    uint32_t j0 = 0;
#ifdef MBNN_ACTIVATE_AVX512
    if (window == NULL && a == 0) {
        const mbnn_field fm = field_at(0), fc = field_at(1), ff = field_at(4); /* M, C, f */
        for (; j0 + 32u <= N; j0 += 32u, r += 32u * MBNN_SIGN_REC)
            out_bits[j0 >> 5] = sign16(r, acc + j0, &fm, &fc, &ff) |
                                sign16(r + 16u * MBNN_SIGN_REC, acc + j0 + 16u, &fm, &fc, &ff) << 16;
    }
#endif
    for (; j0 < N; j0 += 32u) {
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
