"""The C firmware against the golden model (metabnn.sim), state for state.

Inference: scores and labels equal, frozen and adaptive (the adapted M must match too).
Learning: after every step the C image, re-sealed, is byte-identical to
`to_bytes(golden model)`: every hidden weight, sign bit and M, and nothing else changed.
"""

from __future__ import annotations

import numpy as np
import pytest

from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim import forward, learn_step, predict

from firmware_cases import CONFIGS, make_case


def first_difference(golden, got: bytes) -> str:
    """Name the first differing array, for a readable failure."""
    m = from_bytes(got)
    for l, (a, b) in enumerate(zip(golden.layers, m.layers)):
        for name in ("hidden", "signs", "M", "C", "lo", "hi", "flip", "g", "b"):
            x, y = getattr(a, name), getattr(b, name)
            if x is not None and not np.array_equal(x, y):
                idx = np.argwhere(np.asarray(x) != np.asarray(y))[0]
                return f"layer {l} {name}{tuple(idx)}: golden {x[tuple(idx)]}, C {y[tuple(idx)]}"
    return "headers differ"


@pytest.mark.parametrize("case", range(len(CONFIGS)))
@pytest.mark.parametrize("adapt", [False, True])
def test_inference_equals_golden(cbackend, case, adapt):
    model, images, _, bank = make_case(case)
    data = to_bytes(model)
    golden = model.copy()
    want_scores = forward(golden, images, bank=bank, adapt=adapt)
    with cbackend.open(data, bank=bank, adapt=adapt) as s:
        got = s.forward(images)
        assert np.array_equal(got, want_scores)
        assert s.image() == to_bytes(golden)  # adapted M, state for state
        if not adapt:
            assert s.image() == data  # frozen inference writes nothing
    assert np.array_equal(cbackend.predict(data, images, bank=bank),
                          predict(model, images, bank=bank))


@pytest.mark.parametrize("case", range(len(CONFIGS)))
@pytest.mark.parametrize("adapt", [False, True])
def test_learning_trajectory_equals_golden(cbackend, case, adapt):
    model, images, labels, bank = make_case(case)
    steps = 12
    golden = model
    with cbackend.open(to_bytes(model), bank=bank, adapt=adapt) as s:
        for t in range(steps):
            golden, info = learn_step(golden, images[t], int(labels[t]), bank=bank, adapt=adapt)
            predicted, flips = s.learn_step(images[t], int(labels[t]))
            got = s.image()
            assert got == to_bytes(golden), f"step {t}: {first_difference(golden, got)}"
            assert predicted == info.predicted
            assert flips == sum(info.flips)


def test_learning_changes_something(cbackend):
    """Guard against a vacuous trajectory test: the configurations really learn."""
    changed = 0
    for case in range(len(CONFIGS)):
        model, images, labels, bank = make_case(case)
        states = cbackend.learn(to_bytes(model), images, labels, 4, bank=bank)
        changed += states[-1] != to_bytes(model)
    assert changed >= len(CONFIGS) - 1


@pytest.mark.parametrize("lr_shift", [0, 1, 31])
def test_run_time_shifts_and_saturation(cbackend, lr_shift):
    """lr_shift 0 saturates |u| at 65535 and h at its limits; shifts set at run time are
    written through to the image descriptor."""
    model, images, labels, bank = make_case(0)
    golden = model.copy()
    for lay in golden.layers:
        lay.lr_shift, lay.bshift = lr_shift, 0
    with cbackend.open(to_bytes(model), bank=bank) as s:
        for l in range(len(model.layers)):
            s.set_shifts(l, lr_shift, 0)
        for t in range(6):
            golden, _ = learn_step(golden, images[t], int(labels[t]), bank=bank)
            s.learn_step(images[t], int(labels[t]))
            assert s.image() == to_bytes(golden)
    if lr_shift == 0:
        h = golden.layers[0].hidden
        assert (h == golden.layers[0].h_max).any() and (h == golden.layers[0].h_min).any()


