"""One dense layer engine (hw/rtl/mbnn_layer.sv) on its own, bit-exact with metabnn.sim, under cocotb + Verilator.

A layer of a 37-29-13-10 two-bank model in isolation: layer 0 (pixels in, sign bits out), layer 1 (bits in,
bits out) and layer 2 (bits in, scores and argmax out), each at several SIMD/PE (HDL parameters swept by the
pytest function below). The expected outputs come from metabnn.sim.forward's record of that layer (its inputs,
and the next layer's inputs = this layer's sign bits); the cocotb test streams the layer inputs with random idle
cycles, stalls out_ready at random, checks that an offered output stays unchanged until taken, and compares
every output beat. Cases: random images and banks, stream-adaptive M (FORMAT.md 3.1), a reset in the middle of
the stream (the stream restarts, exact), thresholds tied with d (d == C: the >=), equal scores (lowest index),
and range corners (all-0 and all-255 images, C at -D-1 and D+1).
"""

from __future__ import annotations

import fcntl
import os
import pickle

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

from metabnn.backends.cache import cache_root  # noqa: E402
from metabnn.sim import forward, random_model  # noqa: E402
from metabnn.sim.model import SCORES  # noqa: E402

TOP = "mbnn_layer"
SHAPE = (37, 29, 13, 10)


