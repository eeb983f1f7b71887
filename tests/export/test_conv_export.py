"""A ConvNet checkpoint through export and verify (FORMAT.md 3.2, 3.3): a small binary conv net trained by
`metabnn train --model conv` for one short epoch, its BatchNorm2d folded per channel, its kernels quantized; the
golden model against the torch float model (equal except at thresholds: the rate is measured and bounded), the
exported .onnx under onnxruntime equal to golden on real images, and the backends and writers without conv
support refusing in one line."""

import struct

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from metabnn.cli import main  # noqa: E402
from metabnn.export.floatnet import float_forward  # noqa: E402
from metabnn.export.mbnn import load, to_bytes  # noqa: E402
from metabnn.sim import random_conv_model  # noqa: E402
from metabnn.sim.model import PIXELS  # noqa: E402
from metabnn.sim.forward import run_ops  # noqa: E402
from metabnn.sim.ops import Conv2dBits, ops_of, threshold  # noqa: E402
from metabnn.train.checkpoint import load_floatnet, load_model  # noqa: E402
from metabnn.train.layers import BinaryConv2d  # noqa: E402


@pytest.fixture(scope="module")
def conv_run(tmp_path_factory, mnist):
    """(model.pt, model.mbnn) of a 784-conv4-pool-conv8-pool-16-10 net, one epoch on 3,000 MNIST images; the
    export wrote model.onnx beside them."""
    out = tmp_path_factory.mktemp("conv")
    assert main(["train", "--model", "conv", "--channels", "4", "8", "--hidden", "16", "--tasks", "mnist",
                 "--epochs", "1", "--train-subset", "3000", "--test-subset", "500", "--seed", "0", "--quiet",
                 "--out", str(out), "--overwrite"]) == 0
    assert main(["export", str(out / "model.pt"), "--out", str(out / "model.mbnn"), "--onnx",
                 str(out / "model.onnx")]) == 0
    return out / "model.pt", out / "model.mbnn"


