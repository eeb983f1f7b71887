"""The on-chip metaplastic update unit (hw/rtl/mbnn_update.sv) against metabnn.sim, under cocotb + Verilator.

cocotb tests (first half): random states (saturation limits, every table bucket edge, rounding ties), sign
writes under random sgn_ready back-pressure, reset in the middle of a pass, learning trajectories. Their
parameters come from the environment, set by the pytest functions (second half): UPD_K, UPD_N, UPD_PIXELS,
UPD_HB, UPD_TK, UPD_LANES, UPD_SR, UPD_TF_STAGE, UPD_ULANES, UPD_PIPE, UPD_HREG (the build), UPD_SEED, UPD_PASSES, UPD_TRAJ_STEPS / UPD_TRAJ_SIZES / UPD_TRAJ_LAYER /
UPD_TRAJ_MODEL for the trajectory test.

Each HDL parameter set is one Verilator build (per-user cache, reused while the sources are unchanged).
Default: four builds covering both layer kinds, b = 2/8/16, k = 1/4/5, LANES = 4/8/32 with and without row
padding, plus a 1,000-step learning trajectory per layer of a 32-16-10 model. `--runslow` adds wider sweeps
(k = 0, k = 12, LANES = 1/64) and longer trajectories.

Stochastic rounding (SR = 1 builds, FORMAT.md 4.4): every pass loads the layer's rounding bit, sr_seed and
sr_step (steps near the 2^32 wrap among them), the golden pass draws with metabnn.sim.threefry.synapse_draws,
the pass takes TLAT - 1 cycles more (the draws' pre-roll) and sr_step_q must have counted it; rounding 0 on
the same hardware must be the nearest pass and count nothing. The trajectory runs learn_step on a model whose
layers round stochastically.

Away table (AWAY = 1 builds, FORMAT.md 4.2.1, UPD_AWAY=1): every pass also writes a random G (arbitrary Q15, an
increasing f_meta-like one, or all 32768, which must give the pass without G) through the table port with tbl_away
high, and the golden pass scales the pushes away from zero by it; on a build without G the same writes must
change nothing (F stays). The trajectory then runs learn_step on a model whose layers carry G.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402

from metabnn.sim import learn_step, metaplastic_update, random_model  # noqa: E402
from metabnn.sim.bits import pack_bits  # noqa: E402
from metabnn.sim.threefry import synapse_draws  # noqa: E402
from update.chunks import chunks_to_hidden, signs_to_chunks  # noqa: E402
from update.driver import UpdateDriver  # noqa: E402

LATENCY = 3  # cycles from start to done = N * ceil(K / LANES) * T + LATENCY + 4 * PIPE + HREG (sgn_ready high)


def slices() -> int:
    """T: cycles per chunk, LANES / ULANES (the lanes built; mbnn_update.sv)."""
    lanes = env_int("UPD_LANES")
    return lanes // env_int("UPD_ULANES", lanes)


def pipe_latency() -> int:
    """The stages PIPE = 1 adds (the registered slice and the lane's P1, P2, P3) and HREG = 1's (the hidden read's
    second register)."""
    return 4 * env_int("UPD_PIPE", 0) + hreg()


def hreg() -> int:
    return env_int("UPD_HREG", 0)


def env_int(name: str, default: int | None = None) -> int:
    v = os.environ.get(name)
    if v is None:
        if default is None:
            raise KeyError(f"{name} not set")
        return default
    return int(v)


def params():
    return dict(K=env_int("UPD_K"), N=env_int("UPD_N"), pixels=bool(env_int("UPD_PIXELS")), hb=env_int("UPD_HB"),
                tk=env_int("UPD_TK"), lanes=env_int("UPD_LANES"))


def sr_build() -> bool:
    return env_int("UPD_SR", 0) == 1


def away_build() -> bool:
    return env_int("UPD_AWAY", 0) == 1


def away_table(rng: np.random.Generator, tk: int, k: int) -> np.ndarray:
    """A G for pass k: arbitrary Q15 with the extremes, an increasing one (mirror-like: small near h = 0), or
    all 32768 (the rule without G)."""
    kind = k % 3
    if kind == 0:
        g = rng.integers(0, 32769, size=1 << tk)
        g[rng.integers(0, 1 << tk)] = 0
        g[rng.integers(0, 1 << tk)] = 16384
        return g
    if kind == 1:
        return np.sort(rng.integers(0, 32769, size=1 << tk))
    return np.full(1 << tk, 32768)


def pre_roll() -> int:
    """Extra cycles of a pass on SR hardware: the Threefry latency minus one, minus HREG's stage (the slice meets
    its draws a stage later), never below 0 (mbnn_update.sv)."""
    return max(20 // env_int("UPD_TF_STAGE", 4) - 1 - hreg(), 0) if sr_build() else 0


def sr_state(rng: np.random.Generator, k: int):
    """(rounding, sr_seed, sr_step) for pass k on SR hardware (None without): mostly stochastic, steps at
    0, random, and just below the 2^32 wrap; every fourth pass rounds to nearest on the same hardware."""
    if not sr_build():
        return None
    step = [0, 0xFFFFFFFF, int(rng.integers(0, 1 << 32)), 0xFFFFFFFE][k % 4]
    return (0 if k % 4 == 3 else 1), int(rng.integers(0, 1 << 32)), step


async def load_sr(drv: UpdateDriver, sr) -> None:
    rnd, seed, step = sr
    drv.set("sr_rnd_d", rnd)
    drv.set("sr_seed_d", seed)
    drv.set("sr_step_d", step)
    drv.set("sr_we", 1)
    await drv.edge()
    drv.set("sr_we", 0)
    assert drv.get("sr_step_q") == step, "sr_step_q reads back what was written"


async def start(dut):
    p = params()
    drv = UpdateDriver(dut, **p, hreg=hreg())
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await drv.reset()
    return drv


def boundary_values(hb: int, tk: int) -> list[int]:
    """Saturation limits, 0/+-1, and |h| = i*2^tshift and i*2^tshift - 1 for every table bucket edge."""
    hmin, hmax = -(1 << (hb - 1)), (1 << (hb - 1)) - 1
    ts = hb - 1 - tk
    vals = {hmin, hmax, hmin + 1, hmax - 1, 0, 1, -1}
    for i in range(1, (1 << tk) + 1):
        for m in (i << ts, (i << ts) - 1):
            for v in (m, -m):
                if hmin <= v <= hmax:
                    vals.add(v)
    return sorted(vals)


# lr_shift of pass k: LR_SHIFTS[k % len]; 0 and 1 are the edge cases of rsr, small shifts
# saturate u at +-65535 for pixel layers, 24..31 shift every gradient to zero
LR_SHIFTS = [1, 0, 5, 2, 11, 31, 8, 3, 17, 24, 14, 6]
# entries whose products |u| * F can land exactly on the rounding half 2^14 (mod 2^15)
HALF_ENTRIES = [16384, 8192, 12288, 24576]


def random_state(rng: np.random.Generator, p: dict, k: int = 0):
    K, N, hb, tk = p["K"], p["N"], p["hb"], p["tk"]
    hmin, hmax = -(1 << (hb - 1)), (1 << (hb - 1)) - 1
    hidden = rng.integers(hmin, hmax + 1, size=(N, K))
    special = np.array(boundary_values(hb, tk))
    # about half the synapses sit on a boundary value (every one appears when N*K allows)
    flat = hidden.reshape(-1)
    pos = rng.permutation(flat.size)[: flat.size // 2]
    vals = np.concatenate([special, rng.choice(special, size=max(0, pos.size - special.size))])[: pos.size]
    flat[pos] = vals
    kind = rng.integers(0, 3)
    if kind == 0:  # arbitrary Q15 entries, with the extremes
        table = rng.integers(0, 32769, size=1 << tk)
        table[rng.integers(0, 1 << tk)] = 32768
        table[rng.integers(0, 1 << tk)] = 0
    elif kind == 1:  # a decreasing f_meta-like table
        table = np.sort(rng.integers(0, 32769, size=1 << tk))[::-1].copy()
        table[0] = 32768
    else:  # plain BNN (m = 0)
        table = np.full(1 << tk, 32768)
    if kind != 2:
        for f in HALF_ENTRIES[: max(1, (1 << tk) // 2)]:
            table[rng.integers(0, 1 << tk)] = f
    if p["pixels"]:
        x = rng.integers(0, 256, size=K)
        x[rng.integers(0, K)] = 255
        x[rng.integers(0, K)] = 0
    else:
        x = rng.choice([-1, 1], size=K)
    mode = rng.integers(0, 3)
    if mode == 0:
        delta = rng.integers(-32767, 32768, size=N)
    elif mode == 1:  # small deltas: rounding ties and zero updates
        delta = rng.integers(-300, 301, size=N)
    else:
        delta = rng.choice([-32767, 32767, 0, 1, -1, 16384, -16384], size=N)
    delta[rng.integers(0, N)] = 32767
    delta[rng.integers(0, N)] = -32767
    lr_shift = LR_SHIFTS[k % len(LR_SHIFTS)]
    return hidden.astype(np.int64), table, x, delta, lr_shift


async def check_pass(drv: UpdateDriver, hidden, table, x, delta, lr_shift, ready_prob, rng, *, load_hidden=True,
                     sr=None, away=None):
    """One pass against metaplastic_update; sr = (rounding, sr_seed, sr_step) is loaded first (SR builds); away:
    a G written with tbl_away, which the golden pass uses only on an AWAY build (else it must change nothing)."""
    p = drv
    draws = synapse_draws(range(p.N), p.K, sr[1], sr[2]) if sr is not None and sr[0] else None
    expect = metaplastic_update(hidden, x, delta, lr_shift=lr_shift, table=table, bits=p.hb,
                                table_bits=p.tk, draws=draws,
                                away=away if away_build() else None).astype(np.int64)
    if away is not None and (away == 32768).all():  # G = 1 everywhere is the rule without G (4.2.1)
        assert np.array_equal(expect, metaplastic_update(hidden, x, delta, lr_shift=lr_shift, table=table,
                                                         bits=p.hb, table_bits=p.tk, draws=draws))
    if load_hidden:
        await drv.load_hidden(hidden)
    await drv.load_table(table)
    if away is not None:
        await drv.load_table(away, away=True)
    await drv.load_x(x)
    await drv.load_deltas(delta)
    drv.set("lr_shift", lr_shift)
    if sr is not None:
        await load_sr(drv, sr)
    cycles, writes = await drv.run_pass(ready_prob, rng)
    depth = drv.N * drv.G
    if ready_prob >= 1.0:
        want = depth * slices() + LATENCY + pipe_latency() + pre_roll()
        assert cycles == want, (f"cycles {cycles} != N*G*{slices()} + {LATENCY} + {pipe_latency()} + {pre_roll()} "
                                f"= {want}")
    if sr is not None:
        assert drv.get("sr_step_q") == (sr[2] + sr[0]) & 0xFFFFFFFF, "sr_step counts the pass when stochastic"
    assert sorted(writes) == list(range(depth)), "every sign chunk is written exactly once"
    want_signs = signs_to_chunks(expect, drv.lanes)
    bad = [a for a in range(depth) if writes[a] != want_signs[a]]
    assert not bad, f"sign chunks differ at {bad[:8]}"
    got = await drv.read_hidden()
    if not np.array_equal(got, expect):
        j, i = np.argwhere(got != expect)[0]
        raise AssertionError(f"hidden[{j},{i}]: rtl {got[j, i]} golden {expect[j, i]} (h={hidden[j, i]}, "
                             f"x={x[i]}, delta={delta[j]}, lr_shift={lr_shift}, F={list(table)}, "
                             f"G={None if away is None else list(away)})")
    changed, flipped = drv.counters()
    assert changed == int(np.count_nonzero(expect != hidden)), "n_changed"
    assert flipped == int(np.count_nonzero((expect >= 0) != (hidden >= 0))), "n_flipped"
    return expect, cycles, writes


@cocotb.test()
async def random_states(dut):
    """Random hidden (limits and every table edge), tables, inputs, deltas, lr_shift; with back-pressure."""
    drv = await start(dut)
    seed = env_int("UPD_SEED", 1)
    rng, prng = np.random.default_rng(seed), random.Random(seed)
    for k in range(env_int("UPD_PASSES", 6)):
        hidden, table, x, delta, lr_shift = random_state(rng, params(), k)
        await check_pass(drv, hidden, table, x, delta, lr_shift, 1.0 if k % 2 == 0 else 0.6, prng,
                         sr=sr_state(rng, k), away=away_table(rng, drv.tk, k))
    # a second pass on the state the first left in memory (no reload): the memory carries over
    hidden, table, x, delta, lr_shift = random_state(rng, params(), 4)
    after, _, _ = await check_pass(drv, hidden, table, x, delta, lr_shift, 1.0, prng, sr=sr_state(rng, 0),
                                   away=away_table(rng, drv.tk, 0))
    _, table, x, delta, lr_shift = random_state(rng, params(), 7)
    await check_pass(drv, after, table, x, delta, lr_shift, 1.0, prng, load_hidden=False, sr=sr_state(rng, 1),
                     away=away_table(rng, drv.tk, 1))


@cocotb.test()
async def reset_mid_pass(dut):
    """A synchronous reset in the middle of a pass stops it and clears the counters; the next pass is exact."""
    drv = await start(dut)
    rng, prng = np.random.default_rng(7), random.Random(7)
    hidden, table, x, delta, lr_shift = random_state(rng, params(), 2)
    await drv.load_hidden(hidden)
    await drv.load_table(table)
    await drv.load_x(x)
    await drv.load_deltas(delta)
    drv.set("lr_shift", lr_shift)
    drv.set("start", 1)
    await drv.edge()
    drv.set("start", 0)
    await drv.edge(max(1, drv.N * drv.G // 2))
    drv.set("rst", 1)
    await drv.edge()
    drv.set("rst", 0)
    await drv.edge()
    assert drv.get("busy") == 0 and drv.get("sgn_we") == 0, "reset stops the pass"
    assert drv.counters() == (0, 0), "reset clears the counters"
    if sr_build():
        assert drv.get("sr_step_q") == 0, "reset clears sr_step"
    await check_pass(drv, hidden, table, x, delta, lr_shift, 1.0, prng, sr=sr_state(rng, 2),
                     away=away_table(rng, drv.tk, 0))


@cocotb.test()
async def trajectory(dut):
    """Consecutive learning steps of metabnn.sim.learn_step; the RTL memory carries over step to step."""
    steps = env_int("UPD_TRAJ_STEPS", 0)
    if steps == 0:
        return
    p = params()
    layer = env_int("UPD_TRAJ_LAYER")
    path = os.environ.get("UPD_TRAJ_MODEL", "")
    if path:
        from metabnn.export import load
        model = load(path)
    else:
        sizes = tuple(int(s) for s in os.environ["UPD_TRAJ_SIZES"].split(","))
        model = random_model(sizes, bits=p["hb"], table_bits=p["tk"], seed=env_int("UPD_SEED", 1),
                             rounding=int(sr_build()), sr_step=env_int("UPD_SR_STEP", 0))
        if away_build():  # G = F^2 (mirror:2, FORMAT.md 4.2.1): a table that is neither all 32768 nor F
            for m_lay in model.layers:
                m_lay.away = ((m_lay.table.astype(np.int64) ** 2 + 16384) >> 15).astype(np.uint16)
    lay = model.layers[layer]
    assert (lay.K, lay.N, lay.bits, lay.table_bits, lay.in_kind == 0) == (p["K"], p["N"], p["hb"], p["tk"], p["pixels"]), \
        "the build does not match the model layer"
    drv = await start(dut)
    rng = np.random.default_rng(env_int("UPD_SEED", 1) + 1000)
    await drv.load_hidden(lay.hidden.astype(np.int64))
    await drv.load_table(lay.table)
    assert (lay.away is not None) == away_build(), "an AWAY build runs a model whose layers have G, and only one"
    if lay.away is not None:
        await drv.load_table(lay.away, away=True)
    drv.set("lr_shift", lay.lr_shift)
    if sr_build():
        assert lay.rounding == 1, "an SR trajectory needs a model whose layers round stochastically"
        await load_sr(drv, (lay.rounding, lay.sr_seed, lay.sr_step))
    total_flips = 0
    for step in range(steps):
        image = rng.integers(0, 256, size=model.input_size).astype(np.uint8)
        label = int(rng.integers(0, model.n_classes))
        model, info = learn_step(model, image, label)
        want = model.layers[layer]
        await drv.load_x(info.inputs[layer])
        await drv.load_deltas(info.deltas[layer])
        cycles, writes = await drv.run_pass()
        signs = chunks_to_hidden([writes[a] for a in range(drv.N * drv.G)], drv.N, drv.K, 1, drv.lanes)
        assert np.array_equal(pack_bits(signs != 0), want.signs), f"step {step}: packed signs differ"
        got = await drv.read_hidden()
        assert np.array_equal(got, want.hidden.astype(np.int64)), f"step {step}: hidden weights differ"
        changed, flipped = drv.counters()
        assert flipped == info.flips[layer], f"step {step}: flip counter {flipped} != {info.flips[layer]}"
        total_flips += flipped
        if sr_build():
            assert drv.get("sr_step_q") == want.sr_step, f"step {step}: sr_step {drv.get('sr_step_q')} != {want.sr_step}"
    dut._log.info("trajectory layer %d: %d steps bit-exact, %d sign flips in all", layer, steps, total_flips)


# ==================================================================================================== pytest: builds and runs
TOP = "mbnn_update"

# (K, N, PIXELS, HB, TK, LANES)
FAST = [
    (32, 16, 1, 8, 4, 8),    # first layer of the 32-16-10 trajectory model
    (16, 10, 0, 8, 4, 8),    # its output layer (bit inputs)
    (37, 5, 1, 16, 5, 4),    # b = 16: the +-65535 saturation of u shows (pixels), padding lanes (37 = 9 * 4 + 1)
    (40, 3, 0, 2, 1, 32),    # b = 2, tshift = 0, LANES = 32 with 24 padding lanes
]
SLOW = [
    (100, 4, 0, 12, 11, 64),  # LANES wider than a 32-bit word
    (9, 3, 1, 16, 12, 1),     # the largest table, one synapse per cycle
    (21, 6, 0, 5, 0, 2),      # k = 0: one table entry
    (64, 32, 1, 8, 4, 16),
]


def _env(K, N, PIXELS, HB, TK, LANES, **extra):
    env = dict(UPD_K=K, UPD_N=N, UPD_PIXELS=PIXELS, UPD_HB=HB, UPD_TK=TK, UPD_LANES=LANES)
    env.update(extra)
    return env


def _run(hw_tools, cfg, testcase, tf_stage=None, ulanes=None, pipe=0, hreg=0, away=0, **extra):
    """tf_stage: an SR = 1 build with Threefry stages of that many rounds (None: the default unit, no SR);
    ulanes: the lanes built (None: LANES, the default), pipe: PIPE, hreg: HREG, away: AWAY (the table G)."""
    K, N, PIXELS, HB, TK, LANES = cfg
    params = dict(K=K, N=N, PIXELS=PIXELS, HB=HB, TK=TK, LANES=LANES)
    if tf_stage is not None:
        params.update(SR=1, TF_STAGE=tf_stage)
        extra.update(UPD_SR=1, UPD_TF_STAGE=tf_stage)
    if ulanes is not None:
        params.update(ULANES=ulanes)
        extra.update(UPD_ULANES=ulanes)
    if pipe:
        params.update(PIPE=1)
        extra.update(UPD_PIPE=1)
    if hreg:
        params.update(HREG=1)
        extra.update(UPD_HREG=1)
    if away:
        params.update(AWAY=1)
        extra.update(UPD_AWAY=1)
    runner, bdir = hw_tools.build(TOP, params)
    hw_tools.run(runner, bdir, TOP, TOP, testcase=testcase, env=_env(*cfg, **extra))


def _id(c):
    return "K{}N{}{}b{}k{}L{}".format(c[0], c[1], "px" if c[2] else "bit", *c[3:])


# FAST[1] (bit inputs, b = 8, nearest) is built with the away table G (AWAY = 1); the others without it, where the
# G writes must change nothing
AWAY_FAST = {FAST[1]}


@pytest.mark.parametrize("cfg", FAST, ids=_id)
def test_update_random_states(hw_tools, cfg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], away=int(cfg in AWAY_FAST), UPD_SEED=cfg[0] * 7 + cfg[5],
         UPD_PASSES=8)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", SLOW, ids=_id)
def test_update_random_states_sweep(hw_tools, cfg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], UPD_SEED=cfg[0] + cfg[4], UPD_PASSES=24)


@pytest.mark.parametrize("layer", [0, 1])
def test_update_trajectory_1000_steps(hw_tools, layer):
    """1,000 consecutive learn_step()s of a random 32-16-10 model, layer by layer (each layer's
    update only depends on its own inputs and deltas, which the golden step supplies); layer 1 on the AWAY
    build of random_states, its model's layers with G = F^2 (mirror:2)."""
    _run(hw_tools, FAST[layer], ["trajectory"], away=int(FAST[layer] in AWAY_FAST), UPD_TRAJ_STEPS=1000,
         UPD_TRAJ_SIZES="32,16,10", UPD_TRAJ_LAYER=layer, UPD_SEED=3)


