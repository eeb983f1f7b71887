"""`metabnn demo --model conv`: the demo's steps for a small binarized CNN (issue 14).

1. train a metaplastic binary CNN (m > 0) and a plain one (m = 0) on Fashion-MNIST (`metabnn train --model conv`,
   3x3 convs -> BatchNorm -> sign, 2x2 max-pools on the signs, a binary dense head of --hidden; BN frozen);
2. export both (.mbnn version 2, ONNX and C header of the metaplastic model);
3. verify every integer backend that runs conv layers (golden, ONNX, C, and the RTL when its backend says it runs
   conv) and the float model on the same Fashion-MNIST test images, and C learning steps against golden;
4. learn a second task, MNIST, on the device one sample at a time for both models, measuring what each keeps of
   Fashion-MNIST and what it reaches on MNIST;
5. write a plot and a summary table into --out.

Every option of `metabnn demo` applies: --hidden is the dense head, --epochs the Fashion-MNIST epochs, and
--train-subset the Fashion-MNIST training images. A rerun with the same --out reuses the trained models when they
were trained with the same settings.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from metabnn.demo_report import _ms as m_text
from metabnn.fileio import atomic_write_text, check_output_dir

# the conv part of the net: 28x28 -> conv 16 -> pool -> 14x14 -> conv 32 -> pool -> 7x7x32 = 1,568 bits into the
# dense head (measured in the README: the demo's whole run takes a few minutes on 2 cores)
CHANNELS = [16, "p", 32, "p"]
TRAIN_TASK = "fmnist"   # what the PyTorch training learns
DEVICE_TASK = "mnist"   # what the device then learns, sample by sample
STEPS = 5


def _say(msg: str) -> None:
    print(msg, flush=True)


def _channels_text() -> str:
    return ",".join(map(str, CHANNELS))


def check_args(a) -> None:
    """The demo's checks (demo._check_args) plus what a conv net needs."""
    from metabnn.demo import _check_args

    _check_args(a)
    frozen_of(a)  # a bad --freeze is one line now, not after the training


def frozen_of(a) -> tuple | None:
    """--freeze as layer numbers of the demo's net (its convs, then --hidden, then the output layer)."""
    from metabnn.train.models import n_convs
    from metabnn.verify import freeze_set

    convs = n_convs(list(CHANNELS))
    return freeze_set(getattr(a, "freeze", None), convs + len(a.hidden) + 1, tuple(range(convs)))


def n_test_images(a) -> int:
    """How many Fashion-MNIST test images the demo uses: those of verify and of the device's evaluations."""
    return max(a.verify_images, a.eval_size)


def _train_config(a, m: float) -> dict:
    """What a run folder must have been trained with to be reused."""
    return {"tasks": TRAIN_TASK, "model": "conv", "channels": list(CHANNELS), "hidden": list(a.hidden),
            "epochs": a.epochs, "meta": m, "seed": a.seed, "train_subset": a.train_subset, "bn": "frozen"}


