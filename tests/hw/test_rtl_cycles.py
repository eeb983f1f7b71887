"""benchmarks/rtl_cycles.py on a conv model (the native harness on hw/rtl/mbnn_conv_top.sv and
mbnn_conv_update_top.sv): the cycles it prints are measured and equal the formulas it prints them next to.

The models are the shapes the suite already builds, so no new Verilator build: learning, the default suite's
small-simd8 case of hw/tb/mbnn_conv_update_top (its build key holds the away table's AWAY mask, so the table too);
inference, behind --runslow, the pad-pool-odd shape of hw/tb/mbnn_conv_top's native test (also --runslow)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

from metabnn.backends.rtl import conv_cycles_formula
from metabnn.backends.rtl_native import conv_update_cycles
from metabnn.export import save
from metabnn.sim import random_conv_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rtl_cycles.py"


def script():
    spec = importlib.util.spec_from_file_location("rtl_cycles", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_conv_learning_step_cycles_equal_the_formula(hw_tools, tmp_path, capsys):
    # hw/tb/mbnn_conv_update_top/test_mbnn_conv_update_top.py, case("small-simd8"): SIMD 8, PE 2, G on the output
    model = random_conv_model((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (12, 10), seed=3, lr_shift=2, bshift=1)
    lay = model.layers[-1]
    lay.away = ((lay.table.astype(np.int64) ** 2 + 16384) >> 15).astype(np.uint16)
    lay.away[-1] = 0
    f = tmp_path / "c.mbnn"
    save(model, f)
    rc = script().main(["--model", str(f), "--settings", "8x2", "--images", "0", "--learn-steps", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    step = re.search(r"([\d,]+) cycles per step = \(([\d,]+) cycles of 2 steps - ([\d,]+) of 1\)", out)
    assert step, out
    upd = conv_update_cycles(model, 8)
    want = conv_cycles_formula(model, 8, 2) + 12 + 10 + upd + 2  # forward + delta writes + update + 2
    assert number(step[1]) == want == number(step[2]) - number(step[3])
    assert f"+ 22 delta writes + update {upd:,} (conv_update_cycles) + 2 = {want:,}: equal" in out
    assert f"update cycles per step: {upd:,} (conv_update_cycles {upd:,}: equal)" in out
    assert "inference" not in out  # --images 0


@pytest.mark.slow
def test_conv_cycles_per_image_equal_the_formula(hw_tools, tmp_path, capsys):
    # hw/tb/mbnn_conv_top/test_mbnn_conv_top.py's "pad-pool-odd" shape at SIMD 8, PE 2 (its native test's build)
    model = random_conv_model((1, 9, 9), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (7, 5), seed=7)
    f = tmp_path / "c.mbnn"
    save(model, f)
    rc = script().main(["--model", str(f), "--settings", "8x2", "--images", "2", "--learn-steps", "0"])
    out = capsys.readouterr().out
    assert rc == 0, out
    want = conv_cycles_formula(model, 8, 2)
    assert f"one image in flight: {want:,} cycles per image on 2 images (conv_cycles_formula {want:,}: equal)" in out
    assert "streamed: 2 images" in out and "learning" not in out


@pytest.mark.parametrize("argv, needle", [(["--conv", "--model", "x.mbnn"], "not both"),
                                          (["--conv", "--learn-steps", "1"], "--learn-steps 0 or >= 2"),
                                          (["--conv", "--images", "0", "--learn-steps", "0"], "not both 0")])
def test_conv_bad_options_exit_2(argv, needle, capsys):
    assert script().main(argv) == 2
    assert needle in capsys.readouterr().err
