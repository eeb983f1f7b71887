"""The whole inference engine (hw/rtl/mbnn_top.sv) bit-exact with metabnn.sim, under cocotb + Verilator.

The cocotb side is the driver next to this file (engine_top_driver.py: random input gaps, out_ready stalls,
reset mid-stream, memory-port writes, latency), shared with metabnn.backends.rtl, which builds it (per-user
cache, reused while the sources of hw/rtl/mbnn_top.f are unchanged) and runs it from these pytest functions.
Every check compares the RTL's class *and* its winning int64 score with the golden model, image by image.
HDL parameters swept: SIMD/PE = 8/3 (every feature), 32/1 and 1/8 (one input word per cycle, one bit per
cycle, PE > N of the last layer) on a 37-29-13-10 two-bank model: padding everywhere (37 pixels, 29 and 13
bits, N not a multiple of PE). Also here: `verilator --lint-only -Wall` over SIMD/PE and model shapes, and
the session's trained MNIST model through the RTL.
"""

from __future__ import annotations

import numpy as np
import pytest

from tbtools import golden_stream

from metabnn.export.readmemh import write_readmemh
from metabnn.sim import forward, random_model
from metabnn.sim.model import SIGN

SHAPE = (37, 29, 13, 10)
SWEEP = [(8, 3), (32, 1), (1, 8)]


def make_model(seed=1):
    return random_model(SHAPE, banks=2, adapt_shift=3, seed=seed)


def check(rtl, model, images, banks=None, adapt=None):
    n = len(images)
    banks = np.zeros(n, int) if banks is None else banks
    adapt = np.zeros(n, int) if adapt is None else adapt
    cls, best = golden_stream(model, images, banks, adapt)
    bad = np.flatnonzero((rtl["classes"] != cls) | (rtl["scores"] != best))
    assert bad.size == 0, (f"{bad.size}/{n} images differ, first {bad[0]}: rtl class {rtl['classes'][bad[0]]} "
                           f"score {rtl['scores'][bad[0]]}, golden {cls[bad[0]]} {best[bad[0]]}")


def backend(simd, pe):
    """The cocotb backend at these HDL parameters (its build is cached: only the first test of a set builds)."""
    from metabnn.backends.rtl import RTLBackend

    return RTLBackend(simd=simd, pe=pe)


sweep = pytest.mark.parametrize("simd,pe", SWEEP, ids=[f"simd{s}-pe{p}" for s, p in SWEEP])


@pytest.fixture(scope="module")
def main_backend(hw_tools):
    return backend(8, 3)


def images(n, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, SHAPE[0])).astype(np.uint8)


@sweep
def test_random_stream_gaps_backpressure(hw_tools, simd, pe):
    """Random images and banks, random idle input cycles and out_ready stalls, garbage in padding pixels."""
    model, x = make_model(), images(40, 2)
    banks = np.random.default_rng(3).integers(0, 2, len(x))
    rtl = backend(simd, pe).run_case(model, x, banks=banks, gap_p=0.3, stall_p=0.4, pad_garbage=True, seed=4)
    check(rtl, model, x, banks)


@sweep
def test_cycles_match_formula(hw_tools, simd, pe):
    """One image in flight, no gaps: latency = cycles_formula (the sum of rtl.layer_cycles), every image
    (8/3 also has a row shorter than PE: the idle cycles after a group)."""
    from metabnn.backends.rtl import cycles_formula

    model, x = make_model(), images(5, 5)
    rtl = backend(simd, pe).run_case(model, x, serial=True)
    check(rtl, model, x)
    want = cycles_formula(model, simd, pe)
    assert rtl["latency"].tolist() == [want] * len(x)


def test_shallow_pipeline(hw_tools):
    """SHALLOW = 1 (the iCE40 build, hw/rtl/mbnn_layer.sv) on a frozen model (ADAPT_SHIFT 0: no adaptation stages
    built): random gaps, back-pressure and banks exact, and one image in flight takes cycles_formula's cycles,
    the same count as the full pipeline."""
    from metabnn.backends.rtl import DRIVER, TOP, RTLBackend, build_or_reuse, cycles_formula, holding_model, run_cocotb
    from metabnn.backends.sources import file_list

    model, x = random_model(SHAPE, banks=2, seed=50), images(16, 51)
    banks = np.random.default_rng(52).integers(0, 2, len(x))
    runner, bdir = build_or_reuse(TOP, file_list(TOP), {"SIMD": 8, "PE": 3, "SHALLOW": 1},
                                  RTLBackend(8, 3).shape(model), model)
    case = dict(simd=8, images=x, banks=banks, gap_p=0.3, stall_p=0.4, pad_garbage=True, seed=53)
    with holding_model(bdir, model):
        check(run_cocotb(runner, bdir, TOP, DRIVER, "MBNN_TB_CASE", case), model, x, banks)
        rtl = run_cocotb(runner, bdir, TOP, DRIVER, "MBNN_TB_CASE", dict(simd=8, images=x[:4], serial=True))
    check(rtl, model, x[:4])
    assert rtl["latency"].tolist() == [cycles_formula(model, 8, 3)] * 4


