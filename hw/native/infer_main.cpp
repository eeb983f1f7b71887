// Native co-simulation of hw/rtl/mbnn_top.sv: images from a case file through the engine, results to a file.
//
//   mbnn_infer CASE OUT [--trace-fst PATH]
//
// CASE (written by metabnn/backends/rtl_native.py):
//   u32 magic "MBNI", u32 version, u32 SIMD, u32 PE, u32 layers, u32 K0   (checked against this build)
//   u32 n_writes, then n_writes x (u32 layer, sel, addr, data, mask)      the model, through the memory port
//   u32 n_images, u32 serial, u64 max_cycles
//   n_images x (u8 bank, u8 adapt, K0 x u8 pixels)
// OUT: u32 magic "MBNO", u32 version, u64 n, u64 cycles, then int64 [n] classes, [n] scores, [n] latency.
// The trace build (MBNN_TRACE) appends the layer taps: u64 count, then count x (u32 layer, u32 beat), every beat
// a hidden layer l >= 1 takes in (the SIMD output bits of layer l-1), in order (hw/native/taps.vlt).
//
// The streaming loop is hw/tb/engine_top_driver.py's without gaps or back-pressure (those protocol cases
// stay with cocotb), cycle for cycle: `cycles` counts falling edges from the first streaming cycle,
// `latency` is the cycles from an image's first accepted beat to its result; serial keeps one image in
// flight (pure latency). tests/hw/test_native.py holds the two equal.
#include "Vmbnn_top.h"
#ifdef MBNN_TRACE
#include "Vmbnn_top___024root.h"  // the layer taps (hw/native/taps.vlt)
#endif
#include "harness.h"

using namespace mbnn;

static const uint32_t MAGIC_IN = 0x494e424d;   // "MBNI"
static const uint32_t MAGIC_OUT = 0x4f4e424d;  // "MBNO"
static const uint32_t VERSION = 1;

int main(int argc, char** argv) {
    check_host();
    Args a = parse_args(argc, argv, "mbnn_infer CASE OUT [--trace-fst PATH]");
    Reader in(a.in);
    in.expect(MAGIC_IN, VERSION);
    in.expect_eq(in.u32(), MBNN_SIMD, "SIMD");
    in.expect_eq(in.u32(), MBNN_PE, "PE");
    in.expect_eq(in.u32(), MBNN_L, "the number of layers");
    const uint32_t k0 = in.u32();
    if (k0 == 0) fail(EXIT_INPUT, "%s: K0 is 0", a.in);

    Sim<Vmbnn_top> sim(a.trace);
    Vmbnn_top* top = sim.top;
    top->in_valid = 0;
    top->out_ready = 0;
    top->mem_we = 0;
    sim.reset();
    load_memories(in, sim);

    const uint32_t n = in.u32();
    const bool serial = in.u32() != 0;
    const uint64_t limit = in.u64();
    std::vector<uint8_t> banks(n), adapt(n), pixels(size_t(n) * k0);
    for (uint32_t i = 0; i < n; i++) {
        banks[i] = in.u8();
        adapt[i] = in.u8();
        in.bytes(&pixels[size_t(i) * k0], k0);
    }
    in.expect_end();

    const uint32_t nbeats = (k0 + MBNN_SIMD - 1) / MBNN_SIMD;
    std::vector<int64_t> classes, scores, latency;
    std::vector<uint64_t> start(n);
    classes.reserve(n);
    scores.reserve(n);
    latency.reserve(n);
    uint32_t beat_words[(8 * MBNN_SIMD + 31) / 32];
    uint64_t cycle = 0;
    uint32_t img = 0, beat = 0;
    bool holding = false;  // a beat is offered and not yet taken: it stays (the stream rule)
#ifdef MBNN_TRACE
    std::vector<uint32_t> taps;  // (layer, beat) pairs
    uint32_t tap_words[sizeof(top->rootp->mbnn_top__DOT__l_data) / 4 + 2] = {0};
#endif
    while (classes.size() < n) {
        sim.tick();
        cycle++;
#ifdef MBNN_TRACE
        // after the falling edge: the internal streams' valid & ready as the next rising edge will see them
        for (uint32_t l = 1; l < MBNN_L; l++) {
            if ((uint64_t(top->rootp->mbnn_top__DOT__l_take) >> l) & 1) {
                get(top->rootp->mbnn_top__DOT__l_data, tap_words);
                taps.push_back(l);
                taps.push_back(bits_at(tap_words, 8 * MBNN_SIMD * l, MBNN_SIMD));
            }
        }
#endif
        if (cycle > limit)
            fail(EXIT_SIM, "no result after %llu cycles (%zu/%u images done)", (unsigned long long)limit,
                 classes.size(), n);
        const uint32_t in_flight = img - uint32_t(classes.size());
        const bool may_send = img < n && (!serial || in_flight == 0 || beat > 0);
        if (holding || may_send) {
            holding = true;
            image_beat(&pixels[size_t(img) * k0], k0, beat, beat_words);
            top->in_valid = 1;
            put(top->in_data, beat_words);
            top->in_bank = banks[img];
            top->in_adapt = adapt[img];
        } else {
            top->in_valid = 0;
        }
        top->out_ready = 1;
        if (holding && top->in_ready) {
            if (beat == 0) start[img] = cycle;
            holding = false;
            if (++beat == nbeats) {
                img++;
                beat = 0;
            }
        }
        if (top->out_valid) {
            classes.push_back(int64_t(top->out_class));
            scores.push_back(int64_t(top->out_score));
            latency.push_back(int64_t(cycle - start[classes.size() - 1]));
        }
    }

    Writer out(a.out);
    out.u32(MAGIC_OUT);
    out.u32(VERSION);
    out.u64(n);
    out.u64(cycle);
    out.bytes(classes.data(), 8 * size_t(n));
    out.bytes(scores.data(), 8 * size_t(n));
    out.bytes(latency.data(), 8 * size_t(n));
#ifdef MBNN_TRACE
    out.u64(taps.size() / 2);
    out.bytes(taps.data(), 4 * taps.size());
#endif
    out.close();
    return 0;
}
