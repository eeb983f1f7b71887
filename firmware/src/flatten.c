/* Flatten (FORMAT.md 3.3): a channel-packed C x H x W map (metabnn.h) into the vector a dense layer reads,
 * in torch's NCHW order: map bit (c, y, x) becomes vector bit c H W + y W + x. Only the bit order changes.
 *
 * Blocks of 32 positions x 32 channels: the 32 map words (one per position) are transposed as a 32 x 32 bit
 * matrix, so word c of the result holds channel c's bits of the 32 positions, which land as one run at bit
 * c H W + q0 of the output: a shift and two ORs per channel and block instead of one per bit. */
#include "mbnn_internal.h"

/* a[c] bit i = (old a[i]) bit c: the recursive block swap of Hacker's Delight 7-3, bit 0 first. */
static void transpose32(uint32_t a[32])
{
    uint32_t m = 0x0000FFFFu;
    for (uint32_t j = 16u; j != 0u; j >>= 1, m ^= m << j) {
        for (uint32_t k = 0; k < 32u; k = (k + j + 1u) & ~j) {
            const uint32_t t = ((a[k] >> j) ^ a[k + j]) & m;
            a[k] ^= t << j;
            a[k + j] ^= t;
        }
    }
}

mbnn_status mbnn_flatten(const uint32_t *map, uint32_t C, uint32_t H, uint32_t W, uint32_t *out)
{
    if (map == NULL || out == NULL) return MBNN_ERR_NULL;
    if (C == 0 || H == 0 || W == 0 || (uint64_t)C * H * W > 0x7FFFFFFFu) return MBNN_ERR_ARG;
    const uint32_t CW = mbnn_words(C), P = H * W, OW = mbnn_words(C * P);
    memset(out, 0, 4u * (size_t)OW);
    uint32_t a[32];
    for (uint32_t q0 = 0; q0 < P; q0 += 32u) {
        const uint32_t nq = P - q0 < 32u ? P - q0 : 32u;
        for (uint32_t cw = 0; cw < CW; cw++) {
            for (uint32_t i = 0; i < 32u; i++) a[i] = i < nq ? map[(size_t)(q0 + i) * CW + cw] : 0u;
            transpose32(a);
            const uint32_t nc = C - 32u * cw < 32u ? C - 32u * cw : 32u;
            for (uint32_t c = 0; c < nc; c++) { /* nq bits of channel 32 cw + c at bit (32 cw + c) P + q0 */
                const uint32_t at = (32u * cw + c) * P + q0, wi = at >> 5, sh = at & 31u, v = a[c];
                out[wi] |= v << sh;
                if (sh != 0u && sh + nq > 32u) out[wi + 1u] |= v >> (32u - sh);
            }
        }
    }
    return MBNN_OK;
}
