"""Complete on-chip learning steps: RTL forward, golden deltas, RTL update (hw/rtl/mbnn_update_top.sv).

The engines (issue 4) and one update unit per layer in one Verilator build (metabnn.backends.rtl.
RTLLearner); the weights start from the exporter's $readmemh files, the hidden weights and tables come
through the host port. After every step the cocotb driver next to this file (tb_onchip.py) compares the RTL
forward's class and score, every hidden memory, every engine weight memory and every flip counter with
metabnn.sim.learn_step, and the update's cycles with max over layers of N * ceil(K / SIMD) + 3 (+ the draws'
pre-roll on a stochastically rounding layer). Stochastic rounding (FORMAT.md 4.4) on some layers of a 4-bit
model, sr_step checked after every step, and away tables G (FORMAT.md 4.2.1) on others. Also here: `verilator
--lint-only -Wall` of the learning top over SIMD, HB, TK and the SR and AWAY masks.
"""

from __future__ import annotations

import numpy as np
import pytest

from metabnn.sim import random_model
from metabnn.backends.rtl import RTLLearner, update_cycles_formula


def test_onchip_learning_steps(hw_tools):
    """40 consecutive on-chip steps of a random 40-24-10 model at SIMD = LANES = 8 (padding in every layer),
    task-aware (2 banks, learning in bank 1) with stream-adaptive normalization on, so the engines' M moves
    while the weights learn."""
    model = random_model((40, 24, 10), banks=2, adapt_shift=3, seed=5)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (40, 40)).astype(np.uint8)
    labels = rng.integers(0, 10, 40)
    res = RTLLearner(simd=8, pe=4).run_steps(model, images, labels, bank=1, adapt=True, strict=True)
    assert res["flips"].shape == (40, 2) and res["flips"].sum() > 0, "the run must flip signs to test anything"
    assert (res["cycles"] == update_cycles_formula(model, 8)).all()


def test_onchip_learning_stochastic_rounding(hw_tools):
    """30 on-chip steps of a 4-bit 40-24-16-10 model whose layers 0 and 2 round stochastically and layer 1 to
    nearest (SR mask 0b101: layer 1's unit has no generators), sr_step starting just below the 2^32 wrap, and
    layers 0 (stochastic) and 1 (nearest) with an away table G (AWAY mask 0b011: layer 2's unit has none): every
    memory, flip counter and sr_step equals metabnn.sim.learn_step's, and the rounding and G decided something
    (the same steps rounded to nearest, or without G, end elsewhere)."""
    from metabnn.sim import learn_step

    model = random_model((40, 24, 16, 10), bits=4, table_bits=2, lr_shift=9, seed=8, rounding=1,
                         sr_step=0xFFFFFFF0)
    mid = model.layers[1]
    mid.rounding, mid.sr_seed, mid.sr_step = 0, 0, 0
    model.layers[0].away = np.array([20000, 0, 32768, 7000], np.uint16)
    model.layers[1].away = np.array([4096, 30000, 12000, 1], np.uint16)
    rng = np.random.default_rng(3)
    images, labels = rng.integers(0, 256, (30, 40)).astype(np.uint8), rng.integers(0, 10, 30)
    res = RTLLearner(simd=8, pe=4).run_steps(model, images, labels, strict=True)
    assert (res["cycles"] == update_cycles_formula(model, 8)).all()
    assert res["sr_steps"][:, 0].tolist() == [(0xFFFFFFF0 + s + 1) & 0xFFFFFFFF for s in range(30)]
    assert (res["sr_steps"][:, 1] == 0).all()
    near, sto, bare = model.copy(), model.copy(), model.copy()
    for lay in near.layers:
        lay.rounding, lay.sr_seed, lay.sr_step = 0, 0, 0
    for lay in bare.layers:
        lay.away = None
    for x, y in zip(images, labels):
        near, _ = learn_step(near, x, int(y))
        sto, _ = learn_step(sto, x, int(y))
        bare, _ = learn_step(bare, x, int(y))
    assert not np.array_equal(near.layers[0].hidden, sto.layers[0].hidden), "the draws must matter here"
    for l in (0, 1):
        assert not np.array_equal(bare.layers[l].hidden, sto.layers[l].hidden), f"G must matter in layer {l}"


