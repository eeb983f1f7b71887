"""A trained, exported model (runs/*/model.pt) on MNIST test images through the RTL, bit-exact with
metabnn.sim: 100 images by default, all 10,000 with --runslow. Skips (saying why) when no trained
checkpoint or no MNIST data is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from metabnn.sim import forward

REPO = Path(__file__).resolve().parents[2]


def trained_model():
    ckpts = sorted(REPO.glob("runs/*/model.pt"))
    if not ckpts:
        pytest.skip("no trained checkpoint runs/*/model.pt (run `metabnn train` first)")
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet

    try:
        return from_floatnet(load_floatnet(ckpts[0])), ckpts[0]
    except Exception as e:  # a checkpoint of an older trainer version
        pytest.skip(f"{ckpts[0]} could not be exported: {type(e).__name__}: {str(e)[:200]}")


def mnist_test(n):
    from metabnn.train.data import load

    try:
        ds = load("mnist", None)
    except Exception as e:
        pytest.skip(f"MNIST not available: {e}")
    return ds.test_x[:n].numpy().astype(np.uint8), ds.test_y[:n].numpy()


def run_mnist(n):
    from metabnn.sim.backend_rtl import RTLBackend

    model, ckpt = trained_model()
    x, y = mnist_test(n)
    rtl = RTLBackend(simd=32, pe=8).run_case(model, x, banks=np.zeros(len(x), int))
    s = forward(model.copy(), x)
    bad = np.flatnonzero((rtl["classes"] != s.argmax(1)) | (rtl["scores"] != s.max(1)))
    assert bad.size == 0, f"{ckpt}: {bad.size}/{len(x)} images differ from metabnn.sim, first {bad[0]}"
    # accuracy is the trainer's and exporter's business (a permuted-MNIST run scores low on plain MNIST);
    # here the RTL must only agree with the golden model, image by image
    assert len(rtl["classes"]) == len(y)


def test_trained_model_100_images(hw_tools):
    run_mnist(100)


@pytest.mark.slow
def test_trained_model_all_test_images(hw_tools):
    run_mnist(10_000)
