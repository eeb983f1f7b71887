/* Internal helpers shared by the kernels: the integer primitives of docs/FORMAT.md section 1,
 * little-endian field access into the image, and the workspace layout. Not part of the API. */
#ifndef MBNN_INTERNAL_H
#define MBNN_INTERNAL_H

#include <string.h>

#include "metabnn.h"

#define MBNN_HEADER_BYTES 24u
#define MBNN_DESC_BYTES 64u
#define MBNN_EXP_ENTRIES 256u
#define MBNN_SIGN_REC 20u
#define MBNN_SCORE_REC 16u
#define MBNN_Q15_ONE 32768
#define MBNN_DELTA_MAX 32767
#define MBNN_U_MAX 65535
#define MBNN_DESC_ROUNDING 40u /* descriptor offsets of stochastic rounding (FORMAT.md 4.4, 6) */
#define MBNN_DESC_SR_SEED 44u
#define MBNN_DESC_SR_STEP 48u

static inline uint32_t mbnn_words(uint32_t k) { return (k + 31u) >> 5; }

/* rsr(x, s): round to nearest, ties away from zero, symmetric around 0. Computed on the
 * magnitude in 64 bits: |d| + 2^(s-1) can exceed INT32_MAX (|d| <= 512 R, s <= 31). */
static inline int64_t mbnn_rsr(int64_t x, uint32_t s)
{
    if (s == 0) return x;
    if (x >= 0) return (x + ((int64_t)1 << (s - 1))) >> s;
    return -((-x + ((int64_t)1 << (s - 1))) >> s);
}

static inline int64_t mbnn_sat(int64_t x, int64_t lo, int64_t hi)
{
    return x < lo ? lo : (x > hi ? hi : x);
}

/* Little-endian reads/writes of unaligned fields (memcpy compiles to one load on LE targets;
 * the loader rejects big-endian targets). */
