"""One synapse of the on-chip update (hw/rtl/mbnn_update_lane.sv) against metabnn.sim.metaplastic_update.

The lane is a two-stage pipeline advanced by `en` (no valid/ready, no reset: the unit around it tracks which
stage holds a synapse). cocotb drives a new synapse on every enabled cycle with random `en` gaps (the stall
the unit applies under back-pressure) and checks h_new, changed and flipped two enabled cycles later (five
with PIPE = 1, the lane cut into five stages for the clock); inputs:
the saturation limits of h, every table bucket edge, |delta| up to 32767, pixels 0 and 255, lr_shift 0..31,
table entries 0, 32768 and the rounding half. With SR = 1 every synapse comes with a draw (r0, r1) and the
golden step is FORMAT.md 4.4's (draw corners: r = 0, all ones, the nearest constants, with lr_shift 0 and
31); with SR = 0 the draws are random too and must change nothing. AWAY = 1 builds carry the away table G
(FORMAT.md 4.2.1): every synapse comes with a random G (0, 32768, halves) beside F and the golden step scales the
pushes away from zero by it; AWAY = 0 builds get a random G too, which must change nothing. HDL parameters (b, k,
pixel or bit input, SR, PIPE, AWAY) swept below; the proof of the nearest lane for every input is hw/formal/update_lane.sby
(hw/tb/formal/test_formal.py).
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


def draw(rng: random.Random, lr: int) -> tuple[int, int]:
    """(r0, r1): the corners of 4.4's masks (0, all ones, exactly the nearest constants, the mask itself) or random."""
    r0 = rng.choice([0, 0xFFFFFFFF, (1 << lr) >> 1, (1 << lr) - 1, 1 << lr, rng.getrandbits(32), rng.getrandbits(32)])
    r1 = rng.choice([0, 0xFFFFFFFF, 0x7FFF, 0x8000, 16384, rng.getrandbits(32), rng.getrandbits(32)])
    return r0, r1


def golden(h, x, delta, lr, r0, r1, table, hb, tk, sr, away=None):
    draws = (np.array([[r0]], np.uint32), np.array([[r1]], np.uint32)) if sr else None
    return int(metaplastic_update(np.array([[h]]), np.array([x]), np.array([delta]), lr_shift=lr,
                                  table=np.array(table), bits=hb, table_bits=tk, draws=draws,
                                  away=None if away is None else np.array(away))[0, 0])


def flat(table) -> int:
    return sum(f << (16 * i) for i, f in enumerate(table))


async def drive(dut, synapses, rng: random.Random, hb: int, tk: int, pixels: bool, sr: bool, away: bool) -> int:
    """Issue (h, x, delta, lr, r0, r1, table, G) on enabled cycles with random en gaps; check each output LAT (2, or
    5 with PIPE) enabled cycles later against metabnn.sim (4.4 with the draw when sr, else 4.3: r0/r1 must not
    matter; G only where the build has AWAY)."""
    lat = 2 + 3 * int(os.environ.get("LANE_PIPE", "0"))
    pipe = []  # synapses issued, oldest first: (h, want, label)
    checked = 0
    table_now = None
    for h, x, delta, lr, r0, r1, table, g in synapses:
        if table is not table_now:
            dut.table_flat.value = flat(table)
            dut.away_flat.value = flat(g)
            table_now = table
        while True:
            en = rng.random() < 0.7
            dut.en.value = int(en)
            dut.h.value = h & ((1 << hb) - 1)
            dut.x.value = x if pixels else int(x > 0)
            dut.delta.value = delta & 0xFFFF
            dut.lr_shift.value = lr
            dut.r0.value, dut.r1.value = r0, r1
            await FallingEdge(dut.clk)  # the rising edge in between took them when en
            if en:
                break
        want = golden(h, x, delta, lr, r0, r1, table, hb, tk, sr, g if away else None)
        pipe.append((h, want, (h, x, delta, lr, hex(r0), hex(r1))))
        if len(pipe) == lat:  # the edge that took this one moved the one LAT - 1 before into the output register
            h0, w0, label = pipe.pop(0)
            got = dut.h_new.value.to_signed()
            assert got == w0, f"h, x, delta, lr_shift, r0, r1 = {label}: rtl {got}, golden {w0}"
            assert int(dut.changed.value) == int(w0 != h0), f"changed, {label}"
            assert int(dut.flipped.value) == int((w0 >= 0) != (h0 >= 0)), f"flipped, {label}"
            checked += 1
    return checked


def lane_env():
    return (int(os.environ["LANE_HB"]), int(os.environ["LANE_TK"]), os.environ["LANE_PIXELS"] == "1",
            os.environ.get("LANE_SR", "0") == "1", os.environ.get("LANE_AWAY", "0") == "1")


@cocotb.test()
async def random_synapses_with_en_gaps(dut):
    hb, tk, pixels, sr, away = lane_env()
    rng = random.Random(hb * 100 + tk * 10 + pixels + 1000 * sr + 5000 * away)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    synapses = []
    for n in range(1500):
        if n % 300 == 0:  # a fresh table now and then: arbitrary Q15, with 0, 32768 and rounding halves
            table = [rng.choice([0, 32768, 16384, 8192, rng.randint(0, 32768)]) for _ in range(1 << tk)]
            g = [rng.choice([0, 32768, 16384, 8192, rng.randint(0, 32768)]) for _ in range(1 << tk)]
        h, x, delta, lr = synapse(rng, hb, tk, pixels)
        synapses.append((h, x, delta, lr, *draw(rng, lr), table, g))
    assert await drive(dut, synapses, rng, hb, tk, pixels, sr, away) > 1400


