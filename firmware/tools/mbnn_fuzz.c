/* mbnn_fuzz: feed many (mutated) .mbnn images to the loader; for tests under ASan/UBSan.
 *
 *   mbnn_fuzz CASES
 * CASES is a sequence of records [u32 length][length bytes]. Every image is copied into a heap
 * buffer of exactly its length, so a read past its end is an AddressSanitizer error; the buffer
 * is 64-byte aligned (host_alloc), as the demo's and the tools' images are. Prints the
 * status code of mbnn_load_writable per image; an accepted image then also runs one inference
 * (bank B-1, adaptation on) and one learning step, so the kernels see whatever the loader let in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_io.h"
#include "metabnn.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: mbnn_fuzz CASES\n");
        return 2;
    }
    size_t size;
    uint8_t *all = host_read_file(argv[1], &size);
    if (all == NULL) return 1;
    size_t pos = 0;
    while (pos + 4u <= size) {
        uint32_t len;
        memcpy(&len, all + pos, 4);
        pos += 4u;
        if (len > size - pos) {
            fprintf(stderr, "mbnn_fuzz: truncated case file\n");
            return 1;
        }
        uint8_t *img = (uint8_t *)host_alloc(len);
        if (img == NULL) return 1;
        memcpy(img, all + pos, len);
        pos += len;
        mbnn_model model;
        mbnn_status st = mbnn_load_writable(&model, img, len);
        printf("%d\n", (int)st);
        if (st == MBNN_OK) {
            size_t ws_size;
            mbnn_status s2 = mbnn_workspace_size(&model, MBNN_MODE_LEARN, &ws_size);
            void *ws = s2 == MBNN_OK ? host_alloc(ws_size) : NULL;
            uint8_t *px = (uint8_t *)calloc(model.n_inputs, 1);
            if (ws && px) {
                for (uint32_t i = 0; i < model.n_inputs; i++) px[i] = (uint8_t)(i * 37u);
                uint32_t label;
                if (mbnn_select_bank(&model, model.n_banks - 1) != MBNN_OK ||
                    mbnn_set_adapt(&model, 1) != MBNN_OK ||
                    mbnn_predict(&model, px, model.n_inputs, ws, ws_size, &label) != MBNN_OK ||
                    mbnn_learn_step(&model, px, model.n_inputs, label, ws, ws_size, NULL) != MBNN_OK) {
                    fprintf(stderr, "mbnn_fuzz: an accepted image failed to run\n");
                    return 1;
                }
            }
            free(ws);
            free(px);
        }
        free(img);
    }
    free(all);
    return 0;
}
