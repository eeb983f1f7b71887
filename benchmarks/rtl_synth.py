"""Resources and Fmax of the engine at several SIMD/PE settings, through `metabnn fpga` (Yosys, nextpnr, the
packer: docs/FPGA.md), the flow that replaced the Debian Yosys 0.23 scripts of hw/synth.

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
from metabnn.fpga.devices import DEVICES, Device, device
from metabnn.fpga.flow import DoesNotFit, Options, run_flow
from metabnn.sim import random_model
from metabnn.sim.model import Model

HEADER = f"{'what':<22}{'SIMD':>5}{'PE':>4}{'LUT':>9}{'FF':>8}{'BRAM':>6}{'DSP':>5}{'Fmax MHz':>10}{'flow s':>8}"


def flow_rows(model: Model, dev: Device, settings, learn_modes, freq: float, root: Path) -> int:
    """One `metabnn fpga` run per (setting, learn) and one printed row each (HEADER's columns); a design too
    large for the part prints what overflowed. Returns 0, or the exit code of a flow error (printed)."""
    for simd, pe in settings:
        for learn in learn_modes:
            what = "engines+update units" if learn else "engines"
            t = time.time()
            opts = Options(simd=simd, pe=pe, learn=learn, freq_mhz=freq, quiet=True)
            try:
                r = run_flow(model, dev, root / f"{simd}x{pe}{'_learn' if learn else ''}", opts)
            except DoesNotFit as e:
                print(f"{what:<22}{simd:>5}{pe:>4}  {e}", flush=True)
                continue
            except MetabnnError as e:
                print(f"{Path(sys.argv[0]).stem}: {e}", file=sys.stderr)
                return e.exit_code
            print(f"{what:<22}{simd:>5}{pe:>4}{r['luts']:>9,}{r['ffs']:>8,}{r['brams']:>6}{r['dsps']:>5}"
                  f"{r['fmax_mhz']:>10.1f}{time.time() - t:>8.0f}", flush=True)
    return 0


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
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        return flow_rows(model, dev, settings, [args.learn], args.freq, Path(args.keep) if args.keep else Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