@pytest.mark.parametrize("case", [1, 4, 6])
def test_portable_popcount_build_equals_golden(portable_backend, case):
    model, images, labels, bank = make_case(case)
    golden = model
    states = portable_backend.learn(to_bytes(model), images, labels, 6, bank=bank, adapt=True)
    for t in range(6):
        golden, _ = learn_step(golden, images[t], int(labels[t]), bank=bank, adapt=True)
        assert states[t] == to_bytes(golden)


def test_adaptation_moves_state(cbackend):
    """Guard against a vacuous adaptive test: M really moves in most configurations."""
    moved = 0
    for case in range(len(CONFIGS)):
        model, images, _, bank = make_case(case)
        with cbackend.open(to_bytes(model), bank=bank, adapt=True) as s:
            s.predict(images)
            moved += s.image() != to_bytes(model)
    assert moved >= len(CONFIGS) // 2


def on_the_edges(model, image, bank):
    """A copy of `model` whose C, lo, hi sit exactly on this image's d for many neurons, so
    every >= / <= of the threshold and the straight-through window is decided at equality."""
    record = []
    m = model.copy()
    forward(m, image.reshape(1, -1), bank=bank, record=record)
    for lay, (_, d) in zip(m.layers[:-1], record[:-1]):
        d = d[0]
        n = lay.N
        sel = np.arange(n)
        lay.C[bank, sel % 3 == 0] = d[sel % 3 == 0]
        lay.lo[bank, sel % 3 == 1] = d[sel % 3 == 1]
        lay.hi[bank, sel % 3 == 2] = d[sel % 3 == 2]
        lay.lo[bank] = np.minimum(lay.lo[bank], lay.C[bank])
        lay.hi[bank] = np.maximum(lay.hi[bank], lay.C[bank])
        lay.lo[bank, sel % 3 == 1] = d[sel % 3 == 1]
        lay.hi[bank, sel % 3 == 2] = d[sel % 3 == 2]
    return m


@pytest.mark.parametrize("case", [0, 1, 4, 6, 9])
def test_threshold_and_window_equalities(cbackend, case):
    model, images, labels, bank = make_case(case)
    model = on_the_edges(model, images[2], bank)
    golden, _ = learn_step(model, images[2], int(labels[2]), bank=bank)
    with cbackend.open(to_bytes(model), bank=bank) as s:
        assert np.array_equal(s.forward(images[2:3]), forward(model.copy(), images[2:3], bank=bank))
        s.learn_step(images[2], int(labels[2]))
        got = s.image()
    assert got == to_bytes(golden), first_difference(golden, got)


@pytest.mark.parametrize("case", [0, 3, 6, 9])
def test_learning_on_sparse_images_equals_golden(cbackend, case):
    """Images mostly 0 in runs, as MNIST's borders: the update skips every synapse whose step is 0
    (four zero pixels at once where they are aligned), which random images never exercise. Zero
    runs start and end at every offset mod 4, and one image has its last pixel alone non-zero."""
    model, images, labels, bank = make_case(case)
    rng = np.random.default_rng(50 + case)
    K = images.shape[1]
    sparse = np.zeros_like(images)
    for n in range(len(sparse)):
        for _ in range(3):  # a few non-zero strokes
            a = int(rng.integers(0, K))
            b = min(K, a + int(rng.integers(1, 12)))
            sparse[n, a:b] = rng.integers(1, 256, size=b - a)
    sparse[2] = 0
    sparse[2, -1] = 200
    golden = model
    with cbackend.open(to_bytes(model), bank=bank) as s:
        for t in range(12):
            golden, info = learn_step(golden, sparse[t], int(labels[t]), bank=bank)
            predicted, flips = s.learn_step(sparse[t], int(labels[t]))
            got = s.image()
            assert got == to_bytes(golden), f"step {t}: {first_difference(golden, got)}"
            assert predicted == info.predicted and flips == sum(info.flips)
