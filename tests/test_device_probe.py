"""metabnn.ondevice.update_stats, the probe of the device-m rule: stochastic rounding is counted by its expected
outcome, so a 4-bit layer's sub-LSB steps are seen (counted to nearest they are nearly all 0)."""

import numpy as np
import pytest

from metabnn.export.quantize import from_floatnet
from metabnn.ondevice import update_stats
from metabnn.sim.learn import learn_step
from metabnn.train.checkpoint import load_floatnet


@pytest.fixture(scope="module")
def stream(mnist):
    return mnist.train_x.numpy()[:20], mnist.train_y.numpy()[:20]


def _expected_mean_step(model, xs, ys):
    """E|u| over the non-zero gradients of each layer, from the exact quotients |grad| / 2^s."""
    tot = [0.0] * len(model.layers)
    m = model
    for x, y in zip(xs, ys):
        new, info = learn_step(m, x, int(y))
        for l, (lay, d, xin) in enumerate(zip(m.layers, info.deltas, info.inputs)):
            tot[l] += np.abs(np.outer(d, xin)).sum() / 2.0 ** lay.lr_shift
        m = new
    return tot


def test_stochastic_probe_counts_sub_lsb_steps(trained_checkpoint, stream):
    xs, ys = stream
    net = load_floatnet(trained_checkpoint)
    near = update_stats(from_floatnet(net, hidden_bits=4, lr_shift_base=12, device_meta=0.0), xs, ys)
    sr_model = from_floatnet(net, hidden_bits=4, lr_shift_base=12, device_meta=0.0, stochastic=True)
    sr = update_stats(sr_model, xs, ys)
    expect = _expected_mean_step(sr_model, xs, ys)
    for l, (a, b, lay) in enumerate(zip(near, sr, sr_model.layers)):
        assert b.rate > a.rate  # the hidden layers' steps are below half an LSB: nearest rounds most to 0
        # the expected |u| summed over every (synapse, step) equals the exact quotients' sum
        total = len(ys) * lay.N * lay.K
        assert b.rate * b.mean_size * total == pytest.approx(expect[l], rel=1e-9)
    assert near[1].rate < 0.01 < sr[1].rate


def test_probe_counts_a_conv_layers_gradient_over_positions():
    """A conv synapse's step is rsr(sum over positions of delta * x, s) (FORMAT.md 4.5): the probe's counts of
    |u| equal those of the conv op's tap-by-tap reference gradient, layer by layer (dense layers as before)."""
    from metabnn.export.device_meta import UpdateStats
    from metabnn.sim import random_conv_model
    from metabnn.sim.metaplastic import U_MAX, step_size
    from metabnn.sim.ops import ops_of

    model = random_conv_model(image=(1, 8, 8), convs=((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), dense=(12, 10),
                              lr_shift=4, seed=3)
    rng = np.random.default_rng(0)
    xs, ys = rng.integers(0, 256, (6, 64)).astype(np.uint8), rng.integers(0, 10, 6)
    counts = [np.zeros(U_MAX + 1) for _ in model.layers]
    m = model
    for x, y in zip(xs, ys):
        new, info = learn_step(m, x, int(y))
        weighted = [op for op in ops_of(m) if op.weighted]
        for c, lay, op, d, xin in zip(counts, m.layers, weighted, info.deltas, info.inputs):
            grad = op.execute_learning(xin, d)[1] if lay.conv is not None else np.outer(d, xin)
            c += np.bincount(np.abs(step_size(np.abs(grad).ravel(), lay.lr_shift)), minlength=U_MAX + 1)
        m = new
    got = update_stats(model, xs, ys)
    assert any(lay.conv is not None and s.rate > 0 for lay, s in zip(model.layers, got))
    for c, lay, s in zip(counts, model.layers, got):
        assert s == UpdateStats.from_counts(c, len(ys) * lay.N * lay.K)
