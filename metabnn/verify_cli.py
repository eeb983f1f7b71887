"""`metabnn verify MODEL.mbnn`: every backend on the same MNIST test images."""

from __future__ import annotations

import argparse
import sys


from metabnn.backends import names as backend_names
from metabnn.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="run the same images (and learning steps) through every backend and compare with the golden model",
        description="Runs MNIST test images through each backend and prints predictions equal to the golden "
        "model, accuracy and time per image. Exit code 1 on any mismatch between integer backends "
        "(golden, onnx, c, rtl); the float torch backend is reported, not failed. Every backend named in "
        "--backends must run: one that cannot (a tool not installed, --adapt on a frozen-only backend) stops "
        "verify with one line saying why and how to fix it, exit code 2.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a .mbnn file written by `metabnn export`")
    p.add_argument("--backends", default="golden,onnx,c,rtl,torch",
                   help=f"comma-separated subset of {','.join(backend_names())}")
    p.add_argument("--limit", type=int, default=1000, help="number of MNIST test images (0 = all 10,000)")
    p.add_argument("--rtl-limit", type=int, default=20,
                   help="images through the RTL (a cycle-level simulation, a few images per second); 0 = --limit")
    p.add_argument("--learn", type=int, default=0, metavar="STEPS",
                   help="also run STEPS on-device learning steps on MNIST training samples and compare every "
                   "hidden weight, sign bit and normalization state after each step")
    p.add_argument("--bank", type=int, default=0, help="normalization bank (task) to use")
    p.add_argument("--adapt", action="store_true", help="stream-adaptive normalization on (golden and c only)")
    p.add_argument("--checkpoint", help="model.pt for the torch backend")
    p.add_argument("--data-dir", help="folder with MNIST IDX files (default: the installed data set)")
    p.set_defaults(run=run)


def run(args) -> int:
    from metabnn.export.mbnn import load
    from metabnn.train.data import load as load_data
    from metabnn.verify import format_table, open_backends, run_verify

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in names if b not in backend_names()]
    if bad or not names:
        raise UsageError(f"unknown backend(s) {', '.join(bad) or '(none given)'}; "
                         f"choose from {', '.join(backend_names())}")
    if args.limit < 0 or args.learn < 0 or args.rtl_limit < 0:
        raise UsageError("--limit, --rtl-limit and --learn must be >= 0")
    model = load(args.model)
    if not 0 <= args.bank < model.n_banks:
        raise UsageError(f"--bank {args.bank}: the model has {model.n_banks} bank(s)")
    if model.input_size != 784:
        raise UsageError(f"the model takes {model.input_size} inputs; MNIST images have 784")
    # every requested backend must run: found out before any data is loaded or image is run
    print("checking backends: " + ", ".join(names), file=sys.stderr)
    backend_list = open_backends(names, adapt=args.adapt, checkpoint=args.checkpoint)
    ds = load_data("mnist", args.data_dir)
    n = args.limit or len(ds.test_y)
    images, labels = ds.test_x[:n].numpy(), ds.test_y[:n].numpy()
    li = ll = None
    if args.learn:
        li, ll = ds.train_x[: args.learn].numpy(), ds.train_y[: args.learn].numpy()
    print(f"verifying {args.model} on {n} MNIST test images"
          + (f" and {args.learn} learning steps" if args.learn else "")
          + (" (stream-adaptive normalization)" if args.adapt else ""), file=sys.stderr)
    rows = run_verify(model, images, labels, backend_list, bank=args.bank, adapt=args.adapt,
                      learn_images=li, learn_labels=ll, limits={"rtl": args.rtl_limit},
                      progress=lambda b: print(f"  running {b} ...", file=sys.stderr))
    print(format_table(rows))
    failed = [r.backend for r in rows if r.failed]
    if failed:
        print(f"MISMATCH between integer backends: {', '.join(failed)} differ from the golden model")
        return 1
    return 0