def _reusable(run_dir: Path, want: dict) -> str | None:
    """None when run_dir holds a finished run trained as `want`, else why not."""
    if not ((run_dir / "model.pt").exists() and (run_dir / "results.json").exists()):
        return "no finished run"
    try:
        cfg = json.loads((run_dir / "results.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its results.json is unreadable"
    diff = [k for k, v in want.items() if cfg.get(k) != v]
    return None if not diff else "trained with other " + ", ".join(diff)


def train_pair(a, out: Path) -> dict:
    """Train (or reuse) the m > 0 and m = 0 conv models on Fashion-MNIST. Returns {label: run folder}."""
    from metabnn.cli import build_parser

    runs = {}
    for label, m in (("meta", a.meta), ("plain", 0.0)):
        run_dir = out / f"train_{label}"
        runs[label] = run_dir
        why = _reusable(run_dir, _train_config(a, m))
        if why is None:
            _say(f"[1/{STEPS}] reusing the trained {label} model in {run_dir}")
            continue
        if why != "no finished run":
            _say(f"      {run_dir}: {why}; training again")
        subset = f"the first {a.train_subset} images" if a.train_subset else "all 60,000 images"
        _say(f"[1/{STEPS}] training the {label} binary CNN (m = {m:g}; {_channels_text()} + dense "
             f"{'-'.join(map(str, a.hidden))}) on Fashion-MNIST, {a.epochs} epoch(s) on {subset} ...")
        argv = ["train", "--tasks", TRAIN_TASK, "--model", "conv", "--channels", _channels_text(),
                "--hidden", *map(str, a.hidden), "--epochs", str(a.epochs), "--meta", str(m), "--bn", "frozen",
                "--seed", str(a.seed), "--out", str(run_dir), "--overwrite", "--train-subset", str(a.train_subset),
                # training's test accuracy on the test images the demo verifies and evaluates (each of the trainer's
                # seven passes over the whole test set costs a conv net more than its epoch on a small subset)
                "--test-subset", str(n_test_images(a))]
        argv += (["--data-dir", a.data_dir] if a.data_dir else []) + (["--quiet"] if a.quiet else [])
        cmd = build_parser().parse_args(argv)
        cmd.run(cmd)  # the subcommand itself, not main(): its errors reach the user as the demo's one line
    return runs


def export_pair(a, runs: dict, out: Path) -> dict:
    """Both models to .mbnn (version 2); the metaplastic one also to ONNX and a C header. {label: (Model, FloatNet)}"""
    from metabnn import demo
    from metabnn.export.mbnn import save
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet

    from metabnn.export.device_meta import set_tables

    nets = {label: load_floatnet(run_dir / "model.pt") for label, run_dir in runs.items()}
    # the metaplastic model's device m as `metabnn export` picks it (--device-meta auto: the rule of
    # docs/ONDEVICE.md, per layer, a conv layer's probe summing over positions) or --device-meta M; the plain model
    # learns with m = 0 on the device too; export's f_meta tables (set_tables), as `metabnn export` writes them
    a.device_m = demo.device_m(a, nets["meta"])
    models = {label: (set_tables(from_floatnet(net, lr_shift_base=a.lr_shift,
                                               device_meta=a.device_m if label == "meta" else 0.0)), net)
              for label, net in nets.items()}
    written = []
    for label, (model, _) in models.items():
        save(model, out / f"{label}.mbnn")
        written.append(str(out / f"{label}.mbnn"))
    for what, write in (("onnx", demo._write_onnx), ("c header", demo._write_c_header)):
        try:
            written.append(write(models["meta"][0], out))
        except ImportError as e:
            _say(f"      ({what} export not available: {e})")
    _say(f"[2/{STEPS}] exported " + ", ".join(written)
         + " (the RTL's $readmemh files: metabnn export CHECKPOINT --hex-dir DIR)")
    return models


def rtl_choice(a) -> tuple[bool, str]:
    """(whether verify runs the RTL, why not when it does not)."""
    from metabnn import backends

    if a.no_rtl:
        return False, "left out: --no-rtl"
    be = backends.get("rtl")
    if not getattr(be, "conv", False):
        return False, "left out: the RTL backend does not run conv layers yet (metabnn/backends says conv = False)"
    from metabnn.train.models import n_convs

    frozen = frozen_of(a)
    if frozen is not None and a.learn_steps and getattr(be, "conv_learn", None) == "dense" \
            and frozen != tuple(range(n_convs(list(CHANNELS)))):
        return False, "left out: it learns a conv net with the conv layers frozen only, and --freeze asks otherwise"
    ok, why = be.available()
    if not ok:
        return False, f"left out: it cannot run here ({why})"
    return True, ""


def verify_all(a, model, checkpoint: Path, data) -> tuple[list, str]:
    from metabnn.verify import format_table, open_backends, run_verify

    fm, mn = data
    x, y = fm.test_x[: a.verify_images].numpy(), fm.test_y[: a.verify_images].numpy()
    # the learning steps are the device's task: MNIST images, as the device will see them
    lx, ly = mn.train_x[: a.learn_steps].numpy(), mn.train_y[: a.learn_steps].numpy()
    with_rtl, rtl_note = rtl_choice(a)
    names = ["golden", "onnx", "c"] + (["rtl"] if with_rtl else []) + ["torch"]
    _say(f"[3/{STEPS}] verifying {', '.join(names)} on {len(y)} Fashion-MNIST test images"
         + (f" and {a.learn_steps} MNIST learning steps" if a.learn_steps else "") + " ...")
    if rtl_note:
        _say(f"      rtl {rtl_note}")
    rows = run_verify(model, x, y, open_backends(names, checkpoint=str(checkpoint), model=model),
                      learn_images=lx if a.learn_steps else None, learn_labels=ly if a.learn_steps else None,
                      frozen=frozen_of(a))
    _say(format_table(rows))
    return rows, rtl_note


def device_engine() -> tuple[str, str]:
    """The C firmware when it builds here and its learning step takes conv models, else the golden model."""
    from metabnn import backends
    from metabnn.ondevice import pick_engine

    engine, described = pick_engine("auto")
    if engine == "c" and not backends.get("c").conv_learn:
        return "golden", "golden model (metabnn.sim.learn_step; this C build does not learn conv models)"
    return engine, described


def device_learning(a, models: dict, data) -> dict:
    """Learn MNIST sample by sample on the device, for both models; curves of Fashion-MNIST and MNIST accuracy."""
    from metabnn.ondevice import learn_stream

    fm, mn = data
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(mn.train_y))[: a.device_samples]
    xs, ys = mn.train_x.numpy()[order], mn.train_y.numpy()[order]
    evals = {TRAIN_TASK: (fm.test_x[: a.eval_size].numpy(), fm.test_y[: a.eval_size].numpy()),
             DEVICE_TASK: (mn.test_x[: a.eval_size].numpy(), mn.test_y[: a.eval_size].numpy())}
    engine, described = device_engine()
    curves, flips = {}, {}
    for label, (model, _) in models.items():
        _, curves[label], flips[label] = learn_stream(model, xs, ys, evals, a.eval_every, adapt=False,
                                                      engine=engine, desc=f"on-device learning ({label})",
                                                      quiet=a.quiet or not sys.stderr.isatty(),
                                                      frozen=frozen_of(a) or ())
    return {"engine": described, "frozen": list(frozen_of(a) or ()), "curves": curves, "flips": flips,
            "samples": int(len(ys)),
            "device_meta": a.device_m}


def plot_device(dev: dict, path: Path) -> None:
    """Two panels, Fashion-MNIST kept and MNIST learned, each with the metaplastic and the plain model."""
    from metabnn.demo_report import LABELS, _save, plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for ax, name, title in zip(axes, (TRAIN_TASK, DEVICE_TASK),
                               ("Fashion-MNIST (trained in PyTorch): kept", "MNIST (learned on the device)")):
        for k, (label, curve) in enumerate(dev["curves"].items()):
            ax.plot([c["step"] for c in curve], [100 * c[name] for c in curve], "-o" if k == 0 else "--s",
                    ms=3, color=f"C{k}", label=LABELS.get(label, label)
                    + (f" (device m = {m_text(dev['device_meta'])})" if label == "meta" else ""))
        ax.set_title(title)
        ax.set_xlabel("MNIST samples learned on the device, one at a time")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"binary CNN learning MNIST on the device ({dev['engine']})", y=1.02)
    _save(fig, path)