# ==================================================================================================== cocotb side
def beats(values: np.ndarray, width: int, simd: int) -> list[int]:
    """A layer input (pixels: width 8; +-1 bits: width 1, bit 1 = +1) as ceil(K/SIMD) beats, padding 0."""
    v = np.asarray(values, dtype=np.int64)
    v = v if width == 8 else (v > 0).astype(np.int64)
    n = -(-len(v) // simd)
    padded = np.zeros(n * simd, np.int64)
    padded[:len(v)] = v
    return [sum(int(e) << (width * i) for i, e in enumerate(padded[b * simd:(b + 1) * simd])) for b in range(n)]


@cocotb.test()
async def stream(dut):
    with open(os.environ["LAYER_CASE"], "rb") as f:
        case = pickle.load(f)
    simd, width, rng = case["simd"], case["width"], np.random.default_rng(case["seed"])
    inputs = [beats(x, width, simd) for x in case["inputs"]]
    want = case["want"]  # per image: list of output beats (SIGN) or (class, score) (SCORES)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for name in ("in_valid", "in_data", "in_bank", "in_adapt", "out_ready", "wr_en", "wr_sel", "wr_addr",
                 "wr_data", "wr_mask"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    # writes before the stream (SPRAM starts empty): (sel, addr, data, mask, idle cycles after it); the stream
    # starts in the cycle after the last one, so a read-modify-write's second cycle meets an offered image
    for sel, addr, data, mask, idle in case.get("writes", []):
        assert sel != 0 or mask_groups_ok(mask, min(simd, 8)), f"sign mask {mask:#x} splits a write group"
        dut.wr_en.value, dut.wr_sel.value, dut.wr_addr.value = 1, sel, addr
        dut.wr_data.value, dut.wr_mask.value = data, mask
        await FallingEdge(dut.clk)
        dut.wr_en.value = 0
        for _ in range(idle):
            await FallingEdge(dut.clk)
    got, img, beat, holding, pending, cycle = [], 0, 0, False, None, 0
    reset_at = case.get("reset_at")
    while len(got) < sum(len(w) for w in want):
        await FallingEdge(dut.clk)
        cycle += 1
        assert cycle < 200_000, "the layer stopped producing output"
        if reset_at is not None and cycle == reset_at:  # abort whatever is in flight, start the stream again
            dut.rst.value, dut.in_valid.value = 1, 0
            await FallingEdge(dut.clk)
            dut.rst.value, reset_at = 0, None
            got, img, beat, holding, pending = [], 0, 0, False, None
            continue
        if holding or (img < len(inputs) and rng.random() >= case["gap_p"]):
            holding = True
            dut.in_valid.value = 1
            dut.in_data.value = inputs[img][beat]
            dut.in_bank.value = int(case["banks"][img])
            dut.in_adapt.value = int(case["adapt"][img])
        else:
            dut.in_valid.value = 0
        ready = rng.random() >= case["stall_p"]
        dut.out_ready.value = int(ready)
        if holding and int(dut.in_ready.value):
            holding, beat = False, beat + 1
            if beat == len(inputs[img]):
                img, beat = img + 1, 0
        if int(dut.out_valid.value):
            now = ((int(dut.out_class.value), dut.out_score.value.to_signed()) if case["scores"]
                   else int(dut.out_data.value))
            assert pending is None or now == pending, f"output changed before it was taken: {pending} -> {now}"
            pending = None if ready else now
            if ready:
                got.append(now)
        else:
            assert pending is None, "out_valid dropped before the output was taken"
    flat = [w for per_image in want for w in per_image]
    bad = [i for i, (g, w) in enumerate(zip(got, flat)) if g != w]
    assert not bad, f"{len(bad)} output beats differ, first {bad[0]}: rtl {got[bad[0]]}, golden {flat[bad[0]]}"


# ==================================================================================================== pytest side
def expected(model, layer: int, images, banks, adapt, simd: int):
    """(layer inputs, output beats per image) from metabnn.sim, image by image (adaptation moves M in order)."""
    m, inputs, want = model.copy(), [], []
    for x, b, a in zip(images, banks, adapt):
        rec: list = []
        s = forward(m, x[None], bank=int(b), adapt=bool(a), record=rec)[0]
        inputs.append(rec[layer][0][0])
        if m.layers[layer].out_kind == SCORES:
            want.append([(int(np.argmax(s)), int(s.max()))])
        else:
            want.append(beats(rec[layer + 1][0][0], 1, simd))
    return inputs, want


def run_layer(hw_tools, tmp_path, model, layer, simd, pe, images, banks=None, adapt=None, hdl=None, **opts):
    """hdl: more HDL parameters (W_SPRAM, WPE_FILE)."""
    from metabnn.export.readmemh import write_readmemh

    lay, n = model.layers[layer], len(images)
    banks = np.zeros(n, int) if banks is None else banks
    adapt = np.zeros(n, int) if adapt is None else adapt
    # The build reads its memories by path when the simulation starts, and the paths are HDL parameters (part of
    # the build key): one folder per layer index in the per-user cache, not this test's tmp_path, so every run of
    # one parameter set shares one Verilator build. A lock spans writing the files and the run that reads them.
    hexdir = cache_root() / "tb" / TOP / f"hex-l{layer}"
    hexdir.mkdir(parents=True, exist_ok=True)
    tmp_path.mkdir(parents=True, exist_ok=True)
    names = {k: str(hexdir / f"l{layer:x}_{k.lower()}.hex") for k in ("W", "M", "C", "F", "G", "B")}
    params = dict(K=lay.K, N=lay.N, SIMD=simd, PE=pe, IN_PIXELS=int(layer == 0),
                  OUT_SCORES=int(lay.out_kind == SCORES), BANKS=model.n_banks, ADAPT_SHIFT=lay.adapt_shift,
                  **{f"{k}_FILE": f'"{v}"' for k, v in names.items()}, **(hdl or {}))
    inputs, want = expected(model, layer, images, banks, adapt, simd)
    case = dict(simd=simd, width=8 if layer == 0 else 1, inputs=inputs, want=want, banks=banks, adapt=adapt,
                scores=lay.out_kind == SCORES, seed=opts.pop("seed", 0), gap_p=opts.pop("gap_p", 0.3),
                stall_p=opts.pop("stall_p", 0.3), **opts)
    with open(tmp_path / "case.pkl", "wb") as f:
        pickle.dump(case, f)
    runner, bdir = hw_tools.build(TOP, params)
    with open(hexdir / "hex.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        write_readmemh(model, hexdir)
        hw_tools.run(runner, bdir, TOP, TOP, env={"LAYER_CASE": tmp_path / "case.pkl"})


def images(n, seed):
    x = np.random.default_rng(seed).integers(0, 256, (n, SHAPE[0])).astype(np.uint8)
    x[0], x[1] = 255, 0  # range corners: |acc| largest for the pixel layer, all-equal bits after it
    return x


# The default suite keeps one case per layer kind (pixels, bits, scores) that between them cover SIMD 1 and 8, PE 3,
# 8 and 16; the rest (each ~25 s of Verilator build and run) are behind --runslow to keep the suite under 15 minutes.
SWEEP = [(0, 8, 3), (1, 1, 8), (2, 4, 16)]
SLOW_SWEEP = [(1, 8, 3), (2, 8, 3), (0, 32, 1)]
LAYER_CASES = [pytest.param(*c, id=f"l{c[0]}-simd{c[1]}-pe{c[2]}") for c in SWEEP] + [
    pytest.param(*c, id=f"l{c[0]}-simd{c[1]}-pe{c[2]}", marks=pytest.mark.slow) for c in SLOW_SWEEP]


@pytest.mark.parametrize("layer,simd,pe", LAYER_CASES)
def test_mbnn_layer(hw_tools, tmp_path, layer, simd, pe):
    """Random stream, banks and adaptation; then a reset mid-stream; then ties and corners: all exact."""
    rng = np.random.default_rng(layer * 10 + simd)
    model = random_model(SHAPE, banks=2, adapt_shift=3, seed=layer + 1)
    x, banks = images(24, layer), rng.integers(0, 2, 24)
    adapt = (rng.random(24) < 0.6).astype(int)
    run_layer(hw_tools, tmp_path / "a", model, layer, simd, pe, x, banks, adapt, seed=1)
    run_layer(hw_tools, tmp_path / "b", model, layer, simd, pe, x[:6], reset_at=int(rng.integers(5, 60)), seed=2)
    # ties: C = the d the first image gives (the >=), equal output rows (the lowest index wins), C at +-(D+1)
    rec: list = []
    forward(model.copy(), x[:1], record=rec)
    lay = model.layers[layer]
    if lay.out_kind == SCORES:
        lay.signs[3], lay.g[0, :], lay.b[0, :], lay.M[0, :] = lay.signs[0], 1000, 0, 0
    else:
        d = rec[layer][1][0]
        lay.C[0, ::2] = d[::2]
        lay.C[0, 1::4], lay.C[0, 3::4] = -lay.D - 1, lay.D + 1
    run_layer(hw_tools, tmp_path / "c", model, layer, simd, pe, x[:8], stall_p=0.5, seed=3)


def test_scores_full_range(hw_tools, tmp_path):
    """The output layer's one shared multiplier (16-bit limbs, sign corrections, int64 wrap): g, M and b over
    their whole int32 / int64 ranges (beyond the file format's limits), including both extremes, so every
    limb product, both sign corrections and the top limb of d are exercised; the build of the default sweep's
    l2-simd4-pe16 is reused."""
    rng = np.random.default_rng(7)
    model = random_model(SHAPE, banks=2, adapt_shift=3, seed=3)
    lay = model.layers[2]
    lay.g = rng.integers(-(1 << 31), 1 << 31, size=lay.g.shape).astype(np.int32)
    lay.g[0, :3] = [-(1 << 31), (1 << 31) - 1, -1]
    lay.M = rng.integers(-(1 << 31), 1 << 31, size=lay.M.shape).astype(np.int32)
    lay.M[0, :2] = [-(1 << 31), (1 << 31) - 1]
    lay.b = rng.integers(-(1 << 63), (1 << 63) - 1, size=lay.b.shape, dtype=np.int64)
    x, banks = images(16, 5), rng.integers(0, 2, 16)
    run_layer(hw_tools, tmp_path, model, 2, 4, 16, x, banks, seed=5)


def mask_groups_ok(mask: int, wg: int) -> bool:
    """The write port's contract (mbnn_layer.sv): a sign mask is the same over each group of WG = min(SIMD, 8)
    bits."""
    return all((mask >> (wg * k)) & ((1 << wg) - 1) in (0, (1 << wg) - 1) for k in range(32 // wg))


def spram_writes(lay, rng, simd) -> list:
    """Every sign word of a layer through the write port, as into an empty SPRAM, each word three times: a
    random word (all 32 bits: one direct write), then the true word under a random mask of write groups
    (min(SIMD, 8) bits, the port's granularity) and under its complement: at SIMD 1 and 2 groups that split
    nibbles, read-modify-writes, each followed by its free cycle."""
    wg = min(simd, 8)
    out = []
    for a, v in enumerate(lay.signs.reshape(-1)):
        pick = int(rng.integers(0, 1 << (32 // wg)))
        m = sum(((1 << wg) - 1) << wg * k for k in range(32 // wg) if pick >> k & 1)
        out += [(0, a, int(rng.integers(0, 1 << 32)), 0xFFFFFFFF, 0), (0, a, int(v), m, 1),
                (0, a, int(v), ~m & 0xFFFFFFFF, 1)]
    return out


SPRAM_SWEEP = [(0, 8, 1), (1, 2, 3), (2, 8, 2)]


@pytest.mark.parametrize("layer,simd,pe", SPRAM_SWEEP, ids=[f"l{l}-simd{s}-pe{p}" for l, s, p in SPRAM_SWEEP])
def test_signs_in_spram(hw_tools, tmp_path, layer, simd, pe):
    """W_SPRAM = 1 (mbnn_sign_spram, the SPRAM model): nothing in the sign memory at start, every word written
    through the port (direct and read-modify-writes), then random images with banks and adaptation: exact.
    The image stream is offered in the cycle after the last read-modify-write, which must wait for it."""
    rng = np.random.default_rng(40 + layer)
    model = random_model(SHAPE, banks=2, adapt_shift=3, seed=layer + 4)
    x, banks = images(12, layer + 4), rng.integers(0, 2, 12)
    adapt = (rng.random(12) < 0.5).astype(int)
    writes = spram_writes(model.layers[layer], rng, simd)
    writes[-1] = writes[-1][:4] + (0,)
    run_layer(hw_tools, tmp_path, model, layer, simd, pe, x, banks, adapt, hdl={"W_SPRAM": 1}, writes=writes,
              seed=6)


def test_wide_sign_file(hw_tools, tmp_path):
    """The wide layout the flow writes for synthesis at PE > 1 (metabnn.fpga.memories, l<l>_wpe.hex) read with
    WPE_FILE gives the same results as the simulation's own rearrangement of l<l>_w.hex: exact."""
    from metabnn.fpga.memories import write_wide

    model = random_model(SHAPE, banks=2, adapt_shift=3, seed=9)
    (tmp_path / "hex").mkdir()
    path = write_wide(model, tmp_path / "hex", 3)[1]
    run_layer(hw_tools, tmp_path, model, 1, 8, 3, images(10, 9), hdl={"WPE_FILE": f'"{path}"'}, seed=7)


# SHALLOW = 1 (the iCE40 build: stage R, N2, the tree's levels and two score stages left out): one case per layer
# kind, with adaptation (the M write one stage earlier) and without (ADAPT_SHIFT 0: no adaptation stages built).
# The default suite keeps the pixel layer's; hw/tb/mbnn_top's test_shallow_pipeline runs all three kinds frozen.
SHALLOW_SWEEP = [pytest.param(*c, id=f"l{c[0]}-simd{c[1]}-pe{c[2]}-a{c[3]}", marks=m) for c, m in [
    ((0, 8, 3, 3), ()), ((1, 4, 2, 0), pytest.mark.slow), ((2, 8, 1, 3), pytest.mark.slow)]]


@pytest.mark.parametrize("layer,simd,pe,adapt_shift", SHALLOW_SWEEP)
def test_shallow_pipeline(hw_tools, tmp_path, layer, simd, pe, adapt_shift):
    """SHALLOW = 1: random stream, banks and adaptation (where the layer adapts), gaps and stalls: exact."""
    rng = np.random.default_rng(60 + layer)
    model = random_model(SHAPE, banks=2, adapt_shift=adapt_shift, seed=layer + 11)
    x, banks = images(16, layer + 11), rng.integers(0, 2, 16)
    adapt = (rng.random(16) < 0.6).astype(int)
    run_layer(hw_tools, tmp_path, model, layer, simd, pe, x, banks, adapt, hdl={"SHALLOW": 1}, seed=8)
