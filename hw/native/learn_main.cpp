// Native co-simulation of on-chip learning on hw/rtl/mbnn_update_top.sv: forward in RTL, deltas given by
// the host (the golden model's, computed by metabnn/backends/rtl_native.py), update in RTL, and every
// learning memory dumped after every step.
//
//   mbnn_learn CASE OUT [--trace-fst PATH]        (CASE and OUT may be "-": stdin / stdout)
//
// CASE, read as a stream so the host can compute step s+1 while this runs step s:
//   u32 magic "MBNL", u32 version, u32 SIMD, PE, HB, TK, layers, banks, K0   (checked against this build)
//   per layer: u32 K, u32 N, u32 lr_shift, u32 rounding, u32 sr_seed, u32 sr_step (FORMAT.md 4.4),
//              u32 away (1: the layer has the away table G, FORMAT.md 4.2.1),
//              u16 [2^TK] f_meta table, (away: u16 [2^TK] G,) int16 [N*K] hidden weights
//   u32 n_writes, then n_writes x (u32 layer, sel, addr, data, mask)          the engines' memories
//   u32 steps, u8 bank, u8 adapt
//   per step: u8 [K0] pixels, per layer int16 [N] deltas
// OUT, one record per step, flushed:
//   u32 "STEP", u32 step, int64 class, int64 score (the RTL forward's), u64 update cycles,
//   per layer: u32 n_changed, u32 n_flipped, u32 sr_step, int16 [N*K] hidden, u32 [N*W] sign words, int32 [B*N] M
// then u32 "DONE", u64 total cycles.
//
// Step sequence as hw/tb/update/tb_onchip.py: stream the image (in_adapt moves M), write every layer's
// deltas, pulse upd_start, wait for upd_busy to fall. The memories are read straight from the model
// (Verilator public_flat_rd, hw/native/public.vlt: the engine has no read port for its weights and M).
#include "Vmbnn_update_top.h"  // a conv build: hw/rtl/mbnn_conv_update_top.sv under that name (conv_update_alias.h)
#ifndef MBNN_CONV_LEARN
#include "Vmbnn_update_top___024root.h"
#endif
#include "harness.h"

// The conv learning top (MBNN_CONV_LEARN, hw/native/conv_update_alias.h): the same case and records, but only the
// dense layers MBNN_FIRST .. L-1 have update units, so the per-layer learning state, the deltas and the dumps are
// theirs only (mbnn_native_cfg.h's MBNN_FOR_LAYERS lists them), and the image goes one pixel a beat,
// position-major (the host's order). The conv layers are frozen: only the memory port writes them.
#ifndef MBNN_FIRST
#define MBNN_FIRST 0
#endif

using namespace mbnn;

static const uint32_t MAGIC_IN = 0x4c4e424d;    // "MBNL"
static const uint32_t MAGIC_STEP = 0x50455453;  // "STEP"
static const uint32_t MAGIC_DONE = 0x454e4f44;  // "DONE"
static const uint32_t VERSION = 3;  // 2: the stochastic-rounding state per layer; 3: the away table
#ifndef MBNN_AWAY
#define MBNN_AWAY 0u
#endif

// layer l's update unit sits in the top's u_bank.g_layer[l].g_learn (hw/rtl/mbnn_update_bank.sv), its engine in the
// shared chain's (hw/rtl/mbnn_chain.sv)
#ifndef MBNN_UNIT_MEM
#define MBNN_UNIT_MEM(l, mem) top->rootp->mbnn_update_top__DOT__u_bank__DOT__g_layer__BRA__##l##__KET____DOT__g_learn__DOT__u_update__DOT__##mem
#define MBNN_ENGINE_MEM(l, mem) \
    top->rootp->mbnn_update_top__DOT__u_chain__DOT__g_layer__BRA__##l##__KET____DOT__u_layer__DOT__##mem
#endif

struct Dims {
    uint32_t K, N, G, W, B;
};

