"""`metabnn demo`: the whole toolchain on defaults that need no configuration.

1. train a metaplastic BNN (m > 0) and a plain one (m = 0) on two permuted-MNIST tasks;
2. export both to the integer format (.mbnn, ONNX, C header, $readmemh files);
3. verify every backend on the same images (golden, ONNX, C, RTL, torch) and a few learning steps;
4. learn tasks 3, 4 and 5 on the device one after another in one stream, one sample at a time, no boundary
   signal (C firmware when built, else the golden model), for m > 0 and m = 0, measuring every task after each
   (metabnn.device_sequence's stream and learner, its table and plot);
5. write plots and a summary table into the output folder.

Every stage writes its results atomically; an interrupted demo rerun with the same --out reuses the trained
models instead of training again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from metabnn.errors import UsageError
from metabnn.fileio import check_output_dir


DEMO_META = 5.0  # the dense demo's training m: the setting that meets issue 15's sequence goal (docs/ONDEVICE.md)
CONV_META = 1.35  # --model conv's training m (its measured demo)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="train, export, verify every backend and learn on the device, end to end",
        description=__doc__.split("\n\n")[0] + " Output: a summary table, plots and JSON in --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--model", choices=("mlp", "conv"), default="mlp",
                   help="mlp: the dense BNN on permuted MNIST (steps 1-5 above); conv: a small binarized CNN on "
                   "Fashion-MNIST through the same steps (metabnn/demo_conv.py)")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--hidden", type=int, nargs="+", default=[512, 512], help="hidden layer sizes")
    p.add_argument("--epochs", type=int, default=2, help="training epochs per task")
    p.add_argument("--meta", type=float, default=None, help="metaplasticity m of the metaplastic model "
                   "(5: it keeps task 1 through task 2 in training, which the device sequence needs; "
                   "docs/ONDEVICE.md, 'Measured again'; --model conv: %g)" % CONV_META)
    p.add_argument("--device-meta", default="auto", metavar="auto|M",
                   help="m of the on-device f_meta tables of the metaplastic model: auto, what `metabnn export` "
                   "picks by default (per layer, the rule of docs/ONDEVICE.md from a 100-step probe of the "
                   "learning step), or a number > 0 for every layer; the tables are export's (f_meta where each "
                   "|h|'s float weights begin)")
    p.add_argument("--device-away", default="auto", metavar="auto|none|mirror[:P]",
                   help="the metaplastic model's away table (FORMAT.md 4.2.1), as `metabnn export --device-away`: "
                   "auto, G = F on every consolidating layer; none, no table (the rule of FORMAT.md 4.3 alone)")
    from metabnn.export.device_meta import SCALE_HELP

    p.add_argument("--device-scale", type=float, default=None, metavar="S", help=SCALE_HELP)
    p.add_argument("--device-tasks", type=int, default=3,
                   help="new permuted tasks learned on the device one after another (tasks 3, 4, 5, ...)")
    p.add_argument("--lr-shift", type=int, default=12, help="on-device learning-rate shift (see metabnn export)")
    p.add_argument("--device-samples", type=int, default=3000,
                   help="samples of each device task, one at a time (--eval-every divides it)")
    p.add_argument("--eval-every", type=int, default=500, help="evaluate every N on-device samples")
    p.add_argument("--eval-size", type=int, default=1000, help="test images per task in each evaluation")
    p.add_argument("--verify-images", type=int, default=1000,
                   help="test images for `verify`, through every backend (the RTL too: Verilator at native speed)")
    p.add_argument("--learn-steps", type=int, default=100,
                   help="learning steps compared state for state between golden, C and the RTL (engines + update "
                   "units)")
    p.add_argument("--freeze", metavar="LAYERS",
                   help="--model conv: layers that do not learn on the device, in verify's learning steps and the "
                   "device's learning: conv (every conv layer), none, or layer numbers such as 0,1 (metabnn verify "
                   "--freeze); default: every layer learns (the RTL, which learns the dense layers only, is then "
                   "compared with golden steps that freeze the conv layers)")
    p.add_argument("--no-rtl", action="store_true",
                   help="leave the RTL co-simulation out of verify (its first Verilator build takes a minute)")
    p.add_argument("--train-subset", type=int, default=0, help="train on the first N samples per task (0 = all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="folder with your own MNIST IDX files")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def _say(msg: str) -> None:
    print(msg, flush=True)


def _check_args(a) -> None:
    if any(h < 1 for h in a.hidden):
        raise UsageError("--hidden sizes must be >= 1")
    if a.meta is None:
        a.meta = CONV_META if getattr(a, "model", "mlp") == "conv" else DEMO_META
    for name in ("epochs", "device_samples", "eval_every", "eval_size", "verify_images", "device_tasks"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    for name in ("learn_steps", "train_subset"):
        if getattr(a, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 0")
    from metabnn.export.device_meta import parse_option
    a.device_meta = parse_option(a.device_meta)  # "auto" or a finite number >= 0, else one clear line
    if a.meta <= 0 or a.device_meta == 0:
        raise UsageError("--meta and --device-meta must be > 0 (the demo compares them against m = 0)")
    if not 0 <= a.lr_shift <= 31:
        raise UsageError("--lr-shift must lie in 0..31")
    if a.device_samples % a.eval_every:
        raise UsageError(f"--eval-every {a.eval_every} must divide --device-samples {a.device_samples} (each device "
                         "task's end is measured)")
    from metabnn.export.device_meta import parse_away, rule_scale
    # the conv demo learns one device task without an away table (the table is for the dense demo's task sequence)
    a.device_away = ("none", None) if getattr(a, "model", "mlp") == "conv" else \
        parse_away(a.device_away, "--device-away", auto=True)
    if a.device_scale is not None and a.device_meta != "auto":
        raise UsageError("--device-scale scales --device-meta auto, not a given m")
    a.device_scale = rule_scale(a.device_scale, a.device_away[0])
    if not a.out.strip():
        raise UsageError("--out: an empty path (give the output folder)")  # Path("") is the current folder


def train_pair(a, out: Path) -> dict:
    """Train (or reuse) the m > 0 and m = 0 models on pmnist:2. Returns {label: run folder}."""
    from metabnn.cli import build_parser

    runs = {}
    for label, m in (("meta", a.meta), ("plain", 0.0)):
        run_dir = out / f"train_{label}"
        runs[label] = run_dir
        if (run_dir / "model.pt").exists() and (run_dir / "results.json").exists():
            _say(f"[1/5] reusing the trained {label} model in {run_dir}")
            continue
        _say(f"[1/5] training the {label} model (m = {m:g}) on 2 permuted-MNIST tasks ...")
        argv = ["train", "--tasks", "pmnist:2", "--hidden", *map(str, a.hidden), "--epochs", str(a.epochs),
                "--meta", str(m), "--seed", str(a.seed), "--out", str(run_dir), "--overwrite",
                "--compare-shifts", "8", "--train-subset", str(a.train_subset)]
        if a.data_dir:
            argv += ["--data-dir", a.data_dir]
        if a.quiet:
            argv.append("--quiet")
        # run the subcommand itself, not main(): its errors (a full disk, missing data) then reach the
        # user as the demo's one line, not as train's line followed by a second "training failed"
        args = build_parser().parse_args(argv)
        args.run(args)
    return runs


def device_m(a, net) -> list:
    """The metaplastic model's device m per layer: as `metabnn export` picks it by default (--device-meta auto,
    the rule of docs/ONDEVICE.md; the trained m where its data cannot be had), or --device-meta M for every layer."""
    if a.device_meta != "auto":
        return [float(a.device_meta)] * len(net.layers)
    from metabnn.ondevice import device_meta_or_trained

    picked = device_meta_or_trained(net, say=lambda msg: _say("      " + msg), data_dir=a.data_dir,
                                    lr_shift_base=a.lr_shift, scale=a.device_scale)
    return [float(fl.meta) for fl in net.layers] if picked is None else [float(m) for m in picked]


def export_pair(a, runs: dict, out: Path) -> dict:
    from metabnn.export.device_meta import set_away, set_tables
    from metabnn.export.mbnn import save
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet

    models = {}
    for label, run_dir in runs.items():
        net = load_floatnet(run_dir / "model.pt")
        dm = device_m(a, net) if label == "meta" else 0.0
        if label == "meta":
            a.device_m = dm
        # export's tables (docs/ONDEVICE.md, 'Narrow hidden weights'), as `metabnn export` writes them
        model = set_tables(from_floatnet(net, lr_shift_base=a.lr_shift, device_meta=dm))
        if label == "meta":
            set_away(model, *a.device_away)  # as `metabnn export --device-away` writes it
        save(model, out / f"{label}.mbnn")
        models[label] = (model, net)
    model = models["meta"][0]
    written = [f"{out / 'meta.mbnn'}", f"{out / 'plain.mbnn'}"]
    for what, fn in (("onnx", _write_onnx), ("c header", _write_c_header), ("hex", _write_hex)):
        try:
            written.append(fn(model, out))
        except ImportError as e:
            _say(f"      ({what} export not available: {e})")
    _say("[2/5] exported " + ", ".join(written))
    return models


def _write_onnx(model, out: Path) -> str:
    from metabnn.export.onnx_export import save_onnx
    save_onnx(model, out / "meta.onnx")
    return str(out / "meta.onnx")


def _write_c_header(model, out: Path) -> str:
    from metabnn.export.c_header import write_c_header
    write_c_header(model, out / "meta_model.h")
    return str(out / "meta_model.h")


def _write_hex(model, out: Path) -> str:
    from metabnn.export.readmemh import write_readmemh
    write_readmemh(model, out / "hex")
    return str(out / "hex") + "/"


def verify_all(a, model, checkpoint: Path, tasks) -> list:
    """Every backend on the same test images of task 2 and `--learn-steps` learning steps of task 3 (the RTL's
    update units with the away table too, FORMAT.md 4.2.1)."""
    from metabnn.verify import format_table, open_backends, run_verify

    ev = tasks.evals[1]  # task 2: the model's most recent task, so accuracy means something
    x, y = ev.x[: a.verify_images].numpy(), ev.y[: a.verify_images].numpy()
    lt = tasks.tasks[2]
    lx, ly = lt.train_x[: a.learn_steps].numpy(), lt.train_y[: a.learn_steps].numpy()
    names = ["golden", "onnx", "c"] + ([] if a.no_rtl else ["rtl"]) + ["torch"]
    _say(f"[3/5] verifying {', '.join(names)} on {len(y)} test images of task 2"
         + (f" and {a.learn_steps} learning steps" if a.learn_steps else "") + " ...")
    rows = run_verify(model, x, y, open_backends(names, checkpoint=str(checkpoint)),
                      learn_images=lx if a.learn_steps else None, learn_labels=ly if a.learn_steps else None)
    _say(format_table(rows))
    return rows


def device_learning(a, models: dict, tasks) -> dict:
    """Tasks 3.. learned on the device one after another, sample by sample, in one stream, for both models:
    device_sequence's stream and learner, and its result (accuracy matrix, layer states) for its report and plot."""
    from metabnn.device_sequence import accuracy_matrix, device_stream, goals, learn_models
    from metabnn.ondevice import pick_engine

    xs, ys, evals = device_stream(2, a.seed, a.device_tasks, a.device_samples, a.eval_size, a.seed, seq=tasks)
    engine, described = pick_engine("auto")
    learned = learn_models({label: model for label, (model, _) in models.items()}, xs, ys, evals, a.eval_every,
                           engine, quiet=a.quiet or not sys.stderr.isatty())  # bars on a terminal only
    names = list(evals)
    dev = {"engine": described, "curves": learned["curves"], "states": learned["states"],
           "flips": learned["flips"], "samples": a.device_samples, "trained_tasks": 2,
           "device_tasks": a.device_tasks, "task_names": names, "device_meta": a.device_m,
           "device_m": a.device_m, "away": list(a.device_away),
           "matrix": {label: accuracy_matrix(c, names, a.device_samples, a.device_tasks)
                      for label, c in learned["curves"].items()}}
    dev["goals"] = goals(dev)  # issue 15's: earlier tasks keep >= 80 %, new ones within 5 points of the plain BNN
    return dev


