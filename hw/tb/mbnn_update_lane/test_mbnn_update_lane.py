"""One synapse of the on-chip update (hw/rtl/mbnn_update_lane.sv) against metabnn.sim.metaplastic_update.

The lane is a two-stage pipeline advanced by `en` (no valid/ready, no reset: the unit around it tracks which
stage holds a synapse). cocotb drives a new synapse on every enabled cycle with random `en` gaps (the stall
the unit applies under back-pressure) and checks h_new, changed and flipped two enabled cycles later; inputs:
the saturation limits of h, every table bucket edge, |delta| up to 32767, pixels 0 and 255, lr_shift 0..31,
table entries 0, 32768 and the rounding half. HDL parameters (b, k, pixel or bit input) swept below; the proof
of the same for every input is hw/formal/update_lane.sby (hw/tb/formal/test_formal.py).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

from metabnn.sim import metaplastic_update  # noqa: E402

TOP = "mbnn_update_lane"


def corners(hb: int, tk: int) -> list[int]:
    hmin, hmax = -(1 << (hb - 1)), (1 << (hb - 1)) - 1
    ts = hb - 1 - tk
    vals = {hmin, hmin + 1, -1, 0, 1, hmax - 1, hmax}
    for i in range(1, 1 << tk):  # both sides of every bucket edge
        vals |= {i << ts, (i << ts) - 1, -(i << ts), -(i << ts) + 1}
    return sorted(v for v in vals if hmin <= v <= hmax)


def synapse(rng: random.Random, hb: int, tk: int, pixels: bool):
    h = rng.choice(corners(hb, tk)) if rng.random() < 0.5 else rng.randint(-(1 << (hb - 1)), (1 << (hb - 1)) - 1)
    x = rng.choice([0, 1, 254, 255, rng.randint(0, 255)]) if pixels else rng.choice([-1, 1])
    delta = rng.choice([-32767, 32767, 0, 1, -1, 16384, rng.randint(-300, 300), rng.randint(-32767, 32767)])
    lr = rng.choice([0, 1, 2, 5, 8, 17, 24, 31, rng.randint(0, 31)])
    return h, x, delta, lr


@cocotb.test()
async def random_synapses_with_en_gaps(dut):
    hb, tk, pixels = int(os.environ["LANE_HB"]), int(os.environ["LANE_TK"]), os.environ["LANE_PIXELS"] == "1"
    rng = random.Random(hb * 100 + tk * 10 + pixels)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    pipe = []  # synapses issued, oldest first: (h, want, label)
    checked = 0
    for n in range(1500):
        if n % 300 == 0:  # a fresh table now and then: arbitrary Q15, with 0, 32768 and rounding halves
            table = [rng.choice([0, 32768, 16384, 8192, rng.randint(0, 32768)]) for _ in range(1 << tk)]
            dut.table_flat.value = sum(f << (16 * i) for i, f in enumerate(table))
        h, x, delta, lr = synapse(rng, hb, tk, pixels)
        en = rng.random() < 0.7
        dut.en.value = int(en)
        dut.h.value = h & ((1 << hb) - 1)
        dut.x.value = x if pixels else int(x > 0)
        dut.delta.value = delta & 0xFFFF
        dut.lr_shift.value = lr
        await FallingEdge(dut.clk)  # the rising edge in between took them when en
        if not en:
            continue
        want = int(metaplastic_update(np.array([[h]]), np.array([x]), np.array([delta]), lr_shift=lr,
                                      table=np.array(table), bits=hb, table_bits=tk)[0, 0])
        pipe.append((h, want, (h, x, delta, lr)))
        if len(pipe) == 2:  # the edge that took this one moved the one before into the output register
            h0, w0, label = pipe.pop(0)
            got = dut.h_new.value.to_signed()
            assert got == w0, f"h, x, delta, lr_shift = {label}: rtl {got}, golden {w0}"
            assert int(dut.changed.value) == int(w0 != h0), f"changed, {label}"
            assert int(dut.flipped.value) == int((w0 >= 0) != (h0 >= 0)), f"flipped, {label}"
            checked += 1
    assert checked > 900


@pytest.mark.parametrize("hb,tk,pixels", [(8, 4, 0), (8, 4, 1), (16, 12, 1), (2, 0, 0), (5, 1, 1)],
                         ids=lambda v: str(v))
def test_mbnn_update_lane(hw_tools, hb, tk, pixels):
    runner, bdir = hw_tools.build(TOP, {"HB": hb, "TK": tk, "PIXELS": pixels})
    hw_tools.run(runner, bdir, TOP, TOP, env={"LANE_HB": hb, "LANE_TK": tk, "LANE_PIXELS": pixels})
