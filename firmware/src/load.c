/* The .mbnn loader: validates an image exactly as docs/FORMAT.md section 6 lists, then fills
 * an mbnn_model whose arrays point into the image (no copy, no allocation).
 *
 * Order of checks: every byte is bounds-checked before it is read. Header -> size -> CRC ->
 * counts -> descriptors -> sections (alignment, bounds, overlaps, zero gaps) -> contents.
 * Sizes are computed in 64 bits so no field can wrap them. The optional metadata section
 * (FORMAT.md 6.1: a u32 length and JSON for tools) is checked as a section, its content ignored. */
#include "mbnn_internal.h"

#define MAX_SECTIONS (3u + 4u * MBNN_MAX_LAYERS) /* header, exp table, metadata, 4 per layer */
#define MAX_META_BYTES 65536u                    /* docs/FORMAT.md 6.1 */
#define MAX_SIDE 1024u                           /* conv maps (FORMAT.md 6, version 2) */
#define MAX_KERNEL 16u
#define MAX_STRIDE 16u
#define MAX_IMAGE (1u << 20)
#define DESC_OP 41u   /* version 2: op (0 dense, 1 conv2d) */
#define DESC_AWAY 42u /* 0, or 1: the table section holds F then the away table G (FORMAT.md 4.2.1) */
#define DESC_GEOM 52u /* version 2: in_c, in_h, in_w (u16), kernel, stride, pad, pool (u8): bytes 52..61 */

typedef struct {
    uint64_t off, len;
} span;