def _cli(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_export_writes_version_2(conv_run):
    pt, mbnn = conv_run
    assert struct.unpack_from("<H", mbnn.read_bytes(), 4)[0] == 2
    m = load(mbnn)
    assert [op.name for op in ops_of(m)] == ["Conv2dPixels", "MaxPool2", "Conv2dBits", "MaxPool2", "Flatten",
                                             "DenseBits", "DenseBits"]
    assert m.layers[2].K == 8 * 7 * 7 and m.layers[0].conv.pad == 1


def test_golden_equals_torch_except_at_thresholds(conv_run, mnist):
    """Every conv output bit and every prediction, golden vs the float model, on 2,000 test images. Each conv
    stage of the float model (BinaryConv2d, BatchNorm2d in float32) is run on the golden model's own input to
    that stage, so a difference is the stage's, not carried from below. A bit may differ only where the float32
    pre-activation y lies within float32 rounding of 0 (FORMAT.md 3.2, 3.3): every differing bit is checked to be
    one (|y| < 1e-4: a float32 sum of <= 72 terms of size <= 1 is off by < 1e-5, times BatchNorm's gain)."""
    pt, mbnn = conv_run
    m, net = load(mbnn), load_model(pt)
    x = np.asarray(mnist.test_x[:2000])
    trace = []
    scores = run_ops(m, x, trace=trace)
    convs = [(op, xin, d) for op, xin, d in trace if op.weighted and op.layer.conv is not None]
    stages = [(mod, net.features[i + 1]) for i, mod in enumerate(net.features) if isinstance(mod, BinaryConv2d)]
    for (op, xin, d), (conv, bn) in zip(convs, stages, strict=True):
        g = op.layer.conv
        a = torch.as_tensor(np.asarray(xin, dtype=np.float32).reshape(-1, g.in_c, g.in_h, g.in_w))
        if op.layer.in_kind == PIXELS:
            a = a / 255
        with torch.no_grad():
            y = bn(conv(a)).numpy()
        differ = threshold.outputs(op.layer, d, 0) != np.where(y >= 0, 1, -1)
        assert (np.abs(y[differ]) < 1e-4).all(), np.abs(y[differ]).max()
        assert differ.mean() <= 1e-4
    with torch.no_grad():
        logits = net(torch.as_tensor(x, dtype=torch.float32) / 255).numpy()
    assert (np.argmax(scores, 1) == logits.argmax(1)).mean() >= 0.995
    assert (np.argmax(scores, 1) == np.asarray(mnist.test_y[:2000])).mean() > 0.5  # it did learn
    # the exporter's NumPy float forward is the same float network
    assert (float_forward(load_floatnet(pt), x).argmax(1) == logits.argmax(1)).mean() >= 0.995


def test_onnx_file_equals_golden_on_real_images(conv_run, mnist):
    """The shipped .onnx (full checker) under onnxruntime: the golden model's int64 scores and labels on 2,000
    MNIST test images (the whole set: `metabnn verify --backends golden,onnx --limit 0`, docs/ONNX.md)."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from metabnn.export.onnx_export import from_onnx

    pt, mbnn = conv_run
    path = mbnn.parent / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    m = load(mbnn)
    assert to_bytes(from_onnx(path)) == to_bytes(m)
    x = np.asarray(mnist.test_x[:2000])
    labels, scores = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})
    want = run_ops(m, x)
    assert np.array_equal(scores, want) and np.array_equal(labels, np.argmax(want, 1))


def test_verify_golden_onnx_torch_and_refusals(conv_run, capsys):
    from metabnn import backends

    pytest.importorskip("onnxruntime")
    pt, mbnn = conv_run
    names = ["golden", "onnx", "torch"] + (["c"] if backends.get("c").available()[0] else [])
    rc, out, _ = _cli(["verify", str(mbnn), "--backends", ",".join(names), "--checkpoint", str(pt),
                       "--limit", "300", "--learn", "3"], capsys)
    assert rc == 0 and "3 steps (reference)" in out
    rows = {l.split()[0]: l for l in out.splitlines()[-len(names):]}
    for be in names:
        assert rows[be].split()[1:3] == ["ok", "300/300"], out
    if "c" in names:  # the firmware runs conv inference, and learns on them where its build does
        want = "3 steps equal" if backends.get("c").conv_learn else "(inference only on conv models)"
        assert rows["c"].endswith(want), rows["c"]
    # the QONNX variant of the conv net (tests/export/test_qonnx_conv.py runs it through qonnx's executor)
    rc, _, err = _cli(["export", str(pt), "--out", str(mbnn.parent / "again.mbnn"), "--qonnx",
                       str(mbnn.parent / "q.onnx")], capsys)
    assert rc == 0 and (mbnn.parent / "q.onnx").stat().st_size > 0, err
    # the C header is the .mbnn image as bytes (the firmware loads version 2)
    rc, _, _ = _cli(["export", str(pt), "--out", str(mbnn.parent / "again.mbnn"), "--c-header",
                     str(mbnn.parent / "m.h")], capsys)
    assert rc == 0 and (mbnn.parent / "m.h").stat().st_size > 0


def test_trainer_pads_with_zeros():
    """The border rule measured on the trainer's own layer: torch's BinaryConv2d (padding=1) on +-1 maps gives
    exactly the golden model's sum over the in-image taps (zero padding, not +1 or -1)."""
    m = random_conv_model((1, 6, 6), ((3, 3, 1, 1, 0), (5, 3, 1, 1, 0)), (4,), seed=4)
    op = ops_of(m)[1]
    assert isinstance(op, Conv2dBits)
    lay = op.layer
    conv = BinaryConv2d(3, 5, 3, padding=1)
    w = lay.hidden.astype(np.float32).reshape(5, 3, 3, 3).transpose(0, 3, 1, 2)  # rows (ky, kx, c) -> [N, C, k, k]
    with torch.no_grad():
        conv.weight.copy_(torch.as_tensor(np.ascontiguousarray(w)))
    x = np.where(np.random.default_rng(1).random((4, 3, 6, 6)) < 0.5, 1, -1).astype(np.int8)
    with torch.no_grad():
        theirs = conv(torch.as_tensor(x, dtype=torch.float32)).numpy()
    assert np.array_equal(op.acc(x), theirs.astype(np.int64))
