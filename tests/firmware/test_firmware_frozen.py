"""Frozen layers in the C learner (mbnn_set_frozen, FORMAT.md 4.5 "Frozen layers"): with any set of layers frozen,
every learning step ends in the golden model's state (metabnn.sim.learn_step(frozen=...)): the frozen layers
untouched (hidden weights, signs, sr_step), the others as in the full step; bad masks are refused."""

from __future__ import annotations

import numpy as np
import pytest
from test_firmware_conv import CASES, build, images_for, stochastic

from metabnn.export.mbnn import to_bytes
from metabnn.sim import learn_step, random_model
from metabnn.sim.learn import conv_layers


def learn_frozen_and_compare(fw, model, frozen, steps, seed=0):
    """`steps` steps in C and golden with `frozen`; the sealed images equal after every step. Returns the flips."""
    x = images_for(model, steps, seed)
    y = np.random.default_rng(seed).integers(0, model.n_classes, size=steps)
    golden, total = model, 0
    with fw.open(to_bytes(model)) as s:
        s.set_frozen(frozen)
        for t in range(steps):
            predicted, flips = s.learn_step(x[t], int(y[t]))
            golden, info = learn_step(golden, x[t], int(y[t]), frozen=frozen)
            assert (predicted, flips) == (info.predicted, sum(info.flips)), f"step {t}"
            assert s.image() == to_bytes(golden), f"state after step {t}"
            total += flips
    for l in frozen:  # the comparison is not vacuous: the frozen layers kept what they had
        a, b = model.layers[l], golden.layers[l]
        assert np.array_equal(a.hidden, b.hidden) and np.array_equal(a.signs, b.signs) and a.sr_step == b.sr_step
    return total


# (case of test_firmware_conv, frozen layers: "conv" = every conv layer, as the RTL learns a conv net)
FROZEN_CASES = [(0, "conv"), (4, "conv"), (4, (0,)), (4, (1, 3)), (6, (0, 1)), (2, (2,))]


@pytest.mark.parametrize("ci,frozen", FROZEN_CASES)
@pytest.mark.parametrize("rounding", [0, 1])
def test_conv_learning_with_frozen_layers_equals_golden(cbackend, ci, frozen, rounding):
    model = build(CASES[ci], seed=ci)
    if rounding:
        stochastic(model)  # sr_step crosses the u32 wrap: a frozen layer's must not move
    frozen = conv_layers(model) if frozen == "conv" else frozen
    assert learn_frozen_and_compare(cbackend, model, tuple(frozen), 5, seed=ci) > 0


def test_dense_learning_with_frozen_layers_equals_golden(cbackend):
    model = random_model((64, 24, 16, 10), seed=3, rounding=1, sr_step=0xFFFFFFFE)
    for frozen in ((0,), (1,), (0, 1), (2,)):
        assert learn_frozen_and_compare(cbackend, model, frozen, 4, seed=5) > 0


def test_bad_frozen_masks_are_refused(cbackend):
    model = build(CASES[0])
    n = len(model.layers)
    with cbackend.open(to_bytes(model)) as s:
        for bad in (tuple(range(n)), (n,), (31,)):
            with pytest.raises(Exception, match="freeze layers"):
                s.set_frozen(bad)
        s.set_frozen(())  # every layer learns again
