/* Threefry-2x32 with 20 rounds (Salmon et al., SC'11, Random123): the generator of stochastic
 * rounding, docs/FORMAT.md 4.4, mirroring sim/threefry.py. Counter-based: the draw of a synapse
 * is a function of (its index, the layer's step) and the layer's seed only, so the update may
 * visit synapses in any order and skip those whose gradient is 0. u32 arithmetic wraps, as the
 * spec says; the known-answer vectors of FORMAT.md 4.4 are in tests/firmware/test_stochastic.py. */
#include "mbnn_internal.h"

static inline uint32_t rotl32(uint32_t x, uint32_t r) { return (x << r) | (x >> (32u - r)); }

/* Four rounds with rotations R[a..a+3], then the key injection s. */
#define MBNN_TF_ROUND(r) (x0 += x1, x1 = rotl32(x1, (r)), x1 ^= x0)
#define MBNN_TF_FOUR(ra, rb, rc, rd, s)                                                              \
    do {                                                                                             \
        MBNN_TF_ROUND(ra);                                                                           \
        MBNN_TF_ROUND(rb);                                                                           \
        MBNN_TF_ROUND(rc);                                                                           \
        MBNN_TF_ROUND(rd);                                                                           \
        x0 += ks[(s) % 3u];                                                                          \
        x1 += ks[((s) + 1u) % 3u] + (s);                                                             \
    } while (0)

void mbnn_threefry2x32_20(uint32_t c0, uint32_t c1, uint32_t k0, uint32_t k1, uint32_t out[2])
{
    const uint32_t ks[3] = {k0, k1, k0 ^ k1 ^ 0x1BD11BDAu};
    uint32_t x0 = c0 + ks[0], x1 = c1 + ks[1];
    MBNN_TF_FOUR(13u, 15u, 26u, 6u, 1u);  /* rounds 0-3 */
    MBNN_TF_FOUR(17u, 29u, 16u, 24u, 2u); /* rounds 4-7 */
    MBNN_TF_FOUR(13u, 15u, 26u, 6u, 3u);  /* rounds 8-11 */
    MBNN_TF_FOUR(17u, 29u, 16u, 24u, 4u); /* rounds 12-15 */
    MBNN_TF_FOUR(13u, 15u, 26u, 6u, 5u);  /* rounds 16-19 */
    out[0] = x0;
    out[1] = x1;
}