static int is_little_endian(void)
{
    const uint32_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

/* A section: aligned to 8, inside [data_begin, data_end), recorded for the overlap check. */
static mbnn_status add_section(span *s, uint32_t *n, uint64_t off, uint64_t len, uint64_t data_begin,
                               uint64_t data_end)
{
    if (off % 8u != 0 || off < data_begin || off + len > data_end) return MBNN_ERR_SECTION;
    s[*n].off = off;
    s[*n].len = len;
    (*n)++;
    return MBNN_OK;
}

/* The metadata section at header offset 20 (0 = none): its u32 length is read only once the
 * 4 bytes are known to lie inside the data area; the CRC already covers its content. */
static mbnn_status add_metadata(span *s, uint32_t *n, const uint8_t *img, uint64_t off, uint64_t data_begin,
                                uint64_t data_end)
{
    if (off == 0) return MBNN_OK;
    if (off < data_begin || off + 4u > data_end) return MBNN_ERR_SECTION;
    const uint64_t len = mbnn_rd_u32(img + off);
    if (len < 1u || len > MAX_META_BYTES) return MBNN_ERR_SECTION;
    return add_section(s, n, off, 4u + len, data_begin, data_end);
}

/* IEEE-754 binary32 checks by bit pattern (no floating point): finite <=> exponent != 0xFF. */
static int f32_finite(uint32_t bits) { return ((bits >> 23) & 0xFFu) != 0xFFu; }
static int f32_nonneg(uint32_t bits) { return f32_finite(bits) && (!(bits >> 31) || bits == 0x80000000u); }
static int f32_positive(uint32_t bits) { return f32_finite(bits) && !(bits >> 31) && bits != 0; }

static mbnn_status check_layer_contents(const mbnn_layer *l, uint32_t B)
{
    const int32_t hmin = -(1 << (l->bits - 1)), hmax = (1 << (l->bits - 1)) - 1;
    /* hidden weights in range, and every sign bit (padding included) equal to h >= 0 */
    for (uint32_t j = 0; j < l->N; j++) {
        const uint32_t *row = l->signs + (size_t)j * l->W;
        for (uint32_t w = 0; w < l->W; w++) {
            uint32_t want = 0;
            for (uint32_t b = 0; b < 32u; b++) {
                uint32_t i = w * 32u + b;
                if (i >= l->K) break;
                int32_t h = mbnn_hidden_get(l, (size_t)j * l->K + i);
                if (h < hmin || h > hmax) return MBNN_ERR_HIDDEN;
                want |= (uint32_t)(h >= 0) << b;
            }
            if (row[w] != want) return MBNN_ERR_SIGNS;
        }
    }
    for (uint32_t i = 0; i < (1u << l->table_bits); i++)
        if (l->table[i] > MBNN_Q15_ONE || (l->away != NULL && l->away[i] > MBNN_Q15_ONE)) return MBNN_ERR_TABLE;
    const int64_t R = (int64_t)l->K * (l->in_kind == MBNN_PIXELS ? 255 : 1), D = 512 * R;
    for (uint32_t bank = 0; bank < B; bank++) {
        for (uint32_t j = 0; j < l->N; j++) {
            const uint8_t *r = mbnn_norm_rec(l, bank, j);
            int64_t M = mbnn_rd_i32(r);
            if (M < -256 * R || M > 256 * R) return MBNN_ERR_NORM;
            if (l->out_kind == MBNN_SIGN) {
                for (uint32_t f = 1; f <= 3; f++) {
                    int64_t v = mbnn_rd_i32(r + 4 * f); /* C, lo, hi */
                    if (v < -D - 1 || v > D + 1) return MBNN_ERR_NORM;
                }
                int32_t flip = mbnn_rd_i32(r + 16);
                if (flip != 0 && flip != 1) return MBNN_ERR_NORM;
            } else {
                int64_t g = mbnn_rd_i32(r + 4), b = mbnn_rd_i64(r + 8);
                if (g < -32767 || g > 32767) return MBNN_ERR_NORM;
                if (b < -((int64_t)1 << 47) || b > ((int64_t)1 << 47)) return MBNN_ERR_NORM;
            }
        }
    }
    return MBNN_OK;
}

/* The conv2d geometry of a version-2 descriptor (FORMAT.md 3.3, 6), the checks of export/mbnn.py's
 * _conv_geom: ranges, K = C k^2, a kernel that fits the padded map, an output the pool can halve, a conv
 * only first or after a conv whose output map is its input, no stream adaptation. */
static mbnn_status parse_conv(mbnn_model *m, uint32_t idx, const uint8_t *d)
{
    mbnn_layer *l = &m->layers[idx];
    l->in_c = mbnn_rd_u16(d + DESC_GEOM);
    l->in_h = mbnn_rd_u16(d + DESC_GEOM + 2u);
    l->in_w = mbnn_rd_u16(d + DESC_GEOM + 4u);
    l->kernel = d[DESC_GEOM + 6u];
    l->stride = d[DESC_GEOM + 7u];
    l->pad = d[DESC_GEOM + 8u];
    l->pool = d[DESC_GEOM + 9u];
    const uint32_t C = l->in_c, H = l->in_h, W = l->in_w, k = l->kernel, s = l->stride, p = l->pad;
    if (idx > 0 && m->layers[idx - 1].op != MBNN_OP_CONV2D) return MBNN_ERR_CHAIN;
    if (idx + 1u == m->n_layers) return MBNN_ERR_CHAIN; /* the output layer is dense */
    if (l->adapt_shift != 0) return MBNN_ERR_FIELD;
    if (C < 1 || H < 1 || H > MAX_SIDE || W < 1 || W > MAX_SIDE || (uint64_t)C * H * W > MAX_IMAGE)
        return MBNN_ERR_FIELD;
    if (k < 1 || k > MAX_KERNEL || s < 1 || s > MAX_STRIDE || p >= k) return MBNN_ERR_FIELD;
    if (l->pool != 0 && l->pool != 2) return MBNN_ERR_FIELD;
    if (l->K != C * k * k) return MBNN_ERR_FIELD;
    if (H + 2u * p < k || W + 2u * p < k) return MBNN_ERR_FIELD;
    l->out_h = (uint16_t)((H + 2u * p - k) / s + 1u);
    l->out_w = (uint16_t)((W + 2u * p - k) / s + 1u);
    l->map_h = l->pool ? (uint16_t)(l->out_h / 2u) : l->out_h;
    l->map_w = l->pool ? (uint16_t)(l->out_w / 2u) : l->out_w;
    if (l->map_h < 1 || l->map_w < 1) return MBNN_ERR_FIELD;
    if (idx > 0) {
        const mbnn_layer *pr = &m->layers[idx - 1];
        if (C != pr->N || H != pr->map_h || W != pr->map_w) return MBNN_ERR_CHAIN;
    }
    return MBNN_OK;
}

static mbnn_status parse_descriptor(mbnn_model *m, uint32_t idx, uint32_t version, span *sec, uint32_t *nsec,
                                    uint64_t data_begin, uint64_t data_end)
{
    uint8_t *d = m->image + MBNN_HEADER_BYTES + MBNN_DESC_BYTES * idx;
    mbnn_layer *l = &m->layers[idx];
    const uint32_t L = m->n_layers;
    /* reserved: 41, 43 and 52..63 in version 1; 43 and 62..63 in version 2 (op at 41, geometry 52..61);
     * byte 42 is `away` in both */
    const uint32_t first = version == MBNN_FORMAT_VERSION ? MBNN_DESC_ROUNDING + 1u : DESC_OP + 1u;
    const uint32_t geom_end = version == MBNN_FORMAT_VERSION ? MBNN_DESC_SR_STEP + 4u : DESC_GEOM + 10u;
    for (uint32_t i = first; i < MBNN_DESC_SR_SEED; i++)
        if (i != DESC_AWAY && d[i] != 0) return MBNN_ERR_RESERVED;
    if (d[DESC_AWAY] > 1) return MBNN_ERR_FIELD;
    for (uint32_t i = geom_end; i < MBNN_DESC_BYTES; i++)
        if (d[i] != 0) return MBNN_ERR_RESERVED;
    l->K = mbnn_rd_u32(d);
    l->N = mbnn_rd_u32(d + 4);
    l->in_kind = d[8];
    l->out_kind = d[9];
    l->bits = d[10];
    l->table_bits = d[11];
    l->lr_shift = d[12];
    l->bshift = d[13];
    l->adapt_shift = d[14];
    l->score_frac = d[15];
    l->desc = d;
    l->rounding = d[MBNN_DESC_ROUNDING];
    l->sr_seed = mbnn_rd_u32(d + MBNN_DESC_SR_SEED);
    /* stochastic rounding (4.4): 0 or 1; a nearest layer carries neither seed nor step */
    if (l->rounding > 1) return MBNN_ERR_FIELD;
    if (l->rounding == 0 && (l->sr_seed != 0 || mbnn_rd_u32(d + MBNN_DESC_SR_STEP) != 0)) return MBNN_ERR_FIELD;
    if (l->in_kind != (idx == 0 ? MBNN_PIXELS : MBNN_BITS)) return MBNN_ERR_CHAIN;
    if (l->out_kind != (idx == L - 1 ? MBNN_SCORES : MBNN_SIGN)) return MBNN_ERR_CHAIN;
    if (l->K < 1 || l->K > (idx == 0 ? 16384u : 65536u) || l->N < 1 || l->N > 65536u) return MBNN_ERR_FIELD;
    l->op = version == MBNN_FORMAT_VERSION ? (uint8_t)MBNN_OP_DENSE : d[DESC_OP];
    if (l->op == MBNN_OP_CONV2D) {
        mbnn_status st = parse_conv(m, idx, d);
        if (st != MBNN_OK) return st;
    } else if (l->op != MBNN_OP_DENSE) {
        return MBNN_ERR_FIELD;
    } else {
        for (uint32_t i = DESC_GEOM; i < DESC_GEOM + 10u; i++) /* a dense layer's geometry bytes */
            if (d[i] != 0) return MBNN_ERR_RESERVED;
        if (idx > 0) { /* K = the previous layer's outputs: N, or the whole (pooled) map of a conv (flatten) */
            const mbnn_layer *pr = &m->layers[idx - 1];
            const uint64_t outs = pr->op == MBNN_OP_CONV2D ? (uint64_t)pr->N * pr->map_h * pr->map_w : pr->N;
            if (l->K != outs) return MBNN_ERR_CHAIN;
        }
    }
    if (l->bits < 2 || l->bits > 16) return MBNN_ERR_FIELD;
    if (l->table_bits > (l->bits - 1 < 12 ? l->bits - 1 : 12)) return MBNN_ERR_FIELD;
    if (l->lr_shift > 31 || l->bshift > 31 || l->adapt_shift > 24) return MBNN_ERR_FIELD;
    if (l->out_kind == MBNN_SCORES ? (l->score_frac < 4 || l->score_frac > 40) : l->score_frac != 0)
        return MBNN_ERR_FIELD;
    if (!f32_nonneg(mbnn_rd_u32(d + 16)) || !f32_positive(mbnn_rd_u32(d + 20))) return MBNN_ERR_FIELD;
    l->W = mbnn_words(l->K);

    const uint64_t K = l->K, N = l->N, B = m->n_banks;
    const uint64_t off[4] = {mbnn_rd_u32(d + 24), mbnn_rd_u32(d + 28), mbnn_rd_u32(d + 32), mbnn_rd_u32(d + 36)};
    const uint64_t len[4] = {4u * N * l->W, N * K * (l->bits <= 8 ? 1u : 2u),
                             (2ull << l->table_bits) * (1u + d[DESC_AWAY]), /* F, then G if away */
                             B * N * (l->out_kind == MBNN_SIGN ? MBNN_SIGN_REC : MBNN_SCORE_REC)};
    for (int s = 0; s < 4; s++) {
        mbnn_status st = add_section(sec, nsec, off[s], len[s], data_begin, data_end);
        if (st != MBNN_OK) return st;
    }
    l->signs = (uint32_t *)(void *)(m->image + off[0]);
    l->hidden = m->image + off[1];
    l->table = (const uint16_t *)(const void *)(m->image + off[2]);
    l->away = d[DESC_AWAY] ? l->table + (1u << l->table_bits) : NULL;
    l->norm = m->image + off[3];
    return MBNN_OK;
}

/* Sections sorted by offset must not overlap, and every byte between them must be zero. */
static mbnn_status check_layout(const uint8_t *img, span *s, uint32_t n, uint64_t data_end)
{
    for (uint32_t i = 1; i < n; i++) { /* insertion sort: n <= 66 */
        span v = s[i];
        uint32_t j = i;
        while (j > 0 && s[j - 1].off > v.off) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = v;
    }
    for (uint32_t i = 1; i < n; i++)
        if (s[i].off < s[i - 1].off + s[i - 1].len) return MBNN_ERR_SECTION;
    uint64_t covered = 0;
    for (uint32_t i = 0; i < n; i++) {
        for (uint64_t p = covered; p < s[i].off; p++)
            if (img[p] != 0) return MBNN_ERR_GAP;
        covered = s[i].off + s[i].len;
    }
    for (uint64_t p = covered; p < data_end; p++)
        if (img[p] != 0) return MBNN_ERR_GAP;
    return MBNN_OK;
}

static mbnn_status load(mbnn_model *m, uint8_t *img, size_t size, int writable)
{
    if (m == NULL || img == NULL) return MBNN_ERR_NULL;
    memset(m, 0, sizeof *m);
    if (!is_little_endian()) return MBNN_ERR_ENDIAN;
    if (((uintptr_t)img & 3u) != 0) return MBNN_ERR_ALIGN;
    if (size < MBNN_HEADER_BYTES + 4u) return MBNN_ERR_TRUNCATED;
    if (memcmp(img, "MBNN", 4) != 0) return MBNN_ERR_MAGIC;
    const uint32_t version = mbnn_rd_u16(img + 4);
    if (version != MBNN_FORMAT_VERSION && version != MBNN_FORMAT_VERSION_CONV) return MBNN_ERR_VERSION;
    const uint32_t file_size = mbnn_rd_u32(img + 12);
    if ((uint64_t)file_size > (uint64_t)size) return MBNN_ERR_TRUNCATED;
    if ((uint64_t)file_size != (uint64_t)size || file_size > 0x80000000u) return MBNN_ERR_FILE_SIZE;
    if (mbnn_crc32(0, img, size - 4u) != mbnn_rd_u32(img + size - 4u)) return MBNN_ERR_CRC;
    if (mbnn_rd_u16(img + 10) != 0) return MBNN_ERR_RESERVED;
    const uint32_t L = mbnn_rd_u16(img + 6), B = mbnn_rd_u16(img + 8);
    if (L < 2 || L > MBNN_MAX_LAYERS) return MBNN_ERR_LAYER_COUNT;
    if (B < 1 || B > 255) return MBNN_ERR_BANK_COUNT;
    const uint64_t data_begin = MBNN_HEADER_BYTES + (uint64_t)MBNN_DESC_BYTES * L, data_end = size - 4u;
    if (data_begin > data_end) return MBNN_ERR_LAYER_COUNT;

    m->image = img;
    m->size = file_size;
    m->writable = (uint8_t)(writable != 0);
    m->n_layers = (uint16_t)L;
    m->n_banks = B;

    span sec[MAX_SECTIONS];
    uint32_t nsec = 0;
    sec[nsec].off = 0; /* header and descriptors */
    sec[nsec].len = data_begin;
    nsec++;
    const uint64_t exp_off = mbnn_rd_u32(img + 16);
    mbnn_status st = add_section(sec, &nsec, exp_off, 2u * MBNN_EXP_ENTRIES, data_begin, data_end);
    if (st != MBNN_OK) goto fail;
    m->exp_table = (const uint16_t *)(const void *)(img + exp_off);
    st = add_metadata(sec, &nsec, img, mbnn_rd_u32(img + 20), data_begin, data_end);
    if (st != MBNN_OK) goto fail;
    for (uint32_t l = 0; l < L && st == MBNN_OK; l++)
        st = parse_descriptor(m, l, version, sec, &nsec, data_begin, data_end);
    if (st != MBNN_OK) goto fail;
    /* version 2 is for conv models: a dense model is written as version 1 */
    if (version == MBNN_FORMAT_VERSION_CONV && m->layers[0].op != MBNN_OP_CONV2D) { st = MBNN_ERR_VERSION; goto fail; }
    m->n_inputs = m->layers[0].op == MBNN_OP_CONV2D
                      ? (uint32_t)m->layers[0].in_c * m->layers[0].in_h * m->layers[0].in_w
                      : m->layers[0].K;
    st = check_layout(img, sec, nsec, data_end);
    if (st != MBNN_OK) goto fail;
    /* every section is now known to lie inside the buffer, alone: contents can be read */
    if (m->exp_table[0] != MBNN_Q15_ONE) { st = MBNN_ERR_TABLE; goto fail; }
    for (uint32_t u = 0; u < MBNN_EXP_ENTRIES; u++)
        if (m->exp_table[u] > MBNN_Q15_ONE) { st = MBNN_ERR_TABLE; goto fail; }
    for (uint32_t l = 0; l < L && st == MBNN_OK; l++) st = check_layer_contents(&m->layers[l], B);
    if (st != MBNN_OK) goto fail;
    /* sign_version starts at the image's CRC: a workspace's column copy of another image loaded into
     * the same buffer does not match it (mbnn_metaplastic_update moves it on) */
    for (uint32_t l = 0; l < L; l++) m->layers[l].sign_version = mbnn_rd_u32(img + size - 4u);
    return MBNN_OK;
fail:
    memset(m, 0, sizeof *m);
    return st;
}

mbnn_status mbnn_load(mbnn_model *model, const void *image, size_t size)
{
    /* the const is kept by policy: a read-only model is never written (model->writable == 0) */
    return load(model, (uint8_t *)(uintptr_t)image, size, 0);
}

mbnn_status mbnn_load_writable(mbnn_model *model, void *image, size_t size)
{
    return load(model, (uint8_t *)image, size, 1);
}

mbnn_status mbnn_image_seal(mbnn_model *model)
{
    if (model == NULL || model->image == NULL) return MBNN_ERR_NULL;
    if (!model->writable) return MBNN_ERR_READONLY;
    uint32_t crc = mbnn_crc32(0, model->image, model->size - 4u);
    mbnn_wr_u32(model->image + model->size - 4u, crc);
    return MBNN_OK;
}

size_t mbnn_model_struct_size(void) { return sizeof(mbnn_model); }