def run(a) -> int:
    if a.model == "conv":
        from metabnn.demo_conv import run_conv
        return run_conv(a)
    _check_args(a)
    if getattr(a, "freeze", None) is not None:
        raise UsageError("--freeze is for --model conv (the dense demo learns every layer)")
    from metabnn.train import tasks as tasks_mod

    t0 = time.time()
    out = Path(a.out)
    check_output_dir(out)  # an unwritable --out fails now, not after minutes of training
    tasks = tasks_mod.build(f"pmnist:{2 + a.device_tasks}", a.seed, a.data_dir)
    runs = train_pair(a, out)
    models = export_pair(a, runs, out)
    rows = verify_all(a, models["meta"][0], runs["meta"] / "model.pt", tasks)
    from metabnn.export.device_meta import away_text

    _say(f"[4/5] learning tasks 3-{2 + a.device_tasks} on the device one after another, {a.device_samples} samples "
         f"each, one at a time, device m = {' / '.join(f'{m:g}' for m in a.device_m)} (per layer, away table "
         f"{away_text(*a.device_away)}) and m = 0 ...")
    dev = device_learning(a, models, tasks)
    results = {name: json.loads((run_dir / "results.json").read_text()) for name, run_dir in runs.items()}
    from metabnn.demo_report import write_report

    summary = write_report(out, a, results, models, rows, dev, seconds=time.time() - t0)
    _say("[5/5] " + summary)
    failed = [r.backend for r in rows if r.failed]
    if failed:
        print(f"MISMATCH between integer backends: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
