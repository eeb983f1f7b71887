"""Stochastic rounding in the C firmware (docs/FORMAT.md 4.4) against the golden model: Threefry's
known answers, the learning trajectory state for state (hidden weights, signs, M and the step counter
in the image), 1,000 steps at b = 4 and b = 8 through `metabnn verify`'s compare_learning, and the
loader's checks of the three descriptor fields."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from firmware_cases import CONFIGS, make_case
from test_golden import first_difference
from test_loader import edit

from metabnn import backends
from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim import learn_step, random_model
from metabnn.sim.threefry import KNOWN_ANSWERS, threefry2x32_20
from metabnn.verify import compare_learning


def _threefry(lib, c0, c1, k0, k1):
    f = lib.mbnn_threefry2x32_20
    f.argtypes = [ctypes.c_uint32] * 4 + [ctypes.c_void_p]
    f.restype = None
    out = (ctypes.c_uint32 * 2)()
    f(c0, c1, k0, k1, out)
    return out[0], out[1]


@pytest.mark.parametrize("ctr,key,want", KNOWN_ANSWERS)
def test_known_answers(cbackend, ctr, key, want):
    assert _threefry(cbackend.lib, *ctr, *key) == want


def test_threefry_equals_golden_on_random_inputs(cbackend):
    rng = np.random.default_rng(3)
    v = rng.integers(0, 1 << 32, (200, 4), dtype=np.uint64).astype(np.uint32)
    x0, x1 = threefry2x32_20(v[:, 0], v[:, 1], v[:, 2], v[:, 3])
    for n in range(200):
        assert _threefry(cbackend.lib, *map(int, v[n])) == (int(x0[n]), int(x1[n]))


@pytest.mark.parametrize("case", range(len(CONFIGS)))
@pytest.mark.parametrize("adapt", [False, True])
def test_stochastic_trajectory_equals_golden(cbackend, case, adapt):
    model, images, labels, bank = make_case(case, rounding=1)
    golden = model
    with cbackend.open(to_bytes(model), bank=bank, adapt=adapt) as s:
        for t in range(12):
            golden, info = learn_step(golden, images[t], int(labels[t]), bank=bank, adapt=adapt)
            predicted, flips = s.learn_step(images[t], int(labels[t]))
            got = s.image()
            assert got == to_bytes(golden), f"step {t}: {first_difference(golden, got)}"
            assert (predicted, flips) == (info.predicted, sum(info.flips))
    start = model.layers[0].sr_step
    assert [l.sr_step for l in from_bytes(got).layers] == [(start + 12) % (1 << 32)] * len(model.layers)


def test_stochastic_rounding_learns_where_nearest_cannot(cbackend):
    """Guard against a vacuous comparison: at b = 4 with a step below half an LSB, nearest rounding changes
    nothing and stochastic rounding changes hidden weights, in C as in golden."""
    kw = dict(bits=4, table_bits=3, lr_shift=20, bshift=2, seed=9)  # pixel layer 26: |grad| < 2^23
    near, sto = random_model((64, 32, 10), **kw), random_model((64, 32, 10), rounding=1, **kw)
    rng = np.random.default_rng(9)
    images, labels = rng.integers(0, 256, (10, 64)).astype(np.uint8), rng.integers(0, 10, 10)
    assert cbackend.learn(to_bytes(near), images, labels, 10)[-1] == to_bytes(near)
    changed = from_bytes(cbackend.learn(to_bytes(sto), images, labels, 10)[-1])
    assert sum(int((a.hidden != b.hidden).sum()) for a, b in zip(changed.layers, sto.layers)) > 0


@pytest.mark.parametrize("bits", [4, 8])
def test_thousand_steps_equal_golden(bits):
    """The issue's criterion: golden == C over 1,000 stochastic learning steps at b = 4 and 8, compared
    after every step by `metabnn verify --learn`'s compare_learning (hidden, signs, M, sr_step)."""
    be = backends.get("c")
    ok, why = be.available()
    if not ok:
        pytest.skip(why)
    model = random_model((100, 48, 32, 10), bits=bits, table_bits=min(bits - 1, 4), adapt_shift=4, meta=2.0,
                         lr_shift=5 if bits == 4 else 3, bshift=2, seed=40 + bits, rounding=1)
    rng = np.random.default_rng(bits)
    images = rng.integers(0, 256, (1000, 100)).astype(np.uint8)
    images[rng.random(images.shape) < 0.6] = 0  # MNIST-like zero runs: skipped pixels draw nothing
    labels = rng.integers(0, 10, 1000)
    assert compare_learning(be, model, images, labels, bank=0, adapt=True) is None
    # and the 1,000 steps really learn: every layer's hidden weights moved, signs flipped
    (_, last), = be.learn(model, images, labels, adapt=True, every=1000)
    for a, b in zip(model.layers, last.layers):
        assert (a.hidden != b.hidden).mean() > 0.05 and not np.array_equal(a.signs, b.signs)


