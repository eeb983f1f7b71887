"""Dense ops (sim/ops/dense.py) against their plain references, and the op sequences models run as."""

import numpy as np

from metabnn.sim import random_conv_model, random_model
from metabnn.sim.ops import ops_of


def test_dense_forward_equals_execute():
    m = random_model((37, 33, 17, 10), banks=2, seed=7)
    x = np.random.default_rng(0).integers(0, 256, (5, 37)).astype(np.uint8)
    for bank in (0, 1):
        h = x
        for op in ops_of(m):
            out = op.forward(h, bank, False)[0]
            for i in range(len(h)):
                assert np.array_equal(out[i], op.execute(h[i], bank)), (op.name, i)
            h = out


def test_op_sequences():
    assert [op.name for op in ops_of(random_model((5, 3, 2)))] == ["DensePixels", "DenseBits"]
    conv = random_conv_model((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (7, 10))
    assert [op.name for op in ops_of(conv)] == ["Conv2dPixels", "MaxPool2", "Conv2dBits", "Flatten",
                                                "DenseBits", "DenseBits"]
    assert conv.input_size == 64 and conv.layers[2].K == 6 * 4 * 4 == conv.layers[1].out_size