// hidden chunk a = j*G + g holds synapses g*SIMD + lane at bits [lane*HB +: HB] (hw/rtl/mbnn_update.sv)
template <class HMem, class WMem, class MMem>
void dump_layer(Writer& out, const Dims& d, const HMem& hmem, const WMem& wmem, const MMem& mmem, int l) {
    const uint32_t groups = (d.N + MBNN_PE - 1) / MBNN_PE;
    if (hmem.size() != size_t(d.N) * d.G || wmem.size() != size_t(groups) * d.W || mmem.size() != size_t(d.B) * d.N)
        fail(EXIT_INPUT, "layer %d: the case's shape differs from this build's memories", l);
    std::vector<int16_t> hidden(size_t(d.N) * d.K);
    uint32_t w[32];
    for (uint32_t j = 0; j < d.N; j++)
        for (uint32_t g = 0; g < d.G; g++) {
            get(hmem[j * d.G + g], w);
            for (uint32_t lane = 0; lane < MBNN_SIMD && g * MBNN_SIMD + lane < d.K; lane++) {
                uint32_t v = bits_at(w, lane * MBNN_HB, MBNN_HB);
                int32_t s = (v >> (MBNN_HB - 1)) ? int32_t(v) - (1 << MBNN_HB) : int32_t(v);
                hidden[size_t(j) * d.K + g * MBNN_SIMD + lane] = int16_t(s);
            }
        }
    out.bytes(hidden.data(), 2 * hidden.size());
    // the engine keeps its sign words as wide words (hw/rtl/mbnn_layer.sv): wmem[g*W + w] holds word w of
    // neurons g*PE + p at bits [32p +: 32]; written out in FORMAT order (j*W + w)
    std::vector<uint32_t> words(size_t(d.N) * d.W), lanes(MBNN_PE + 1);
    for (uint32_t j = 0; j < d.N; j++)
        for (uint32_t i = 0; i < d.W; i++) {
            get(wmem[(j / MBNN_PE) * d.W + i], lanes.data());
            words[size_t(j) * d.W + i] = lanes[j % MBNN_PE];
        }
    out.bytes(words.data(), 4 * words.size());
    std::vector<uint32_t> m(mmem.size());
    for (size_t i = 0; i < mmem.size(); i++) m[i] = mmem[i];
    out.bytes(m.data(), 4 * m.size());
}