def test_learner_rejects_bad_input():
    model = random_model((40, 24, 10), seed=5)
    learner = RTLLearner(simd=8, pe=4)  # the checks come before any build
    with pytest.raises(ValueError, match="labels"):
        learner.run_steps(model, np.zeros((2, 40), np.uint8), np.array([0, 10]))
    with pytest.raises(ValueError, match="expected images"):
        learner.run_steps(model, np.zeros((2, 39), np.uint8), np.array([0, 1]))
    with pytest.raises(ValueError, match="bank"):
        learner.run_steps(model, np.zeros((2, 40), np.uint8), np.array([0, 1]), bank=1)


@pytest.mark.slow
def test_onchip_learning_trained_mnist(hw_tools, trained_model, mnist):
    """The trained, exported 784-128-128-10 model of tests/conftest.py learning on 20 MNIST images on chip."""
    images, labels = _mnist_train(mnist, 20)
    res = RTLLearner(simd=32, pe=8).run_steps(trained_model, images, labels, strict=True)
    assert len(res["cycles"]) == 20


def _mnist_train(mnist, n):
    x = getattr(mnist, "train_x", None)
    y = getattr(mnist, "train_y", None)
    return np.asarray(x[:n]).reshape(n, -1).astype(np.uint8), np.asarray(y[:n]).astype(np.int64)


def test_chip_states_equal_golden_states(hw_tools):
    """The memories read back from the chip after every step equal the golden model's (hidden weights, sign
    bits and, with adaptation on, the engines' M): the comparison `metabnn verify --learn` makes."""
    from metabnn.backends.rtl import RTLBackend
    from metabnn.verify import compare_learning, compare_states, state_of
    from metabnn import backends

    model = random_model((40, 24, 10), banks=2, adapt_shift=3, seed=5)
    rng = np.random.default_rng(4)
    images, labels = rng.integers(0, 256, (6, 40)).astype(np.uint8), rng.integers(0, 10, 6)
    chip = list(RTLLearner(simd=8, pe=4).models(model, images, labels, bank=1, adapt=True))
    gold = list(backends.get("golden").learn(model, images, labels, bank=1, adapt=True))
    assert [s for s, _ in chip] == [s for s, _ in gold] == [1, 2, 3, 4, 5, 6]
    for (step, c), (_, g) in zip(chip, gold):
        assert compare_states(state_of(g), state_of(c)) is None, f"step {step}"
    # the protocol's learn (what verify calls), every second step
    assert compare_learning(RTLBackend(simd=8, pe=4), model, images[:4], labels[:4], bank=0, adapt=False) is None


@pytest.mark.parametrize("simd,hb,tk", [(8, 8, 4), (32, 16, 12), (1, 5, 0)])
def test_update_top_lint_clean(hw_tools, tmp_path, simd, hb, tk):
    """The on-chip learning top (chain of engines + update units) is lint clean too, for a 3-layer model."""
    from metabnn.export.readmemh import write_readmemh

    write_readmemh(random_model((40, 24, 16, 10), seed=0), tmp_path)
    for sr, away in ((0, 0), (0b101, 0b011), (0b111, 0b111)):
        rc, err = hw_tools.lint("mbnn_update_top", {"SIMD": simd, "HB": hb, "TK": tk, "SR": sr, "AWAY": away},
                                includes=[tmp_path])
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, (sr, away, err)


