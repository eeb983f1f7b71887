"""Stochastic rounding of the learning step (docs/FORMAT.md 4.4): the golden model against the scalar reference
over several steps, the step counter, and the unbiasedness the rounding exists for."""

import numpy as np
import pytest

import scalar_reference as ref  # tests/sim/scalar_reference.py
from metabnn.sim import learn_step, metaplastic_update, random_model
from metabnn.sim.threefry import synapse_draws


def _assert_same(fast, slow):
    for a, b in zip(fast.layers, slow.layers):
        assert np.array_equal(a.hidden, np.asarray(b.hidden))
        assert np.array_equal(a.signs, np.asarray(b.signs, dtype=np.uint32))
        assert np.array_equal(a.M, b.M)
        assert (a.rounding, a.sr_seed, a.sr_step) == (b.rounding, b.sr_seed, b.sr_step)


@pytest.mark.parametrize("bits", [2, 4, 8, 16])
@pytest.mark.parametrize("sizes,seed,start", [((33, 31, 4), 1, 0), ((70, 33, 17, 10), 2, 0xFFFFFFFE),
                                              ((40, 64, 10), 3, 977)])
def test_stochastic_learning_equals_reference(bits, sizes, seed, start):
    m = random_model(sizes, bits=bits, table_bits=min(bits - 1, 5), meta=3.0, lr_shift=3, bshift=2,
                     adapt_shift=4, seed=seed, rounding=1, sr_step=start)
    rng = np.random.default_rng(seed)
    changed = 0
    for _ in range(4):
        im = rng.integers(0, 256, m.input_size).astype(np.uint8)
        label = int(rng.integers(0, m.n_classes))
        new, _ = learn_step(m, im, label, adapt=True)
        slow = ref.learn_step_one(m, im, label, adapt=True)
        _assert_same(new, slow)
        changed += sum(int(np.count_nonzero(a.hidden != b.hidden)) for a, b in zip(m.layers, new.layers))
        m = new
    assert changed > 0
    assert all(lay.sr_step == (start + 4) % (1 << 32) for lay in m.layers)  # wraps mod 2^32


def test_rounding_zero_keeps_the_step_counter_and_differs_from_stochastic():
    det = random_model((40, 32, 10), bits=4, table_bits=3, lr_shift=4, seed=5)
    sto = random_model((40, 32, 10), bits=4, table_bits=3, lr_shift=4, seed=5, rounding=1)
    assert all(np.array_equal(a.hidden, b.hidden) for a, b in zip(det.layers, sto.layers))
    im = np.random.default_rng(0).integers(0, 256, 40).astype(np.uint8)
    d2, _ = learn_step(det, im, 3)
    s2, _ = learn_step(sto, im, 3)
    assert all(l.sr_step == 0 and l.sr_seed == 0 for l in d2.layers)
    assert all(l.sr_step == 1 for l in s2.layers)
    assert any(not np.array_equal(a.hidden, b.hidden) for a, b in zip(d2.layers, s2.layers))


def _mean_and_tolerance(values, p):
    """Mean of values; 5 binomial standard errors for a floor + Bernoulli(p) variable."""
    n = values.size
    return float(values.mean()), 5.0 * np.sqrt(p * (1 - p) / n)


N_DRAWS = 200_000


def _update(h, grad_delta, x, lr_shift, f, stochastic, step=0):
    table = np.array([f], np.uint16)
    hidden = np.full((1, N_DRAWS), h, np.int16)
    draws = synapse_draws([0], N_DRAWS, 0xC0FFEE, step) if stochastic else None
    out = metaplastic_update(hidden, np.full(N_DRAWS, x), np.array([grad_delta]), lr_shift=lr_shift,
                             table=table, bits=16, table_bits=0, draws=draws)
    return out.astype(np.int64) - h


@pytest.mark.parametrize("grad,s", [(3, 4), (1, 6), (-5, 3), (77, 5)])
def test_gradient_shift_is_unbiased(grad, s):
    exact = -grad / (1 << s)  # h = 0 moves away from zero either way: no table
    p = abs(exact) - np.floor(abs(exact))
    mean, tol = _mean_and_tolerance(_update(0, grad, 1, s, 32768, True), p)
    assert abs(mean - exact) < tol
    # the test has the power to fail: rounding to nearest is off by far more than the tolerance here
    assert abs(_update(0, grad, 1, s, 32768, False).mean() - exact) > tol


@pytest.mark.parametrize("u,f", [(1, 9000), (3, 20000), (7, 1234)])
def test_f_meta_product_is_unbiased(u, f):
    # grad = u * 2^s is exact under the shift, so only the f_meta product is random: the step -u moves
    # h = 1000 toward zero, by |u| f / 2^15 on average
    s = 2
    exact = -u * f / 32768
    p = abs(exact) - np.floor(abs(exact))
    for step in (0, 1):
        mean, tol = _mean_and_tolerance(_update(1000, u << s, 1, s, f, True, step), p)
        assert abs(mean - exact) < tol
        assert abs(_update(1000, u << s, 1, s, f, False).mean() - exact) > tol
