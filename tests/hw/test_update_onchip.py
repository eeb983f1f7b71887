"""Complete on-chip learning steps: RTL forward, golden deltas, RTL update (hw/rtl/mbnn_update_top.sv).

The engines (issue 4) and one update unit per layer in one Verilator build; the weights start from the
exporter's $readmemh files, the hidden weights and tables come through the host port. After every step
the hidden memories, the engines' weight memories and the flip counters equal metabnn.sim.learn_step's.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from hwtools import BUILD_ROOT, RTL_DIR

from metabnn.export.readmemh import write_readmemh
from metabnn.sim import random_model

TOP = "mbnn_update_top"
SOURCES = [RTL_DIR / f for f in ("mbnn_xnor_popcount.sv", "mbnn_pixel_dot.sv", "mbnn_layer.sv",
                                 "mbnn_update_lane.sv", "mbnn_update.sv", "mbnn_update_top.sv")]


def run_onchip(hw_tools, model, *, simd, pe, steps, seed=0, images=None, labels=None, out=None, tmp_path):
    hb, tk = model.layers[0].bits, model.layers[0].table_bits
    shape = "-".join(str(n) for n in [model.input_size] + [lay.N for lay in model.layers])
    hexdir = BUILD_ROOT / f"update-onchip-hex-{shape}"
    write_readmemh(model, hexdir)  # same shape -> same svh -> the build is reused; hex read at start
    params = dict(SIMD=simd, PE=pe, HB=hb, TK=tk)
    runner, bdir = hw_tools.build(TOP, SOURCES, parameters=params, includes=[hexdir], tag=shape)
    case = tmp_path / "case.pkl"
    with open(case, "wb") as f:
        pickle.dump(dict(model=model, simd=simd, hb=hb, tk=tk, steps=steps, seed=seed, images=images,
                         labels=labels, out=str(out) if out else None), f)
    results = hw_tools.run(runner, TOP, "update.tb_onchip", build_dir=bdir, extra_env={"UPD_CASE": str(case)},
                           test_dir=tmp_path)
    ok, summary = hw_tools.results_ok(results)
    assert ok, summary + f" (log: {tmp_path}/update.tb_onchip.log)"


def test_onchip_learning_steps(hw_tools, tmp_path):
    """40 consecutive on-chip steps of a random 40-24-10 model at SIMD = LANES = 8 (padding in every layer)."""
    model = random_model((40, 24, 10), seed=5)
    out = tmp_path / "flips.npz"
    run_onchip(hw_tools, model, simd=8, pe=4, steps=40, seed=1, out=out, tmp_path=tmp_path)
    flips = np.load(out)["flips"]
    assert flips.shape == (40, 2) and flips.sum() > 0, "the run must actually flip signs to test anything"


@pytest.mark.slow
def test_onchip_learning_trained_mnist(hw_tools, tmp_path, trained_model, mnist):
    """A trained, exported 784-128-128-10 model learning on 20 MNIST training images on chip."""
    images, labels = mnist.train_images[:20], mnist.train_labels[:20]
    run_onchip(hw_tools, trained_model, simd=32, pe=8, steps=20, images=images, labels=labels, tmp_path=tmp_path)
