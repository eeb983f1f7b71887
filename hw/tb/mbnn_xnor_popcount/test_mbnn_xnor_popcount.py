"""mbnn_xnor_popcount (hw/rtl/mbnn_xnor_popcount.sv) against its definition, FORMAT.md section 2, in plain integers:
dot = sum over valid lanes of (+1 where a_i == w_i, -1 where they differ). Random vectors, all match, all
mismatch, padding lanes (valid = 0) holding garbage, no valid lane; SIMD swept by the pytest function below.
The proof for every input of one SIMD is hw/formal/xnor_popcount.sby (tests in hw/tb/formal)."""

from __future__ import annotations

import os
import random

import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.triggers import Timer  # noqa: E402

TOP = "mbnn_xnor_popcount"


def pm(bit):
    return 1 if bit else -1


def definition(a, w, valid, simd):
    return sum(pm((a >> i) & 1) * pm((w >> i) & 1) for i in range(simd) if (valid >> i) & 1)


def vectors(rng, simd):
    full = (1 << simd) - 1
    fixed = [(0, 0, full), (full, full, full), (full, 0, full), (0, full, full),  # all match / mismatch
             (rng.getrandbits(simd), rng.getrandbits(simd), 0)]                   # no valid lane
    half = (1 << (simd // 2)) - 1
    fixed.append((half, full ^ half, full))                                         # half match
    for k in sorted({1, simd // 2, simd - 1} - {0}):                               # padding: lanes >= k garbage
        fixed.append((rng.getrandbits(simd), rng.getrandbits(simd), (1 << k) - 1))
    rand = [(rng.getrandbits(simd), rng.getrandbits(simd), rng.getrandbits(simd) | rng.choice([0, full]))
            for _ in range(400)]
    return fixed + rand


@cocotb.test()
async def dot_matches_definition(dut):
    simd = int(os.environ["DOT_SIMD"])
    for a, w, valid in vectors(random.Random(simd), simd):
        dut.a.value, dut.w.value, dut.valid.value = a, w, valid
        await Timer(1, unit="ns")
        got = dut.dot.value.to_signed()
        assert got == definition(a, w, valid, simd), (hex(a), hex(w), hex(valid), got)


@pytest.mark.parametrize("simd", [1, 8, 32])
def test_mbnn_xnor_popcount(hw_tools, simd):
    runner, bdir = hw_tools.build(TOP, {"SIMD": simd})
    hw_tools.run(runner, bdir, TOP, TOP, env={"DOT_SIMD": simd})
