"""`metabnn verify MODEL.mbnn`: every backend on the same test images, those of the task the model was trained for.

The data come from the file's metadata (docs/FORMAT.md 6.1) through metabnn.train.task_data: a permuted-MNIST
model is checked on its own permutation, not on plain MNIST, where a correct export would score at chance.
"""

from __future__ import annotations

import argparse
import sys


from metabnn.backends import names as backend_names
from metabnn.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify",
        help="run the same images (and learning steps) through every backend and compare with the golden model",
        description="Runs the test images of the task the model was trained for (recorded in the .mbnn file; "
        "by default the last task trained, plain MNIST for files that record nothing) through each backend and "
        "prints predictions equal to the golden model, accuracy and time per image. Exit code 1 on any mismatch between integer backends "
        "(golden, onnx, c, rtl); the float torch backend is reported, not failed. Every backend named in "
        "--backends must run: one that cannot (a tool not installed, --adapt on a frozen-only backend) stops "
        "verify with one line saying why and how to fix it, exit code 2.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("model", help="a .mbnn file written by `metabnn export`")
    p.add_argument("--backends", default="golden,onnx,c,rtl,torch",
                   help=f"comma-separated subset of {','.join(backend_names())}")
    p.add_argument("--task", metavar="NAME",
                   help="the task whose test set (and bank) to use, as named at training, e.g. pmnist1 "
                   "(default: the last task trained)")
    p.add_argument("--limit", type=int, default=None,
                   help="number of test images (0 = the whole set; default 1000, or the whole set if smaller)")
    p.add_argument("--offset", type=int, default=0, metavar="N",
                   help="start at test image N (images N .. N+limit-1; --limit 0 = to the end of the set): a long "
                   "run, such as the RTL on 10,000 images, goes in chunks (--offset 0 --limit 500, --offset 500 "
                   "--limit 500, ...), each its own command and table, so an interrupted run loses one chunk at most")
    p.add_argument("--wave", metavar="DIR",
                   help="with the rtl backend: write an FST waveform of the first image the RTL gets wrong (of the "
                   "first image run when all agree) to DIR/image<i>.fst (i: its number in the test set), for "
                   "GTKWave or Surfer")
    p.add_argument("--learn", type=int, default=0, metavar="STEPS",
                   help="also run STEPS on-device learning steps on the task's training samples and compare every "
                   "hidden weight, sign bit and normalization state after each step (on a conv net the rtl backend "
                   "learns the dense layers only, the conv layers frozen, and is compared with the golden step that "
                   "freezes them; golden and c learn every layer)")
    p.add_argument("--freeze", metavar="LAYERS",
                   help="with --learn: layers that do not learn, in every backend and in the golden steps they are "
                   "compared with (FORMAT.md 4.5 \"Frozen layers\"): conv (every conv layer, what the rtl backend "
                   "does on a conv net), none, or layer numbers such as 0,1 (0 = the first weighted layer); default: "
                   "each backend as described under --learn")
    p.add_argument("--bank", type=int, default=None,
                   help="normalization bank to use (default: the bank that belongs to the task)")
    p.add_argument("--adapt", action="store_true", help="stream-adaptive normalization on (golden and c only)")
    p.add_argument("--checkpoint", help="model.pt for the torch backend")
    p.add_argument("--data-dir", help="folder with MNIST / Fashion-MNIST IDX files (default: the installed sets)")
    p.set_defaults(run=run)


