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
