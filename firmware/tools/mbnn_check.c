/* mbnn_check: run the library on files, for tests (the sanitizer build runs this).
 *
 *   mbnn_check predict MODEL.mbnn IMAGES N BANK ADAPT OUT
 *       prints one predicted label per line; writes the (sealed) image after the N samples
 *       to OUT (the M state moved if ADAPT=1)
 *   mbnn_check learn MODEL.mbnn IMAGES N BANK ADAPT OUT LABELS
 *       N learning steps; prints "predicted flips" per step; appends the sealed image after
 *       every step to OUT
 * IMAGES: N x K0 uint8; LABELS: N little-endian uint32. Exit status 0, or 1 with a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_io.h"
#include "metabnn.h"

static int fail(const char *what, mbnn_status st)
{
    fprintf(stderr, "mbnn_check: %s: %s\n", what, mbnn_status_str(st));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 8 || (strcmp(argv[1], "predict") != 0 && strcmp(argv[1], "learn") != 0) ||
        (strcmp(argv[1], "learn") == 0 && argc < 9)) {
        fprintf(stderr, "usage: mbnn_check predict|learn MODEL IMAGES N BANK ADAPT OUT [LABELS]\n");
        return 2;
    }
    const int learn = strcmp(argv[1], "learn") == 0;
    size_t msize, isize, lsize = 0;
    uint8_t *image = host_read_file(argv[2], &msize);
    uint8_t *pixels = host_read_file(argv[3], &isize);
    uint8_t *labels = learn ? host_read_file(argv[8], &lsize) : NULL;
    if (!image || !pixels || (learn && !labels)) return 1;
    const unsigned long n = strtoul(argv[4], NULL, 10), bank = strtoul(argv[5], NULL, 10);
    const int adapt = atoi(argv[6]);
    const char *out = argv[7];

    mbnn_model model;
    mbnn_status st = mbnn_load_writable(&model, image, msize);
    if (st != MBNN_OK) return fail("load", st);
    if ((st = mbnn_select_bank(&model, (uint32_t)bank)) != MBNN_OK) return fail("bank", st);
    if ((st = mbnn_set_adapt(&model, adapt)) != MBNN_OK) return fail("adapt", st);
    const size_t K = model.n_inputs;
    if (isize != n * K || (learn && lsize != 4u * n)) {
        fprintf(stderr, "mbnn_check: IMAGES/LABELS sizes do not match N=%lu, K=%zu\n", n, K);
        return 1;
    }
    size_t ws_size;
    if ((st = mbnn_workspace_size(&model, learn ? MBNN_MODE_LEARN : MBNN_MODE_INFER, &ws_size)) != MBNN_OK)
        return fail("workspace", st);
    void *ws = host_alloc(ws_size);
    if (!ws || host_write_file(out, "", 0, 0) != 0) return 1;
    for (unsigned long s = 0; s < n; s++) {
        if (learn) {
            uint32_t label;
            memcpy(&label, labels + 4u * s, 4);
            mbnn_step_info info;
            if ((st = mbnn_learn_step(&model, pixels + s * K, K, label, ws, ws_size, &info)) != MBNN_OK)
                return fail("learn", st);
            if ((st = mbnn_image_seal(&model)) != MBNN_OK) return fail("seal", st);
            printf("%u %u\n", (unsigned)info.predicted, (unsigned)info.flips);
            if (host_write_file(out, image, msize, 1) != 0) return 1;
        } else {
            uint32_t label;
            if ((st = mbnn_predict(&model, pixels + s * K, K, ws, ws_size, &label)) != MBNN_OK)
                return fail("predict", st);
            printf("%u\n", (unsigned)label);
        }
    }
    if (!learn) {
        if ((st = mbnn_image_seal(&model)) != MBNN_OK) return fail("seal", st);
        if (host_write_file(out, image, msize, 0) != 0) return 1;
    }
    free(ws);
    free(image);
    free(pixels);
    free(labels);
    return 0;
}
