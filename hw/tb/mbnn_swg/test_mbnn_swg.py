"""The sliding-window generator (hw/rtl/mbnn_swg.sv) against metabnn.sim's conv2d op, under cocotb + Verilator.

A random conv layer of the geometry under test (metabnn.sim.random_model.random_conv_model: uint8 pixels into
the first layer; for sign-bit inputs a 1 x 1 conv first makes the C x H x W map, and the layer under test is the
second) and random input maps, three images back to back, streamed with random idle cycles while out_ready stalls
at random (an offered beat must not change until taken). Every vector is checked two ways:
- lane by lane against the op's own tap reader (Conv2dPixels.taps: the value and in-image flag of synapse
  i = (ky k + kx) C + c at that position): data = the value (a sign bit 1 for +1), mask = in-image, both 0 on a
  padding tap and past K; out_last on the last beat of each vector, out_end on the image's last vector;
- end to end: the accumulators the dot engine's definitions give on these beats (mbnn_pixel_dot: +-pixel on the
  mask's lanes; mbnn_xnor_popcount with the mask as its `valid`), thresholded by sim/ops/threshold.py, equal the
  op's plain `execute` reference (output map of +-1 bits) and its `reference_acc`.
Then a reset in the middle of an image, and one more image, which must be exact. Geometries swept below: first
layer 3 x 3 / 5 x 5 on pixels, channel counts below, equal to and above a beat, strides 1 and 2, padding 0..2,
the line buffer at its minimum (k rows) and the whole map.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

from metabnn.sim.ops import Conv2dBits, Conv2dPixels, threshold  # noqa: E402
from metabnn.sim.random_model import random_conv_model  # noqa: E402

from mbnn_swg.streams import collect, drive, reset_mid_image  # noqa: E402  (hw/tb is on sys.path: hw/tb/conftest.py)

TOP = "mbnn_swg"


# ==================================================================================================== cocotb side
def conv_op(g: dict, seed: int):
    """The op of a random conv layer reading a C x H x W map: Conv2dPixels on the image, or Conv2dBits after a
    1 x 1 conv that makes the map (random_conv_model chains the geometry)."""
    n_out = 5
    if g["IN_PIXELS"]:
        m = random_conv_model((g["C"], g["H"], g["W"]), ((n_out, g["KS"], g["S"], g["P"], 0),), (4,), seed=seed)
        return Conv2dPixels(m.layers[0])
    m = random_conv_model((1, g["H"], g["W"]), ((g["C"], 1, 1, 0, 0), (n_out, g["KS"], g["S"], g["P"], 0)), (4,),
                          seed=seed)
    return Conv2dBits(m.layers[1])


def input_beats(x: np.ndarray, g: dict) -> list[int]:
    """A map [C, H, W] as the input stream: raster order, per position ceil(C / SIMD_IN) beats, padding 0."""
    iw, si = (8 if g["IN_PIXELS"] else 1), g["SIMD_IN"]
    c = x.shape[0]
    ib = -(-c // si)
    out = []
    for y in range(x.shape[1]):
        for xx in range(x.shape[2]):
            v = x[:, y, xx].astype(np.int64) if g["IN_PIXELS"] else (x[:, y, xx] > 0).astype(np.int64)
            for b in range(ib):
                out.append(sum(int(e) << (iw * i) for i, e in enumerate(v[b * si:(b + 1) * si])))
    return out


def random_map(rng: np.random.Generator, g: dict) -> np.ndarray:
    shape = (g["C"], g["H"], g["W"])
    if g["IN_PIXELS"]:
        x = rng.integers(0, 256, size=shape)
        x[rng.random(shape) < 0.1] = 255  # the extremes of the pixel range
        x[rng.random(shape) < 0.1] = 0
        return x.astype(np.uint8)
    return np.where(rng.random(shape) < 0.5, 1, -1).astype(np.int8)


def check_vector(op, g: dict, xm: np.ndarray, oy: int, ox: int, got: list[tuple[int, int, int, int]], last_pos: bool):
    """One output vector (its beats as (data, mask, last, end)) against the op at position (oy, ox); returns the
    accumulators the dot engine computes from it."""
    lay = op.layer
    iw, simd, K = (8 if g["IN_PIXELS"] else 1), g["SIMD"], lay.K
    ch = -(-K // simd)
    where = f"position ({oy}, {ox})"
    assert len(got) == ch, f"{where}: {len(got)} beats, want {ch}"
    assert [b[2] for b in got] == [0] * (ch - 1) + [1], f"{where}: out_last {[b[2] for b in got]}"
    assert all(b[3] == int(last_pos) for b in got), f"{where}: out_end {[b[3] for b in got]}, want {int(last_pos)}"
    vals, inside = op.taps(xm, oy, ox)
    data = np.array([(got[i // simd][0] >> (iw * (i % simd))) & ((1 << iw) - 1) for i in range(ch * simd)])
    mask = np.array([(got[i // simd][1] >> (i % simd)) & 1 for i in range(ch * simd)])
    want_data = np.where(inside, vals if g["IN_PIXELS"] else (vals > 0).astype(np.int64), 0)
    bad = np.flatnonzero((data[:K] != want_data) | (mask[:K] != inside))
    assert bad.size == 0, (f"{where}: synapse {bad[0]} (tap {bad[0] // g['C']}, channel {bad[0] % g['C']}): "
                           f"data {data[bad[0]]} mask {mask[bad[0]]}, want {want_data[bad[0]]} {int(inside[bad[0]])}")
    assert not data[K:].any() and not mask[K:].any(), f"{where}: lanes past K = {K} not 0"
    # the dot engine's definitions on these beats, one neuron per row
    w = lay.weights_pm1(np.int64)
    m = mask[:K].astype(bool)
    if g["IN_PIXELS"]:
        acc = (np.where(m, data[:K], 0)[None, :] * w).sum(axis=1)  # mbnn_pixel_dot: +x where w = 1, -x where 0
    else:
        a = data[:K].astype(bool)
        match = (a[None, :] == (w > 0)) & m[None, :]
        acc = 2 * match.sum(axis=1) - m.sum()  # mbnn_xnor_popcount with valid = mask
    assert np.array_equal(acc, op.reference_acc(vals, inside)), f"{where}: acc {acc} != {op.reference_acc(vals, inside)}"
    return acc


async def run_images(dut, rng, op, g, images: list[np.ndarray]):
    lay = op.layer
    geo = op.geom
    ch = -(-lay.K // g["SIMD"])
    per_image = geo.out_h * geo.out_w * ch
    stream = [b for x in images for b in input_beats(x, g)]
    out: list = []
    feeder = cocotb.start_soon(drive(dut, rng, stream))
    await collect(dut, rng, per_image * len(images), out, ("out_data", "out_mask", "out_last", "out_end"))
    await feeder
    for n, x in enumerate(images):
        acc = np.zeros((lay.N, geo.out_h, geo.out_w), dtype=np.int64)
        for p in range(geo.out_h * geo.out_w):
            oy, ox = divmod(p, geo.out_w)
            beats = out[n * per_image + p * ch:n * per_image + (p + 1) * ch]
            acc[:, oy, ox] = check_vector(op, g, x.astype(np.int64), oy, ox, beats, p == geo.out_h * geo.out_w - 1)
        bits = threshold.outputs(lay, threshold.centred(lay, acc[None], 0, False), 0)[0]
        want = op.execute(x.astype(np.int64).reshape(-1))
        assert np.array_equal(bits, want), f"image {n}: {int((bits != want).sum())} output bits differ from execute"


@cocotb.test()
async def windows(dut):
    g = json.loads(os.environ["SWG_GEOM"])
    rng = np.random.default_rng(g["seed"])
    op = conv_op(g, g["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    dut.rst.value = 1
    for _ in range(2):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await run_images(dut, rng, op, g, [random_map(rng, g) for _ in range(3)])
    # a reset in the middle of an image: part of one streamed, some vectors taken, then reset and a fresh image
    part = input_beats(random_map(rng, g), g)
    await reset_mid_image(dut, rng, part, 40)
    await run_images(dut, rng, op, g, [random_map(rng, g)])


# ==================================================================================================== pytest side
# (C, H, W, KS, S, P, IN_PIXELS, SIMD_IN, SIMD, ROWS or None for the default k + s)
GEOMS = [
    (1, 8, 7, 3, 1, 1, 1, 1, 8, None),      # the first layer: 3 x 3 on greyscale pixels, K = 9 in 2 beats
    (40, 5, 6, 3, 1, 1, 0, 32, 32, None),   # bits, 2 input beats per position (the last one 8 channels), K = 360
    (3, 7, 5, 2, 2, 0, 0, 4, 4, 7),         # C below a beat, stride 2, the last row unread, the whole map buffered
    pytest.param((1, 9, 9, 5, 2, 2, 1, 1, 32, 5), marks=pytest.mark.slow),    # 5 x 5, stride 2, buffer of k rows
    pytest.param((32, 4, 4, 1, 1, 0, 0, 16, 32, None), marks=pytest.mark.slow),  # pointwise, 2 beats a position
    pytest.param((2, 3, 3, 3, 1, 2, 0, 1, 5, 3), marks=pytest.mark.slow),    # padding 2: windows mostly off the map
]


def params_of(geom) -> dict:
    c, h, w, ks, s, p, pix, si, simd, rows = geom
    out = {"C": c, "H": h, "W": w, "KS": ks, "S": s, "P": p, "IN_PIXELS": pix, "SIMD_IN": si, "SIMD": simd}
    if rows is not None:
        out["ROWS"] = rows
    return out


@pytest.mark.parametrize("geom", GEOMS)
def test_mbnn_swg(hw_tools, geom):
    params = params_of(geom)
    runner, bdir = hw_tools.build(TOP, params)
    hw_tools.run(runner, bdir, TOP, TOP, env={"SWG_GEOM": json.dumps(dict(params, seed=sum(geom[:9])))})


def test_mbnn_swg_lint_clean(hw_tools):
    """`verilator --lint-only -Wall` prints nothing at every tested geometry; impossible ones stop it."""
    for geom in GEOMS:
        geom = geom.values[0] if hasattr(geom, "values") else geom
        rc, err = hw_tools.lint(TOP, params_of(geom))
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, err
    for bad in ({"P": 3, "KS": 3}, {"ROWS": 2, "KS": 3}, {"H": 1, "KS": 3, "P": 0}):
        rc, err = hw_tools.lint(TOP, bad)
        assert rc != 0 and "mbnn_swg: need" in err, err
