"""ONNX export: onnxruntime gives the golden model's scores and labels, bit for bit, on every bank."""

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from metabnn.export.onnx_export import OPSET, to_onnx  # noqa: E402
from metabnn.sim import forward, predict, random_model  # noqa: E402
from metabnn.backends.onnx import OnnxBackend  # noqa: E402

ONNX = OnnxBackend()


def images(k: int, n: int = 300, seed: int = 0) -> np.ndarray:
    """Random pixels plus the adversarial extremes: all 0, all 255, a checkerboard, one lit pixel."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, k), dtype=np.uint8)
    x[0], x[1] = 0, 255
    x[2] = np.where(np.arange(k) % 2, 255, 0)
    x[3] = 0
    x[3, k // 2] = 255
    return x


def assert_exact(model, x, bank):
    labels, scores = ONNX.run(model, x, bank)
    assert labels.dtype == np.int64 and scores.dtype == np.int64
    np.testing.assert_array_equal(scores, forward(model, x, bank=bank))
    np.testing.assert_array_equal(labels, predict(model, x, bank=bank))


SHAPES = [
    dict(sizes=(64, 32, 10)),
    dict(sizes=(100, 37, 33, 10), banks=3, bits=12, table_bits=5),  # K not a multiple of 32, int16 hidden
    dict(sizes=(5, 3, 2), bits=2, table_bits=1, banks=2),  # tiniest: one word, 2-bit hidden
    dict(sizes=(784, 70, 65, 10), bits=16, table_bits=12, adapt_shift=4),
    dict(sizes=(33, 1, 1)),  # single neurons, single class
]


@pytest.mark.parametrize("kw", SHAPES, ids=lambda kw: "x".join(map(str, kw["sizes"])))
def test_onnx_equals_golden_on_every_bank(kw):
    model = random_model(**kw, seed=len(kw["sizes"]))
    x = images(model.input_size)
    for bank in range(model.n_banks):
        proto = to_onnx(model, bank)
        onnx.checker.check_model(proto, full_check=True)
        assert_exact(model, x, bank)
    assert_exact(model, x[:1], 0)  # dynamic batch: one image


def test_graph_uses_standard_integer_ops_only():
    proto = to_onnx(random_model((40, 20, 10), banks=2))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    ops = {n.op_type for n in proto.graph.node}
    assert ops <= {"MatMulInteger", "Cast", "GreaterOrEqual", "Where", "Transpose", "Mul", "Sub", "Add",
                   "Gather", "Xor", "ArgMax"}
    inp, = proto.graph.input
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert inp.type.tensor_type.shape.dim[0].dim_param == "n"
    used = {i for n in proto.graph.node for i in n.input}
    assert {t.name for t in proto.graph.initializer} <= used, "every initializer feeds the graph"


def test_threshold_edges_and_score_ties():
    """d exactly at C (>= not >) under both flips, and tied scores (the lowest index wins)."""
    model = random_model((50, 16, 6), banks=1, seed=3)
    x = images(50, n=40, seed=1)
    first = model.layers[0]
    acc = x.astype(np.int64) @ first.weights_pm1(np.int64).T
    d = acc * 256 - first.M[0]
    first.C[0] = d[5].astype(np.int32)  # image 5 sits exactly on every threshold
    first.flip[0, ::2] = 1 - first.flip[0, ::2]
    assert_exact(model, x, 0)
    out = model.layers[-1]
    out.g[0] = 0
    out.b[0] = [7, 9, 9, -3, 9, 2]  # classes 1, 2, 4 tie for every image
    labels, scores = ONNX.run(model, x, 0)
    assert (labels == 1).all() and (scores == out.b[0]).all()
    assert_exact(model, x, 0)


def test_extreme_magnitudes_do_not_overflow():
    """16384 pixels at 255 with M at -256R: |d| = 512R, the format's bound (2^31 - 2^23); g, b at their limits."""
    model = random_model((16384, 4, 3), seed=5)
    first, out = model.layers
    R = first.R
    first.hidden[:2] = 5
    first.hidden[2:] = -5
    from metabnn.sim.bits import pack_bits
    first.signs = pack_bits(first.hidden >= 0)
    first.M[0] = [-256 * R, 256 * R, -256 * R, 256 * R]
    first.C[0] = [first.D + 1, -first.D - 1, first.D, -first.D]
    out.M[0] = [-256 * out.R, 256 * out.R, 0]
    out.g[0] = [32767, -32767, 32767]
    out.b[0] = [1 << 47, -(1 << 47), -(1 << 47)]
    x = np.full((3, 16384), 255, np.uint8)
    x[1] = 0
    assert_exact(model, x, 0)
    d0 = (255 * 16384) * 256 + 256 * R  # layer 0, neuron 0, image 0: d = 512R exactly
    assert d0 == first.D and np.abs(forward(model, x)).max() > 1 << 47


def test_bad_bank_is_a_usage_error():
    from metabnn.errors import UsageError
    with pytest.raises(UsageError, match="bank 2 out of range"):
        to_onnx(random_model((8, 4, 2), banks=2), bank=2)


def test_backend_reports_available_and_checks_inputs():
    assert ONNX.available() == (True, "")
    model = random_model((8, 4, 2))
    with pytest.raises(ValueError, match="shape"):
        ONNX.predict(model, np.zeros((2, 9), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        ONNX.predict(model, np.zeros((2, 8), np.float32))



from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 70), min_size=3, max_size=5), bits=st.integers(2, 16),
       banks=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_onnx_equals_golden_property(sizes, bits, banks, seed):
    model = random_model(tuple(sizes), bits=bits, table_bits=min(bits - 1, 3), banks=banks, seed=seed)
    x = images(model.input_size, n=64, seed=seed)
    assert_exact(model, x, seed % banks)