@cocotb.test()
async def draw_corners(dut):
    """Every pairing of the draw corners (r = 0, all ones, the nearest constants) with lr_shift 0, 1, 15, 31,
    the largest |grad| and the f_meta entries 0, 1, 32767 and 32768, on both sides of zero (G: the same entries,
    in the reverse order, so each push away from zero meets another one than the push toward it)."""
    hb, tk, pixels, sr, away = lane_env()
    rng = random.Random(7 + hb)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    hmax = (1 << (hb - 1)) - 1
    synapses = []
    for f, fg in zip((0, 1, 32767, 32768), (32768, 32767, 1, 0)):
        table, g = [f] * (1 << tk), [fg] * (1 << tk)
        for lr in (0, 1, 15, 31):
            for r0 in (0, 0xFFFFFFFF, (1 << lr) >> 1):
                for r1 in (0, 0xFFFFFFFF, 16384):
                    for h, delta in ((hmax, 32767), (-hmax - 1, -32767), (1, 3), (-1, -1), (0, 32767)):
                        x = 255 if pixels else 1
                        synapses.append((h, x, delta, lr, r0, r1, table, g))
    lat = 2 + 3 * int(os.environ.get("LANE_PIPE", "0"))
    assert await drive(dut, synapses, rng, hb, tk, pixels, sr, away) == len(synapses) - (lat - 1)


def _sweep(cases, default):
    """Every case is a build of its own; the ones not in `default` run with --runslow (the formal proofs of
    hw/tb/formal cover the lane for all inputs at b/k = 8/4 and 2/0, nearest and stochastic)."""
    return [c if c in default else pytest.param(*c, marks=pytest.mark.slow) for c in cases]


# the last field: AWAY (the away table G); its default cases are nearest at b = 5 (pixels) and stochastic at b = 4
# (pixels) and 2 (bits), besides the pipelined one below
@pytest.mark.parametrize("hb,tk,pixels,sr,away", _sweep(
    [(8, 4, 0, 0, 0), (8, 4, 1, 0, 0), (16, 12, 1, 0, 0), (2, 0, 0, 0, 0), (5, 1, 1, 0, 1),
     (8, 4, 0, 1, 0), (8, 4, 1, 1, 0), (16, 12, 1, 1, 0), (4, 2, 1, 1, 1), (2, 0, 0, 1, 1), (8, 4, 0, 1, 1),
     (16, 12, 0, 0, 1)],
    default=[(8, 4, 0, 0, 0), (5, 1, 1, 0, 1), (16, 12, 1, 1, 0), (2, 0, 0, 1, 1)]), ids=lambda v: str(v))
def test_mbnn_update_lane(hw_tools, hb, tk, pixels, sr, away):
    """SR = 0 (AWAY = 0) builds without the SR (AWAY) parameter: the default lane, exactly as the formal proof
    sees it."""
    runner, bdir = hw_tools.build(TOP, {"HB": hb, "TK": tk, "PIXELS": pixels, **({"SR": 1} if sr else {}),
                                        **({"AWAY": 1} if away else {})})
    hw_tools.run(runner, bdir, TOP, TOP, env={"LANE_HB": hb, "LANE_TK": tk, "LANE_PIXELS": pixels, "LANE_SR": sr,
                                              "LANE_AWAY": away})


# PIPE = 1 (registers P1, P2, P3: the lane of the FPGA builds, docs/HARDWARE_UPDATE.md) at both input kinds, nearest and
# stochastic, and the widest table
# (8, 4, 1, 1, 1): the board's stochastic pixel lane with the away table (its G chosen before register P1)
@pytest.mark.parametrize("hb,tk,pixels,sr,away", _sweep(
    [(8, 4, 1, 0, 0), (8, 4, 0, 0, 0), (8, 4, 1, 1, 1), (16, 12, 0, 1, 0), (2, 0, 1, 0, 0), (8, 4, 1, 1, 0),
     (4, 2, 0, 0, 1)],
    default=[(8, 4, 1, 1, 1), (16, 12, 0, 1, 0)]), ids=lambda v: str(v))
def test_mbnn_update_lane_pipe(hw_tools, hb, tk, pixels, sr, away):
    runner, bdir = hw_tools.build(TOP, {"HB": hb, "TK": tk, "PIXELS": pixels, "SR": sr, "PIPE": 1,
                                        **({"AWAY": 1} if away else {})})
    hw_tools.run(runner, bdir, TOP, TOP, env={"LANE_HB": hb, "LANE_TK": tk, "LANE_PIXELS": pixels, "LANE_SR": sr,
                                              "LANE_PIPE": 1, "LANE_AWAY": away})


def test_mbnn_update_lane_lint_clean(hw_tools):
    """`verilator --lint-only -Wall` prints nothing, nearest and stochastic, with and without the away table."""
    for params in ({"HB": 8, "TK": 4, "PIXELS": 1}, {"HB": 8, "TK": 4, "PIXELS": 0, "SR": 1},
                   {"HB": 16, "TK": 12, "PIXELS": 1, "SR": 1}, {"HB": 2, "TK": 0, "PIXELS": 0, "SR": 1},
                   {"HB": 8, "TK": 4, "PIXELS": 1, "PIPE": 1}, {"HB": 8, "TK": 4, "PIXELS": 0, "SR": 1, "PIPE": 1},
                   {"HB": 8, "TK": 4, "PIXELS": 1, "AWAY": 1}, {"HB": 2, "TK": 0, "PIXELS": 0, "SR": 1, "PIPE": 1, "AWAY": 1}):
        rc, err = hw_tools.lint(TOP, params)
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, (params, err)
