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


def _run(hw_tools, cfg, testcase, **extra):
    K, N, PIXELS, HB, TK, LANES = cfg
    params = dict(K=K, N=N, PIXELS=PIXELS, HB=HB, TK=TK, LANES=LANES)
    runner, bdir = hw_tools.build(TOP, SOURCES, parameters=params)
    results = hw_tools.run(runner, TOP, TB, build_dir=bdir, testcase=testcase, extra_env=_env(*cfg, **extra))
    ok, summary = hw_tools.results_ok(results)
    assert ok, summary


def _id(c):
    return "K{}N{}{}b{}k{}L{}".format(c[0], c[1], "px" if c[2] else "bit", *c[3:])


@pytest.mark.parametrize("cfg", FAST, ids=_id)
def test_update_random_states(hw_tools, cfg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], UPD_SEED=cfg[0] * 7 + cfg[5], UPD_PASSES=8)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", SLOW, ids=_id)
def test_update_random_states_sweep(hw_tools, cfg):
    _run(hw_tools, cfg, ["random_states", "reset_mid_pass"], UPD_SEED=cfg[0] + cfg[4], UPD_PASSES=24)


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


@pytest.mark.parametrize("simd,hb,tk", [(8, 8, 4), (32, 16, 12), (1, 5, 0)])
def test_update_top_lint_clean(hw_tools, tmp_path, simd, hb, tk):
    """The on-chip learning top (engines + update units) is lint clean too, for a 3-layer model."""
    from metabnn.export.readmemh import write_readmemh
    from metabnn.sim import random_model

    write_readmemh(random_model((40, 24, 16, 10), seed=0), tmp_path)
    srcs = [RTL_DIR / f for f in ("mbnn_xnor_popcount.sv", "mbnn_pixel_dot.sv", "mbnn_layer.sv")] + SOURCES + [
        RTL_DIR / "mbnn_update_top.sv"]
    cmd = [str(hw_tools.verilator_bin()), "--lint-only", "-Wall", f"-I{tmp_path}", "--top-module", "mbnn_update_top",
           f"-GSIMD={simd}", f"-GHB={hb}", f"-GTK={tk}", *map(str, srcs)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr and "%Error" not in r.stderr, r.stderr