def write_report(out: Path, a, results: dict, models: dict, rows: list, rtl_note: str, dev: dict,
                 seconds: float) -> str:
    from metabnn.demo_report import LABELS
    from metabnn.verify import format_table

    plot_device(dev, out / "retention.png")
    sizes = models["meta"][0]
    lines = ["# metabnn demo --model conv", "",
             f"Binary CNN: conv {_channels_text()} (3x3, BN, sign, 2x2 max-pool on the signs) + dense "
             f"{'-'.join(map(str, a.hidden))}-10 ({sum(l.N * l.K for l in sizes.layers):,} binary weights); "
             f"Fashion-MNIST, {a.epochs} epoch(s) on "
             + (f"{a.train_subset} images" if a.train_subset else "all 60,000 images")
             + f", seed {a.seed}; metaplastic m = {a.meta:g} against m = 0. Total time {seconds / 60:.1f} min.", "",
             f"## Training (PyTorch, BN frozen): accuracy on the first {n_test_images(a)} Fashion-MNIST test images", "",
             "| model | Fashion-MNIST |", "|---|---|"]
    for label, r in results.items():
        lines.append(f"| {LABELS[label]} | {100 * r['acc'][-1][0]:.2f} % |")
    lines += ["", "## Every backend on the same Fashion-MNIST test images (metaplastic model)", "", "```",
              format_table(rows), "```", ""]
    if rtl_note:
        lines += [f"RTL {rtl_note}.", ""]
    still = f"; layers {', '.join(map(str, dev['frozen']))} frozen" if dev.get("frozen") else ""
    lines += [f"## Learning MNIST on the device ({dev['samples']} samples, one at a time, {dev['engine']}{still})", "",
              "| model | Fashion-MNIST kept | MNIST reached | sign flips per layer |", "|---|---|---|---|"]
    for label, curve in dev["curves"].items():
        first, last = curve[0], curve[-1]
        lines.append(f"| {LABELS[label]}" + (f" (device m = {m_text(a.device_m)})" if label == "meta" else "")
                     + f" | {100 * first[TRAIN_TASK]:.1f} → {100 * last[TRAIN_TASK]:.1f} % "
                     f"| {100 * first[DEVICE_TASK]:.1f} → {100 * last[DEVICE_TASK]:.1f} % | {dev['flips'][label]} |")
    lines += ["", f"(accuracy on the first {a.eval_size} test images of each set)", "", "Plot: retention.png."]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    blob = {"model": "conv", "channels": CHANNELS,
            "args": {k: v for k, v in vars(a).items() if k != "run"},
            "train": {k: r["acc"] for k, r in results.items()},
            "verify": [r.__dict__ for r in rows], "rtl": rtl_note or "verified", "device": dev, "seconds": seconds}
    atomic_write_text(out / "demo.json", json.dumps(blob, indent=1, default=str))
    meta, plain = dev["curves"]["meta"][-1], dev["curves"]["plain"][-1]
    return (f"done in {seconds / 60:.1f} min. After learning MNIST on the device: Fashion-MNIST "
            f"{100 * meta[TRAIN_TASK]:.1f} % (metaplastic) vs {100 * plain[TRAIN_TASK]:.1f} % (m = 0), MNIST "
            f"{100 * meta[DEVICE_TASK]:.1f} % vs {100 * plain[DEVICE_TASK]:.1f} %. Summary and plot in {out}/")


