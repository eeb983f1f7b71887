/*
 * metabnn.h - the one public header of the metabnn C firmware.
 *
 * Integer inference and on-device continual learning for metaplastic binarized
 * neural networks, bit for bit as docs/FORMAT.md and metabnn.sim specify.
 *
 *  - C99, no dynamic allocation, no floating point anywhere in inference or
 *    learning (the two informational float fields of a .mbnn file are checked
 *    by their bit patterns only).
 *  - The model is a *view* over a .mbnn image in the caller's memory: nothing is
 *    copied. A read-only image (flash, a static const array) serves inference
 *    with frozen normalization; learning and stream adaptation write hidden
 *    weights, sign bits and M into the image, so they need a writable image
 *    (mbnn_load_writable). mbnn_image_seal() then rewrites the CRC so the
 *    mutated image is again a valid .mbnn file.
 *  - Scratch memory is one caller-owned workspace; mbnn_workspace_size() says
 *    how many bytes a mode needs. In builds with the column kernel of the first
 *    layer (x86 AVX-512: mbnn_pixel_columns_words() > 0) the workspace also
 *    keeps a transposed copy of layer 0's signs between calls, tagged with the
 *    model's address of those signs and the layer's sign_version; inference
 *    rebuilds it when the tag does not match (first call, another model, a
 *    learning step that flipped a layer-0 sign). So keep a model's workspace
 *    for that model and do not write into it between calls; if you do, or if
 *    you write into the image yourself, clear the workspace's first 64 bytes
 *    (or load the model again: a load sets a new sign_version).
 *  - Every function returns an mbnn_status; mbnn_status_str() names it.
 *
 * Requirements on the caller: a little-endian target; the image buffer aligned
 * to 4 bytes and the workspace to 8 bytes (MBNN_ERR_ALIGN otherwise).
 *
 * Speed: the loader works in the caller's buffer, so the buffer's alignment is
 * the rows' alignment. A .mbnn writer puts every packed-sign section at a file
 * offset that is a multiple of 64 (docs/FORMAT.md 6); in a 64-byte-aligned
 * buffer (posix_memalign / aligned_alloc on a host, an aligned static array or
 * linker section on a microcontroller) each layer's signs then start on a
 * cache line. A row is W = ceil(K/32) words (4W bytes), so row j starts 4W*j
 * bytes after its layer's first: every row on a line when K is a multiple of
 * 512, otherwise row j is (4W*j mod 64) bytes past one. Any 4-byte-aligned
 * buffer gives the same results; with AVX-512 the binary layer runs faster on
 * line-aligned rows (docs/FIRMWARE.md, "Performance").
 */
#ifndef METABNN_H
#define METABNN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MBNN_FORMAT_VERSION 1u      /* dense layers only */
#define MBNN_FORMAT_VERSION_CONV 2u /* conv2d layers too (docs/FORMAT.md 3.3); the loader reads both */
#define MBNN_MAX_LAYERS 16u

