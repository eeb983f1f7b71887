"""On-chip learning of a conv net's dense layers (hw/rtl/mbnn_conv_update_top.sv), the conv layers frozen
(docs/FORMAT.md 4.5 "Frozen layers"), bit-exact with metabnn.sim.learn_step(frozen=conv_layers(model)).

- cocotb (the driver next to this file, tb_conv_onchip.py): a small random conv model (padded convs, a pool, a
  paired conv on sign bits, two dense layers) learning on random images: every step's RTL forward, every dense
  layer's hidden memory, engine weights, counters and sr_step, the update's cycles (= conv_update_cycles), and the
  conv engines' weights unchanged. Default: one small case at SIMD 8; --runslow: SIMD 4 with PE 3, and SIMD 2 with
  stochastic rounding on the output layer (the flattened layer rounds to nearest: the top counts its synapses
  in stream order, so the host refuses SR there). The small and the SR case's output layer has an away table G
  (FORMAT.md 4.2.1).
- the native harness (metabnn.backends.rtl_native.NativeRTLLearner, what `metabnn verify --learn --backends rtl`
  runs on a conv net): the same comparison through metabnn.verify.compare_learning, which must also fail against
  the full golden step (the conv layers would have learned there).
- `verilator --lint-only -Wall` at the shapes above.
"""

from __future__ import annotations

import numpy as np
import pytest

from metabnn.sim import learn_step
from metabnn.sim.learn import conv_layers
from metabnn.sim.random_model import random_conv_model

TOP = "mbnn_conv_update_top"
DRIVER = "mbnn_conv_update_top.tb_conv_onchip"

# (image C x H x W, convs (out, k, stride, pad, pool), dense sizes, SIMD, PE, SR on the output layer, an away table
# G on the output layer: FORMAT.md 4.2.1)
SHAPES = {
    "small-simd8": ((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (12, 10), 8, 2, 0, 1),
    "stride2-simd4-pe3": ((2, 9, 9), ((3, 3, 2, 1, 0), (5, 3, 1, 1, 2)), (7, 5), 4, 3, 0, 0),
    "simd2-sr": ((1, 7, 7), ((3, 3, 1, 1, 2), (4, 2, 1, 0, 0)), (6, 4), 2, 1, 1, 1),
}


def case(name, steps, seed=0):
    img, convs, dense, simd, pe, sr, away = SHAPES[name]
    model = random_conv_model(img, convs, dense, seed=seed + 3, lr_shift=2, bshift=1)
    if away:  # G = F^2 (mirror:2), half up, with one entry 0
        lay = model.layers[-1]
        lay.away = ((lay.table.astype(np.int64) ** 2 + 16384) >> 15).astype(np.uint16)
        lay.away[-1] = 0
    if sr:  # stochastic rounding on the output layer only
        from metabnn.sim.random_model import random_conv_model as rcm

        out = rcm(img, convs, dense, seed=seed + 3, lr_shift=2, bshift=1, rounding=1, sr_step=2**32 - 3).layers[-1]
        lay = model.layers[-1]
        lay.rounding, lay.sr_seed, lay.sr_step = out.rounding, out.sr_seed, out.sr_step
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (steps, model.input_size)).astype(np.uint8)
    y = rng.integers(0, model.n_classes, steps)
    return model, x, y, simd, pe


def run(name, steps):
    from metabnn.backends.rtl import build_or_reuse, run_cocotb
    from metabnn.backends.rtl_native import NativeRTLLearner
    from metabnn.backends.sources import file_list
    from metabnn.export.readmemh import conv_model_svh

    model, x, y, simd, pe = case(name, steps)
    params = NativeRTLLearner(simd, pe).params(model)  # the native build's parameters: HB, TK, the SR and AWAY masks
    runner, bdir = build_or_reuse(TOP, file_list(TOP), params, [conv_model_svh(model, "/")], model)
    res = run_cocotb(runner, bdir, TOP, DRIVER, "CONV_UPD_CASE",
                     dict(model=model, simd=simd, steps=steps, images=x, labels=y, seed=1))
    return model, x, y, res


def test_conv_onchip_learning_small(hw_tools):
    model, x, y, res = run("small-simd8", 8)
    first = len(conv_layers(model))
    assert res["flips"][:, first:].sum() > 0, "the dense layers must flip signs to test anything"
    assert res["flips"][:, :first].sum() == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["stride2-simd4-pe3", "simd2-sr"])
def test_conv_onchip_learning_more_shapes(hw_tools, name):
    model, x, y, res = run(name, 12)
    assert res["flips"].sum() > 0
    if SHAPES[name][5]:
        assert res["sr_steps"][:, -1].tolist() == [(2**32 - 3 + s + 1) & 0xFFFFFFFF for s in range(12)]


def test_native_conv_learning_equals_frozen_golden(hw_tools):
    """The native harness (verify --learn --backends rtl on a conv net): every step equals the golden step with
    the conv layers frozen, and not the full step's (which changes the conv layers)."""
    from metabnn import backends
    from metabnn.backends.rtl_native import NativeRTL, NativeRTLLearner, conv_update_cycles
    from metabnn.verify import compare_states, state_of

    model, x, y, simd, pe = case("small-simd8", 6)
    steps = list(NativeRTLLearner(simd, pe).steps(model, x, y))
    assert [s.cycles for s in steps] == [conv_update_cycles(model, simd)] * 6
    assert sum(sum(s.flipped) for s in steps) > 0
    from metabnn.verify import compare_learning

    assert compare_learning(NativeRTL(simd, pe), model, x, y, bank=0, adapt=False) is None
    full = list(backends.get("golden").learn(model, x, y))
    chip = list(NativeRTL(simd, pe).learn(model, x, y))
    assert compare_states(state_of(full[-1][1]), state_of(chip[-1][1])) is not None
    # one step: the dense layers equal the full step's too (only the conv layers differ)
    g, _ = learn_step(model, x[0], int(y[0]))
    for l in range(len(conv_layers(model)), len(model.layers)):
        assert np.array_equal(g.layers[l].hidden, chip[0][1].layers[l].hidden)


@pytest.mark.parametrize("name", list(SHAPES))
def test_conv_update_top_lint_clean(hw_tools, tmp_path, name):
    from metabnn.backends.rtl_native import NativeRTLLearner
    from metabnn.export.readmemh import write_readmemh

    model, _, _, simd, pe = case(name, 1)
    write_readmemh(model, tmp_path)
    params = NativeRTLLearner(simd, pe).params(model)
    rc, err = hw_tools.lint(TOP, params, includes=[tmp_path])
    assert rc == 0 and "%Warning" not in err and "%Error" not in err, err