def load_data(a):
    """(Fashion-MNIST, MNIST), or DataMissingError (one line) before any training."""
    from metabnn.errors import DataMissingError
    from metabnn.train import data as data_mod

    try:
        fm = data_mod.load(TRAIN_TASK, a.data_dir)
    except DataMissingError as e:
        hint = "" if a.data_dir else " (or give --data-dir, a folder with its IDX files)"
        raise DataMissingError(f"the conv demo trains on Fashion-MNIST: {e}{hint}") from None
    try:
        mn = data_mod.load(DEVICE_TASK, a.data_dir)
    except DataMissingError as e:
        raise DataMissingError(f"the conv demo learns MNIST on the device: {e}") from None
    return fm, mn


def run_conv(a) -> int:
    check_args(a)
    t0 = time.time()
    out = Path(a.out)
    check_output_dir(out)
    data = load_data(a)
    runs = train_pair(a, out)
    models = export_pair(a, runs, out)
    rows, rtl_note = verify_all(a, models["meta"][0], runs["meta"] / "model.pt", data)
    _say(f"[4/{STEPS}] learning MNIST on the device, {a.device_samples} samples one at a time, "
         f"device m = {m_text(a.device_m)} and m = 0 ...")
    dev = device_learning(a, models, data)
    results = {name: json.loads((run_dir / "results.json").read_text()) for name, run_dir in runs.items()}
    summary = write_report(out, a, results, models, rows, rtl_note, dev, seconds=time.time() - t0)
    _say(f"[5/{STEPS}] " + summary)
    failed = [r.backend for r in rows if r.failed]
    if failed:
        print(f"MISMATCH between integer backends: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