typedef enum {
    MBNN_OK = 0,
    MBNN_ERR_NULL,           /* a required pointer is NULL */
    MBNN_ERR_ALIGN,          /* image not 4-byte aligned or workspace not 8-byte aligned */
    MBNN_ERR_ENDIAN,         /* the target is not little-endian */
    MBNN_ERR_TRUNCATED,      /* buffer too short for a header, or shorter than the header says */
    MBNN_ERR_MAGIC,          /* not "MBNN" */
    MBNN_ERR_VERSION,        /* format version is not 1 or 2, or version 2 without a conv layer */
    MBNN_ERR_FILE_SIZE,      /* header size field differs from the buffer size */
    MBNN_ERR_CRC,            /* CRC-32 mismatch */
    MBNN_ERR_RESERVED,       /* a reserved header/descriptor field is not zero */
    MBNN_ERR_LAYER_COUNT,    /* L outside 2..16, or descriptors do not fit */
    MBNN_ERR_BANK_COUNT,     /* B outside 1..255 */
    MBNN_ERR_CHAIN,          /* wrong input/output kinds or K(l+1) != N(l) */
    MBNN_ERR_FIELD,          /* a descriptor field outside its range */
    MBNN_ERR_SECTION,        /* a section misaligned, out of bounds or overlapping */
    MBNN_ERR_GAP,            /* a byte outside every section is not zero */
    MBNN_ERR_HIDDEN,         /* a hidden weight outside [-2^(b-1), 2^(b-1)-1] */
    MBNN_ERR_SIGNS,          /* a sign bit disagrees with its hidden weight, or padding bit set */
    MBNN_ERR_TABLE,          /* a table entry above 32768, or E[0] != 32768 */
    MBNN_ERR_NORM,           /* a normalization record out of range (M, C, lo, hi, f, g, b) */
    MBNN_ERR_WORKSPACE,      /* workspace smaller than mbnn_workspace_size() */
    MBNN_ERR_BANK,           /* bank index >= B */
    MBNN_ERR_LABEL,          /* label >= number of classes */
    MBNN_ERR_ARG,            /* another argument out of range (layer index, shift, buffer length) */
    MBNN_ERR_READONLY,       /* learning or adaptation on a model loaded read-only */
    MBNN_STATUS_COUNT
} mbnn_status;

typedef enum { MBNN_PIXELS = 0, MBNN_BITS = 1 } mbnn_in_kind;
typedef enum { MBNN_SIGN = 0, MBNN_SCORES = 1 } mbnn_out_kind;
typedef enum { MBNN_MODE_INFER = 0, MBNN_MODE_LEARN = 1 } mbnn_mode;
typedef enum { MBNN_OP_DENSE = 0, MBNN_OP_CONV2D = 1 } mbnn_op;

/* One layer (dense, or conv2d in a version-2 image): a view into the image (fields filled by the loader;
 * read them, do not write them). A conv2d layer's rows are its N output channels' kernels of K = C k^2
 * synapses, synapse i = (ky k + kx) C + c (FORMAT.md 3.3). */
typedef struct {
    uint32_t K, N, W;            /* inputs, neurons, 32-bit words per packed row */
    uint8_t in_kind, out_kind;   /* mbnn_in_kind, mbnn_out_kind */
    uint8_t bits, table_bits;    /* b, k */
    uint8_t lr_shift, bshift;    /* learning shifts (mbnn_set_shifts changes them) */
    uint8_t adapt_shift;         /* 0 = frozen normalization */
    uint8_t score_frac;          /* Q of a SCORES layer */
    uint32_t *signs;             /* N x W packed sign words */
    uint8_t *hidden;             /* N x K int8 (b <= 8) or little-endian int16 (b > 8) */
    const uint16_t *table;       /* 2^k Q15 f_meta entries */
    const uint16_t *away;        /* NULL, or the 2^k Q15 entries G that scale pushes away from zero
                                    (FORMAT.md 4.2.1, descriptor byte 42) */
    uint8_t *norm;               /* B x N records: SIGN 20 bytes, SCORES 16 bytes */
    uint8_t *desc;               /* this layer's 64-byte descriptor in the image */
    uint32_t sr_seed;            /* stochastic rounding seed (FORMAT.md 4.4); the step counter sr_step is
                                    run-time state and lives in the image (descriptor offset 48) */
    uint8_t rounding;            /* 0 nearest (4.3), 1 stochastic (4.4) */
    uint32_t sign_version;       /* the loader sets it, mbnn_metaplastic_update moves it whenever it flips a
                                    sign of this layer: it keys the workspace's column copy (below) */
    /* conv2d geometry (op = MBNN_OP_CONV2D; all 0 in a dense layer): input map in_c x in_h x in_w, a
     * kernel x kernel window, stride, zero padding pad (taps off the map contribute nothing), pool 2 = a
     * 2 x 2 max-pool on the output bits (0 = none); out_h x out_w positions, map_h x map_w after the pool */
    uint8_t op;
    uint8_t kernel, stride, pad, pool;
    uint16_t in_c, in_h, in_w;
    uint16_t out_h, out_w, map_h, map_w;
} mbnn_layer;