# stochastic rounding: (cfg, Threefry rounds per stage): pre-roll 4, 19 (longer than a row here) and 0 cycles
SR_FAST = [(FAST[0], 4), ((37, 5, 1, 16, 5, 4), 1), ((40, 3, 0, 2, 1, 32), 20)]


@pytest.mark.parametrize("cfg,tf_stage", SR_FAST, ids=lambda v: _id(v) if isinstance(v, tuple) else f"tf{v}")
def test_update_sr_random_states(hw_tools, cfg, tf_stage):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], tf_stage, UPD_SEED=cfg[0] * 5 + cfg[5], UPD_PASSES=8)


# the away table with stochastic rounding on random states (the b = 4 trajectory below is the default one)
@pytest.mark.slow
@pytest.mark.parametrize("cfg,tf_stage", [(FAST[0], 4), ((40, 3, 0, 2, 1, 32), 20), ((32, 16, 1, 4, 2, 8), 4)],
                         ids=lambda v: _id(v) if isinstance(v, tuple) else f"tf{v}")
def test_update_sr_away_random_states(hw_tools, cfg, tf_stage):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], tf_stage, away=1, UPD_SEED=cfg[0] * 11 + cfg[5],
         UPD_PASSES=12)


# (layer of the 32-16-10 model, cfg at b = 8 and at b = 4, AWAY)
# (the b = 4 output layer is one more build: --runslow); the b = 4 pixel layer learns with the away table G
SR_TRAJ = [(0, FAST[0], 0), (1, FAST[1], 0), (0, (32, 16, 1, 4, 2, 8), 1),
           pytest.param(1, (16, 10, 0, 4, 2, 8), 1, marks=pytest.mark.slow),
           pytest.param(0, (32, 16, 1, 4, 2, 8), 0, marks=pytest.mark.slow)]


