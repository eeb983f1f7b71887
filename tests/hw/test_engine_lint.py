"""`verilator --lint-only -Wall` is clean on the engine (top, layer engine and dot units) at several
SIMD/PE settings and model shapes (the generate branches differ between them)."""

from __future__ import annotations

import subprocess

import pytest

from hwtools import RTL_DIR

from metabnn.export.readmemh import write_readmemh
from metabnn.sim import random_model

SOURCES = ["mbnn_xnor_popcount.sv", "mbnn_pixel_dot.sv", "mbnn_layer.sv", "mbnn_top.sv"]


@pytest.mark.parametrize("sizes,banks,adapt", [((37, 29, 13, 10), 2, 3), ((64, 32, 32, 10), 1, 0),
                                               ((20, 5, 3), 3, 1)])
@pytest.mark.parametrize("simd,pe", [(32, 1), (8, 3), (1, 8), (16, 16)])
def test_lint_clean(hw_tools, tmp_path, sizes, banks, adapt, simd, pe):
    write_readmemh(random_model(sizes, banks=banks, adapt_shift=adapt), tmp_path)
    cmd = [str(hw_tools.verilator_bin()), "--lint-only", "-Wall", f"-I{tmp_path}", "--top-module", "mbnn_top",
           f"-GSIMD={simd}", f"-GPE={pe}"] + [str(RTL_DIR / s) for s in SOURCES]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0 and "%Warning" not in r.stderr, r.stderr