def test_compare_learning_sees_a_step_counter_that_stands_still():
    """compare_learning fails a backend whose weights agree but whose sr_step does not advance."""
    class Frozen:
        name = "frozen"

        def learn(self, model, images, labels, bank=0, adapt=False, every=1):
            for step, m in backends.get("golden").learn(model, images, labels, bank=bank, adapt=adapt):
                m = m.copy()
                for lay in m.layers:
                    lay.sr_step = model.layers[0].sr_step
                yield step, m
    model = random_model((20, 8, 3), rounding=1, seed=1)
    x, y = np.zeros((2, 20), np.uint8), np.zeros(2, np.int64)
    assert "sr_step" in compare_learning(Frozen(), model, x, y, bank=0, adapt=False)


def test_loader_checks_the_rounding_fields(cbackend):
    img = to_bytes(random_model((40, 20, 5), bits=8, table_bits=3, seed=1))
    sto = to_bytes(random_model((40, 20, 5), bits=8, table_bits=3, seed=1, rounding=1, sr_step=5))
    assert cbackend.load_status(sto) == 0
    d1 = 24 + 64  # layer 1
    cases = {"descriptor field out of range": [edit(sto, "B", d1 + 40, 2), edit(img, "<I", d1 + 44, 1),
                                               edit(img, "<I", d1 + 48, 1), edit(sto, "B", d1 + 40, 0)],
             "reserved field not zero": [edit(sto, "B", d1 + 41, 1), edit(sto, "B", d1 + 43, 1),
                                         edit(sto, "B", d1 + 52, 1), edit(img, "B", d1 + 52, 1)]}
    for want, images in cases.items():
        for data in images:
            assert cbackend.status_str(cbackend.load_status(data)) == want
    # any seed and step load when stochastic
    assert cbackend.load_status(edit(sto, "<I", d1 + 48, 0xFFFFFFFF)) == 0


def test_update_of_a_stochastic_layer_without_descriptor_is_a_status(cbackend):
    """mbnn_metaplastic_update on a hand-made stochastic layer with no descriptor (no sr_step to read): a status."""
    from test_kernels import _Layer
    signs = np.zeros(1, np.uint32)
    hidden = np.zeros(32, np.int8)
    table = np.full(1, 32768, np.uint16)
    lay = _Layer(K=32, N=1, W=1, in_kind=1, bits=8, table_bits=0, signs=signs.ctypes.data,
                 hidden=hidden.ctypes.data, table=table.ctypes.data, rounding=1)
    f = cbackend.lib.mbnn_metaplastic_update
    f.argtypes, f.restype = [ctypes.c_void_p] * 4, ctypes.c_int
    x, delta, flips = np.zeros(1, np.uint32), np.ones(1, np.int32), ctypes.c_uint32(0)
    st = f(ctypes.byref(lay), x.ctypes.data, delta.ctypes.data, ctypes.byref(flips))
    assert cbackend.status_str(st) == "null pointer"
    lay.rounding = 0  # the nearest rule needs no descriptor
    assert f(ctypes.byref(lay), x.ctypes.data, delta.ctypes.data, ctypes.byref(flips)) == 0
