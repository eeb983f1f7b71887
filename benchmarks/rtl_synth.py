"""Resources and Fmax of the engine at several SIMD/PE settings, through `metabnn fpga` (Yosys, nextpnr, the
packer: docs/FPGA.md); it replaces the Debian Yosys 0.23 `synth_ice40` run of hw/synth/synth.sh here.

    python benchmarks/rtl_synth.py [--sizes 64,32,10] [--device ecp5-85k] [--settings 8x1,8x2] [--learn]
                                   [--freq 50] [--keep DIR]

The model shape fixes the memories and the per-layer engines; the weights do not change the logic (they are
memory contents), so a random model of the shape is used. One row per setting: nextpnr's LUT sites, flip-flops,
block RAMs, DSPs and Fmax, or what overflowed. Run it alone (`nice`): each setting is a full place and route.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from metabnn.errors import MetabnnError
from metabnn.fpga.devices import DEVICES, device
from metabnn.fpga.flow import DoesNotFit, Options, run_flow
from metabnn.sim import random_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,32,10", help="layer sizes K0,N0,N1,... (default 64,32,10)")
    ap.add_argument("--device", default="ecp5-85k", choices=list(DEVICES))
    ap.add_argument("--settings", default="8x1,8x2", help="SIMDxPE pairs (default 8x1,8x2)")
    ap.add_argument("--learn", action="store_true", help="the learning top (engines + update units)")
    ap.add_argument("--freq", type=float, default=50.0, help="nextpnr's target, MHz (above the Fmax reached)")
    ap.add_argument("--keep", metavar="DIR", help="keep each run's folder (DIR/SIMDxPE) instead of a temporary one")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
        model = random_model(sizes)
    except ValueError:
        print(f"rtl_synth: bad --sizes or --settings ({args.sizes!r}, {args.settings!r})", file=sys.stderr)
        return 2
    dev = device(args.device)
    print(f"metabnn fpga on {dev.name} ({dev.part}), model {'-'.join(map(str, sizes))}"
          f"{', learning top' if args.learn else ''}, target {args.freq:g} MHz")
    print(f"{'SIMD':>5}{'PE':>4}{'LUT':>9}{'FF':>8}{'BRAM':>6}{'DSP':>5}{'Fmax MHz':>10}{'flow s':>8}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for simd, pe in settings:
            t = time.time()
            opts = Options(simd=simd, pe=pe, learn=args.learn, freq_mhz=args.freq, quiet=True)
            try:
                r = run_flow(model, dev, root / f"{simd}x{pe}", opts)
            except DoesNotFit as e:
                print(f"{simd:>5}{pe:>4}  {e}", flush=True)
                continue
            except MetabnnError as e:
                print(f"rtl_synth: {e}", file=sys.stderr)
                return e.exit_code
            print(f"{simd:>5}{pe:>4}{r['luts']:>9,}{r['ffs']:>8,}{r['brams']:>6}{r['dsps']:>5}"
                  f"{r['fmax_mhz']:>10.1f}{time.time() - t:>8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
