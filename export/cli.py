"""`metabnn export CHECKPOINT --out model.mbnn`: the deployable integer model and its companions."""

from __future__ import annotations

import argparse
from pathlib import Path

from metabnn.errors import UsageError
from metabnn.fileio import check_output, check_output_dir


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="fold a trained checkpoint into the integer model (.mbnn, ONNX, C header, $readmemh)",
        description="Quantize the hidden weights, fold BatchNorm into integer thresholds and write the "
        "deployable model of docs/FORMAT.md. The hidden weights and the f_meta table travel with it, so the "
        "device can go on learning where training stopped.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint", help="model.pt written by `metabnn train`")
    p.add_argument("--out", required=True, help="the .mbnn file to write")
    p.add_argument("--hidden-bits", type=int, default=8, help="hidden-weight width b (2..16)")
    p.add_argument("--table-bits", type=int, default=None,
                   help="log2 of the f_meta table size (default min(8, b-1))")
    p.add_argument("--lr-shift", type=int, default=14,
                   help="on-device learning rate: right shift of the hidden-layer gradients at 8 hidden bits "
                   "(adjusted for other widths and +8 for the pixel layer)")
    p.add_argument("--device-meta", default="auto", metavar="auto|M",
                   help="m of the on-device f_meta tables: auto picks one per layer from the hidden weights and a "
                   "probe of the learning step's update sizes (docs/ONDEVICE.md); a number sets it for every "
                   "layer (0: a plain BNN on the device); the tables sample f_meta where each |h|'s float weights "
                   "begin (docs/ONDEVICE.md, 'Narrow hidden weights')")
    p.add_argument("--device-horizon", type=int, default=None, metavar="N",
                   help="for auto: samples a new task takes on the device (default 3000)")
    p.add_argument("--device-quantile", type=float, default=None, metavar="Q",
                   help="for auto: consolidate the synapses with |W| at or above this quantile of their layer "
                   "(default 0.5)")
    p.add_argument("--device-scale", type=float, default=None, metavar="S",
                   help="for auto: the rule's m times S (default 1 without an away table, 1.25 "
                   "(export.device_meta.AWAY_SCALE) with one: docs/ONDEVICE.md, 'The rule with the away table')")
    p.add_argument("--device-away", default="none", metavar="none|auto|mirror[:P]|ratio:R|pow:K",
                   help="the away table G scaling pushes away from zero (FORMAT.md 4.2.1): auto writes G = F "
                   "(mirror) in every layer whose f_meta table is not all 1, so zero-mean updates do not drift "
                   "the hidden weights to the top of the range (docs/ONDEVICE.md, 'The away table'); with "
                   "--hex-dir it writes none. none (the default while the RTL update unit cannot learn with the "
                   "table, so every backend verifies the default export): no table")
    p.add_argument("--rounding", choices=("nearest", "stochastic"), default="nearest",
                   help="rounding of the on-device learning step: to nearest (FORMAT.md 4.3) or stochastic "
                   "(4.4: unbiased, so updates below half an LSB still count; what narrow hidden weights need)")
    p.add_argument("--sr-seed", type=int, default=None, metavar="S",
                   help="seed of the stochastic rounding (0..2^32-1, default 0); each layer draws its own "
                   "stream derived from it")
    p.add_argument("--onnx", metavar="FILE", help="also write an ONNX model (standard opset, integer-exact)")
    p.add_argument("--qonnx", metavar="FILE",
                   help="also write a QONNX-annotated model (BipolarQuant, MultiThreshold) for FINN users")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="batch size of the --qonnx graph (qonnx and FINN need a fixed one; default 1)")
    p.add_argument("--c-header", metavar="FILE", help="also write a C header for the firmware")
    p.add_argument("--hex-dir", metavar="DIR", help="also write $readmemh files for the RTL")
    p.add_argument("--summary", action="store_true", help="print the model summary (1-bit parameters, memory)")
    p.set_defaults(run=run)


