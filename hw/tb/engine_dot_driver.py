"""cocotb test of the dot-product units (hw/tb/engine_dot_tb.sv): XNOR-popcount and pixel dots at
SIMD 1, 8, 32 against the FORMAT.md definitions computed here with plain integers: random vectors,
all match, all mismatch, padding (valid = 0) lanes holding garbage, no valid lane, extreme pixels."""

from __future__ import annotations

import random

import cocotb
from cocotb.triggers import Timer


def pm(bit):
    return 1 if bit else -1


def bits_dot(a, w, valid, simd):
    return sum(pm((a >> i) & 1) * pm((w >> i) & 1) for i in range(simd) if (valid >> i) & 1)


def pixel_dot(x, w, valid, simd):
    return sum(pm((w >> i) & 1) * ((x >> (8 * i)) & 255) for i in range(simd) if (valid >> i) & 1)


def vectors(rng):
    full = 0xFFFFFFFF
    fixed = [
        (0, 0, full, full),                                 # all match (a = w = 0), darkest pixels
        (full, full, full, (1 << 256) - 1),                 # all match, all pixels 255
        (full, 0, full, (1 << 256) - 1),                    # all mismatch, pixels 255, weights -1
        (0x0000FFFF, 0xFFFF0000, full, 0),                  # half match
        (rng.getrandbits(32), rng.getrandbits(32), 0, rng.getrandbits(256)),  # no valid lane
    ]
    for k in (1, 5, 8, 13, 31):                             # padding: lanes >= k are garbage
        fixed.append((rng.getrandbits(32), rng.getrandbits(32), (1 << k) - 1, rng.getrandbits(256)))
    rand = [(rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(32) | rng.choice([0, full]),
             rng.getrandbits(256)) for _ in range(400)]
    return fixed + rand


@cocotb.test()
async def dot_units(dut):
    rng = random.Random(1)
    for a, w, valid, x in vectors(rng):
        dut.a.value, dut.w.value, dut.valid.value, dut.x.value = a, w, valid, x
        await Timer(1, unit="ns")
        for simd, name in ((1, "b1"), (8, "b8"), (32, "b32")):
            got = getattr(dut, f"dot_{name}").value.to_signed()
            assert got == bits_dot(a, w, valid, simd), (name, hex(a), hex(w), hex(valid), got)
        for simd, name in ((1, "p1"), (8, "p8"), (32, "p32")):
            got = getattr(dut, f"dot_{name}").value.to_signed()
            assert got == pixel_dot(x, w, valid, simd), (name, hex(w), hex(valid), got)
