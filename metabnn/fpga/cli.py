"""`metabnn fpga MODEL.mbnn --device D --out DIR`: synthesis, place and route, timing and a bitstream with the
open toolchain (docs/FPGA.md); DIR/report.json holds resources, Fmax, cycles and throughput."""

from __future__ import annotations

import argparse
from pathlib import Path

from metabnn.errors import UsageError
from metabnn.fpga.devices import DEVICES, device


def add_parser(sub) -> None:
    p = sub.add_parser(
        "fpga",
        help="synthesise, place and route the engine for an FPGA and write its bitstream and report",
        description="Builds hw/fpga/mbnn_uart_top.sv (clock, reset button and a 115200-baud UART around the "
        "inference engine, or with --learn the engines and the on-chip metaplastic update units) for one part "
        "with Yosys, nextpnr and ecppack/icepack as pip installs them (pip install 'metabnn[fpga]'), the model's "
        "weights and normalisation in the block RAMs' initial contents. Writes DIR/report.json (device, fits, "
        "fmax_mhz, luts, ffs, brams, dsps, bitstream, cycles and images per second at Fmax, tool versions) and "
        "keeps every tool's log in DIR. A design larger than the part: one line naming what overflowed, exit 2.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a .mbnn file written by `metabnn export`")
    p.add_argument("--device", required=True, choices=list(DEVICES), metavar="DEVICE",
                   help=f"the part (and its board's pins): {', '.join(DEVICES)}")
    p.add_argument("--learn", action="store_true",
                   help="the learning top (engines + update units, docs/HARDWARE_UPDATE.md) instead of inference only")
    p.add_argument("--simd", type=int, default=8, help="inputs per cycle in every layer: 1, 2, 4, 8, 16 or 32")
    p.add_argument("--pe", type=int, default=1, help="neurons in parallel in every layer")
    p.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="nextpnr's timing target (default: the board's clock, 25 MHz ULX3S, 12 MHz iCE40 boards)")
    p.add_argument("--no-dsp", action="store_true",
                   help="multipliers in LUTs instead of the part's DSP blocks (when the DSPs are what overflows)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="give up when one tool runs longer than this many seconds")
    p.add_argument("--seed", type=int, default=1,
                   help="nextpnr's placement seed: Fmax moves by a few MHz with it (the report records it)")
    p.add_argument("--out", required=True, help="output folder: report.json, the bitstream, the tools' logs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(run=run)


def run(args) -> int:
    from metabnn.export import load
    from metabnn.fpga.flow import Options, run_flow

    dev = device(args.device)
    if not Path(args.model).is_file():
        raise UsageError(f"model file {args.model} does not exist")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if not 0 <= args.seed < 2 ** 31:
        raise UsageError(f"--seed must be 0 .. 2^31 - 1, got {args.seed}")
    model = load(args.model)
    opts = Options(simd=args.simd, pe=args.pe, learn=args.learn, freq_mhz=args.freq, timeout_s=args.timeout,
                   dsp=not args.no_dsp, quiet=args.quiet, seed=args.seed)
    res = run_flow(model, dev, args.out, opts)
    timing = "met" if res["timing_met"] else "NOT met"
    print(f"{dev.name}: fits, Fmax {res['fmax_mhz']} MHz (target {res['freq_target_mhz']:g} MHz, timing {timing}), "
          f"{res['luts']:,} LUT, {res['ffs']:,} FF, {res['brams']} BRAM, {res['dsps']} DSP; "
          f"{res['cycles_per_image']:,} cycles/image = {res['images_per_s']:,.0f} images/s; "
          f"bitstream {res['bitstream']}")
    if res.get("sprams"):
        print(f"{dev.name}: {res['sprams']} of {res['capacity']['sprams']} SPRAM (SB_SPRAM256KA)")
    if res.get("start_up"):  # SPRAM (iCE40 UP5K): the bitstream alone has no weights there
        print(f"{dev.name}: {res['start_up']}")
    return 0
