"""The 2 x 2 bit max-pool (hw/rtl/mbnn_pool.sv) against metabnn.sim's MaxPool2 op, under cocotb + Verilator.

Sign maps of the size under test streamed as a conv layer's output (raster order, ceil(C / SIMD) beats of SIMD bits
per position, padding 0) with random idle cycles while out_ready stalls at random (an offered beat must not change
until taken); the pooled map must equal MaxPool2.execute (the plain reference: the OR of each window's +1 bits, an
odd last row or column dropped) beat for beat, padding bits 0, out_last on each position's last beat and out_end on
the image's last position. Maps: random +-1 at densities 0.5 and 0.1 (most windows then hold one +1 or none), every
single +1 at each of the 4 window places, all -1, all +1, four images back to back; then a reset in the middle of
an image and one more image. Sizes swept below: even and odd rows and columns, channels below, equal to and above
a beat, one bit per beat.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

from metabnn.sim.ops import MaxPool2  # noqa: E402

from mbnn_swg.streams import collect, drive, reset_mid_image  # noqa: E402  (hw/tb is on sys.path: hw/tb/conftest.py)

TOP = "mbnn_pool"


# ==================================================================================================== cocotb side
def map_beats(x: np.ndarray, simd: int) -> list[int]:
    """A +-1 map [C, H, W] as the stream: raster order, per position ceil(C / SIMD) beats, bit 1 = +1, padding 0."""
    c = x.shape[0]
    cb = -(-c // simd)
    out = []
    for y in range(x.shape[1]):
        for xx in range(x.shape[2]):
            v = x[:, y, xx] > 0
            for b in range(cb):
                out.append(sum(int(e) << i for i, e in enumerate(v[b * simd:(b + 1) * simd])))
    return out


def maps(rng: np.random.Generator, c: int, h: int, w: int) -> list[np.ndarray]:
    out = [np.where(rng.random((c, h, w)) < p, 1, -1).astype(np.int8) for p in (0.5, 0.1)]
    for dy in (0, 1):
        for dx in (0, 1):  # one +1 in every window, at place (dy, dx), in every channel
            x = -np.ones((c, h, w), dtype=np.int8)
            x[:, dy::2, dx::2] = 1
            out.append(x)
    out.append(-np.ones((c, h, w), dtype=np.int8))
    out.append(np.ones((c, h, w), dtype=np.int8))
    return out


async def run_maps(dut, rng, g: dict, xs: list[np.ndarray]):
    c, simd = g["C"], g["SIMD"]
    cb = -(-c // simd)
    ph, pw = g["H"] // 2, g["W"] // 2
    per_image = ph * pw * cb
    out: list = []
    feeder = cocotb.start_soon(drive(dut, rng, [b for x in xs for b in map_beats(x, simd)]))
    await collect(dut, rng, per_image * len(xs), out, ("out_data", "out_last", "out_end"), p_ready=0.6)
    await feeder
    for n, x in enumerate(xs):
        want = MaxPool2().execute(x)
        want_beats = map_beats(want, simd)
        got = out[n * per_image:(n + 1) * per_image]
        for i, (data, last, end) in enumerate(got):
            pos, b = divmod(i, cb)
            where = f"image {n}, pooled position {divmod(pos, pw)}, beat {b}"
            assert data == want_beats[i], f"{where}: {data:#x}, want {want_beats[i]:#x}"
            assert last == int(b == cb - 1), f"{where}: out_last {last}"
            assert end == int(pos == ph * pw - 1), f"{where}: out_end {end}"


@cocotb.test()
async def pooled_maps(dut):
    g = json.loads(os.environ["POOL_GEOM"])
    rng = np.random.default_rng(g["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await run_maps(dut, rng, g, maps(rng, g["C"], g["H"], g["W"]))
    # a reset in the middle of an image, then a fresh image
    part = map_beats(maps(rng, g["C"], g["H"], g["W"])[0], g["SIMD"])
    await reset_mid_image(dut, rng, part, 30)
    await run_maps(dut, rng, g, maps(rng, g["C"], g["H"], g["W"])[:1])


# ==================================================================================================== pytest side
# (C, H, W, SIMD)
SIZES = [
    (32, 6, 6, 32),                                     # one beat a position, even map
    (40, 5, 7, 16),                                     # 3 beats (the last 8 channels), odd rows and columns dropped
    pytest.param((3, 4, 5, 1), marks=pytest.mark.slow),  # one bit a beat
    pytest.param((5, 3, 2, 8), marks=pytest.mark.slow),  # C below a beat, one pooled row of one position
]


@pytest.mark.parametrize("size", SIZES)
def test_mbnn_pool(hw_tools, size):
    c, h, w, simd = size
    params = {"C": c, "H": h, "W": w, "SIMD": simd}
    runner, bdir = hw_tools.build(TOP, params)
    hw_tools.run(runner, bdir, TOP, TOP, env={"POOL_GEOM": json.dumps(dict(params, seed=c + h + w + simd))})


def test_mbnn_pool_lint_clean(hw_tools):
    """`verilator --lint-only -Wall` prints nothing at every tested size; a map too small to pool stops it."""
    for size in SIZES:
        c, h, w, simd = size.values[0] if hasattr(size, "values") else size
        rc, err = hw_tools.lint(TOP, {"C": c, "H": h, "W": w, "SIMD": simd})
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, err
    rc, err = hw_tools.lint(TOP, {"H": 1})
    assert rc != 0 and "mbnn_pool: need" in err, err
