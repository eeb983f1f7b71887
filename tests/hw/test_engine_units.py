"""Unit tests of the engine's building blocks under cocotb + Verilator (one build for all widths)."""

from __future__ import annotations

from hwtools import RTL_DIR, TB_DIR


def test_dot_units(hw_tools):
    """XNOR-popcount and pixel dot products at SIMD 1/8/32: random, all match/mismatch, padding lanes."""
    top = "engine_dot_tb"
    sources = [RTL_DIR / "mbnn_xnor_popcount.sv", RTL_DIR / "mbnn_pixel_dot.sv", TB_DIR / f"{top}.sv"]
    runner, bdir = hw_tools.build(top, sources)
    hw_tools.run(runner, top, "engine_dot_driver", build_dir=bdir)