@pytest.mark.parametrize("layer,cfg,away", SR_TRAJ, ids=lambda v: _id(v) if isinstance(v, tuple) else f"{v}")
def test_update_sr_trajectory_1000_steps(hw_tools, layer, cfg, away):
    """1,000 learn_step()s of a 32-16-10 model rounding stochastically (sr_step from just below the 2^32 wrap),
    at b = 8 and b = 4 (with G = F^2 where away), layer by layer: hidden weights, signs, flips and sr_step equal
    after every step."""
    _run(hw_tools, cfg, ["trajectory"], 4, away=away, UPD_TRAJ_STEPS=1000, UPD_TRAJ_SIZES="32,16,10",
         UPD_TRAJ_LAYER=layer, UPD_SEED=5, UPD_SR_STEP=0xFFFFFF00)


# shared lanes (ULANES < LANES: a chunk in LANES / ULANES cycles), the pipelined lane (PIPE) and the hidden read
# registered twice (HREG), the settings of the FPGA builds among them (mbnn_uart_top: ULANES 1, PIPE 1, TF_STAGE
# 2, HREG 1): (cfg, ULANES, PIPE, Threefry stage or None, HREG)
# Each set is a build of its own (most of a test's time): three in the default suite, the rest with --runslow.
SLOW_SET = pytest.mark.slow
SHARED = [
    (FAST[0], 1, 1, 2, 1),                 # 8 lanes through one, pipelined, SR: the board top's unit
    pytest.param((37, 5, 1, 16, 5, 4), 2, 0, None, 0, marks=SLOW_SET),  # padding in the last slice only
    ((40, 3, 0, 2, 1, 32), 8, 1, None, 1),  # whole slices of padding (24 padding lanes = 3 slices of 8)
    pytest.param((37, 5, 1, 16, 5, 4), 1, 1, 4, 0, marks=SLOW_SET),     # SR: the feed pointer walks the slices
    pytest.param((40, 3, 0, 2, 1, 32), 8, 0, 1, 0, marks=SLOW_SET),     # SR, a pre-roll of 19, feed steps back
    ((40, 3, 0, 2, 1, 32), 4, 0, 20, 1),   # SR with HREG and a Threefry latency of 1: the draws registered
]


