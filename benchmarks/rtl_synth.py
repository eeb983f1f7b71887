"""Yosys synthesis of the inference engine at two SIMD/PE settings: LUTs/cells, flip-flops, block RAMs.

    python benchmarks/rtl_synth.py [--sizes 64,32,10] [--target ice40|generic] [--settings 8x2,32x8]

The model shape fixes the memories and the per-layer engines; the weights do not change the logic
(they are memory contents). Prints one row per setting, measured from Yosys' `stat`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from metabnn.export.readmemh import write_readmemh
from metabnn.sim import random_model

SYNTH = Path(__file__).resolve().parent.parent / "hw" / "synth" / "synth.sh"


def parse_stat(text: str) -> dict:
    cells = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+(\S+)\s+(\d+)\s*$", text, re.M)}
    total = int(re.search(r"Number of cells:\s+(\d+)", text).group(1))
    ff = sum(v for k, v in cells.items() if "DFF" in k.upper())
    lut = sum(v for k, v in cells.items() if "LUT" in k.upper())
    ram = sum(v for k, v in cells.items() if "RAM" in k.upper())
    return {"cells": total, "lut": lut, "ff": ff, "bram": ram}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,32,10", help="layer sizes K0,N0,N1,... (default 64,32,10)")
    ap.add_argument("--target", default="ice40", choices=["ice40", "generic"])
    ap.add_argument("--settings", default="8x2,32x8", help="SIMDxPE pairs (default 8x2,32x8)")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    except ValueError:
        print(f"rtl_synth: bad --sizes or --settings ({args.sizes!r}, {args.settings!r})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as hexdir:
        write_readmemh(random_model(sizes), hexdir)
        print(f"Yosys {args.target}, model {'-'.join(map(str, sizes))}")
        print(f"{'SIMD':>5}{'PE':>4}{'cells':>9}{'LUT':>8}{'FF':>7}{'BRAM':>6}{'yosys s':>9}")
        for simd, pe in settings:
            t = time.time()
            r = subprocess.run([str(SYNTH), hexdir, str(simd), str(pe), args.target], capture_output=True,
                               text=True)
            if r.returncode != 0:
                print(f"rtl_synth: yosys failed for SIMD={simd} PE={pe}:\n{r.stderr[-2000:]}", file=sys.stderr)
                return 1
            s = parse_stat(r.stdout)
            print(f"{simd:>5}{pe:>4}{s['cells']:>9}{s['lut']:>8}{s['ff']:>7}{s['bram']:>6}{time.time() - t:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
