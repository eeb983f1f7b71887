"""mbnn_pixel_dot (hw/rtl/mbnn_pixel_dot.sv) against FORMAT.md section 3 (input kind PIXELS) in plain integers:
dot = sum over valid lanes of (+x_i where w_i = 1, -x_i where w_i = 0). Random vectors, all +1 / all -1 weights on
all-255 and all-0 pixels (the range corners), padding lanes holding garbage, no valid lane; SIMD swept below."""

from __future__ import annotations

import os
import random

import pytest

cocotb = pytest.importorskip("cocotb", reason="cocotb not installed: pip install -e '.[hw]'")
from cocotb.triggers import Timer  # noqa: E402

TOP = "mbnn_pixel_dot"


def definition(x, w, valid, simd):
    return sum((1 if (w >> i) & 1 else -1) * ((x >> (8 * i)) & 255) for i in range(simd) if (valid >> i) & 1)


def vectors(rng, simd):
    full, white = (1 << simd) - 1, (1 << (8 * simd)) - 1
    fixed = [(white, full, full), (white, 0, full), (0, full, full), (0, 0, full),  # extremes of |dot|
             (rng.getrandbits(8 * simd), rng.getrandbits(simd), 0)]               # no valid lane
    for k in sorted({1, simd // 2, simd - 1} - {0}):                              # padding: lanes >= k garbage
        fixed.append((rng.getrandbits(8 * simd), rng.getrandbits(simd), (1 << k) - 1))
    rand = [(rng.getrandbits(8 * simd), rng.getrandbits(simd), rng.getrandbits(simd) | rng.choice([0, full]))
            for _ in range(400)]
    return fixed + rand


@cocotb.test()
async def dot_matches_definition(dut):
    simd = int(os.environ["DOT_SIMD"])
    for x, w, valid in vectors(random.Random(simd), simd):
        dut.x.value, dut.w.value, dut.valid.value = x, w, valid
        await Timer(1, unit="ns")
        got = dut.dot.value.to_signed()
        assert got == definition(x, w, valid, simd), (hex(w), hex(valid), got)


@pytest.mark.parametrize("simd", [1, 8, 32])
def test_mbnn_pixel_dot(hw_tools, simd):
    runner, bdir = hw_tools.build(TOP, {"SIMD": simd})
    hw_tools.run(runner, bdir, TOP, TOP, env={"DOT_SIMD": simd})