/* A loaded model. Declare it anywhere (static, stack); mbnn_load* fills it. */
typedef struct {
    uint8_t *image;              /* the caller's .mbnn image (written only if writable) */
    uint32_t size;
    uint8_t writable;
    uint8_t adapt;               /* stream-adaptive normalization on/off (FORMAT.md 3.1) */
    uint16_t n_layers;
    uint32_t n_banks, bank;      /* number of banks, the active bank */
    uint32_t n_inputs;           /* pixels per image: K of a dense first layer, in_c in_h in_w of a conv one */
    const uint16_t *exp_table;   /* 256 Q15 entries */
    uint32_t frozen;             /* bit l set: layer l does not learn (FORMAT.md 4.5 "Frozen layers");
                                    0 after loading; mbnn_set_frozen sets it */
    mbnn_layer layers[MBNN_MAX_LAYERS];
} mbnn_model;

/* What one learning step did (optional output of mbnn_learn_step). */
typedef struct {
    uint32_t predicted;          /* the class the step's forward pass chose, before the update */
    uint32_t flips;              /* synapses whose sign changed in this step, all layers */
} mbnn_step_info;

const char *mbnn_status_str(mbnn_status status);

/* ---- loading (load.c) ------------------------------------------------------------------------ */
/* Validate a .mbnn image exactly as docs/FORMAT.md section 6 lists and fill `model`.
 * Never reads outside [image, image + size). Read-only: inference with frozen normalization. */
mbnn_status mbnn_load(mbnn_model *model, const void *image, size_t size);
/* Same, but learning and adaptation may write hidden weights, sign bits and M into `image`. */
mbnn_status mbnn_load_writable(mbnn_model *model, void *image, size_t size);
/* Recompute the trailing CRC-32 of a writable image after learning/adaptation/mbnn_set_shifts. */
mbnn_status mbnn_image_seal(mbnn_model *model);
/* CRC-32 (IEEE 802.3, as zlib's crc32) of a buffer, chained through `crc` (start with 0). */
uint32_t mbnn_crc32(uint32_t crc, const uint8_t *data, size_t len);
/* sizeof(mbnn_model), for foreign-function callers that cannot see the struct. */
size_t mbnn_model_struct_size(void);

/* ---- run-time settings (settings.c) ---------------------------------------------------------- */
mbnn_status mbnn_select_bank(mbnn_model *model, uint32_t bank);
/* Needs a writable model when enabled and some layer has adapt_shift > 0. */
mbnn_status mbnn_set_adapt(mbnn_model *model, int enabled);
/* Change a layer's lr_shift and bshift (0..31); written through to a writable image's descriptor. */
mbnn_status mbnn_set_shifts(mbnn_model *model, uint32_t layer, uint32_t lr_shift, uint32_t bshift);

/* ---- workspace (workspace.c) ----------------------------------------------------------------- */
mbnn_status mbnn_workspace_size(const mbnn_model *model, mbnn_mode mode, size_t *bytes);

/* ---- inference (infer.c) --------------------------------------------------------------------- */
/* Scores of one uint8 image of n_inputs pixels into scores[n_classes]; with adaptation on, M moves.
 * A conv first layer reads the image in CHW order (pixel (c, y, x) at c H W + y W + x). */
mbnn_status mbnn_forward(mbnn_model *model, const uint8_t *pixels, size_t n_pixels,
                         void *workspace, size_t ws_size, int64_t *scores, size_t n_scores);
mbnn_status mbnn_predict(mbnn_model *model, const uint8_t *pixels, size_t n_pixels,
                         void *workspace, size_t ws_size, uint32_t *label);

/* ---- learning (learn.c) ---------------------------------------------------------------------- */
/* One on-device learning step, docs/FORMAT.md 4.3 (4.4 in layers with stochastic rounding, whose
 * step counter sr_step then advances in the image; 4.5 through conv2d, max-pool and flatten: every layer
 * of a conv model learns). `info` may be NULL. Needs a writable model. */
mbnn_status mbnn_learn_step(mbnn_model *model, const uint8_t *pixels, size_t n_pixels, uint32_t label,
                            void *workspace, size_t ws_size, mbnn_step_info *info);
