"""Frozen layers in the learning step (FORMAT.md 4.5 "Frozen layers"): learn_step(frozen=...) keeps those layers'
hidden weights, signs and sr_step bit for bit, and every other layer ends exactly as in the full step (every delta
is computed from the weights before the update, so freezing a layer changes nothing of another's update). The
RTL's conv learning top runs `frozen=conv_layers(model)`."""

import numpy as np
import pytest

from metabnn.sim import learn_step, random_conv_model, random_model
from metabnn.sim.learn import conv_layers


def _state(lay):
    return lay.hidden.copy(), lay.signs.copy(), lay.M.copy(), lay.sr_step


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]


@pytest.mark.parametrize("rounding", [0, 1])
def test_frozen_conv_layers_keep_state_dense_layers_as_full_step(rounding):
    m = random_conv_model((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (12, 10), seed=3, rounding=rounding,
                          lr_shift=2, bshift=1, sr_step=2**32 - 2)
    frozen = conv_layers(m)
    assert frozen == (0, 1)
    rng = np.random.default_rng(5)
    changed_dense = changed_conv_full = 0
    for _ in range(6):
        x, y = rng.integers(0, 256, m.input_size).astype(np.uint8), int(rng.integers(0, 10))
        full, finfo = learn_step(m, x, y)
        part, pinfo = learn_step(m, x, y, frozen=frozen)
        for l, (before, a, b) in enumerate(zip(m.layers, full.layers, part.layers)):
            if l in frozen:
                assert _same(_state(b), _state(before)), f"frozen layer {l} changed"
                assert pinfo.flips[l] == 0
                changed_conv_full += not _same(_state(a), _state(before))
            else:
                assert _same(_state(a), _state(b)), f"layer {l} differs from the full step's"
                assert pinfo.flips[l] == finfo.flips[l]
                assert np.array_equal(pinfo.deltas[l], finfo.deltas[l])
                changed_dense += not _same(_state(b), _state(before))
        # below the lowest plastic layer the backward stops: no delta for the conv layers
        assert pinfo.deltas[0] is None and pinfo.deltas[1] is None
        assert pinfo.predicted == finfo.predicted and np.array_equal(pinfo.error, finfo.error)
        m = part
    # the case is not vacuous: the dense layers learn, and the full step would have changed the conv layers
    assert changed_dense >= 6 and changed_conv_full >= 1


def test_frozen_middle_layer_of_an_mlp():
    """A frozen layer between plastic ones: its deltas are still computed (the layer below needs them), its state
    is kept, the others are the full step's."""
    m = random_model((20, 16, 12, 8, 10), seed=2, lr_shift=1, bshift=1)  # layers 0..3
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 256, 20).astype(np.uint8), 3
    full, finfo = learn_step(m, x, y)
    part, pinfo = learn_step(m, x, y, frozen=[1])
    assert _same(_state(part.layers[1]), _state(m.layers[1]))
    assert not _same(_state(full.layers[1]), _state(m.layers[1]))
    for l in (0, 2, 3):
        assert _same(_state(part.layers[l]), _state(full.layers[l]))
    assert all(np.array_equal(a, b) for a, b in zip(pinfo.deltas, finfo.deltas))


def test_all_frozen_and_bad_indices():
    m = random_model((20, 16, 12, 10), seed=4)  # layers 0..2
    x = np.arange(20, dtype=np.uint8)
    same, info = learn_step(m, x, 1, frozen=range(3))
    assert all(_same(_state(a), _state(b)) for a, b in zip(same.layers, m.layers)) and info.flips == [0, 0, 0]
    with pytest.raises(ValueError, match="frozen layers"):
        learn_step(m, x, 1, frozen=[3])
