/* Timing harness for benchmarks/firmware_bench.py (host only; the library itself never
 * allocates or reads a clock).
 *
 *   bench infer MODEL.mbnn IMAGES N REPEAT    -> "ns_per_image <x>"      (mbnn_predict, batch 1)
 *   bench learn MODEL.mbnn IMAGES LABELS N    -> "ns_per_step <x>"       (mbnn_learn_step)
 *   bench binary K N REPEAT [OFFSET]          -> "binops_per_s <x>"      (mbnn_dense_bits, K x N layer,
 *                                               its rows OFFSET bytes past a 64-byte boundary, default 0)
 *   bench binary_rows K N REPEAT              -> "binops_per_s <x>"      (the plain form: one
 *                                               mbnn_xor_popcount per row, what mbnn_dense_bits is held to)
 *   bench binary_model MODEL.mbnn LAYER REPEAT -> "signs_line_offset <o> binops_per_s <x>" (mbnn_dense_bits on
 *                                               layer LAYER of a .mbnn file read as the demo reads it, into a
 *                                               64-byte-aligned buffer; o = its signs' address mod 64)
 *   bench peak REPEAT                         -> "popcount_peak_binops_per_s <x>"
 * The peak is the same 64-bit popcount the kernels use, over an L1-resident 4 KiB pair of
 * vectors with four independent sums: what the core's popcount unit delivers at best. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "host_io.h"
#include "metabnn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static volatile uint64_t sink;

static int infer(int argc, char **argv, int learn)
{
    if (argc < (learn ? 6 : 6)) return 2;
    size_t ms, is, ls = 0;
    uint8_t *img = host_read_file(argv[2], &ms), *x = host_read_file(argv[3], &is);
    uint8_t *y = learn ? host_read_file(argv[4], &ls) : NULL;
    const unsigned long n = strtoul(argv[learn ? 5 : 4], NULL, 10);
    const unsigned long rep = learn ? 1 : strtoul(argv[5], NULL, 10);
    mbnn_model m;
    if (!img || !x || mbnn_load_writable(&m, img, ms) != MBNN_OK) return 1;
    size_t wsz;
    mbnn_workspace_size(&m, learn ? MBNN_MODE_LEARN : MBNN_MODE_INFER, &wsz);
    void *ws = host_alloc(wsz);
    const size_t K = m.n_inputs;
    uint32_t label;
    double best = 1e30;
    for (unsigned long r = 0; r < (learn ? 1ul : rep); r++) {
        double t0 = now();
        for (unsigned long s = 0; s < n; s++) {
            mbnn_status st;
            if (learn) {
                uint32_t lab;
                memcpy(&lab, y + 4 * s, 4);
                st = mbnn_learn_step(&m, x + s * K, K, lab, ws, wsz, NULL);
            } else {
                st = mbnn_predict(&m, x + s * K, K, ws, wsz, &label);
                sink += label;
            }
            if (st != MBNN_OK) {
                fprintf(stderr, "bench: %s\n", mbnn_status_str(st));
                return 1;
            }
        }
        double dt = (now() - t0) / (double)n;
        if (dt < best) best = dt;
    }
    printf("%s %.1f\n", learn ? "ns_per_step" : "ns_per_image", best * 1e9);
    return 0;
}

/* The plain per-row layer, timed next to the blocked kernel so the gain is measured, not recalled. */
static void dense_bits_rows(const mbnn_layer *l, const uint32_t *x, int32_t *acc)
{
    for (uint32_t j = 0; j < l->N; j++)
        acc[j] = (int32_t)l->K - 2 * (int32_t)mbnn_xor_popcount(x, l->signs + (size_t)j * l->W, l->W);
}

/* Seconds of the fastest of `rep` passes over the layer (blocked kernel, or the plain form if rows). */
static double time_layer(const mbnn_layer *l, const uint32_t *x, int32_t *acc, unsigned long rep, int rows)
{
    double best = 1e30;
    for (unsigned long r = 0; r < rep; r++) {
        double t0 = now();
        if (rows)
            dense_bits_rows(l, x, acc);
        else
            mbnn_dense_bits(l, x, acc);
        double dt = now() - t0;
        sink += (uint64_t)acc[r % l->N];
        if (dt < best) best = dt;
    }
    return best;
}