def test_board_top_update_lanes_match_the_report():
    """metabnn fpga --learn reports cycles per learning step with the update lanes the board top builds:
    metabnn.fpga.report.UART_UPDATE must say what hw/fpga/mbnn_uart_top.sv's ULANES, UPIPE, TF_STAGE and HREG
    defaults are."""
    import re
    from pathlib import Path

    from metabnn.fpga.report import UART_UPDATE

    text = (Path(__file__).resolve().parents[2] / "fpga" / "mbnn_uart_top.sv").read_text()
    names = {"ULANES": "ulanes", "UPIPE": "pipe", "TF_STAGE": "tf_stage", "HREG": "hreg"}
    found = {k: int(re.search(rf"parameter int {k} = (\d+)", text).group(1)) for k in names}
    assert found == {k: UART_UPDATE[v] for k, v in names.items()}


@pytest.mark.slow  # its own Verilator build of the learning top: 2-3 min on the shared machine
def test_board_update_build_learns_bit_exactly_in_the_formula_cycles(hw_tools):
    """The update units as the board top builds them (metabnn.fpga.report.UART_UPDATE: one pipelined lane per
    layer, Threefry 2 rounds a stage, the hidden read registered twice, so a pre-roll of 20 / 2 - 1 - 1 = 8
    cycles and one stage more): 6 steps of a 4-bit model whose
    every layer rounds stochastically, every memory, counter and sr_step equal to metabnn.sim's, and each
    update in exactly update_cycles_formula(model, 8, **UART_UPDATE) cycles (the cycles `metabnn fpga --learn`
    reports), which differ from the default build's."""
    from metabnn.backends.rtl import UPDATE_DRIVER, UPDATE_TOP, build_or_reuse, file_list, run_cocotb, sr_mask
    from metabnn.export.readmemh import write_readmemh
    from metabnn.fpga.report import UART_UPDATE

    model = random_model((40, 24, 10), bits=4, table_bits=2, lr_shift=9, seed=8, rounding=1)
    params = {"SIMD": 8, "PE": 2, "HB": 4, "TK": 2, "SR": sr_mask(model), "ULANES": UART_UPDATE["ulanes"],
              "UPIPE": UART_UPDATE["pipe"], "TF_STAGE": UART_UPDATE["tf_stage"], "HREG": UART_UPDATE["hreg"]}
    runner, bdir = build_or_reuse(UPDATE_TOP, file_list(UPDATE_TOP), params, RTLLearner(8, 2).shape(model), model)
    write_readmemh(model, bdir / "hex")  # this build (its parameters) is this test's alone
    rng = np.random.default_rng(4)
    steps = 6
    images = rng.integers(0, 256, (steps, 40)).astype(np.uint8)
    case = dict(model=model, simd=8, hb=4, tk=2, steps=steps, images=images, labels=rng.integers(0, 10, steps),
                strict=False, update=UART_UPDATE)
    res = run_cocotb(runner, bdir, UPDATE_TOP, UPDATE_DRIVER, "UPD_CASE", case)
    assert [str(m) for m in res["mismatches"]] == []
    assert res["changed"].sum() > 0, "the steps must change hidden weights to test anything"
    expect = update_cycles_formula(model, 8, **UART_UPDATE)
    assert expect != update_cycles_formula(model, 8, ulanes=1, pipe=1)  # the Threefry latency is in it
    assert len(res["cycles"]) == steps and (res["cycles"] == expect).all(), (res["cycles"], expect)


@pytest.mark.parametrize("ulanes,upipe", [(1, 1), (2, 0)])
def test_update_top_shared_lanes_lint_clean(hw_tools, tmp_path, ulanes, upipe):
    """The learning top with shared update lanes (ULANES < SIMD) and the pipelined lanes is lint clean."""
    from metabnn.export.readmemh import write_readmemh

    write_readmemh(random_model((40, 24, 16, 10), seed=0), tmp_path)
    for sr in (0, 0b101):
        rc, err = hw_tools.lint("mbnn_update_top", {"SIMD": 8, "ULANES": ulanes, "UPIPE": upipe, "SR": sr},
                                includes=[tmp_path])
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, (sr, err)
