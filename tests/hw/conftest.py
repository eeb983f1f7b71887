"""Fixtures for the hardware tests: skip (with the reason) when cocotb or Verilator are missing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hwtools  # noqa: E402


@pytest.fixture(scope="session")
def hw_tools():
    """The hwtools module, after checking the tools; skips the test when one is missing."""
    ok, why = hwtools.tool_status()
    if not ok:
        pytest.skip(why)
    return hwtools
