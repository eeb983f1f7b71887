"""`metabnn train`: run a continual-learning task sequence, write results.json, model.pt, curves.png."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from metabnn.errors import UsageError
from metabnn.fileio import check_output_dir, output_error

from . import augment as augment_mod
from . import bn as bn_mod
from . import tasks as tasks_mod
from .distributed import env_rank
from .models import LEGACY_CHANNELS, POOL, conv_plan, n_convs
from .presets import DEFAULTS, PRESETS, describe
from .schedule import HELP as SCHEDULE_HELP, SCHEDULES


def _one_line_error(prog: str):
    # argparse would print the whole usage block; the project's rule is one clear line, exit 2.
    def error(message: str):
        print(f"{prog}: error: {message}", file=sys.stderr)
        sys.exit(2)

    return error


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a (metaplastic) binarized network on a task sequence",
        description="Train on a sequence of tasks and write results.json (acc[i][j] = test accuracy on task j "
        "after task i, per-epoch curves, configuration), model.pt (for `metabnn export`), curves.png, and "
        "checkpoint.pt after every epoch (for --resume). Options not given come from --preset, then from "
        "the defaults shown.",
        epilog="presets:\n" + describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.error = _one_line_error("metabnn train")
    d = DEFAULTS
    a = p.add_argument
    a("--preset", help="start from a named configuration (listed below)")
    a("--tasks", help=f"task sequence: pmnist:K, a comma list of mnist/fmnist, or stream:SET:K (default {d['tasks']})")
    a("--model", choices=["bnn", "fp", "conv"],
      help="bnn: binarized MLP (the paper's); fp: full-precision ReLU MLP baseline; conv: binary conv net "
      f"(default {d['model']})")
    a("--hidden", nargs="+", metavar="N", help=f"hidden layer sizes (default {' '.join(map(str, d['hidden']))})")
    a("--channels", nargs="+", metavar="C",
      help="conv model: 3x3 conv layers by output channels, p = a 2x2 max-pool after the sign before it, e.g. "
      "64,64,p,128,128,p (commas or spaces); without any p every conv is followed by a pool (default 32 64)")
    a("--epochs", help=f"epochs per task or stream part (default {d['epochs']})")
    a("--meta", nargs="+", metavar="M",
      help=f"metaplasticity m >= 0, one value or one per layer; 0 = plain BNN (default {d['meta']})")
    a("--lr", help=f"Adam learning rate (default {d['lr']})")
    a("--lr-schedule", choices=SCHEDULES, help=f"learning rate per epoch: {SCHEDULE_HELP} (default {d['lr_schedule']})")
    a("--weight-decay", help=f"L2 decay added to the gradient (default {d['weight_decay']})")
    a("--batch-size", help=f"training batch size (default {d['batch_size']})")
    a("--seed", help=f"seed of init, permutations, shuffling (default {d['seed']})")
    a("--device", help="auto (CUDA when present), cpu, cuda, cuda:N (default auto)")
    a("--bn", choices=bn_mod.PROTOCOLS,
      help="BatchNorm protocol across tasks; see docs/TRAINING.md. adaptive: task-free, per-neuron mean "
      "tracks the test stream (deployable); task-aware: one saved BN bank per task (the paper's); "
      f"frozen; batch; task-aware-batch; frozen-after-1 (default {d['bn']})")
    a("--bn-affine", action=argparse.BooleanOptionalAction, default=None,
      help="learn BatchNorm gamma/beta (default on; --no-bn-affine keeps far less of earlier tasks, "
      "see docs/TRAINING.md)")
    a("--bn-gamma-init", choices=["one", "uniform"],
      help="initial BatchNorm gamma: one, as the authors' code with today's PyTorch, or uniform in [0, 1), "
      "as it was with PyTorch <= 1.1 (measured: learns each task less, docs/TRAINING.md Fidelity); no effect "
      f"with --no-bn-affine (default {d['bn_gamma_init']})")
    a("--adapt-shift", help=f"adaptive BN: mean += (a - mean) * 2^-shift per sample (default {d['adapt_shift']})")
    a("--reset-optimizer", action=argparse.BooleanOptionalAction, default=None,
      help="reset Adam's moments at each task boundary, as the paper (default on; streams never reset)")
    a("--ewc-lambda", help="EWC baseline: penalty strength lambda, 0 = off (default 0)")
    a("--ewc-samples", help=f"EWC: training samples for the Fisher diagonal (default {d['ewc_samples']})")
    a("--bn-recalibrate", metavar="N",
      help="after every epoch, set BatchNorm's running statistics to the average batch statistics of the first N "
      "training images under the epoch's final weights (precise BN; changes what is tested and exported, not "
      "training); 0 = keep torch's running average (default 0)")
    a("--augment-shift", metavar="K",
      help="move every training image by its own random translation of up to K pixels each way, zero fill, new "
      "draws every epoch (not for pmnist tasks); 0 = the images as they are (default 0)")
    a("--train-subset", help="use only the first N training samples of each task, 0 = all (default 0)")
    a("--test-subset", help="use only the first N test samples of each task, 0 = all (default 0)")
    a("--compare-shifts", nargs="+", metavar="S",
      help="adaptive shifts also measured at each task end, into results.json acc_by_bn (default 4..10)")
    a("--data-dir", help="folder with your own IDX files (torchvision raw layout or flat)")
    a("--out", default=None, help="output folder (default runs/<preset or 'train'>)")
    a("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    a("--overwrite", action="store_true", help="replace a finished or partial run already in --out")
    a("--stop-after-epochs", metavar="N",
      help="stop after N epochs of this invocation (checkpoint kept; continue with --resume)")
    a("--quiet", action="store_true", help="no per-epoch lines, no progress bars")
    p.set_defaults(run=run)


def _num(name: str, text, kind, lo=None, hi_excl=None, allow_eq_lo=True):
    try:
        v = kind(text)
    except (TypeError, ValueError):
        raise UsageError(f"--{name} {text!r}: not a {'whole number' if kind is int else 'number'}") from None
    if lo is not None and (v < lo or (v == lo and not allow_eq_lo)):
        raise UsageError(f"--{name} {text}: must be {'>=' if allow_eq_lo else '>'} {lo}")
    return v


def _channels(tokens: list[str]) -> list:
    """--channels 64,64,p,128 (or spaces): channel counts and POOL, checked as a net would follow them."""
    spec = []
    for tok in ",".join(tokens).split(","):
        tok = tok.strip().lower()
        if tok:
            spec.append(POOL if tok == POOL else _num("channels", tok, int, 1))
    try:
        conv_plan(spec)
    except ValueError as e:
        raise UsageError(f"--channels {','.join(tokens)}: {e}") from None
    return spec


def resolve(args) -> dict:
    """Defaults, then the preset, then explicit options: one validated configuration."""
    cfg = dict(DEFAULTS)
    if args.preset is not None:
        if args.preset not in PRESETS:
            raise UsageError(f"unknown preset {args.preset!r}; choose one of: {', '.join(PRESETS)}")
        cfg.update(PRESETS[args.preset][1])
    given = {k: v for k, v in vars(args).items() if v is not None}
    for key in ("tasks", "model", "device", "bn", "bn_gamma_init", "lr_schedule"):
        if key in given:
            cfg[key] = given[key]
    for key in ("reset_optimizer", "bn_affine"):
        if key in given:
            cfg[key] = given[key]
    if "hidden" in given:
        cfg["hidden"] = [_num("hidden", h, int, 1) for h in given["hidden"]]
    if "channels" in given:
        cfg["channels"] = _channels(given["channels"])
    if "meta" in given:
        ms = [_num("meta", m, float, 0.0) for m in given["meta"]]
        cfg["meta"] = ms[0] if len(ms) == 1 else ms
    if "compare_shifts" in given:
        cfg["compare_shifts"] = [_num("compare-shifts", s, int, 1) for s in given["compare_shifts"]]
    for key, kind, lo, eq in [("epochs", int, 1, True), ("lr", float, 0.0, False),
                              ("weight_decay", float, 0.0, True), ("batch_size", int, 2, True),
                              ("seed", int, 0, True), ("adapt_shift", int, 1, True),
                              ("ewc_lambda", float, 0.0, True), ("ewc_samples", int, 1, True),
                              ("train_subset", int, 0, True), ("test_subset", int, 0, True),
                              ("bn_recalibrate", int, 0, True), ("augment_shift", int, 0, True)]:
        if key in given:
            cfg[key] = _num(key.replace("_", "-"), given[key], kind, lo, allow_eq_lo=eq)
    tasks_mod.parse(cfg["tasks"])  # a bad spec fails here, before any data is loaded
    augment_mod.check(cfg["tasks"], cfg["augment_shift"])
    if not cfg["hidden"] and cfg["model"] != "conv":
        raise UsageError("--hidden: give at least one hidden layer size")
    if cfg["model"] == "conv" and cfg["bn"] == "adaptive":
        if "bn" in given:
            raise UsageError("--bn adaptive is defined for MLPs; use --bn frozen or task-aware with --model conv")
        cfg["bn"] = "frozen"  # the default protocol is the MLP's; a conv net is not deployed, test it frozen
    if cfg["model"] == "conv" and cfg["channels"] is None:
        cfg["channels"] = list(LEGACY_CHANNELS)
    n_layers = len(cfg["hidden"]) + 1 + (n_convs(cfg["channels"]) if cfg["model"] == "conv" else 0)
    if isinstance(cfg["meta"], list) and len(cfg["meta"]) != n_layers:
        raise UsageError(f"--meta: give 1 value or {n_layers} (one per weight layer), not {len(cfg['meta'])}")
    if cfg["model"] != "conv":
        cfg["channels"] = None
    return cfg


def run(args) -> int:
    from .experiment import Experiment
    from .optim import min_chunk_size

    min_chunk_size()  # a bad TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE: one line now, not torch's ValueError later
    cfg = resolve(args)
    cfg["verbose"] = not args.quiet
    if args.out is not None and not args.out.strip():
        raise UsageError("--out: an empty path (give the run's folder)")  # "" would silently mean the default
    out = Path(args.out or Path("runs") / (args.preset or "train"))
    stop = _num("stop-after-epochs", args.stop_after_epochs, int, 1) if args.stop_after_epochs else None
    # under torchrun only rank 0 checks and cleans --out (the other ranks may have no such folder), and speaks
    main = env_rank() == 0
    if main:
        has_run = (out / "checkpoint.pt").exists() or (out / "model.pt").exists()
        if args.resume and not (out / "checkpoint.pt").is_file():
            # a typo in --out must not silently start a fresh run that takes hours
            raise UsageError(f"--resume: {out} holds no run to resume (no checkpoint.pt); check --out, or leave "
                             "out --resume to start a new run")
        if has_run and not (args.resume or args.overwrite):
            raise UsageError(f"{out} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                             "or choose another --out")
        check_output_dir(out)  # an unwritable --out fails now, not after the first epoch
        if args.overwrite and not args.resume:
            for name in ("checkpoint.pt", "model.pt", "results.json", "curves.png"):
                try:
                    (out / name).unlink(missing_ok=True)
                except OSError as e:
                    raise output_error(out / name, e) from None
    exp = Experiment(cfg, out, data_dir=args.data_dir, progress=None if not args.quiet else False)
    if args.resume and exp.try_resume():
        p = exp.progress_at
        if main:
            print(f"resuming {out} at task {p['task'] + 1}, epoch {p['epoch'] + 1}", flush=True)
        if p["task"] >= len(exp.seq.tasks):
            exp.finish()
            if main:
                print(f"run already complete: {out / 'results.json'}")
            return 0
    results = exp.run(stop_after=stop)
    if not main:
        return 0
    if results is None:
        print(f"stopped as asked; continue with: metabnn train --resume --out {out} (same options)")
        return 0
    acc = results["acc"]
    print("acc[i][j] (test accuracy on task j after task i):")
    for row in acc:
        print("  " + " ".join(f"{a:.4f}" for a in row))
    print(f"wrote {out / 'results.json'}, {out / 'model.pt'}, {out / 'curves.png'}")
    return 0
