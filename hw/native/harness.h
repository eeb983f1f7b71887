// Shared pieces of the native (Verilator C++) co-simulation harnesses infer_main.cpp and learn_main.cpp.
//
// The harnesses are built by metabnn/backends/rtl_native.py, which writes `mbnn_native_cfg.h` next to
// these sources with the build's parameters (MBNN_SIMD, MBNN_PE, MBNN_HB, MBNN_TK, MBNN_L, MBNN_SR) and
// MBNN_FOR_LAYERS(X), X(0) X(1) ... one per layer: the per-layer memories are C++ members with the layer
// index in their name, so they are reached by token pasting, not at run time.
//
// Protocol: as the cocotb drivers (hw/tb/engine_top_driver.py, hw/tb/update/tb_onchip.py), inputs change
// after a falling clock edge and are sampled by the next rising edge; every output the harness reads is a
// register, so it is read after the falling edge without another eval.
//
// Input and output files are little-endian binary streams (rtl_native.py writes and reads them); every
// read is checked, so a truncated or foreign file is one line on stderr and exit code 2, never garbage.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "verilated.h"
#ifdef MBNN_TRACE
#include "verilated_fst_c.h"
#endif

#include "mbnn_native_cfg.h"

namespace mbnn {

// exit codes: 2 the input is wrong (the caller's problem), 1 the simulation went wrong (the design's)
enum { EXIT_INPUT = 2, EXIT_SIM = 1 };

[[noreturn]] inline void fail(int code, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::fprintf(stderr, "mbnn-native: ");
    std::vfprintf(stderr, fmt, ap);
    std::fprintf(stderr, "\n");
    va_end(ap);
    std::exit(code);
}

// ------------------------------------------------------------------ binary streams
class Reader {
  public:
    Reader(const char* path) : name_(path) {
        f_ = std::strcmp(path, "-") == 0 ? stdin : std::fopen(path, "rb");
        if (!f_) fail(EXIT_INPUT, "cannot open %s (%s)", path, std::strerror(errno));
    }
    void bytes(void* dst, size_t n) {
        if (n && std::fread(dst, 1, n, f_) != n) fail(EXIT_INPUT, "%s: truncated input", name_.c_str());
    }
    uint32_t u32() { uint8_t b[4]; bytes(b, 4); return b[0] | b[1] << 8 | b[2] << 16 | uint32_t(b[3]) << 24; }
    uint64_t u64() { uint64_t lo = u32(); return lo | uint64_t(u32()) << 32; }
    uint8_t u8() { uint8_t b; bytes(&b, 1); return b; }
    void expect(uint32_t magic, uint32_t version) {
        if (u32() != magic) fail(EXIT_INPUT, "%s: not a metabnn native case file", name_.c_str());
        if (u32() != version) fail(EXIT_INPUT, "%s: case file version differs from this build", name_.c_str());
    }
    void expect_eq(uint32_t got, uint32_t built, const char* what) {
        if (got != built)
            fail(EXIT_INPUT, "%s: %s is %u, this build has %u", name_.c_str(), what, unsigned(got), unsigned(built));
    }
    void expect_end() {
        if (std::fgetc(f_) != EOF) fail(EXIT_INPUT, "%s: trailing bytes after the case", name_.c_str());
    }

  private:
    FILE* f_;
    std::string name_;
};

class Writer {
  public:
    Writer(const char* path) : name_(path) {
        if (std::strcmp(path, "-") == 0) {
            // the data goes to the original stdout; fd 1 becomes stderr, so that whatever Verilator prints
            // (its warnings and fatal errors use stdout) cannot corrupt the stream
            std::fflush(stdout);
            const int fd = dup(1);
            f_ = fd >= 0 && dup2(2, 1) >= 0 ? fdopen(fd, "wb") : nullptr;
            if (f_) std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
        } else {
            f_ = std::fopen(path, "wb");
        }
        if (!f_) fail(EXIT_INPUT, "cannot write %s (%s)", path, std::strerror(errno));
    }
    void bytes(const void* src, size_t n) {
        if (n && std::fwrite(src, 1, n, f_) != n) fail(EXIT_INPUT, "cannot write %s (%s)", name_.c_str(), std::strerror(errno));
    }
    void u32(uint32_t v) { bytes(&v, 4); }  // little-endian hosts only (checked in main)
    void u64(uint64_t v) { bytes(&v, 8); }
    void flush() {
        if (std::fflush(f_) != 0) fail(EXIT_INPUT, "cannot write %s (%s)", name_.c_str(), std::strerror(errno));
    }
    void close() {
        flush();
        if (std::fclose(f_) != 0) fail(EXIT_INPUT, "cannot write %s (%s)", name_.c_str(), std::strerror(errno));
    }

  private:
    FILE* f_;
    std::string name_;
};

inline void check_host() {
    const uint32_t one = 1;
    if (*reinterpret_cast<const uint8_t*>(&one) != 1) fail(EXIT_INPUT, "the native harness needs a little-endian host");
}

// ------------------------------------------------------------------ ports of any width
// A port is CData/SData/IData/QData (up to 64 bits) or VlWide<N>; values travel as 32-bit words.
template <class T> inline void put(T& port, const uint32_t* w) {
    port = sizeof(T) > 4 ? T(w[0] | uint64_t(w[1]) << 32) : T(w[0]);
}
template <std::size_t N> inline void put(VlWide<N>& port, const uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) port[i] = w[i];
}
template <class T> inline void get(const T& v, uint32_t* w) {
    w[0] = uint32_t(v);
    if (sizeof(T) > 4) w[1] = uint32_t(uint64_t(v) >> 32);
}
template <std::size_t N> inline void get(const VlWide<N>& v, uint32_t* w) {
    for (std::size_t i = 0; i < N; i++) w[i] = v[i];
}
template <class T> constexpr std::size_t words_of(const T&) { return sizeof(T) > 4 ? 2 : 1; }
template <std::size_t N> constexpr std::size_t words_of(const VlWide<N>&) { return N; }