def test_adaptive_normalization(main_backend):
    """FORMAT.md 3.1 in RTL: M moves per image when in_adapt is set (per image, random banks),
    then frozen images see the adapted M of every layer."""
    model, x = make_model(seed=7), images(45, 8)
    rng = np.random.default_rng(9)
    banks = rng.integers(0, 2, len(x))
    adapt = np.r_[np.ones(30, int), np.zeros(15, int)]
    adapt[rng.integers(0, 30, 5)] = 0  # a few frozen images inside the adaptive run
    rtl = main_backend.run_case(model, x, banks=banks, adapt=adapt, gap_p=0.2, stall_p=0.2, seed=10)
    check(rtl, model, x, banks, adapt)


def test_reset_mid_stream(main_backend):
    """A reset pulse in the middle of an image (layers busy at different depths) aborts cleanly;
    the images streamed after it are exact."""
    model, x = make_model(), images(8, 11)
    for reset_at in (7, 40, 95):
        rtl = main_backend.run_case(model, x, reset_at=reset_at, gap_p=0.2, seed=reset_at)
        check(rtl, model, x)


def test_memory_write_port(main_backend):
    """Sign words (byte-masked: random bytes of a word), M, C, f, g, b written through the port equal the same
    edit of the model."""
    model, x = make_model(seed=12), images(20, 13)
    edited = model.copy()
    rng = np.random.default_rng(14)
    writes = []
    for l, lay in enumerate(edited.layers):
        for _ in range(6):  # rewrite random bytes of a sign word (the port's granularity)
            j, w = int(rng.integers(lay.N)), int(rng.integers(lay.W))
            valid = (1 << min(32, lay.K - 32 * w)) - 1
            nbytes = -(-min(32, lay.K - 32 * w) // 8)
            pick = int(rng.integers(1, 1 << nbytes))
            mask = sum(0xFF << 8 * k for k in range(4) if pick >> k & 1)
            new = int(rng.integers(0, 1 << 32)) & valid
            lay.signs[j, w] = (int(lay.signs[j, w]) & ~mask | new & mask) & 0xFFFFFFFF
            writes.append((l, 0, j * lay.W + w, new, mask))
        for _ in range(3):
            b, j = int(rng.integers(edited.n_banks)), int(rng.integers(lay.N))
            a = b * lay.N + j
            lay.M[b, j] = int(rng.integers(-256 * lay.R, 256 * lay.R + 1))
            writes.append((l, 1, a, int(lay.M[b, j]), 0))
            if lay.out_kind == SIGN:
                lay.C[b, j] = int(rng.integers(-lay.D - 1, lay.D + 2))
                lay.flip[b, j] ^= 1
                writes += [(l, 2, a, int(lay.C[b, j]), 0), (l, 3, a, int(lay.flip[b, j]), 0)]
            else:
                lay.g[b, j] = int(rng.integers(-32767, 32768))
                lay.b[b, j] = int(rng.integers(-(1 << 47), 1 << 47))
                v = int(lay.b[b, j]) & (2**64 - 1)
                writes += [(l, 4, a, int(lay.g[b, j]), 0), (l, 5, a, v & 0xFFFFFFFF, 0), (l, 6, a, v >> 32, 0)]
    banks = rng.integers(0, 2, len(x))
    rtl = main_backend.run_case(model, x, banks=banks, writes=writes)
    check(rtl, edited, x, banks)


def corner_models():
    """Extremes of the integer ranges: thresholds at -D-1 / D+1 with both flips (constant outputs, so
    the next layer sees all-match / all-mismatch), all +1 / all -1 weights, M at +-256R, |g| and |b| max."""
    out = []
    for case in range(4):
        m = make_model(seed=20 + case)
        l0, l1, l2 = m.layers
        allpos = case % 2 == 0
        # layer 0: constant outputs; case 0/2 all +1, case 1/3 all -1
        l0.C[:] = -l0.D - 1 if case < 2 else l0.D + 1
        l0.flip[:] = 0 if (case < 2) == allpos else 1
        # layer 1: all weights +1 -> all match (acc = K) or all mismatch (acc = -K)
        l1.signs[:] = 0
        l1.signs[:, :] = np.uint32(0xFFFFFFFF)
        l1.signs[:, -1] &= np.uint32((1 << (l1.K - 32 * (l1.W - 1))) - 1) if l1.K % 32 else np.uint32(0xFFFFFFFF)
        l1.M[:] = 256 * l1.R if case % 2 else -256 * l1.R
        l1.C[:] = np.where(np.arange(l1.N) % 2, l1.D + 1, -l1.D - 1)
        # layer 0 weights all +1 or all -1: |acc| = 255 K on white images
        l0.signs[:] = 0
        if allpos:
            l0.signs[:, :] = np.uint32(0xFFFFFFFF)
            l0.signs[:, -1] &= np.uint32((1 << (l0.K % 32)) - 1)
        l0.M[:] = 256 * l0.R * (1 if case == 3 else -1)
        l2.g[:] = np.where(np.arange(l2.N) % 3, 32767, -32767)
        l2.b[:] = np.where(np.arange(l2.N) % 2, (1 << 47), -(1 << 47))
        l2.M[:] = 256 * l2.R * (1 if case < 2 else -1)
        out.append(m)
    return out


def test_corner_cases(main_backend):
    x = np.concatenate([np.full((2, SHAPE[0]), 255, np.uint8), np.zeros((2, SHAPE[0]), np.uint8), images(4, 30)])
    for m in corner_models():
        banks = np.arange(len(x)) % 2
        rtl = main_backend.run_case(m, x, banks=banks, stall_p=0.3, seed=31)
        check(rtl, m, x, banks)


def test_threshold_ties(main_backend):
    """d == C exactly (the >= of FORMAT.md section 3) and equal scores (the lowest index wins):
    C of half the neurons is set to the d the first images produce, and two classes get equal scores."""
    model, x = make_model(seed=40), images(6, 41)
    record = []
    forward(model.copy(), x[:1], bank=0, record=record)
    for lay, (_, d) in zip(model.layers[:-1], record):
        half = np.arange(lay.N) % 2 == 0
        lay.C[0, half] = d[0, half]
    out = model.layers[-1]
    out.g[0, :] = 1000
    out.b[0, :] = 0
    out.M[0, :] = 0  # equal rows give equal scores: copy neuron 0's weights to neuron 3
    out.signs[3] = out.signs[0]
    rtl = main_backend.run_case(model, x, banks=np.zeros(len(x), int))
    check(rtl, model, x)


# ------------------------------------------------------------------ lint (the generate branches differ by setting)
@pytest.mark.parametrize("sizes,banks,adapt", [((37, 29, 13, 10), 2, 3), ((64, 32, 32, 10), 1, 0),
                                               ((20, 5, 3), 3, 1)])
@pytest.mark.parametrize("simd,pe", [(32, 1), (8, 3), (1, 8), (16, 16)])
def test_lint_clean(hw_tools, tmp_path, sizes, banks, adapt, simd, pe):
    """`verilator --lint-only -Wall` is clean on mbnn_top (chain, layer engines, dot units), with the full and
    the SHALLOW pipeline."""
    write_readmemh(random_model(sizes, banks=banks, adapt_shift=adapt), tmp_path)
    for shallow in (0, 1):
        rc, err = hw_tools.lint("mbnn_top", {"SIMD": simd, "PE": pe, "SHALLOW": shallow}, includes=[tmp_path])
        assert rc == 0 and "%Warning" not in err, err


# ------------------------------------------------------------------ the session's trained MNIST model
def run_mnist(model, mnist, n):
    """n MNIST test images through the RTL, bit-exact with metabnn.sim, and a real classifier (> 80 %)."""
    x, y = mnist.test_x[:n].numpy().astype(np.uint8), mnist.test_y[:n].numpy()
    rtl = backend(32, 8).run_case(model, x, banks=np.zeros(len(x), int))
    s = forward(model.copy(), x)
    bad = np.flatnonzero((rtl["classes"] != s.argmax(1)) | (rtl["scores"] != s.max(1)))
    assert bad.size == 0, f"{bad.size}/{len(x)} images differ from metabnn.sim, first {bad[0]}"
    assert (rtl["classes"] == y).mean() > 0.8


# The trained model's own cocotb build (~2 min cold): --runslow. The default suite runs the same RTL on this model
# over all 10,000 test images through the native harness (tests/test_cli_export_verify.py).
@pytest.mark.slow
def test_trained_model_100_images(hw_tools, trained_model, mnist):
    run_mnist(trained_model, mnist, 100)


@pytest.mark.slow
def test_trained_model_all_test_images(hw_tools, trained_model, mnist):
    run_mnist(trained_model, mnist, 10_000)
