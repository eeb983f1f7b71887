"""Threefry-2x32-20 (hw/rtl/mbnn_threefry.sv) against docs/FORMAT.md 4.4 and metabnn.sim.threefry.

cocotb: the spec's three known-answer vectors, then random keys and counters (and the all-zero / all-ones
words), each key held while a stream of counters goes through the pipeline with random `en` gaps (the
update unit's stall); every draw is checked LAT enabled cycles after its counter went in. The unit reads
c1 and the key combinationally in every stage, so they change only between streams, once the pipeline
has drained (as the update unit changes sr_step only between passes). Pipeline depths swept below.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

from metabnn.sim.threefry import KNOWN_ANSWERS as KAT  # noqa: E402  (FORMAT.md 4.4's three vectors)
from metabnn.sim.threefry import threefry2x32_20  # noqa: E402

TOP = "mbnn_threefry"
EDGE = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]


def reference(c0: int, c1: int, k0: int, k1: int) -> tuple[int, int]:
    x0, x1 = threefry2x32_20(np.uint32(c0), np.uint32(c1), np.uint32(k0), np.uint32(k1))
    return int(x0), int(x1)


def test_reference_known_answers():
    """The Python reference this test trusts gives the spec's vectors (no simulator needed)."""
    for (c0, c1), (k0, k1), want in KAT:
        assert reference(c0, c1, k0, k1) == want


async def stream(dut, rng: random.Random, c1: int, k0: int, k1: int, counters: list[int], lat: int) -> int:
    """Feed `counters` under one key with random en gaps, then LAT fillers; check every draw. Returns checks."""
    dut.c1.value, dut.k0.value, dut.k1.value = c1, k0, k1
    fed: list[int] = []
    todo = list(counters) + [rng.getrandbits(32) for _ in range(lat)]  # the fillers drain the real ones
    checked = 0
    while todo:
        en = rng.random() < 0.75
        c0 = todo[0] if en else rng.getrandbits(32)  # a counter offered with en low must be ignored
        dut.en.value, dut.c0.value = int(en), c0
        await FallingEdge(dut.clk)  # the rising edge in between advanced the pipeline when en
        if not en:
            continue
        fed.append(todo.pop(0))
        if len(fed) >= lat:
            want = reference(fed[-lat], c1, k0, k1)
            got = (int(dut.x0.value), int(dut.x1.value))
            assert got == want, (f"ctr ({fed[-lat]:#010x}, {c1:#010x}) key ({k0:#010x}, {k1:#010x}): "
                                 f"rtl ({got[0]:#010x}, {got[1]:#010x}), spec ({want[0]:#010x}, {want[1]:#010x})")
            checked += 1
    return checked


@cocotb.test()
async def known_answers_and_random(dut):
    lat = int(os.environ["TF_LAT"])
    rng = random.Random(lat)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.en.value = 0
    await FallingEdge(dut.clk)
    checked = 0
    for (c0, c1), (k0, k1), want in KAT:
        # the KAT counter first, so it is the first draw out, then its neighbours under the same key
        assert reference(c0, c1, k0, k1) == want
        checked += await stream(dut, rng, c1, k0, k1, [c0] + [(c0 + d) & 0xFFFFFFFF for d in (1, 2, 3)], lat)
    for g in range(40):
        c1, k0, k1 = (rng.choice(EDGE) if rng.random() < 0.25 else rng.getrandbits(32) for _ in range(3))
        if g % 5 == 0:
            k1 = 0  # the update unit's key is (sr_seed, 0)
        counters = [rng.choice(EDGE) if rng.random() < 0.2 else rng.getrandbits(32) for _ in range(30)]
        checked += await stream(dut, rng, c1, k0, k1, counters, lat)
    assert checked >= 40 * 30 + 3 * 4


@pytest.mark.parametrize("stage", [4, 1, 20])
def test_mbnn_threefry(hw_tools, stage):
    runner, bdir = hw_tools.build(TOP, {"STAGE": stage})
    hw_tools.run(runner, bdir, TOP, TOP, env={"TF_LAT": 20 // stage})


def test_mbnn_threefry_lint_clean(hw_tools):
    """`verilator --lint-only -Wall` prints nothing for every pipeline depth; a STAGE not dividing 20 stops it."""
    for stage in (1, 2, 4, 5, 10, 20):
        rc, err = hw_tools.lint(TOP, {"STAGE": stage})
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, err
    rc, err = hw_tools.lint(TOP, {"STAGE": 3})
    assert rc != 0 and "mbnn_threefry: STAGE must divide 20" in err
