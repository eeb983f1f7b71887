"""benchmarks/firmware_bench.py and its C harness: bad options are one line and exit 2; the
harness places the layer's rows where it is told and still computes (the figures themselves are
measured by running the benchmark, docs/FIRMWARE.md)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from metabnn.backends.c import FIRMWARE, build_firmware

ROOT = FIRMWARE.parent
SCRIPT = ROOT / "benchmarks" / "firmware_bench.py"


@pytest.mark.parametrize("args, message", [
    (["--sizes", "784,10"], "--sizes must be >= 3 positive integers"),
    (["--sizes", "784,x,10"], "--sizes must be >= 3 positive integers"),
    (["--runs", "0"], "--runs must be >= 1"),
    (["--images", "cifar"], "invalid choice: 'cifar'"),
    (["--sizes", "100,50,10"], "MNIST images have 784 pixels, --sizes starts with 100 (use --images random)"),
])
def test_bad_options_are_one_line_exit_2(args, message):
    r = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_harness_binary_rows_at_an_offset(cbackend):
    ok, msg = build_firmware("bench")
    assert ok, msg
    bench = FIRMWARE / "build" / "bench"
    for offset in ("0", "8", "60"):
        out = subprocess.run([str(bench), "binary", "300", "9", "2", offset], capture_output=True, text=True,
                             check=True).stdout.split()
        assert out[0] == "binops_per_s" and float(out[1]) > 0
    for bad in ("3", "64"):  # not a word boundary; past the cache line
        assert subprocess.run([str(bench), "binary", "300", "9", "2", bad], capture_output=True).returncode == 2