def run(args) -> int:
    from metabnn.export.mbnn import save, to_bytes
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet

    if not 2 <= args.hidden_bits <= 16:
        raise UsageError(f"--hidden-bits {args.hidden_bits} outside 2..16")
    if not 0 <= args.lr_shift <= 31:
        raise UsageError(f"--lr-shift {args.lr_shift} outside 0..31")
    if args.batch is not None and (not args.qonnx or args.batch < 1):
        raise UsageError(f"--batch {args.batch}: the --qonnx graph's batch size, an integer >= 1 "
                         "(give it with --qonnx FILE)")
    if args.sr_seed is not None and args.rounding != "stochastic":
        raise UsageError("--sr-seed seeds stochastic rounding: give it with --rounding stochastic")
    sr_seed = 0 if args.sr_seed is None else args.sr_seed
    if not 0 <= sr_seed < 1 << 32:
        raise UsageError(f"--sr-seed {sr_seed} outside 0..4294967295")
    if not Path(args.checkpoint).is_file():
        raise UsageError(f"{args.checkpoint}: no such checkpoint file")
    from metabnn.export.device_meta import parse_away, parse_option
    device_meta = parse_option(args.device_meta, args.device_horizon, args.device_quantile)
    away = parse_away(args.device_away, "--device-away", auto=True)
    from metabnn.export.device_meta import rule_scale
    if args.device_scale is not None and device_meta != "auto":
        raise UsageError("--device-scale scales --device-meta auto, not a given m")
    scale = rule_scale(args.device_scale, away[0])
    net = load_floatnet(args.checkpoint)
    for path in [args.out, args.onnx, args.qonnx, args.c_header]:
        if path is not None:
            check_output(path)  # an unwritable output fails before the work, and before the other files
    if args.hex_dir is not None:
        check_output_dir(args.hex_dir)
    if device_meta == "auto":
        from metabnn.ondevice import device_meta_or_trained
        device_meta = device_meta_or_trained(net, args.device_horizon, args.device_quantile,
                                             hidden_bits=args.hidden_bits, table_bits=args.table_bits,
                                             lr_shift_base=args.lr_shift,
                                             stochastic=args.rounding == "stochastic", scale=scale)
    model = from_floatnet(net, hidden_bits=args.hidden_bits, table_bits=args.table_bits,
                          lr_shift_base=args.lr_shift, device_meta=device_meta,
                          stochastic=args.rounding == "stochastic", sr_seed=sr_seed)
    from metabnn.export.device_meta import set_away, set_tables
    set_tables(model)  # the device's f_meta tables: FORMAT.md 4.2's, half an LSB lower (docs/ONDEVICE.md)
    set_away(model, *away)  # the away tables (FORMAT.md 4.2.1)
    save(model, args.out)
    written = [f"{args.out} ({len(to_bytes(model)):,} bytes)"]
    if args.onnx:
        from metabnn.export.onnx_export import save_onnx
        save_onnx(model, args.onnx)
        written.append(args.onnx)
    if args.qonnx:
        from metabnn.export.qonnx_export import save_qonnx
        save_qonnx(model, args.qonnx, batch=args.batch or 1)
        written.append(args.qonnx)
    if args.c_header:
        from metabnn.export.c_header import write_c_header
        write_c_header(model, args.c_header)
        written.append(args.c_header)
    if args.hex_dir:
        from metabnn.export.readmemh import write_readmemh
        write_readmemh(model, args.hex_dir)
        written.append(args.hex_dir + "/")
    sizes = "-".join(str(s) for s in [model.input_size] + [lay.N if lay.conv is None else f"conv{lay.N}"
                                                            + ("p" if lay.conv.pool else "") for lay in model.layers])
    print(f"exported {sizes} network, {model.n_banks} bank(s), {args.hidden_bits}-bit hidden weights, "
          f"adapt_shift {model.layers[0].adapt_shift}, {args.rounding} rounding, away tables in "
          f"{sum(lay.away is not None for lay in model.layers)} of {len(model.layers)} layers")
    if args.summary:
        print(model.summary())
    for w in written:
        print(f"  wrote {w}")
    return 0
