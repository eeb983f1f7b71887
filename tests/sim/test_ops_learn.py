"""The learning step through conv2d, max-pool and flatten (FORMAT.md 4.5).

Three independent checks: a conv that is secretly dense (1x1 maps, or a kernel the size of the image) learns
bit for bit as the dense layer the existing suite already holds to the scalar reference, stochastic rounding
included; a whole step equals one assembled from the ops' plain references; and a conv synapse's gradient is
torch's weight gradient of the trainer's convolution, in the format's synapse order."""

import numpy as np
import pytest

from metabnn.sim import learn_step, random_conv_model
from metabnn.sim.learn import output_error
from metabnn.sim.metaplastic import apply_gradient
from metabnn.sim.model import STOCHASTIC, Model
from metabnn.sim.ops import ops_of, threshold
from metabnn.sim.threefry import synapse_draws


def _as_dense(m: Model) -> Model:
    d = m.copy()
    for lay in d.layers:
        lay.conv = None
    return d


@pytest.mark.parametrize("rounding", [0, 1])
@pytest.mark.parametrize("image,convs", [((6, 1, 1), ((5, 1, 1, 0, 0), (7, 1, 1, 0, 0))),
                                         ((1, 5, 5), ((9, 5, 1, 0, 0),))])
def test_conv_that_is_dense_learns_as_dense(image, convs, rounding):
    m = random_conv_model(image, convs, (8, 4), seed=11, bits=6, rounding=rounding, lr_shift=3, bshift=1)
    dense = _as_dense(m)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x, y = rng.integers(0, 256, m.input_size).astype(np.uint8), int(rng.integers(0, 4))
        m, info = learn_step(m, x, y)
        dense, dinfo = learn_step(dense, x, y)
        for a, b, da, db in zip(m.layers, dense.layers, info.deltas, dinfo.deltas):
            assert np.array_equal(a.hidden, b.hidden) and np.array_equal(a.signs, b.signs)
            assert np.array_equal(np.asarray(da).reshape(-1), db) and a.sr_step == b.sr_step
    assert sum(info.flips) + sum(dinfo.flips) >= 0 and any(np.any(dd) for dd in dinfo.deltas)


def _reference_step(m: Model, image, label: int) -> Model:
    """The step from every op's plain reference: forward by `execute`, backward by the loop versions, the update
    through apply_gradient on the loop gradient."""
    m = m.copy()
    ops = ops_of(m)
    xs, ds, x = [], [], np.asarray(image)
    for op in ops:
        xs.append(x)
        if op.weighted:
            # d once more from the op's plain accumulator, to take the backward window from
            out = op.execute(x)
            if op.layer.conv is None:
                acc = op.reference_acc(np.asarray(x).reshape(-1))
            else:
                g = op.layer.conv
                xm = np.asarray(x).reshape(g.in_c, g.in_h, g.in_w)
                acc = np.stack([[op.reference_acc(*op.taps(xm, oy, ox)) for ox in range(g.out_w)]
                                for oy in range(g.out_h)]).transpose(2, 0, 1)
            ds.append(acc * 256 - threshold.per_neuron(op.layer.M[0].astype(np.int64), acc.ndim, 0))
        else:
            out = op.execute(np.asarray(x))
            ds.append(None)
        x = out
    e = output_error(x, label, m.layers[-1].score_frac, m.exp_table)
    back, grads = None, {}
    for i in range(len(ops) - 1, -1, -1):
        op = ops[i]
        if not op.weighted:
            back = op.execute_backward(back, xs[i]) if hasattr(op, "execute_backward") else op.backward(back, xs[i])
            continue
        delta = threshold.output_delta(op.layer, e, 0) if back is None else op.delta(back, ds[i], 0)
        if op.layer.conv is None:
            grads[i] = np.outer(delta, np.asarray(xs[i]).reshape(-1))
            back = op.layer.weights_pm1(np.int64).T @ delta
        else:
            back, grads[i] = op.execute_learning(np.asarray(xs[i]).reshape(-1), delta)
    for i, g in grads.items():
        lay = ops[i].layer
        rows = np.arange(lay.N)
        draws = synapse_draws(rows, lay.K, lay.sr_seed, lay.sr_step) if lay.rounding == STOCHASTIC else None
        lay.hidden = apply_gradient(lay.hidden, g, lr_shift=lay.lr_shift, table=lay.table, bits=lay.bits,
                                    table_bits=lay.table_bits, draws=draws)
    return m


@pytest.mark.parametrize("rounding", [0, 1])
def test_step_equals_the_ops_references(rounding):
    m = random_conv_model((1, 7, 7), ((3, 3, 1, 1, 2), (4, 3, 1, 1, 2)), (6, 5), seed=4, rounding=rounding,
                          lr_shift=4, bshift=1)
    rng = np.random.default_rng(1)
    changed = 0
    for _ in range(3):
        x, y = rng.integers(0, 256, m.input_size).astype(np.uint8), int(rng.integers(0, 5))
        new, _ = learn_step(m, x, y)
        ref = _reference_step(m, x, y)
        for a, b in zip(new.layers, ref.layers):
            assert np.array_equal(a.hidden, b.hidden)
        changed += sum(int(np.count_nonzero(a.hidden != b.hidden)) for a, b in zip(new.layers, m.layers))
        m = new
    assert changed > 0  # the steps did learn something, conv layers included


def test_conv_gradient_is_torchs_weight_gradient():
    torch = pytest.importorskip("torch")
    m = random_conv_model((3, 6, 5), ((4, 3, 1, 1, 0), (2, 3, 2, 1, 0)), (3,), seed=2)
    rng = np.random.default_rng(3)
    for op in ops_of(m)[:2]:
        g, lay = op.layer.conv, op.layer
        x = rng.integers(-1, 2, (1, g.in_c, g.in_h, g.in_w))
        delta = rng.integers(-100, 100, (lay.N, g.out_h, g.out_w))
        ours = op.gradient(x.reshape(-1), delta, np.arange(lay.N))
        tw = torch.nn.grad.conv2d_weight(torch.tensor(x, dtype=torch.float64), (lay.N, g.in_c, g.kernel, g.kernel),
                                         torch.tensor(delta[None], dtype=torch.float64), stride=g.stride,
                                         padding=g.pad)
        theirs = tw.numpy().transpose(0, 2, 3, 1).reshape(lay.N, lay.K)  # [N, C, k, k] -> synapse (ky, kx, c)
        assert np.array_equal(ours, theirs.astype(np.int64))
        tx = torch.nn.grad.conv2d_input(x.shape, torch.tensor(lay.weights_pm1(np.float64).reshape(
            lay.N, g.kernel, g.kernel, g.in_c).transpose(0, 3, 1, 2).copy()), torch.tensor(delta[None], dtype=torch.float64),
            stride=g.stride, padding=g.pad)
        assert np.array_equal(op.back_input(delta), tx.numpy()[0].astype(np.int64))
