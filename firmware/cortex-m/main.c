/* metabnn on a Cortex-M4 board (QEMU -M mps2-an386): inference and on-device learning with an
 * embedded model, results printed over semihosting for tests/firmware/test_cortex_m.py.
 *
 *  1. Inference straight from flash: mbnn_load() on the const model array (read-only, frozen
 *     normalization); per test image the int64 scores, the label and the SysTick ticks.
 *  2. Learning: the image copied into RAM, mbnn_load_writable(), BOARD_LEARN_STEPS steps over
 *     the test images in turn (stream-adaptive normalization on if BOARD_LEARN_ADAPT); per step
 *     the predicted label, the flip count, the ticks and the CRC-32 of the re-sealed image (the
 *     whole learnable state, M included), then the final image in hex.
 *  Measured RAM: the workspace sizes the library asks for and the stack high-water mark of
 *  each phase. Every line is "key value..."; any failure prints "error ..." and exits 1. */
#include <string.h>

#include "board_cases.h" /* generated: BOARD_CASES test images of BOARD_PIXELS pixels, labels */
#include "board_model.h" /* generated: the .mbnn image as board_model_words, BOARD_MODEL_SIZE */
#include "console.h"
#include "cycles.h"
#include "metabnn.h"
#include "stack_usage.h"

#ifndef BOARD_WS_BYTES
#define BOARD_WS_BYTES 16384u /* workspace capacity; the library's size query must fit in it */
#endif
#define MAX_CLASSES 64u
#define CALIB_LOOPS 100000u

static uint64_t workspace[BOARD_WS_BYTES / 8u];
/* The writable copy learning needs (hidden weights, signs and M change), word-aligned. */
static uint32_t learn_image[(BOARD_MODEL_SIZE + 3u) / 4u];
static mbnn_model model;

static int failed(const char *what, mbnn_status st)
{
    out_str("error ");
    out_str(what);
    out_str(" ");
    out_str(mbnn_status_str(st));
    out_nl();
    return 1;
}

/* 2 instructions per iteration (subs, bne): a known instruction count to calibrate ticks. */
static void __attribute__((noinline)) spin(uint32_t n)
{
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
}

static void calibrate(void)
{
    cycles_begin();
    uint32_t empty = cycles_end();
    cycles_begin();
    spin(CALIB_LOOPS);
    uint32_t t = cycles_end();
    out_str("calib insns ");
    out_u32(2u * CALIB_LOOPS);
    out_str(" ticks ");
    out_u32(t);
    out_str(" empty ");
    out_u32(empty);
    out_nl();
}

static int run_inference(void)
{
    mbnn_status st = mbnn_load(&model, board_model_words, BOARD_MODEL_SIZE);
    if (st != MBNN_OK) return failed("load", st);
    const uint32_t L = model.n_layers, classes = model.layers[L - 1u].N;
    if (classes > MAX_CLASSES || model.n_inputs != BOARD_PIXELS) return failed("shape", MBNN_ERR_ARG);
    size_t ws_infer, ws_learn;
    mbnn_workspace_size(&model, MBNN_MODE_INFER, &ws_infer);
    mbnn_workspace_size(&model, MBNN_MODE_LEARN, &ws_learn);
    out_str("model bytes ");
    out_u32(BOARD_MODEL_SIZE);
    out_str(" layers ");
    out_u32(L);
    out_str(" classes ");
    out_u32(classes);
    out_nl();
    out_str("ram struct ");
    out_u32((uint32_t)sizeof(mbnn_model));
    out_str(" ws_infer ");
    out_u32((uint32_t)ws_infer);
    out_str(" ws_learn ");
    out_u32((uint32_t)ws_learn);
    out_str(" stack ");
    out_u32(stack_size());
    out_nl();

    stack_paint();
    int64_t scores[MAX_CLASSES];
    for (uint32_t i = 0; i < BOARD_CASES; i++) {
        cycles_begin();
        st = mbnn_forward(&model, board_images[i], BOARD_PIXELS, workspace, sizeof workspace, scores, classes);
        uint32_t ticks = cycles_end();
        if (st != MBNN_OK) return failed("forward", st);
        uint32_t label;
        mbnn_argmax(scores, classes, &label);
        out_str("infer ");
        out_u32(i);
        out_str(" label ");
        out_u32(label);
        out_str(" ticks ");
        out_u32(ticks);
        out_str(" scores");
        for (uint32_t j = 0; j < classes; j++) {
            out_str(" ");
            out_i64(scores[j]);
        }
        out_nl();
    }
    out_str("stack_infer ");
    out_u32(stack_high_water());
    out_nl();
    return 0;
}

static int run_learning(void)
{
    memcpy(learn_image, board_model_words, BOARD_MODEL_SIZE);
    mbnn_status st = mbnn_load_writable(&model, learn_image, BOARD_MODEL_SIZE);
    if (st != MBNN_OK) return failed("load_writable", st);
    st = mbnn_set_adapt(&model, BOARD_LEARN_ADAPT);
    if (st != MBNN_OK) return failed("set_adapt", st);
    out_str("learn_adapt ");
    out_u32(BOARD_LEARN_ADAPT);
    out_nl();
    stack_paint();
    for (uint32_t k = 0; k + 1u <= BOARD_LEARN_STEPS; k++) { /* not k < S: S may be 0 (a conv model), -Wtype-limits */
        const uint32_t i = k % BOARD_CASES;
        mbnn_step_info info;
        cycles_begin();
        st = mbnn_learn_step(&model, board_images[i], BOARD_PIXELS, board_labels[i], workspace, sizeof workspace,
                             &info);
        uint32_t ticks = cycles_end();
        if (st != MBNN_OK) return failed("learn_step", st);
        mbnn_image_seal(&model);
        uint32_t crc;
        memcpy(&crc, (const uint8_t *)learn_image + BOARD_MODEL_SIZE - 4u, 4u);
        out_str("learn ");
        out_u32(k);
        out_str(" label ");
        out_u32(board_labels[i]);
        out_str(" predicted ");
        out_u32(info.predicted);
        out_str(" flips ");
        out_u32(info.flips);
        out_str(" ticks ");
        out_u32(ticks);
        out_str(" crc ");
        out_hex32(crc);
        out_nl();
    }
    out_str("stack_learn ");
    out_u32(stack_high_water());
    out_nl();
    /* The final learned state, byte for byte: the test decodes it as a .mbnn file. */
    for (uint32_t pos = 0; pos < BOARD_MODEL_SIZE; pos += 128u) {
        const uint32_t n = BOARD_MODEL_SIZE - pos < 128u ? BOARD_MODEL_SIZE - pos : 128u;
        out_str("state ");
        out_hex_bytes((const uint8_t *)learn_image + pos, n);
        out_nl();
    }
    return 0;
}

int main(void)
{
    out_str("board mps2-an386 cortex-m4");
    out_nl();
    calibrate();
    if (run_inference() != 0) return 1;
    if (run_learning() != 0) return 1;
    out_str("done");
    out_nl();
    return 0;
}