/* Freeze layers for the learning steps that follow (FORMAT.md 4.5 "Frozen layers"): bit l of `mask` set =
 * layer l keeps its hidden weights, signs and sr_step; the error stops at the lowest layer that learns, and
 * every other layer ends as in the full step (metabnn.sim.learn_step's `frozen`). 0 = every layer learns (as
 * loaded). MBNN_ERR_ARG for a bit at or above n_layers, or a mask that freezes every layer. */
mbnn_status mbnn_set_frozen(mbnn_model *model, uint32_t mask);

/* ---- kernels (one per file; public so tests can hold them to the reference) ------------------ */
/* popcount.c: sum over W words of popcount(a XOR b) / popcount(a AND b); the builtin
 * (hardware) version and a portable SWAR fallback that must agree bit for bit. */
uint32_t mbnn_xor_popcount(const uint32_t *a, const uint32_t *b, uint32_t W);
uint32_t mbnn_xor_popcount_portable(const uint32_t *a, const uint32_t *b, uint32_t W);
uint32_t mbnn_and_popcount(const uint32_t *a, const uint32_t *b, uint32_t W);
uint32_t mbnn_and_popcount_portable(const uint32_t *a, const uint32_t *b, uint32_t W);

/* dense_pixels.c: acc[j] = sum_i w_ji x_i for the uint8 first layer, by the fastest kernel the
 * build's target allows (mbnn_dense_pixels_kernel() names it: "avx512-planes", "avx2-sad",
 * "popcount-planes" or "portable"). `planes` is scratch of 8 x (W + 1) words, 8-byte aligned,
 * for the two bit-plane kernels; the others ignore it (NULL allowed). The _portable version is
 * the C99 reference (and the kernel of 32-bit targets); every kernel equals it bit for bit. */
mbnn_status mbnn_dense_pixels(const mbnn_layer *layer, const uint8_t *x, uint32_t *planes, int32_t *acc);
mbnn_status mbnn_dense_pixels_portable(const mbnn_layer *layer, const uint8_t *x, int32_t *acc);
const char *mbnn_dense_pixels_kernel(void);
/* dense_pixels_columns.c: the same acc from a pixel-major copy of the signs, visiting only the
 * non-zero pixels (x86 AVX-512 BW builds; what mbnn_forward/predict use there, the copy kept in
 * the workspace). mbnn_pixel_columns_words() is the copy's size in 32-bit words, 0 where the build
 * has no column kernel (the other two then return MBNN_ERR_ARG). cols: 64-byte aligned is fastest. */
size_t mbnn_pixel_columns_words(const mbnn_layer *layer);
mbnn_status mbnn_pixel_columns_build(const mbnn_layer *layer, uint32_t *cols);
mbnn_status mbnn_dense_pixels_columns(const mbnn_layer *layer, const uint8_t *x, const uint32_t *cols, int32_t *acc);
/* dense_bits.c: acc[j] = K - 2 popcount(x XOR w_j) for a packed +-1 input. */
mbnn_status mbnn_dense_bits(const mbnn_layer *layer, const uint32_t *x, int32_t *acc);
/* activation.c: d = acc*256 - M, then SIGN bits (and the straight-through window mask, if
 * `window` is not NULL) or SCORES; with `adapt`, M += rsr(d, a) afterwards. */
mbnn_status mbnn_activate(mbnn_layer *layer, uint32_t bank, int adapt, const int32_t *acc,
                          uint32_t *out_bits, uint32_t *window, int64_t *scores);
/* argmax.c: the lowest index wins a tie. */
mbnn_status mbnn_argmax(const int64_t *scores, uint32_t n, uint32_t *label);
/* output_error.c: delta_j = sat(sgn(g_j) e_j) with e = p - onehot from the exp table (4.3 steps 2-3). */
mbnn_status mbnn_output_delta(const mbnn_model *model, const int64_t *scores, uint32_t label, int32_t *delta);
/* backward.c: deltas of SIGN layer l from the deltas of layer l+1 (4.3 step 4). */
mbnn_status mbnn_backward(const mbnn_model *model, uint32_t layer, const int32_t *delta_above,
                          const uint32_t *window, int32_t *delta);