static int binary(unsigned long K, unsigned long N, unsigned long rep, int rows, unsigned long offset)
{
    mbnn_layer l;
    memset(&l, 0, sizeof l);
    l.K = (uint32_t)K;
    l.N = (uint32_t)N;
    l.W = (uint32_t)((K + 31) / 32);
    l.in_kind = MBNN_BITS;
    if (offset % 4 != 0 || offset >= 64) return 2;
    /* the rows at a chosen distance from a cache-line boundary: a .mbnn section is only 8-byte
     * aligned, a caller's own buffer may be 64-byte aligned; the kernel's speed differs */
    uint8_t *raw = (uint8_t *)host_alloc(4u * l.W * N + 128u);
    if (!raw) return 1;
    l.signs = (uint32_t *)(void *)(raw + ((64u - ((uintptr_t)raw & 63u)) & 63u) + offset);
    uint32_t *x = (uint32_t *)host_alloc(4u * l.W);
    int32_t *acc = (int32_t *)host_alloc(4u * N);
    if (!l.signs || !x || !acc) return 1;
    uint32_t s = 12345;
    for (size_t i = 0; i < (size_t)l.W * N; i++) l.signs[i] = s = s * 1664525u + 1013904223u;
    for (size_t i = 0; i < l.W; i++) x[i] = s = s * 1664525u + 1013904223u;
    printf("binops_per_s %.4g\n", (double)K * (double)N / time_layer(&l, x, acc, rep, rows));
    return 0;
}

/* The path a user runs: the exported file, read whole into a 64-byte-aligned buffer (host_read_file),
 * loaded by mbnn_load, the layer's rows wherever the file and the buffer put them. */
static int binary_model(const char *path, unsigned long layer, unsigned long rep)
{
    size_t size;
    uint8_t *img = host_read_file(path, &size);
    if (img == NULL) return 1;
    mbnn_model m;
    mbnn_status st = mbnn_load(&m, img, size);
    if (st != MBNN_OK) {
        fprintf(stderr, "bench: %s: %s\n", path, mbnn_status_str(st));
        return 1;
    }
    if (layer >= m.n_layers || m.layers[layer].in_kind != MBNN_BITS) {
        fprintf(stderr, "bench: layer %lu of %s is not a binary layer\n", layer, path);
        return 2;
    }
    const mbnn_layer *l = &m.layers[layer];
    uint32_t *x = (uint32_t *)host_alloc(4u * l->W);
    int32_t *acc = (int32_t *)host_alloc(4u * l->N);
    if (!x || !acc) return 1;
    uint32_t s = 12345;
    for (size_t i = 0; i < l->W; i++) x[i] = s = s * 1664525u + 1013904223u;
    if (l->K % 32u) x[l->W - 1] &= (1u << (l->K % 32u)) - 1u; /* padding bits are 0, as an activation's */
    const double best = time_layer(l, x, acc, rep, 0);
    printf("signs_line_offset %u binops_per_s %.4g\n", (unsigned)((uintptr_t)l->signs & 63u),
           (double)l->K * (double)l->N / best);
    return 0;
}

static int peak(unsigned long rep)
{
    static uint64_t a[512], b[512];
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 512; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17; a[i] = s;
        s ^= s << 13; s ^= s >> 7; s ^= s << 17; b[i] = s;
    }
    double best = 1e30;
    for (unsigned long r = 0; r < rep; r++) {
        double t0 = now();
        uint64_t c0 = 0, c1 = 0, c2 = 0, c3 = 0;
        for (int k = 0; k < 64; k++) {
            for (int i = 0; i < 512; i += 4) {
                c0 += (uint64_t)__builtin_popcountll(a[i] ^ b[i]);
                c1 += (uint64_t)__builtin_popcountll(a[i + 1] ^ b[i + 1]);
                c2 += (uint64_t)__builtin_popcountll(a[i + 2] ^ b[i + 2]);
                c3 += (uint64_t)__builtin_popcountll(a[i + 3] ^ b[i + 3]);
            }
            a[k] += c0; /* keep the loop honest: the next pass reads a changed vector */
        }
        double dt = now() - t0;
        sink += c0 + c1 + c2 + c3;
        if (dt < best) best = dt;
    }
    printf("popcount_peak_binops_per_s %.4g\n", 64.0 * 512.0 * 64.0 / best);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "infer") == 0) return infer(argc, argv, 0);
    if (argc >= 2 && strcmp(argv[1], "learn") == 0) return infer(argc, argv, 1);
    if ((argc == 5 || argc == 6) && (strcmp(argv[1], "binary") == 0 || strcmp(argv[1], "binary_rows") == 0))
        return binary(strtoul(argv[2], NULL, 10), strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                      strcmp(argv[1], "binary_rows") == 0, argc == 6 ? strtoul(argv[5], NULL, 10) : 0ul);
    if (argc == 5 && strcmp(argv[1], "binary_model") == 0)
        return binary_model(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "peak") == 0) return peak(strtoul(argv[2], NULL, 10));
    fprintf(stderr, "usage: bench infer|learn|binary|binary_rows|binary_model|peak ...\n");
    return 2;
}
