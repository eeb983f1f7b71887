"""The conv inference top (hw/rtl/mbnn_conv_top.sv) bit-exact with metabnn.sim, under cocotb + Verilator.

mbnn_swg -> mbnn_layer (-> mbnn_pool) per conv layer, mbnn_conv_flatten, then the dense layers; the memories are
the engine rows of export/readmemh.py (paired lanes for a padded conv on sign bits, the flattened layer's columns
in stream order). The cocotb side is hw/tb/mbnn_top/engine_top_driver.py (the same driver as the dense top, one
pixel a beat, the images in HWC order), run through metabnn.backends.rtl.RTLBackend, the product's path.
Every check compares the class *and* the winning int64 score with the golden model, image by image:
- random conv models (random_conv_model, thresholds re-centred on the images so every layer's bits vary) of
  several shapes: padding 1 and 2 on sign bits (paired lanes), stride 2, kernels 2/3, 1 and 2 pixel channels,
  odd map sizes (the pool drops a row and a column), pooled and unpooled last convs, one or two dense layers;
  streamed with random input gaps, output back-pressure and a reset in the middle, then one image at a time,
  whose latency must equal metabnn.backends.rtl.conv_cycles_formula exactly;
- the trained Fashion-MNIST conv net (runs/conv/fmnist-conv, when this checkout has it) on a few test images.
`verilator --lint-only -Wall` is clean at each shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tbtools import golden_stream

from metabnn.sim.model import SIGN
from metabnn.sim.ops import ops_of
from metabnn.sim.random_model import random_conv_model

TOP = "mbnn_conv_top"
REPO = Path(__file__).resolve().parents[3]
TRAINED = REPO / "runs" / "conv" / "fmnist-conv" / "model.pt"

# (image C x H x W, convs (out, k, stride, pad, pool), dense sizes, SIMD, PE)
SHAPES = {
    "pad-pool-odd": ((1, 9, 9), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (7, 5), 8, 2),
    "stride2-pad2-2ch": ((2, 11, 10), ((3, 3, 2, 1, 0), (5, 3, 1, 2, 2)), (6,), 4, 3),
    "nopad-k2-simd32": ((1, 12, 12), ((5, 3, 1, 0, 2), (9, 2, 1, 0, 0)), (8, 4), 32, 4),
    "three-convs-simd2": ((1, 14, 13), ((3, 3, 1, 1, 2), (4, 3, 1, 1, 0), (3, 3, 2, 1, 2)), (5,), 2, 1),
}
DEFAULT = ("pad-pool-odd",)  # the others behind --runslow (a fresh build and sim are minutes each)


def centred(model, images):
    """The model with every SIGN layer's M[0] at the median of acc*256 over these images (and positions), C = 0:
    each channel fires on about half of its inputs, so the comparison sees varied bits (random_conv_model's
    thresholds, drawn without data, often fix a layer's outputs)."""
    m = model.copy()
    h = np.asarray(images)
    for op in ops_of(m):
        if not op.weighted:
            h = op.forward(h)
            continue
        lay = op.layer
        if lay.out_kind == SIGN:
            acc = op.acc(h)
            per = np.moveaxis(acc, 1, 0).reshape(lay.N, -1) * 256
            lay.M[0] = np.median(per, axis=1).astype(np.int32)
            lay.C[0] = 0
        h = op.forward(h, 0, False)[0]
    return m


def case(name, seed=0, n=6):
    img, convs, dense, simd, pe = SHAPES[name]
    rng = np.random.default_rng(seed)
    model = random_conv_model(img, convs, dense, seed=seed + 7)
    x = rng.integers(0, 256, size=(n, model.input_size)).astype(np.uint8)
    x[:, rng.random(model.input_size) < 0.1] = 0
    return centred(model, x), x, simd, pe


def check(res, model, images):
    n = len(images)
    cls, best = golden_stream(model, images, np.zeros(n, int), np.zeros(n, int))
    bad = np.flatnonzero((res["classes"] != cls) | (res["scores"] != best))
    assert bad.size == 0, (f"{bad.size}/{n} images differ, first {bad[0]}: rtl class {res['classes'][bad[0]]} "
                           f"score {res['scores'][bad[0]]}, golden {cls[bad[0]]} {best[bad[0]]}")
    assert len(set(best.tolist())) > 1, "the images all give the same score: the case checks nothing"


def params(names):
    return [pytest.param(n, marks=() if n in DEFAULT else pytest.mark.slow) for n in names]


@pytest.mark.parametrize("name", params(SHAPES))
def test_conv_top_bit_exact_and_cycles(hw_tools, name):
    from metabnn.backends.rtl import RTLBackend, conv_cycles_formula

    model, x, simd, pe = case(name)
    be = RTLBackend(simd=simd, pe=pe)
    formula = conv_cycles_formula(model, simd, pe)
    # gaps, back-pressure and a reset in the middle of the first images (the driver restarts the stream)
    res = be.run_case(model, x, gap_p=0.3, stall_p=0.3, reset_at=formula // 2, seed=1)
    check(res, model, x)
    res = be.run_case(model, x[:3], serial=True)
    check(res, model, x[:3])
    assert list(res["latency"]) == [formula] * 3, (list(res["latency"]), formula)


@pytest.mark.parametrize("name", params(SHAPES))
def test_conv_top_lint(hw_tools, tmp_path, name):
    from metabnn.export.readmemh import write_readmemh

    model, _, simd, pe = case(name)
    write_readmemh(model, tmp_path)
    rc, err = hw_tools.lint(TOP, {"SIMD": simd, "PE": pe}, includes=[tmp_path])
    assert rc == 0 and not err.strip(), err


def test_formula_refuses_a_slow_generator():
    """5 x 5 on pixels at SIMD 8: the generator's 25 reads per position outlast the layer's period."""
    from metabnn.backends.rtl import conv_cycles_formula

    model = random_conv_model((1, 12, 12), ((2, 5, 1, 0, 0),), (3,), seed=0)
    with pytest.raises(ValueError, match="does not keep ahead"):
        conv_cycles_formula(model, 32, 1)


@pytest.mark.slow
def test_trained_fmnist_conv_net(hw_tools, tmp_path):
    """The trained 32,p,64,p + 512 net on eight Fashion-MNIST test images (class and score of each)."""
    if not TRAINED.is_file():
        pytest.skip(f"{TRAINED} is not in this checkout (metabnn train --preset fmnist-conv makes it)")
    from metabnn.backends.rtl import RTLBackend, conv_cycles_formula
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet
    from metabnn.train.data import load

    model = from_floatnet(load_floatnet(TRAINED))
    x = load("fmnist").test_x[:8].numpy()
    res = RTLBackend(simd=32, pe=8).run_case(model, x, serial=True)
    check(res, model, x)
    assert list(res["latency"]) == [conv_cycles_formula(model, 32, 8)] * len(x)


@pytest.mark.slow
def test_native_cosimulation(hw_tools):
    """The rtl backend of `metabnn verify` (the native C++ harness, hw/native/conv_top_alias.h): the same classes,
    scores and exact latency, streamed and one image at a time."""
    from metabnn.backends.rtl import conv_cycles_formula
    from metabnn.backends.rtl_native import NativeRTL

    model, x, simd, pe = case("pad-pool-odd", n=12)
    be = NativeRTL(simd, pe)
    check(be.run_case(model, x), model, x)
    res = be.run_case(model, x, serial=True)
    check(res, model, x)
    assert list(res["latency"]) == [conv_cycles_formula(model, simd, pe)] * len(x)
    with pytest.raises(Exception, match="frozen normalization"):
        be.run_case(model, x[:1], adapt=[1])


def test_native_refuses_what_the_conv_top_lacks():
    from metabnn.backends.rtl_native import NativeRTL, NativeRTLLearner
    from metabnn.errors import UsageError

    model = random_conv_model()  # a padded conv on sign bits: paired lanes need SIMD >= 2
    with pytest.raises(UsageError, match="SIMD must be >= 2"):
        NativeRTL(1, 1).build(model)
    with pytest.raises(UsageError, match="no trace build"):
        NativeRTL(8, 1).build(model, trace=True)
    # the learning top (hw/tb/mbnn_conv_update_top) counts the first dense layer's synapses in stream order
    sr = random_conv_model(rounding=1)
    with pytest.raises(UsageError, match="rounds stochastically"):
        NativeRTLLearner(8, 1).build(sr)