/* metaplastic.c: THE rule (4.3 step 5; 4.4 when the layer's rounding is stochastic, with the draws
 * of its current sr_step) for every synapse of one layer; x is the layer input (uint8 pixels or
 * packed bits). Writes hidden weights and sign bits; adds the flips to *flips. */
mbnn_status mbnn_metaplastic_update(mbnn_layer *layer, const void *x, const int32_t *delta, uint32_t *flips);
/* The conv ops (version 2, FORMAT.md 3.3). Maps are position-major and channel-packed: position
 * (y, x) of a C-channel map at words (y W + x) ceil(C/32) .. +ceil(C/32)-1, channel c at bit c mod 32
 * of word c / 32, padding bits 0. Each conv kernel thresholds its accumulators as a dense layer does
 * (mbnn_activate, frozen normalization of `bank`) into out_map, out_h x out_w positions of N channels;
 * window_map (NULL in inference) gets the straight-through window bits of every position, laid out alike.
 * conv2d_pixels.c: the first layer on uint8 pixels x (CHW order); scratch: window of K bytes, planes
 * as mbnn_dense_pixels', acc of N. Each position's window goes through mbnn_dense_pixels. */
mbnn_status mbnn_conv2d_pixels(mbnn_layer *layer, uint32_t bank, const uint8_t *x, uint8_t *window,
                               uint32_t *planes, int32_t *acc, uint32_t *out_map, uint32_t *window_map);
/* conv2d_bits.c: a conv on a +-1 map in_map; scratch: window of 2 W words, acc of N. Each position's
 * window goes through mbnn_dense_bits; at a border position the taps off the map are put back with one
 * AND-popcount per channel (acc = K_in - 2 popcount((a XOR w) AND inside)). */
mbnn_status mbnn_conv2d_bits(mbnn_layer *layer, uint32_t bank, const uint32_t *in_map, uint32_t *window,
                             int32_t *acc, uint32_t *out_map, uint32_t *window_map);
/* conv2d_fast.c: the inference kernel of both conv ops (what mbnn_forward/predict run): every output channel of
 * a position at once, the in-map taps visited as runs of map words (taps off the map skipped), the same output
 * bits as mbnn_conv2d_pixels / mbnn_conv2d_bits (the references, and the learning forward's kernels). `in` is
 * the uint8 CHW image for a pixels conv, the channel-packed map for a bits conv; `scratch` (8-byte aligned) of
 * mbnn_conv2d_fast_bytes(layer) bytes receives the rearranged weights and thresholds at each call (0 bytes:
 * NULL allowed). mbnn_conv2d_fast_kernel() names the build's kernel ("avx512-lanes", "c-smlad" or "c"). */
size_t mbnn_conv2d_fast_bytes(const mbnn_layer *layer);
mbnn_status mbnn_conv2d_fast(mbnn_layer *layer, uint32_t bank, const void *in, void *scratch, uint32_t *out_map);
const char *mbnn_conv2d_fast_kernel(void);
/* maxpool.c: 2 x 2, stride 2, on the bits of a C x H x W map: out (C x H/2 x W/2, an odd last row or
 * column dropped) = the OR of each window's four bits. */
mbnn_status mbnn_maxpool2(const uint32_t *in_map, uint32_t C, uint32_t H, uint32_t W, uint32_t *out_map);
/* flatten.c: a C x H x W map into the packed vector of C H W bits a dense layer reads, bit c H W + y W + x
 * (torch's NCHW order); padding bits 0. */
mbnn_status mbnn_flatten(const uint32_t *map, uint32_t C, uint32_t H, uint32_t W, uint32_t *out);
/* threefry.c: (out[0], out[1]) = threefry2x32_20(ctr = (c0, c1), key = (k0, k1)), FORMAT.md 4.4. */
void mbnn_threefry2x32_20(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t out[2]);

#ifdef __cplusplus
}
#endif
#endif /* METABNN_H */