def run(args) -> int:
    from metabnn.export.mbnn import load
    from metabnn.train.task_data import for_model, pick_test_set
    from metabnn.verify import check_freeze, format_table, open_backends, parse_freeze, run_verify

    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in names if b not in backend_names()]
    if bad or not names:
        raise UsageError(f"unknown backend(s) {', '.join(bad) or '(none given)'}; "
                         f"choose from {', '.join(backend_names())}")
    if (args.limit or 0) < 0 or args.learn < 0 or args.offset < 0:
        raise UsageError("--limit, --offset and --learn must be >= 0")
    if args.wave and "rtl" not in names:
        raise UsageError("--wave traces the RTL: add rtl to --backends")
    if args.wave:
        from metabnn.fileio import check_output_dir
        check_output_dir(args.wave)  # an unwritable folder fails now, not after the run
    if args.freeze is not None and not args.learn:
        raise UsageError("--freeze chooses the layers that do not learn: give --learn STEPS too")
    model = load(args.model)
    frozen = parse_freeze(args.freeze, model)
    if args.bank is not None and not 0 <= args.bank < model.n_banks:
        raise UsageError(f"--bank {args.bank}: the model has {model.n_banks} bank(s)")
    if model.input_size != 784:
        raise UsageError(f"the model takes {model.input_size} inputs; MNIST images have 784")
    pick_test_set(model.meta, args.task)  # a wrong --task is one line before any backend is built
    # every requested backend must run: found out before any data is loaded or image is run
    print("checking backends: " + ", ".join(names), file=sys.stderr)
    backend_list = open_backends(names, adapt=args.adapt, checkpoint=args.checkpoint, model=model)
    check_freeze(backend_list, model, frozen)
    data = for_model(model.meta, args.task, args.data_dir)
    n = _count(args.limit, args.offset, len(data.test_y), data.label)
    bank = data.bank if args.bank is None else args.bank
    if args.learn > len(data.train_y):
        raise UsageError(f"--learn {args.learn}: the task has {len(data.train_y)} training samples")
    o = args.offset
    images, labels = data.test_x[o:o + n], data.test_y[o:o + n]
    li = ll = None
    if args.learn:
        li, ll = data.train_x[: args.learn], data.train_y[: args.learn]
    # the first line names the data: a wrong data set is the likeliest reason for a low accuracy
    print(f"{n} images of the {data.label}" + (f" (images {o} to {o + n - 1})" if o else "") + f", bank {bank}"
          + (f", and {args.learn} learning steps on its training set" if args.learn else "")
          + (f" (layers {', '.join(map(str, frozen)) or 'none'} frozen)" if frozen is not None else "")
          + (" (stream-adaptive normalization)" if args.adapt else ""))
    rows = run_verify(model, images, labels, backend_list, bank=bank, adapt=args.adapt,
                      learn_images=li, learn_labels=ll, first=o, frozen=frozen,
                      progress=lambda b: print(f"  running {b} ...", file=sys.stderr))
    print(format_table(rows))
    if args.wave:
        print(_wave(args.wave, model, images, o, bank, args.adapt, next(b for b in backend_list if b.name == "rtl"),
                    next(r for r in rows if r.backend == "rtl")))
    failed = [r.backend for r in rows if r.failed]
    if failed:
        print(f"MISMATCH between integer backends: {', '.join(failed)} differ from the golden model")
        return 1
    return 0


def _count(limit: int | None, offset: int, size: int, label: str) -> int:
    """How many test images from image `offset` on: --limit, checked against the set (None: 1000 or the rest of
    the set if fewer; 0: the rest of the set)."""
    if offset >= size:
        raise UsageError(f"--offset {offset}: the {label} has {size} images (0 .. {size - 1})")
    rest = size - offset
    if limit is None:
        return min(1000, rest)
    if limit > rest:
        where = f" from image {offset} on" if offset else ""
        raise UsageError(f"--limit {limit}: the {label} has {rest} images{where} (0 = all of them)")
    return limit or rest


def _wave(folder, model, images, first: int, bank: int, adapt: bool, rtl, row) -> str:
    """Trace one image through the RTL again, the first it got wrong (the first image run when all agree);
    images[0] is test image `first`, and files and messages use the number in the test set."""
    from pathlib import Path

    i = row.first_mismatch[0] if row.first_mismatch else first
    path = Path(folder) / f"image{i}.fst"
    print(f"  tracing image {i} through the RTL ...", file=sys.stderr)
    k = i - first
    res = rtl.run_case(model, images[k:k + 1], banks=[bank], adapt=[int(adapt)], trace_fst=path)
    why = "the first image the RTL got wrong" if row.first_mismatch else f"every image agreed; image {first}"
    return f"waveform of image {i} ({why}): {path}\n" + first_layer_difference(model, images[k], bank, adapt, res)


def first_layer_difference(model, image, bank: int, adapt: bool, res: dict) -> str:
    """Which layer's output first differs between the golden model and the RTL's taps for one image."""
    import numpy as np

    from metabnn.sim.forward import forward

    record: list = []
    scores = forward(model.copy(), np.asarray(image)[None], bank=bank, adapt=adapt, record=record)[0]
    for l in range(1, len(model.layers)):
        want = (np.asarray(record[l][0])[0] > 0).astype(np.uint8)  # layer l's input = layer l-1's output bits
        got = res["taps"][l][0]
        if not np.array_equal(want, got):
            j = int(np.flatnonzero(want != got)[0])
            return (f"layer {l - 1} output differs first at neuron {j} (golden {'+1' if want[j] else '-1'}, "
                    f"rtl {'+1' if got[j] else '-1'}); every earlier layer agrees")
    c = int(np.argmax(scores))
    if int(res["classes"][0]) != c or int(res["scores"][0]) != int(scores[c]):
        return (f"every hidden layer's output agrees; the output layer {len(model.layers) - 1} differs (golden "
                f"class {c} score {int(scores[c])}, rtl class {int(res['classes'][0])} score {int(res['scores'][0])})")
    return "every layer's output agrees with the golden model on this image"