def _values(case):
    """A parameter set's values, whether or not it is a pytest.param (marked slow)."""
    return tuple(case.values) if hasattr(case, "values") else case


def _sid(v):
    return _id(v) if isinstance(v, tuple) else str(v)


@pytest.mark.parametrize("cfg,ulanes,pipe,tf_stage,hreg", SHARED, ids=_sid)
def test_update_shared_lanes(hw_tools, cfg, ulanes, pipe, tf_stage, hreg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], tf_stage, ulanes, pipe, hreg,
         UPD_SEED=cfg[0] * 3 + ulanes, UPD_PASSES=8)


def test_update_shared_trajectory(hw_tools):
    """1,000 learn_step()s of the 32-16-10 model's first layer on the board top's unit (ULANES 1, PIPE 1,
    TF_STAGE 2, HREG 1), stochastic rounding: hidden weights, signs, flips and sr_step after every step."""
    _run(hw_tools, FAST[0], ["trajectory"], 2, 1, 1, 1, UPD_TRAJ_STEPS=1000, UPD_TRAJ_SIZES="32,16,10",
         UPD_TRAJ_LAYER=0, UPD_SEED=9, UPD_SR_STEP=0xFFFFFF00)


LINT_SETS = FAST + SLOW


def test_update_lint_clean(hw_tools):
    """`verilator --lint-only -Wall` prints nothing for every parameter set."""
    for K, N, PIXELS, HB, TK, LANES in LINT_SETS:
        rc, err = hw_tools.lint(TOP, dict(K=K, N=N, PIXELS=PIXELS, HB=HB, TK=TK, LANES=LANES))
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, err
    for (K, N, PIXELS, HB, TK, LANES), tf in SR_FAST:
        rc, err = hw_tools.lint(TOP, dict(K=K, N=N, PIXELS=PIXELS, HB=HB, TK=TK, LANES=LANES, SR=1, TF_STAGE=tf))
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, err
    for (K, N, PIXELS, HB, TK, LANES), ul, pipe, tf, hr in map(_values, SHARED):
        params = dict(K=K, N=N, PIXELS=PIXELS, HB=HB, TK=TK, LANES=LANES, ULANES=ul, PIPE=pipe, HREG=hr)
        if tf is not None:
            params.update(SR=1, TF_STAGE=tf)
        rc, err = hw_tools.lint(TOP, params)
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, (params, err)
    for params in (dict(K=16, N=10, PIXELS=0, HB=8, TK=4, LANES=8, AWAY=1),
                   dict(K=32, N=16, PIXELS=1, HB=4, TK=2, LANES=8, SR=1, AWAY=1, ULANES=1, PIPE=1, HREG=1)):
        rc, err = hw_tools.lint(TOP, params)
        assert rc == 0 and "%Warning" not in err and "%Error" not in err, (params, err)


def test_update_rejects_bad_parameters(hw_tools):
    """TK > HB - 1 is an elaboration error, not a silently wrong table index."""
    rc, err = hw_tools.lint(TOP, dict(HB=8, TK=8))
    assert rc != 0 and "mbnn_update: need" in err
    rc, err = hw_tools.lint(TOP, dict(LANES=8, ULANES=3))
    assert rc != 0 and "ULANES must divide LANES" in err
    rc, err = hw_tools.lint(TOP, dict(AWAY=2))
    assert rc != 0 and "AWAY must be 0 or 1" in err
