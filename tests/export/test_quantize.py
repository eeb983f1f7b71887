"""FloatNet -> integer model: the folded thresholds decide like the float network."""

import numpy as np
import pytest

from metabnn.export.floatnet import BNState, FloatLayer, FloatNet, float_forward
from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.export.quantize import quantize_hidden, from_floatnet
from metabnn.sim import predict


def make_net(sizes=(784, 128, 64, 10), banks=1, meta=1.35, seed=0, n_imgs=1000):
    """A random float network whose BN statistics come from its own activations (like training)."""
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 256, (n_imgs, sizes[0])).astype(np.uint8)
    layers = []
    x = imgs / 255.0
    for K, N in zip(sizes[:-1], sizes[1:]):
        w = rng.uniform(-0.05, 0.05, (N, K)).astype(np.float32)
        a = x @ np.where(w >= 0, 1, -1).T
        bns = []
        for _ in range(banks):
            gamma = rng.normal(1, 0.6, N).astype(np.float32)
            gamma[:3] = [-0.7, 0.0, 0.0]  # negative and zero gains are part of the format
            beta = rng.normal(0, 0.5, N).astype(np.float32)
            beta[2] = -0.4
            bns.append(BNState(gamma, beta, (a.mean(0) + rng.normal(0, 0.3, N)).astype(np.float32),
                               (a.var(0) * rng.uniform(0.7, 1.3, N)).astype(np.float32)))
        layers.append(FloatLayer(w, meta, bns))
        bn = bns[0]
        y = (a - bn.mean) / np.sqrt(bn.var + bn.eps) * bn.gamma + bn.beta
        x = np.where(y >= 0, 1, -1)
    return FloatNet(layers), imgs


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_integer_model_decides_like_float64(bits):
    net, imgs = make_net(banks=2)
    m = from_floatnet(net, hidden_bits=bits)
    for bank in (0, 1):
        p_int = predict(m, imgs, bank=bank)
        p_f64 = float_forward(net, imgs, bank=bank, dtype=np.float64).argmax(1)
        assert (p_int == p_f64).mean() >= 0.999
    assert from_bytes(to_bytes(m)) is not None


def test_hidden_quantization_keeps_every_sign():
    w = np.array([[-1e-9, 0.0, 1e-9, -0.3, 0.3, 5.0, -5.0]])
    h, scale = quantize_hidden(w, meta=1.0, bits=4)
    assert list(np.where(h >= 0, 1, -1)[0]) == list(np.where(w >= 0, 1, -1)[0])
    assert h.min() >= -8 and h.max() <= 7
    # m = 1: the range stops at acosh(256) ~ 6.24, so 5.0 is still inside
    assert scale == pytest.approx(5.0 / 7, rel=1e-6)


def test_table_is_one_for_plain_bnn_and_decreasing_for_metaplastic():
    net, _ = make_net(sizes=(784, 32, 10), meta=0.0)
    assert np.all(from_floatnet(net).layers[0].table == 32768)
    net, _ = make_net(sizes=(784, 32, 10), meta=2.0)
    t = from_floatnet(net).layers[0].table.astype(int)
    assert t[0] == 32768 and np.all(np.diff(t) <= 0) and t[-1] < t[0]