// bits [pos, pos+width) of a little-endian word array (width <= 32), zero-extended
inline uint32_t bits_at(const uint32_t* w, unsigned pos, unsigned width) {
    uint64_t two = w[pos / 32];
    if ((pos % 32) + width > 32) two |= uint64_t(w[pos / 32 + 1]) << 32;
    return uint32_t((two >> (pos % 32)) & ((uint64_t(1) << width) - 1));
}
inline void set_bits(uint32_t* w, unsigned pos, unsigned width, uint32_t v) {
    for (unsigned i = 0; i < width; i++)
        if ((v >> i) & 1) w[(pos + i) / 32] |= 1u << ((pos + i) % 32);
}

// ------------------------------------------------------------------ the clock
// One cycle = rising edge then falling edge; time in ps, 10 ns period (as the cocotb Clock).
template <class Top> class Sim {
    VerilatedContext ctx;  // first: the model is constructed with it

  public:
    explicit Sim(const char* trace_path) : top(new Top(&ctx)) {
#ifdef MBNN_TRACE
        if (trace_path) {
            ctx.traceEverOn(true);
            fst_ = new VerilatedFstC;
            top->trace(fst_, 99);
            fst_->open(trace_path);
        }
#else
        if (trace_path) fail(EXIT_INPUT, "--trace-fst needs the trace build of this harness");
#endif
        top->clk = 0;
        top->eval();
        dump();
    }
    ~Sim() {
#ifdef MBNN_TRACE
        if (fst_) fst_->close();
#endif
        top->final();
        delete top;
    }
    void tick() {
        top->clk = 1;
        top->eval();
        time_ += 5000;
        dump();
        top->clk = 0;
        top->eval();
        time_ += 5000;
        dump();
        cycles++;
    }
    void reset(int n = 3) {
        top->rst = 1;
        for (int i = 0; i < n; i++) tick();
        top->rst = 0;
    }
    // writes through the engines' memory port (mbnn_layer.sv: sel 0 sign word with mask, 1 M, 2 C, 3 f,
    // 4 g, 5/6 b low/high), one per cycle: this is how a run's model replaces the build's $readmemh one
    void mem_write(uint32_t layer, uint32_t sel, uint32_t addr, uint32_t data, uint32_t mask) {
        top->mem_we = 1;
        top->mem_layer = layer;
        top->mem_sel = sel;
        top->mem_addr = addr;
        top->mem_wdata = data;
        top->mem_wmask = mask;
        tick();
        top->mem_we = 0;
    }
    Top* top;
    uint64_t cycles = 0;

  private:
    void dump() {
#ifdef MBNN_TRACE
        if (fst_) fst_->dump(time_);
#endif
    }
    uint64_t time_ = 0;
#ifdef MBNN_TRACE
    VerilatedFstC* fst_ = nullptr;
#endif
};

// the memory-port writes of a case file: count, then (layer, sel, addr, data, mask) each
template <class Top> void load_memories(Reader& in, Sim<Top>& sim) {
    const uint32_t n = in.u32();
    for (uint32_t i = 0; i < n; i++) {
        uint32_t layer = in.u32(), sel = in.u32(), addr = in.u32(), data = in.u32(), mask = in.u32();
        if (layer >= MBNN_L || sel > 6) fail(EXIT_INPUT, "memory write %u: layer %u / select %u out of range", i, layer, sel);
        // sign words are written in whole bytes (mbnn_layer.sv's write port, docs/HARDWARE.md)
        for (int k = 0; sel == 0 && k < 4; k++)
            if (((mask >> 8 * k) & 0xFFu) != 0 && ((mask >> 8 * k) & 0xFFu) != 0xFFu)
                fail(EXIT_INPUT, "memory write %u: sign-word mask %08x splits byte %d (whole bytes only)", i, mask, k);
        sim.mem_write(layer, sel, addr, data, mask);
    }
}

// image -> beat `c` of SIMD pixels (pixel i at bits [8i, 8i+8)), padding pixels 0
inline void image_beat(const uint8_t* image, uint32_t k0, uint32_t c, uint32_t* w) {
    constexpr uint32_t WORDS = (8 * MBNN_SIMD + 31) / 32;
    std::memset(w, 0, 4 * WORDS);
    for (uint32_t i = 0; i < MBNN_SIMD && c * MBNN_SIMD + i < k0; i++)
        w[i / 4] |= uint32_t(image[c * MBNN_SIMD + i]) << (8 * (i % 4));
}

// command line: <case> <out> [--trace-fst PATH]
struct Args {
    const char* in = nullptr;
    const char* out = nullptr;
    const char* trace = nullptr;
};
inline Args parse_args(int argc, char** argv, const char* usage) {
    Args a;
    for (int i = 1; i < argc; i++) {
        if (std::strcmp(argv[i], "--trace-fst") == 0 && i + 1 < argc) a.trace = argv[++i];
        else if (!a.in) a.in = argv[i];
        else if (!a.out) a.out = argv[i];
        else fail(EXIT_INPUT, "usage: %s", usage);
    }
    if (!a.in || !a.out) fail(EXIT_INPUT, "usage: %s", usage);
    return a;
}

}  // namespace mbnn
