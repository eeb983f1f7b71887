"""ONNX export of conv nets (FORMAT.md 3.3, docs/ONNX.md): ConvInteger on uint8 pixels or int8 +-1 with zero
padding, the per-channel threshold, MaxPool 2x2 on the +-1 bits, Flatten into the dense head. Every graph passes
the full onnx.checker; onnxruntime gives the golden model's int64 scores and labels; the file alone gives back
the model. The trained checkpoint's real images are in tests/export/test_conv_export.py."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from metabnn.export import FormatError, to_bytes  # noqa: E402
from metabnn.export.onnx_export import from_onnx, to_onnx  # noqa: E402
from metabnn.sim import forward, learn_step, random_conv_model  # noqa: E402

# (image C x H x W, convs as (out channels, kernel, stride, pad, pool), dense sizes): odd maps (a dropped pool row
# and column), strides 2 and 3, kernels 1..5, every pad 0..k-1 used somewhere, > 32 channels (two words per
# position in a packed backend), a 1 x 1 output map
SHAPES = [
    ((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (10,)),
    ((3, 9, 7), ((5, 3, 2, 1, 2), (33, 2, 1, 1, 2)), (7, 4)),
    ((2, 11, 11), ((40, 5, 1, 2, 0), (3, 3, 3, 0, 0)), (3,)),
    ((1, 13, 13), ((8, 1, 1, 0, 2), (9, 4, 1, 3, 2), (5, 3, 1, 2, 0)), (12, 10)),
]


def run(proto, x):
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": x})


def images(model, seed, n=48):
    """Uniform pixels, plus the extremes: all 0, all 255, and +-255 checkerboards (every tap at its largest)."""
    x = np.random.default_rng(seed).integers(0, 256, (n, model.input_size)).astype(np.uint8)
    x[0], x[1] = 0, 255
    x[2] = np.arange(model.input_size) % 2 * 255
    x[3] = 255 - x[2]
    return x


@pytest.mark.parametrize("shape", range(len(SHAPES)))
@pytest.mark.parametrize("bits", [8, 12])
def test_onnxruntime_equals_golden(shape, bits):
    img, convs, dense = SHAPES[shape]
    model = random_conv_model(img, convs, dense, bits=bits, banks=2, seed=shape)
    flips = np.concatenate([np.ravel(lay.flip) for lay in model.layers[:-1]])
    assert 0 < flips.sum() < flips.size  # both directions of the threshold are exercised
    x = images(model, shape)
    for bank in range(2):
        proto = to_onnx(model, bank)
        onnx.checker.check_model(proto, full_check=True)
        labels, scores = run(proto, x)
        want = forward(model, x, bank)
        assert scores.dtype == np.int64 and np.array_equal(scores, want)
        assert np.array_equal(labels, np.argmax(want, 1))


def test_graph_uses_standard_integer_ops():
    img, convs, dense = SHAPES[1]
    proto = to_onnx(random_conv_model(img, convs, dense, seed=1), 0)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("ConvInteger") == 2 and ops.count("MaxPool") == 2 and ops.count("Flatten") == 1
    assert ops.count("MatMulInteger") == 2 and "Conv" not in ops
    assert {o.domain for o in proto.opset_import} == {""}
    pads = [a.ints for n in proto.graph.node if n.op_type == "ConvInteger" for a in n.attribute if a.name == "pads"]
    assert [list(p) for p in pads] == [[1] * 4, [1] * 4]


def test_the_file_alone_gives_back_the_model():
    img, convs, dense = SHAPES[3]
    model = random_conv_model(img, convs, dense, bits=12, banks=2, seed=5)
    for bank in range(2):
        data = to_onnx(model, bank).SerializeToString()
        back = from_onnx(data)
        assert to_bytes(back) == to_bytes(model)
        assert to_onnx(back, bank).SerializeToString() == data  # canonical
    # learning goes on from it, step for step the same
    x = images(model, 9, n=4)
    for i, im in enumerate(x):
        model, a = learn_step(model, im, i % 10, bank=1)
        back, b = learn_step(back, im, i % 10, bank=1)
        assert a.flips == b.flips
    assert to_bytes(back) == to_bytes(model)


def test_dense_models_keep_version_1():
    from metabnn.sim import random_model

    meta = {p.key: p.value for p in to_onnx(random_model((30, 12, 10)), 0).metadata_props}
    assert meta["metabnn.format_version"] == "1" and "conv" not in meta["metabnn.layers"]
    img, convs, dense = SHAPES[0]
    meta = {p.key: p.value for p in to_onnx(random_conv_model(img, convs, dense), 0).metadata_props}
    assert meta["metabnn.format_version"] == "2"
    assert json.loads(meta["metabnn.layers"])[0]["conv"] == [1, 8, 8, 3, 1, 1, 2]


BASE = random_conv_model(*SHAPES[1], seed=3)


def _edit(fn):
    proto = to_onnx(BASE, 0)
    fn(proto)
    return proto.SerializeToString()


def _meta(key, fn_value):
    def fn(p):
        for e in p.metadata_props:
            if e.key == key:
                e.value = fn_value(e.value)
    return fn


def _conv(l, value):
    def change(text):
        layers = json.loads(text)
        if value is None:
            del layers[l]["conv"]
        else:
            layers[l]["conv"] = value
        return json.dumps(layers)
    return _meta("metabnn.layers", change)


@pytest.mark.parametrize("fn,needle", [
    (_meta("metabnn.format_version", lambda v: "1"), "format version 1 does not fit"),
    (_conv(0, [3, 9, 7, 3, 2, 1]), "conv must be 7 integers"),
    (_conv(0, [3, 9, 7, 3, 2, 1, True]), "conv must be 7 integers"),
    (_conv(0, [3, 9, 7, 0, 2, 1, 2]), "kernel 0"),
    (_conv(0, [3, 9, 7, 3, 2, 3, 2]), "pad 3|breaks"),
    (_conv(0, [3, 9, 8, 3, 2, 1, 2]), "breaks|does not compute"),
    (_conv(1, [5, 2, 2, 2, 1, 1, 0]), "breaks|writes 297 values"),
    (_conv(1, None), "does not compute"),  # a dense layer of the same K: the graph tells
    (lambda p: [a.ints.__setitem__(0, 0) for n in p.graph.node if n.op_type == "ConvInteger"
                for a in n.attribute if a.name == "pads"], "does not compute"),
])
def test_bad_conv_files_raise_format_error(fn, needle):
    with pytest.raises(FormatError, match=needle):
        from_onnx(_edit(fn))
