"""The session's trained MNIST model (tests/conftest.py `trained_model`) on MNIST test images through the
RTL, bit-exact with metabnn.sim: 100 images by default, all 10,000 with --runslow."""

from __future__ import annotations

import numpy as np
import pytest

from metabnn.sim import forward


def run_mnist(model, mnist, n):
    from metabnn.backends.rtl import RTLBackend

    x, y = mnist.test_x[:n].numpy().astype(np.uint8), mnist.test_y[:n].numpy()
    rtl = RTLBackend(simd=32, pe=8).run_case(model, x, banks=np.zeros(len(x), int))
    s = forward(model.copy(), x)
    bad = np.flatnonzero((rtl["classes"] != s.argmax(1)) | (rtl["scores"] != s.max(1)))
    assert bad.size == 0, f"{bad.size}/{len(x)} images differ from metabnn.sim, first {bad[0]}"
    # a real model: the chip classifies MNIST, not only agrees with the golden model
    assert (rtl["classes"] == y).mean() > 0.8


def test_trained_model_100_images(hw_tools, trained_model, mnist):
    run_mnist(trained_model, mnist, 100)


@pytest.mark.slow
def test_trained_model_all_test_images(hw_tools, trained_model, mnist):
    run_mnist(trained_model, mnist, 10_000)
