"""The QONNX variant (BipolarQuant + MultiThreshold, for FINN): the threshold fold equals the golden
SIGN layer everywhere, and, where qonnx is installed, qonnx's executor gives the golden scores."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from metabnn.cli import main  # noqa: E402
from metabnn.errors import UsageError  # noqa: E402
from metabnn.export import load  # noqa: E402
from metabnn.export.qonnx_export import QONNX_DOMAIN, sign_thresholds, to_qonnx  # noqa: E402
from metabnn.sim import forward, predict, random_model  # noqa: E402
from metabnn.sim.forward import layer_acc, layer_out  # noqa: E402
from metabnn.sim.model import SIGN  # noqa: E402


def edge_model(seed):
    """A random model whose first layer has thresholds exactly at, and one step off, real accumulators."""
    model = random_model((90, 40, 30, 10), banks=2, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (64, 90), dtype=np.uint8)
    lay = model.layers[0]
    acc = layer_acc(lay, x)
    for bank in range(2):
        d = acc[bank] * 256 - lay.M[bank]
        lay.C[bank] = (d + rng.integers(-1, 2, size=d.shape)).astype(np.int32)  # at, just below, just above
        lay.flip[bank] = rng.integers(0, 2, size=lay.N)
    return model, x


@pytest.mark.parametrize("seed", range(4))
def test_threshold_fold_equals_golden_sign_layers(seed):
    model, x = edge_model(seed)
    for bank in range(model.n_banks):
        inp = x
        for lay in model.layers:
            acc = layer_acc(lay, inp)
            out = layer_out(lay, acc * 256 - lay.M[bank].astype(np.int64), bank)
            if lay.out_kind == SIGN:
                s, t = sign_thresholds(lay, bank)
                np.testing.assert_array_equal(np.where(s * acc >= t, 1, -1), out)
            inp = out


def dims(value_info):
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_qonnx_graph_is_annotated_and_checks():
    proto = to_qonnx(random_model((40, 20, 10)), batch=3)
    onnx.checker.check_model(proto, full_check=True)
    assert [dims(v) for v in proto.graph.input] == [[3, 40]]
    assert sorted(dims(v) for v in proto.graph.output) == [[3], [3, 10]]
    custom = {n.op_type for n in proto.graph.node if n.domain == QONNX_DOMAIN}
    assert custom == {"BipolarQuant", "MultiThreshold"}
    dtypes = {a.tensor_name: a.quant_parameter_tensor_names[0].value for a in proto.graph.quantization_annotation}
    assert dtypes["images"] == "UINT8" and dtypes["l0.weight_pm1"] == "BIPOLAR"


@pytest.mark.parametrize("batch", [0, -2, 1.5, "4"])
def test_qonnx_bad_batch(batch):
    with pytest.raises(UsageError, match="batch"):
        to_qonnx(random_model((40, 20, 10)), batch=batch)


def execute_qonnx(proto, images):
    """qonnx's own executor (the custom ops need it; onnxruntime cannot run them)."""
    pytest.importorskip("qonnx")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    return execute_onnx(ModelWrapper(proto).transform(InferShapes()), {"images": images.astype(np.float32)})


@pytest.mark.parametrize("seed", range(2))
def test_qonnx_executor_equals_golden(seed):
    model, x = edge_model(seed)
    x[0], x[1] = 0, 255
    for bank in range(model.n_banks):
        out = execute_qonnx(to_qonnx(model, bank, batch=len(x)), x)
        np.testing.assert_array_equal(out["scores"], forward(model, x, bank=bank))
        np.testing.assert_array_equal(out["label"], predict(model, x, bank=bank))


def test_export_cli_batch(tmp_path, capsys, trained_checkpoint, mnist):
    """`metabnn export --qonnx F --batch N`: a graph of batch N that, run by qonnx on N real MNIST test
    images, gives the golden scores of the .mbnn written next to it."""
    out, q = tmp_path / "m.mbnn", tmp_path / "m.qonnx.onnx"
    rc = main(["export", str(trained_checkpoint), "--out", str(out), "--qonnx", str(q), "--batch", "7"])
    assert rc == 0, capsys.readouterr().err
    proto = onnx.load(str(q))
    assert [dims(v) for v in proto.graph.input] == [[7, 784]]
    x = mnist.test_x[:7].numpy()
    scores = execute_qonnx(proto, x)["scores"]
    np.testing.assert_array_equal(scores, forward(load(out), x))


@pytest.mark.parametrize("argv,needle", [(["--qonnx", "q.onnx", "--batch", "0"], "--batch 0"),
                                         (["--batch", "4"], "--qonnx"),
                                         (["--qonnx", "q.onnx", "--batch", "two"], "--batch")])
def test_export_cli_bad_batch(tmp_path, capsys, monkeypatch, argv, needle):
    """A nonsense --batch is one line, exit 2, before any file is read or written."""
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["export", "missing.pt", "--out", "m.mbnn", *argv])
    except SystemExit as e:  # argparse's own refusal of a non-number
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
