"""ONNX == golden on MNIST test images with a trained model (runs/*/model.pt written by `metabnn train`).

100 images in the default run, all 10,000 (every bank) with --runslow. Skipped when no trained
model or no MNIST data is installed; the random-model tests in test_onnx_export.py always run.
"""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from metabnn.errors import DataMissingError  # noqa: E402
from metabnn.export.onnx_export import from_onnx, to_onnx  # noqa: E402
from metabnn.sim import forward, predict  # noqa: E402
from metabnn.sim.backend_onnx import OnnxBackend  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained():
    checkpoints = sorted(REPO.glob("runs/*/model.pt"))
    if not checkpoints:
        pytest.skip("no trained model: run `metabnn train` (writes runs/NAME/model.pt)")
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet
    from metabnn.train.data import load

    try:
        ds = load("mnist")
    except DataMissingError as e:
        pytest.skip(str(e))
    return from_floatnet(load_floatnet(checkpoints[0])), ds.test_x.numpy()


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
