"""The vectorised golden model against the slow scalar reference, on random valid models."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from metabnn.sim import learn_step, predict, random_model
import scalar_reference as ref  # tests/sim/scalar_reference.py, the slow scalar twin of metabnn.sim
from metabnn.sim.forward import forward


def _images(rng, n, k):
    imgs = rng.integers(0, 256, (n, k)).astype(np.uint8)
    imgs[0] = 0
    if n > 1:
        imgs[1] = 255
    return imgs


model_args = st.fixed_dictionaries({
    "sizes": st.sampled_from([(5, 3, 2), (33, 31, 4), (40, 64, 10), (70, 33, 17, 10)]),
    "bits": st.integers(2, 16),
    "banks": st.integers(1, 3),
    "adapt_shift": st.sampled_from([0, 1, 4]),
    "meta": st.sampled_from([0.0, 0.5, 3.0]),
    "lr_shift": st.integers(0, 9),
    "bshift": st.integers(0, 4),
    "seed": st.integers(0, 2**31 - 1),
})


@settings(max_examples=25, deadline=None)
@given(model_args, st.booleans())
def test_predict_equals_reference(args, adapt):
    m = random_model(**args, table_bits=min(args["bits"] - 1, 5))
    rng = np.random.default_rng(args["seed"])
    imgs = _images(rng, 6, m.input_size)
    bank = int(rng.integers(0, m.n_banks))
    fast, slow = m.copy(), m.copy()
    p = predict(fast, imgs, bank=bank, adapt=adapt)
    s = [ref.forward_one(slow, im, bank, adapt)[0] for im in imgs]
    assert np.array_equal(forward(m.copy(), imgs, bank=bank, adapt=adapt), np.array(s, dtype=np.int64))
    assert list(p) == [max(range(len(x)), key=lambda j: (x[j], -j)) for x in s]
    for a, b in zip(fast.layers, slow.layers):
        assert np.array_equal(a.M, b.M)


@settings(max_examples=25, deadline=None)
@given(model_args, st.booleans())
def test_learn_step_equals_reference(args, adapt):
    m = random_model(**args, table_bits=min(args["bits"] - 1, 5))
    rng = np.random.default_rng(args["seed"] + 1)
    imgs = _images(rng, 2, m.input_size)
    bank = int(rng.integers(0, m.n_banks))
    for im in imgs:
        label = int(rng.integers(0, m.n_classes))
        new, info = learn_step(m, im, label, bank=bank, adapt=adapt)
        slow = ref.learn_step_one(m, im, label, bank=bank, adapt=adapt)
        for a, b in zip(new.layers, slow.layers):
            assert np.array_equal(a.hidden, np.asarray(b.hidden))
            assert np.array_equal(a.signs, np.asarray(b.signs, dtype=np.uint32))
            assert np.array_equal(a.M, b.M)
        m = new


def test_learning_changes_something_and_keeps_signs_consistent():
    m = random_model((40, 32, 10), seed=3, lr_shift=2)
    rng = np.random.default_rng(0)
    total_flips = 0
    for _ in range(5):
        m_new, info = learn_step(m, _images(rng, 1, 40)[0], int(rng.integers(0, 10)))
        total_flips += sum(info.flips)
        for lay in m_new.layers:
            from metabnn.sim.bits import pack_bits
            assert np.array_equal(lay.signs, pack_bits(lay.hidden >= 0))
        assert any(not np.array_equal(a.hidden, b.hidden) for a, b in zip(m.layers, m_new.layers))
        m = m_new
    assert total_flips > 0


def test_learn_step_does_not_mutate_its_input():
    m = random_model((40, 32, 10), seed=4, adapt_shift=2)
    before = [l.hidden.copy() for l in m.layers] + [l.M.copy() for l in m.layers]
    learn_step(m, np.full(40, 200, np.uint8), 1, adapt=True)
    after = [l.hidden for l in m.layers] + [l.M for l in m.layers]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
