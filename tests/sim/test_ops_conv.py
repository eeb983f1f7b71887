"""Binary conv2d (sim/ops/conv2d.py, FORMAT.md 3.3): the vectorised op against its plain per-position reference,
the border rule (out-of-image taps contribute nothing) worked by hand, and the learning pieces against loops."""

import numpy as np
import pytest

from metabnn.sim import random_conv_model
from metabnn.sim.ops import Conv2dBits, Conv2dPixels, ops_of

GEOMS = [  # (image, convs): kernel 1..3, stride 1..2, pad 0..2, pool on/off, odd sides
    ((1, 7, 7), ((3, 3, 1, 1, 2), (5, 3, 1, 1, 0))),
    ((2, 9, 6), ((4, 3, 2, 0, 0), (3, 2, 1, 1, 2))),
    ((1, 5, 5), ((2, 1, 1, 0, 2), (33, 3, 1, 2, 0))),
    ((3, 6, 8), ((7, 2, 2, 1, 0), (4, 3, 1, 1, 2))),
]


def _images(seed, n, size):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size)).astype(np.uint8)
    x[0] = 255
    return x


@pytest.mark.parametrize("image,convs", GEOMS)
def test_forward_equals_execute(image, convs):
    m = random_conv_model(image, convs, (10,), seed=len(convs) + image[1], banks=2)
    imgs = _images(1, 4, m.input_size)
    for bank in (0, 1):
        x = imgs
        for op in ops_of(m):
            out = op.forward(x, bank, False)[0] if op.weighted else op.forward(x)
            for i in range(len(x)):
                ref = op.execute(x[i], bank) if op.weighted else op.execute(np.asarray(x[i]))
                assert np.array_equal(out[i], ref), (op.name, i)
            x = out


def test_border_position_sums_in_image_taps_only():
    """3x3, pad 1, every weight +1, every pixel 255: a corner reads 4 pixels, an edge 6, the inside 9."""
    m = random_conv_model((1, 4, 4), ((1, 3, 1, 1, 0),), (2,), seed=3)
    lay = m.layers[0]
    lay.hidden[:] = 1
    lay.signs = np.full_like(lay.signs, (1 << lay.K) - 1)
    acc = Conv2dPixels(lay).acc(np.full((1, 16), 255, np.uint8))[0, 0]
    assert acc.tolist() == [[1020, 1530, 1530, 1020], [1530, 2295, 2295, 1530],
                            [1530, 2295, 2295, 1530], [1020, 1530, 1530, 1020]]


def test_bits_reference_masks_the_padding():
    """On +-1 maps the reference is K_in - 2 popcount((a ^ w) & mask): equal to the sum over in-image taps."""
    m = random_conv_model((1, 6, 6), ((4, 3, 1, 1, 0), (3, 3, 1, 1, 0)), (5,), seed=9)
    op = ops_of(m)[1]
    assert isinstance(op, Conv2dBits)
    x = np.where(np.random.default_rng(0).random((1, 4, 6, 6)) < 0.5, 1, -1).astype(np.int8)
    xm = x[0]
    for oy, ox in [(0, 0), (0, 3), (5, 5), (2, 2)]:
        vals, inside = op.taps(xm, oy, ox)
        direct = op.layer.weights_pm1(np.int64) @ np.where(inside, vals, 0)
        assert np.array_equal(op.reference_acc(vals, inside), direct)
        assert np.array_equal(op.acc(x)[0][:, oy, ox], direct)


@pytest.mark.parametrize("image,convs", GEOMS)
def test_back_input_and_gradient_equal_loops(image, convs):
    m = random_conv_model(image, convs, (10,), seed=5)
    rng = np.random.default_rng(2)
    x = _images(3, 1, m.input_size)
    for op in ops_of(m):
        if op.weighted and op.layer.conv is not None:
            g = op.layer.conv
            delta = rng.integers(-32767, 32768, (op.layer.N, g.out_h, g.out_w))
            delta[rng.random(delta.shape) < 0.3] = 0
            back, grad = op.execute_learning(x[0], delta)
            assert np.array_equal(op.back_input(delta), back)
            assert np.array_equal(op.gradient(x[0], delta, np.arange(op.layer.N)), grad)
        x = op.forward(x, 0, False)[0] if op.weighted else op.forward(x)