static inline uint16_t mbnn_rd_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t mbnn_rd_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int32_t mbnn_rd_i32(const uint8_t *p) { int32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t mbnn_rd_i64(const uint8_t *p) { int64_t v; memcpy(&v, p, 8); return v; }
static inline void mbnn_wr_i32(uint8_t *p, int32_t v) { memcpy(p, &v, 4); }
static inline void mbnn_wr_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Normalization records (FORMAT.md 6): SIGN {M, C, lo, hi, f}, SCORES {M, g, b}. */
static inline uint8_t *mbnn_norm_rec(const mbnn_layer *l, uint32_t bank, uint32_t j)
{
    uint32_t rec = l->out_kind == MBNN_SIGN ? MBNN_SIGN_REC : MBNN_SCORE_REC;
    return l->norm + ((size_t)bank * l->N + j) * rec;
}

/* Hidden weight h[j][i] (int8 for b <= 8, int16 otherwise). */
static inline int32_t mbnn_hidden_get(const mbnn_layer *l, size_t idx)
{
    if (l->bits <= 8) return (int8_t)l->hidden[idx];
    int16_t v;
    memcpy(&v, l->hidden + 2 * idx, 2);
    return v;
}

/* Which first-layer kernel this build compiles (dense_pixels.c documents them), decided by the
 * target alone, so the workspace size query and the kernel always agree:
 *  - MBNN_PIXELS_AVX512: x86 with AVX-512 F/BW/VPOPCNTDQ: bit planes, 512-bit popcounts;
 *  - MBNN_PIXELS_AVX2:   x86 with AVX2 (no vector popcount): byte masks and SAD;
 *  - MBNN_PIXELS_POPCNT: other 64-bit GNU C hosts: bit planes, 64-bit popcount builtin;
 *  - otherwise (32-bit targets such as the Cortex-M, or MBNN_PORTABLE_POPCOUNT): the portable
 *    masked sum, which is also the reference every other kernel is tested against.
 * The two bit-plane kernels need 8 x (W0 + 1) words of workspace for the planes (MBNN_PIXEL_PLANES). */
#if !defined(MBNN_PORTABLE_POPCOUNT) && defined(__AVX512F__) && defined(__AVX512BW__) && \
    defined(__AVX512VPOPCNTDQ__)
#define MBNN_PIXELS_AVX512 1
#elif !defined(MBNN_PORTABLE_POPCOUNT) && defined(__AVX2__)
#define MBNN_PIXELS_AVX2 1
#elif !defined(MBNN_PORTABLE_POPCOUNT) && defined(__GNUC__) && UINTPTR_MAX > 0xFFFFFFFFu
#define MBNN_PIXELS_POPCNT 1
#endif
/* The binary layer's AVX-512 kernel needs only F and VPOPCNTDQ (dense_bits.c). */
#if !defined(MBNN_PORTABLE_POPCOUNT) && defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__)
#define MBNN_BITS_AVX512 1
#endif
/* The activation's AVX-512 path (gathers, compare masks) needs only F (activation.c). */
#if !defined(MBNN_PORTABLE_POPCOUNT) && defined(__AVX512F__)
#define MBNN_ACTIVATE_AVX512 1
#endif
#if defined(MBNN_PIXELS_AVX512) || defined(MBNN_PIXELS_POPCNT)
#define MBNN_PIXEL_PLANES 1
void mbnn_pixels_planes(const mbnn_layer *layer, const uint8_t *x, uint64_t *planes, int32_t *acc);
#endif
/* The first layer by columns (dense_pixels_columns.c) in AVX-512 BW builds, from a copy of the
 * signs kept in the workspace; mbnn_dense_pixels stays the kernel when the copy is not valid. */
#if !defined(MBNN_PORTABLE_POPCOUNT) && defined(__AVX512F__) && defined(__AVX512BW__)
#define MBNN_PIXEL_COLUMNS 1
#endif
#ifdef MBNN_PIXELS_AVX2
void mbnn_pixels_avx2(const mbnn_layer *layer, const uint8_t *x, int32_t *acc);
#endif

/* Workspace layout: every mode uses the same carving so the size query and the users agree. */
typedef struct {
    uint32_t *cols_tag;  /* MBNN_PIXEL_COLUMNS builds: 16 words (the key of the copy), then */
    uint32_t *cols;      /* the pixel-major copy of layer 0's signs; both NULL in other builds */
    int32_t *acc;        /* max N */
    int64_t *scores;     /* N of the output layer */
    uint32_t *planes;    /* 8 x (W0 + 1) words of pixel bit planes (MBNN_PIXEL_PLANES builds), else NULL */
    uint32_t *bits[MBNN_MAX_LAYERS];   /* output bits of SIGN layer l (learn: all; infer: ping-pong) */
    uint32_t *window[MBNN_MAX_LAYERS]; /* learn only: straight-through window mask of SIGN layer l */
    int32_t *delta_a, *delta_b;        /* learn only: max N each */
    /* conv models (version 2) only, else NULL: */
    uint8_t *win_pixels;   /* the first layer's window, K0 bytes */
    uint32_t *win_bits;    /* a bits conv's window and off-map mask, 2 W words (max over those layers) */
    uint32_t *pre[MBNN_MAX_LAYERS]; /* a pooled conv's map before the pool (infer: one buffer for all) */
    uint32_t *flat;        /* the flattened map the first dense layer reads, ceil(K/32) words */
    int64_t *back;         /* learn: the error at a conv's (pooled) outputs, position-major [q][N] */
    int64_t *back_pre;     /* learn: the same before the pool [p][N] */
    int32_t *cdelta;       /* learn: a conv's deltas per position [p][N] */
    int64_t *grad;         /* learn: one conv row's per-synapse gradients [K] */
    void *conv_fast;       /* infer: mbnn_conv2d_fast's scratch, the largest over the conv layers */
} mbnn_ws;

/* Words of the packed output of layer l: ceil(N/32), or the whole (pooled) channel-packed map of a conv. */
static inline uint32_t mbnn_out_words(const mbnn_layer *l)
{
    return l->op == MBNN_OP_CONV2D ? (uint32_t)l->map_h * l->map_w * mbnn_words(l->N) : mbnn_words(l->N);
}

size_t mbnn_ws_layout(const mbnn_model *model, mbnn_mode mode, void *base, mbnn_ws *ws);

/* The learning step through conv models (conv2d_learn.c; FORMAT.md 4.5), called by learn.c once the dense
 * layers above the flatten have their deltas in delta_dense (layer `first_dense`, before its update). */
mbnn_status mbnn_conv_learn(mbnn_model *model, const uint8_t *pixels, mbnn_ws *ws, uint32_t first_dense,
                            const int32_t *delta_dense, uint32_t *flips);
/* THE rule (metaplastic.c) on row j of a layer from per-synapse gradients grad[K] (a conv synapse's is the sum
 * of its products over the positions, FORMAT.md 4.5): the same rounding, table and saturation as
 * mbnn_metaplastic_update, nearest or stochastic (the draw of synapse (j, i) at the layer's sr_step). */
uint32_t mbnn_metaplastic_row(mbnn_layer *layer, uint32_t j, const int64_t *grad);
mbnn_status mbnn_ws_check(const mbnn_model *model, mbnn_mode mode, void *ws, size_t ws_size, mbnn_ws *out);
mbnn_status mbnn_forward_record(mbnn_model *model, const uint8_t *pixels, mbnn_ws *ws, int learn);
/* acc of layer 0 by columns if the workspace's copy is valid (or, with may_build, after rebuilding
 * it): 1; 0 if the workspace has no copy, or it is stale and may_build is 0. Other builds: 0, no call
 * (the Cortex-M's instruction counts stay those of the row kernel). */
#ifdef MBNN_PIXEL_COLUMNS
int mbnn_pixels_by_columns(const mbnn_layer *layer, const uint8_t *x, const mbnn_ws *ws, int may_build, int32_t *acc);
#define MBNN_BY_COLUMNS(layer, x, ws, may_build, acc) mbnn_pixels_by_columns(layer, x, ws, may_build, acc)
#else
#define MBNN_BY_COLUMNS(layer, x, ws, may_build, acc) 0
#endif

#endif
