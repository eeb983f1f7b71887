/* mbnn_demo: on-device continual learning, one sample at a time.
 *
 *   mbnn_demo MODEL.mbnn DATA.mbds [--every N] [--samples S] [--bank-a A] [--bank-b B] [--adapt]
 *
 * The model was trained on the host on task A. The demo learns task B (task A's images with
 * a fixed pixel permutation) from a stream of single labelled samples with the library's
 * learning step, and every N samples prints the accuracy on the test sets of A and B as CSV:
 *   samples,acc_a,acc_b
 * Accuracy is measured with frozen normalization (bank A for task A, bank B for task B);
 * --adapt turns stream-adaptive normalization on for the learning stream.
 *
 * DATA.mbds (written by benchmarks/firmware_continual_demo.py), little-endian:
 *   "MBDS", u32 K, u32 n_train, u32 n_test, train images n_train x K u8, train labels n_train u8,
 *   test images n_test x K u8, test labels n_test u8, permutation K x u32 (B pixel i = A pixel perm[i]).
 * The library never allocates; this host program reads its files into heap buffers, 64-byte
 * aligned (host_io.h), so the model's sign rows start on cache lines as the file lays them out. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_io.h"
#include "metabnn.h"

typedef struct {
    uint32_t K, n_train, n_test;
    const uint8_t *train_x, *train_y, *test_x, *test_y;
    uint32_t perm[16384];
} dataset;

static int parse_dataset(const uint8_t *buf, size_t size, dataset *d)
{
    if (size < 16 || memcmp(buf, "MBDS", 4) != 0) return -1;
    memcpy(&d->K, buf + 4, 4);
    memcpy(&d->n_train, buf + 8, 4);
    memcpy(&d->n_test, buf + 12, 4);
    if (d->K == 0 || d->K > 16384) return -1;
    const unsigned long long need = 16ull + (unsigned long long)(d->n_train + d->n_test) * (d->K + 1u) + 4ull * d->K;
    if (need != size) return -1;
    const uint8_t *p = buf + 16;
    d->train_x = p; p += (size_t)d->n_train * d->K;
    d->train_y = p; p += d->n_train;
    d->test_x = p; p += (size_t)d->n_test * d->K;
    d->test_y = p; p += d->n_test;
    memcpy(d->perm, p, 4u * d->K);
    for (uint32_t i = 0; i < d->K; i++)
        if (d->perm[i] >= d->K) return -1;
    return 0;
}

static void permute(const dataset *d, const uint8_t *x, uint8_t *out)
{
    for (uint32_t i = 0; i < d->K; i++) out[i] = x[d->perm[i]];
}

/* Accuracy in 1/100 %, frozen normalization on the given bank. */
static mbnn_status accuracy(mbnn_model *m, const dataset *d, int permuted, uint32_t bank, void *ws,
                            size_t ws_size, uint8_t *tmp, uint32_t *acc_bp)
{
    const uint8_t adapt = m->adapt;
    const uint32_t saved_bank = m->bank;
    mbnn_status st = mbnn_set_adapt(m, 0);
    if (st == MBNN_OK) st = mbnn_select_bank(m, bank);
    uint32_t correct = 0;
    for (uint32_t s = 0; s < d->n_test && st == MBNN_OK; s++) {
        const uint8_t *x = d->test_x + (size_t)s * d->K;
        if (permuted) {
            permute(d, x, tmp);
            x = tmp;
        }
        uint32_t label;
        st = mbnn_predict(m, x, d->K, ws, ws_size, &label);
        correct += label == d->test_y[s];
    }
    *acc_bp = d->n_test ? (uint32_t)((10000ull * correct) / d->n_test) : 0;
    if (st == MBNN_OK) st = mbnn_select_bank(m, saved_bank);
    if (st == MBNN_OK) st = mbnn_set_adapt(m, adapt);
    return st;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: mbnn_demo MODEL.mbnn DATA.mbds [--every N] [--samples S] "
                        "[--bank-a A] [--bank-b B] [--adapt]\n");
        return 2;
    }
    unsigned long every = 1000, samples = 0, bank_a = 0, bank_b = 0;
    int adapt = 0;
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--adapt") == 0) adapt = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--every") == 0) every = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--samples") == 0) samples = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--bank-a") == 0) bank_a = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--bank-b") == 0) bank_b = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "mbnn_demo: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (every == 0) {
        fprintf(stderr, "mbnn_demo: --every must be >= 1\n");
        return 2;
    }
    size_t msize, dsize;
    uint8_t *image = host_read_file(argv[1], &msize);
    uint8_t *data = host_read_file(argv[2], &dsize);
    static dataset d;
    if (image == NULL || data == NULL) return 1;
    if (parse_dataset(data, dsize, &d) != 0) {
        fprintf(stderr, "mbnn_demo: %s is not a valid MBDS data file\n", argv[2]);
        return 1;
    }
    mbnn_model m;
    mbnn_status st = mbnn_load_writable(&m, image, msize);
    if (st != MBNN_OK) {
        fprintf(stderr, "mbnn_demo: %s: %s\n", argv[1], mbnn_status_str(st));
        return 1;
    }
    if (m.n_inputs != d.K) {
        fprintf(stderr, "mbnn_demo: model takes %u pixels, data has %u\n", (unsigned)m.n_inputs, (unsigned)d.K);
        return 1;
    }
    if (samples == 0 || samples > d.n_train) samples = d.n_train;
    size_t ws_size;
    st = mbnn_workspace_size(&m, MBNN_MODE_LEARN, &ws_size);
    void *ws = st == MBNN_OK ? host_alloc(ws_size) : NULL;
    uint8_t *tmp = (uint8_t *)malloc(d.K);
    if (ws == NULL || tmp == NULL) return 1;
    if ((st = mbnn_select_bank(&m, (uint32_t)bank_b)) != MBNN_OK || (st = mbnn_set_adapt(&m, adapt)) != MBNN_OK) {
        fprintf(stderr, "mbnn_demo: %s\n", mbnn_status_str(st));
        return 1;
    }
    printf("samples,acc_a,acc_b\n");
    for (unsigned long s = 0; s <= samples; s++) {
        if (s % every == 0 || s == samples) {
            uint32_t a, b;
            if ((st = accuracy(&m, &d, 0, (uint32_t)bank_a, ws, ws_size, tmp, &a)) != MBNN_OK ||
                (st = accuracy(&m, &d, 1, (uint32_t)bank_b, ws, ws_size, tmp, &b)) != MBNN_OK)
                break;
            printf("%lu,%u.%02u,%u.%02u\n", s, (unsigned)(a / 100), (unsigned)(a % 100), (unsigned)(b / 100),
                   (unsigned)(b % 100));
            fflush(stdout);
        }
        if (s == samples) break;
        permute(&d, d.train_x + (size_t)s * d.K, tmp);
        st = mbnn_learn_step(&m, tmp, d.K, d.train_y[s], ws, ws_size, NULL);
        if (st != MBNN_OK) break;
    }
    if (st != MBNN_OK) {
        fprintf(stderr, "mbnn_demo: %s\n", mbnn_status_str(st));
        return 1;
    }
    free(ws);
    free(tmp);
    free(image);
    free(data);
    return 0;
}