int main(int argc, char** argv) {
    check_host();
    Args a = parse_args(argc, argv, "mbnn_learn CASE OUT [--trace-fst PATH]");
    Reader in(a.in);
    Writer out(a.out);  // first: with "-" it moves what Verilator prints away from the data stream
    in.expect(MAGIC_IN, VERSION);
    in.expect_eq(in.u32(), MBNN_SIMD, "SIMD");
    in.expect_eq(in.u32(), MBNN_PE, "PE");
    in.expect_eq(in.u32(), MBNN_HB, "HB (hidden bits)");
    in.expect_eq(in.u32(), MBNN_TK, "TK (table bits)");
    in.expect_eq(in.u32(), MBNN_L, "the number of layers");
    const uint32_t banks = in.u32(), k0 = in.u32();

    Sim<Vmbnn_update_top> sim(a.trace);
    Vmbnn_update_top* top = sim.top;
    top->out_ready = 1;
    sim.reset();
    sim.tick();

    // the learning state through the host ports: hidden chunks, f_meta table (and G), lr_shift
    std::vector<Dims> dims(MBNN_L);
    uint32_t hw[32];
    for (uint32_t l = MBNN_FIRST; l < MBNN_L; l++) {
        Dims& d = dims[l];
        d.K = in.u32();
        d.N = in.u32();
        if (d.K == 0 || d.N == 0 || d.N > 65536) fail(EXIT_INPUT, "layer %u: bad shape %u x %u", l, d.N, d.K);
        d.G = (d.K + MBNN_SIMD - 1) / MBNN_SIMD;
        d.W = (d.K + 31) / 32;
        d.B = banks;
        const uint32_t lr = in.u32();
        const uint32_t rounding = in.u32(), sr_seed = in.u32(), sr_step = in.u32();
        const uint32_t away = in.u32();
        if (rounding > 1) fail(EXIT_INPUT, "layer %u: rounding %u is not 0 or 1", l, rounding);
        if (away > 1) fail(EXIT_INPUT, "layer %u: away %u is not 0 or 1", l, away);
        // a unit without G would ignore the table's writes and learn as if it had none: never silently
        if (away != ((MBNN_AWAY >> l) & 1u))
            fail(EXIT_INPUT, "layer %u %s an away table, this build %s", l, away ? "has" : "has no",
                 away ? "has none there" : "has one there");
        top->upd_sel = l;
        for (uint32_t which = 0; which <= away; which++) {  // F, then G with tbl_away high
            top->tbl_away = which;
            for (uint32_t t = 0; t < (1u << MBNN_TK); t++) {
                uint16_t f;
                in.bytes(&f, 2);
                top->tbl_we = 1;
                top->tbl_addr = t;
                top->tbl_data = f;
                sim.tick();
            }
        }
        top->tbl_we = 0;
        top->tbl_away = 0;
        top->lr_we = 1;
        top->lr_data = lr;
        sim.tick();
        top->lr_we = 0;
        // the unit keeps these only if the build gave this layer the SR hardware (rtl_native.py builds so)
        top->sr_we = 1;
        top->sr_rnd = rounding;
        top->sr_seed = sr_seed;
        top->sr_step = sr_step;
        sim.tick();
        top->sr_we = 0;
        if (rounding && !((MBNN_SR >> l) & 1))
            fail(EXIT_INPUT, "layer %u rounds stochastically, this build has no stochastic rounding there", l);
        if (top->sr_step_q != (((MBNN_SR >> l) & 1) ? sr_step : 0)) fail(EXIT_SIM, "layer %u: sr_step not loaded", l);
        std::vector<int16_t> h(size_t(d.N) * d.K);
        in.bytes(h.data(), 2 * h.size());
        for (uint32_t j = 0; j < d.N; j++)
            for (uint32_t g = 0; g < d.G; g++) {
                std::memset(hw, 0, sizeof hw);
                for (uint32_t lane = 0; lane < MBNN_SIMD && g * MBNN_SIMD + lane < d.K; lane++)
                    set_bits(hw, lane * MBNN_HB, MBNN_HB,
                             uint32_t(h[size_t(j) * d.K + g * MBNN_SIMD + lane]) & ((1u << MBNN_HB) - 1));
                top->h_we = 1;
                top->h_addr = j * d.G + g;
                put(top->h_wdata, hw);
                sim.tick();
            }
        top->h_we = 0;
    }
    if (MBNN_FIRST == 0 && dims[0].K != k0) fail(EXIT_INPUT, "K0 %u differs from layer 0's K %u", k0, dims[0].K);
    load_memories(in, sim);

    const uint32_t steps = in.u32();
    const uint32_t bank = in.u8(), adapt = in.u8();
    top->in_bank = bank;
    top->in_adapt = adapt;
    uint32_t max_nk = 0;
    for (const Dims& d : dims) max_nk = std::max(max_nk, d.N * d.G);
    const uint64_t update_bound = 10 * uint64_t(max_nk) + 100;

#ifdef MBNN_CONV_LEARN
    const uint32_t nbeats = k0;  // one pixel a beat
#else
    const uint32_t nbeats = (k0 + MBNN_SIMD - 1) / MBNN_SIMD;
#endif
    std::vector<uint8_t> pixels(k0);
    std::vector<std::vector<int16_t>> deltas(MBNN_L);
    uint32_t beat_words[(8 * MBNN_SIMD + 31) / 32];
    for (uint32_t s = 0; s < steps; s++) {
        in.bytes(pixels.data(), k0);
        for (uint32_t l = MBNN_FIRST; l < MBNN_L; l++) {
            deltas[l].resize(dims[l].N);
            in.bytes(deltas[l].data(), 2 * size_t(dims[l].N));
        }
        // 1. forward in RTL
        for (uint32_t i = 0; i < nbeats;) {
#ifdef MBNN_CONV_LEARN
            beat_words[0] = pixels[i];
#else
            image_beat(pixels.data(), k0, i, beat_words);
#endif
            top->in_valid = 1;
            put(top->in_data, beat_words);
            if (top->in_ready) i++;
            sim.tick();
        }
        top->in_valid = 0;
        int64_t cls = -1, score = 0;
        for (int t = 0; t < 1000000 && cls < 0; t++) {
            if (top->out_valid) {
                cls = int64_t(top->out_class);
                score = int64_t(top->out_score);
            }
            sim.tick();  // out_ready is 1: a valid result is taken at this edge
        }
        if (cls < 0) fail(EXIT_SIM, "step %u: no output from the engines", s);
        // 2. the host's deltas
        for (uint32_t l = MBNN_FIRST; l < MBNN_L; l++) {
            top->upd_sel = l;
            for (uint32_t j = 0; j < dims[l].N; j++) {
                top->d_we = 1;
                top->d_addr = j;
                top->d_data = uint16_t(deltas[l][j]);
                sim.tick();
            }
            top->d_we = 0;
        }
        // 3. the update, every layer at once
        top->upd_start = 1;
        sim.tick();
        top->upd_start = 0;
        uint64_t cycles = 0;
        do {
            sim.tick();
            if (++cycles > update_bound) fail(EXIT_SIM, "step %u: the update does not finish", s);
        } while (top->upd_busy);
        // 4. the memories
        out.u32(MAGIC_STEP);
        out.u32(s);
        out.u64(uint64_t(cls));
        out.u64(uint64_t(score));
        out.u64(cycles);
#define MBNN_DUMP(l)                                                                                     \
    top->upd_sel = l;                                                                                    \
    top->eval(); /* the counters are a combinational mux on upd_sel */                                  \
    out.u32(top->n_changed);                                                                             \
    out.u32(top->n_flipped);                                                                             \
    out.u32(top->sr_step_q);                                                                             \
    dump_layer(out, dims[l], MBNN_UNIT_MEM(l, hmem), MBNN_ENGINE_MEM(l, wmem), MBNN_ENGINE_MEM(l, mmem), l);
        MBNN_FOR_LAYERS(MBNN_DUMP)
#undef MBNN_DUMP
        out.flush();
    }
    in.expect_end();
    out.u32(MAGIC_DONE);
    out.u64(sim.cycles);
    out.close();
    return 0;
}
