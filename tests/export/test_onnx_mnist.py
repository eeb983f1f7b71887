"""ONNX == golden on MNIST test images with a trained model (the session's `trained_model` fixture).

100 images in the default run, all 10,000 (every bank) with --runslow. Skipped only when MNIST is
not installed; the random-model tests in test_onnx_export.py always run.
"""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from metabnn.export.onnx_export import from_onnx, to_onnx  # noqa: E402
from metabnn.sim import forward, predict  # noqa: E402
from metabnn.backends.onnx import OnnxBackend  # noqa: E402

@pytest.fixture(scope="module")
def trained(trained_model, mnist):
    """The session's trained MNIST model (tests/conftest.py) and the MNIST test images."""
    return trained_model, mnist.test_x.numpy()


def check(model, x, bank):
    labels, scores = OnnxBackend().run(model, x, bank)
    np.testing.assert_array_equal(scores, forward(model, x, bank=bank))
    np.testing.assert_array_equal(labels, predict(model, x, bank=bank))


def test_onnx_equals_golden_on_100_mnist_images(trained):
    model, x = trained
    check(model, x[:100], 0)
    back = from_onnx(to_onnx(model, 0).SerializeToString())
    np.testing.assert_array_equal(predict(back, x[:100]), predict(model, x[:100]))


@pytest.mark.slow
def test_onnx_equals_golden_on_all_mnist_test_images_every_bank(trained):
    model, x = trained
    assert len(x) == 10000
    for bank in range(model.n_banks):
        check(model, x, bank)
