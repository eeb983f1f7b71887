"""The QONNX variant of conv nets (FORMAT.md 3.3, version 2): Conv on BipolarQuant weights, the per-channel
MultiThreshold, MaxPool on the +-1 map, Flatten before the dense head, run by qonnx's own executor (the reference
that executes the custom ops; onnxruntime cannot) with every score equal to the golden model's, on borders of
every kind, channel counts around the 32-bit word, odd maps under the pool, several banks and b = 2..16."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from metabnn.export.qonnx_export import QONNX_DOMAIN, to_qonnx  # noqa: E402
from metabnn.sim import forward, predict, random_conv_model  # noqa: E402

# (image C x H x W, convs (out channels, kernel, stride, pad, pool), dense sizes, random_conv_model kwargs)
CASES = [
    ((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (10,), {}),
    ((3, 9, 7), ((33, 3, 2, 1, 2), (40, 2, 1, 1, 0)), (12, 5), dict(bits=4, table_bits=2, banks=2)),
    ((2, 12, 12), ((32, 5, 1, 2, 2), (64, 3, 1, 0, 2)), (7,), dict(bits=12, table_bits=6)),
    ((4, 11, 13), ((31, 4, 3, 3, 0), (65, 3, 2, 2, 2)), (9,), dict(bits=16, table_bits=12)),
    ((1, 5, 5), ((2, 5, 1, 4, 0), (1, 3, 4, 2, 0), (3, 2, 1, 1, 2)), (4,), dict(bits=2, table_bits=0)),
    ((1, 6, 6), ((5, 1, 1, 0, 0),), (3,), dict(banks=3)),
]


def images(model, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, model.input_size), dtype=np.uint8)
    x[1::3] *= rng.random((len(x[1::3]), model.input_size)) < 0.3
    x[0], x[-1] = 255, 0
    return x


def execute_qonnx(proto, x):
    pytest.importorskip("qonnx")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    return execute_onnx(ModelWrapper(proto).transform(InferShapes()), {"images": x.astype(np.float32)})


@pytest.mark.parametrize("ci", range(len(CASES)))
def test_qonnx_conv_executor_equals_golden(ci):
    image, convs, dense, kw = CASES[ci]
    model = random_conv_model(image, convs, dense, seed=ci, **kw)
    x = images(model, 12, ci)
    for bank in range(model.n_banks):
        proto = to_qonnx(model, bank, batch=len(x))
        out = execute_qonnx(proto, x)
        np.testing.assert_array_equal(out["scores"], forward(model, x, bank=bank))
        np.testing.assert_array_equal(out["label"], predict(model, x, bank=bank))


def test_qonnx_conv_graph_checks_and_is_annotated():
    image, convs, dense, kw = CASES[1]
    proto = to_qonnx(random_conv_model(image, convs, dense, seed=1, **kw), batch=2)
    onnx.checker.check_model(proto, full_check=True)
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Conv") == 2 and ops.count("MaxPool") == 1 and ops.count("Flatten") == 1
    assert ops.count("MultiThreshold") == 3 and "ConvInteger" not in ops
    assert {n.op_type for n in proto.graph.node if n.domain == QONNX_DOMAIN} == {"BipolarQuant", "MultiThreshold"}
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    attrs = {a.name: list(a.ints) for a in conv.attribute}
    assert attrs == {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}
    dtypes = {a.tensor_name: a.quant_parameter_tensor_names[0].value for a in proto.graph.quantization_annotation}
    assert dtypes["l0.weight_pm1"] == "BIPOLAR" and dtypes["l0.pool"] == "BIPOLAR" and dtypes["l0.hidden_nckk"] == "INT4"
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["metabnn.format_version"] == "2"
