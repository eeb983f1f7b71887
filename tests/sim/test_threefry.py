"""Threefry-2x32-20 (docs/FORMAT.md 4.4): the three known-answer vectors, the vectorised generator against the
scalar reading of the spec, and the per-synapse counter layout."""

import numpy as np
import pytest

import scalar_reference as ref  # tests/sim/scalar_reference.py
from metabnn.sim.threefry import KNOWN_ANSWERS, layer_seed, synapse_draws, threefry2x32_20

@pytest.mark.parametrize("ctr,key,want", KNOWN_ANSWERS)
def test_known_answers(ctr, key, want):
    x0, x1 = threefry2x32_20(*ctr, *key)
    assert (int(x0), int(x1)) == want
    assert ref.threefry2x32_20(*ctr, *key) == want


def test_vectorised_equals_scalar_on_random_inputs():
    rng = np.random.default_rng(7)
    c0, c1, k0, k1 = (rng.integers(0, 1 << 32, 300, dtype=np.uint64).astype(np.uint32) for _ in range(4))
    x0, x1 = threefry2x32_20(c0, c1, k0, k1)
    assert x0.dtype == np.uint32 and x1.dtype == np.uint32
    for n in range(300):
        assert (int(x0[n]), int(x1[n])) == ref.threefry2x32_20(int(c0[n]), int(c1[n]), int(k0[n]), int(k1[n]))


def test_synapse_draws_are_the_counter_of_the_spec():
    K, seed, step = 37, 0xDEADBEEF, 0xFFFFFFFF
    r0, r1 = synapse_draws([0, 5, 2], K, seed, step)
    assert r0.shape == (3, K)
    for row, j in enumerate([0, 5, 2]):
        for i in (0, 1, K - 1):
            assert (int(r0[row, i]), int(r1[row, i])) == ref.threefry2x32_20(j * K + i, step, seed, 0)
    # the draws of a row do not depend on which other rows are drawn
    assert np.array_equal(synapse_draws([5], K, seed, step)[0][0], r0[1])
    # the counter wraps mod 2^32 only past the format's largest layer (65536 x 65536)
    last = synapse_draws([65535], 65536, seed, 0)[0][0, -1]
    assert int(last) == ref.threefry2x32_20(0xFFFFFFFF, 0, seed, 0)[0]


def test_layer_seeds_are_distinct_and_as_specified():
    seeds = [layer_seed(12345, l) for l in range(16)]
    assert len(set(seeds)) == 16
    assert seeds[3] == ref.threefry2x32_20(3, 0, 12345, 0)[0]
