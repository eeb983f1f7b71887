"""A task sequence on the device: models trained in PyTorch on permuted-MNIST tasks 1..K learn the next tasks on
the device, one after another, one sample at a time, with no boundary signal (one stream), with the integer
learning step of docs/FORMAT.md 4.3 (the C firmware when it builds, bit-exact with metabnn.sim, else the golden
model). Every `--eval-every` samples each task is measured on its test images; the accuracy matrix (every task
after each device task), the retention of the earlier tasks and the gap to the plain BNN on each new task are
reported, with a plot.

    python -m metabnn.device_sequence --meta-ckpt P2_m1.35/model.pt --plain-ckpt P2_m0/model.pt --out seq/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from metabnn.device_tradeoff import write_results
from metabnn.errors import UsageError
from metabnn.fileio import check_output_dir

MODELS = (("meta", "metaplastic"), ("plain", "plain BNN (m = 0)"))
KEEP, GAP = 0.80, 0.05  # the goal: earlier tasks keep >= 80 % of their accuracy, new ones within 5 points


def parse_args(argv):
    from metabnn.cli import _Parser  # bad options: one line, exit 2
    from metabnn.export.device_meta import (AWAY_HELP, DEFAULT_HORIZON, DEFAULT_QUANTILE, SCALE_HELP, TABLE_HELP,
                                            TABLES, parse_away, parse_option, rule_scale)

    p = _Parser(prog="python -m metabnn.device_sequence", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--meta-ckpt", required=True, help="model.pt trained with m > 0 on pmnist:K (metabnn train)")
    p.add_argument("--plain-ckpt", required=True, help="model.pt trained with m = 0 on the same tasks and seed")
    p.add_argument("--out", default="runs/device_sequence", help="output folder (table, JSON, plot)")
    p.add_argument("--device-tasks", type=int, default=3, help="new permuted tasks learned on the device in turn")
    p.add_argument("--samples", type=int, default=3000, help="samples of each device task, one at a time")
    p.add_argument("--eval-every", type=int, default=500, help="evaluate every N samples (divides --samples)")
    p.add_argument("--eval-size", type=int, default=1000, help="test images per task")
    p.add_argument("--lr-shift", type=int, default=12, help="on-device learning-rate shift (see metabnn export)")
    p.add_argument("--lr-shifts", metavar="S0,S1,..", default=None,
                   help="the learning-rate shift of every layer, comma-separated (FORMAT.md keeps one per layer); "
                   "overrides --lr-shift, for both models and the rule's probe")
    p.add_argument("--hidden-bits", type=int, default=8, help="hidden-weight width b on the device (2..16)")
    p.add_argument("--rounding", choices=("nearest", "stochastic"), default="nearest",
                   help="rounding of the learning step (docs/FORMAT.md 4.3 / 4.4), both models")
    p.add_argument("--device-meta", default="auto", metavar="auto|M|M0,M1,..",
                   help="device m of the metaplastic model: auto (the rule, export/device_meta.py), a number, or "
                   "one number per layer, comma-separated")
    p.add_argument("--device-scale", type=float, default=None, metavar="S", help=SCALE_HELP)
    p.add_argument("--table", choices=TABLES, default="edge", help=TABLE_HELP)
    p.add_argument("--away", default="none", help=AWAY_HELP + "; the metaplastic model only")
    p.add_argument("--frozen-norm", action="store_true",
                   help="a diagnostic outside the protocol: both models with the stream-adaptive normalization "
                   "frozen (adapt_shift 0 in every layer), to tell a loss in the synapses from one in the "
                   "shared normalization")
    p.add_argument("--horizon", type=int, default=DEFAULT_HORIZON, help="samples a new task takes, for the rule")
    p.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE,
                   help="the rule consolidates synapses with |W| at or above this quantile of their layer")
    p.add_argument("--probe-samples", type=int, default=100, help="learning steps the rule's probe measures")
    p.add_argument("--engine", choices=("auto", "c", "golden"), default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed of the device streams' sample order")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    for name in ("device_tasks", "samples", "eval_every", "eval_size", "horizon", "probe_samples"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if a.samples % a.eval_every:
        raise UsageError(f"--eval-every {a.eval_every} must divide --samples {a.samples} (each task's end is "
                         "measured)")
    if not 0 <= a.lr_shift <= 31:
        raise UsageError("--lr-shift must lie in 0..31")
    if not 2 <= a.hidden_bits <= 16:
        raise UsageError("--hidden-bits must lie in 2..16")
    if not 0 < a.quantile < 1:
        raise UsageError("--quantile must lie in (0, 1)")
    if a.lr_shifts is not None:
        try:
            a.lr_shifts = [int(v) for v in a.lr_shifts.split(",")]
        except ValueError:
            raise UsageError(f"--lr-shifts {a.lr_shifts!r}: integers 0..31, comma-separated") from None
        if not all(0 <= v <= 31 for v in a.lr_shifts):
            raise UsageError("--lr-shifts: every shift must lie in 0..31")
    a.away = parse_away(a.away)
    a.device_meta = [parse_option(m) for m in a.device_meta.split(",")] if "," in a.device_meta \
        else parse_option(a.device_meta)
    if isinstance(a.device_meta, list) and "auto" in a.device_meta:
        raise UsageError("--device-meta: auto stands alone, not in a per-layer list")
    if a.device_scale is not None and a.device_meta != "auto":
        raise UsageError("--device-scale scales --device-meta auto, not a given m")
    a.device_scale = rule_scale(a.device_scale, a.away[0])
    for ck in (a.meta_ckpt, a.plain_ckpt):
        if not Path(ck).is_file():
            raise UsageError(f"{ck}: no such checkpoint file")
    return a


def trained_tasks(net, ck) -> tuple[int, int]:
    """(K, seed) of a checkpoint trained on pmnist:K: the sequence goes on with tasks K+1, K+2, ..."""
    from metabnn.export.quantize import file_metadata
    from metabnn.train.tasks import parse

    meta = file_metadata(net)
    if not meta or "spec" not in meta or parse(meta["spec"])[0] != "pmnist":
        raise UsageError(f"{ck}: not trained on permuted MNIST (pmnist:K); the device sequence continues one")
    return parse(meta["spec"])[2], int(meta["seed"])


def build_streams(a, k_trained: int, seed: int, fingerprint: str | None, data_dir=None):
    """Every task's test set and the device stream (tasks K+1.. one after another, no marker between them)."""
    return device_stream(k_trained, seed, a.device_tasks, a.samples, a.eval_size, a.seed, fingerprint, data_dir)


def device_stream(k_trained: int, seed: int, device_tasks: int, samples: int, eval_size: int, stream_seed: int,
                  fingerprint: str | None = None, data_dir=None, seq=None):
    """(images, labels, {task name: (test images, labels)}): `samples` of each of tasks K+1..K+device_tasks of
    pmnist (training seed `seed`) in one stream, each task's samples in the order of `stream_seed`, and the first
    `eval_size` test images of every task 1..K+device_tasks. The demo and this command learn the same stream.
    seq: those tasks already built (metabnn.train.tasks.build of pmnist:K+device_tasks, seed), else built here."""
    from metabnn.train import tasks as tasks_mod

    if seq is None:
        seq = tasks_mod.build(f"pmnist:{k_trained + device_tasks}", seed, data_dir)
    # the same generator draws the trained tasks' permutations first: check it still draws what training drew
    if fingerprint is not None and tasks_mod.build(f"pmnist:{k_trained}", seed, data_dir).fingerprint != fingerprint:
        raise UsageError("this installation draws other permutations than training did (torch changed its "
                         "random generator): the earlier tasks cannot be rebuilt")
    rng = np.random.default_rng(stream_seed)
    xs, ys = [], []
    for t in seq.tasks[k_trained:]:
        order = rng.permutation(len(t.train_y))[:samples]
        xs.append(t.train_x.numpy()[order])
        ys.append(t.train_y.numpy()[order])
    evals = {e.name: (e.x[:eval_size].numpy(), e.y[:eval_size].numpy()) for e in seq.evals}
    return np.concatenate(xs), np.concatenate(ys), evals


def learn_models(models: dict, xs, ys, evals: dict, every: int, engine: str, quiet: bool = False) -> dict:
    """Every model ({label: Model}) learns the same stream on the device: {"curves", "states" (the per-layer
    saturated / plastic shares at every evaluation), "flips" (sign flips per layer), "final" (the learned models)}."""
    from metabnn.ondevice import layer_state, learn_stream

    out = {"curves": {}, "states": {}, "flips": {}, "final": {}}
    for label, model in models.items():
        states = out["states"][label] = []
        out["final"][label], out["curves"][label], out["flips"][label] = learn_stream(
            model, xs, ys, evals, every, adapt=model.layers[0].adapt_shift > 0, engine=engine,
            desc=f"{label}: {len(ys):,} device samples", quiet=quiet,
            on_eval=lambda step, m, st=states: st.append({"step": step, "layers": layer_state(m)}))
    return out


def run_sequence(a) -> dict:
    from metabnn.export.device_meta import scaled, set_away, set_tables
    from metabnn.export.quantize import file_metadata, from_floatnet
    from metabnn.ondevice import auto_device_meta, pick_engine
    from metabnn.train.checkpoint import load_floatnet

    nets = {label: load_floatnet(ck) for label, ck in (("meta", a.meta_ckpt), ("plain", a.plain_ckpt))}
    (k, seed), other = trained_tasks(nets["meta"], a.meta_ckpt), trained_tasks(nets["plain"], a.plain_ckpt)
    if other != (k, seed):
        raise UsageError(f"the two checkpoints were trained on different tasks (pmnist:{k} seed {seed} vs "
                         f"pmnist:{other[0]} seed {other[1]})")
    xs, ys, evals = build_streams(a, k, seed, file_metadata(nets["meta"]).get("fingerprint"))
    engine, described = pick_engine(a.engine)
    stochastic = a.rounding == "stochastic"
    export = dict(lr_shift_base=a.lr_shift, hidden_bits=a.hidden_bits)
    if a.lr_shifts is not None:
        if len(a.lr_shifts) != len(nets["meta"].layers):
            raise UsageError(f"--lr-shifts: {len(a.lr_shifts)} values for a model of {len(nets['meta'].layers)} "
                             "layers")
        export["lr_shifts"] = a.lr_shifts
    if a.device_meta == "auto":
        picks = auto_device_meta(nets["meta"], a.horizon, a.quantile, a.probe_samples, quiet=a.quiet,
                                 stochastic=stochastic, table=a.table, **export)
        device_m = [scaled(m, a.device_scale) for m, _, _ in picks]
    elif isinstance(a.device_meta, list):
        device_m = a.device_meta
        if len(device_m) != len(nets["meta"].layers):
            raise UsageError(f"--device-meta: {len(device_m)} values for a model of {len(nets['meta'].layers)} "
                             "layers")
    else:
        device_m = [a.device_meta] * len(nets["meta"].layers)
    print(f"device m of the metaplastic model: {' / '.join(f'{m:g}' for m in device_m)} (per layer); "
          f"learning tasks {k + 1}-{k + a.device_tasks} on the {described}", flush=True)
    models = {}
    for label, net in nets.items():
        model = from_floatnet(net, device_meta=device_m if label == "meta" else 0.0, stochastic=stochastic,
                              sr_seed=a.seed, **export)
        if a.frozen_norm:
            for lay in model.layers:
                lay.adapt_shift = 0
        set_tables(model, a.table)
        if label == "meta":
            set_away(model, *a.away)
        models[label] = model
    learned = learn_models(models, xs, ys, evals, a.eval_every, engine, a.quiet)
    curves, states = learned["curves"], learned["states"]
    names = list(evals)
    return {"engine": described, "trained_tasks": k, "device_tasks": a.device_tasks, "samples": a.samples,
            "device_m": device_m, "away": list(a.away), "lr_shifts": [lay.lr_shift for lay in model.layers],
            "task_names": names,
            "curves": curves, "states": states,
            "matrix": {label: accuracy_matrix(c, names, a.samples, a.device_tasks) for label, c in curves.items()},
            "args": vars(a)}


def accuracy_matrix(curve: list, names: list, samples: int, device_tasks: int) -> list:
    """Row 0: at the start of on-device learning; row t: after device task t. Columns: every task."""
    at = {c["step"]: c for c in curve}
    return [[at[t * samples][n] for n in names] for t in range(device_tasks + 1)]


def goals(res: dict) -> dict:
    """Per device task t, the worst kept fraction over the tasks before it (each against its accuracy at the start
    of on-device learning, or for a device task at the end of its own learning) and the new task's gap to plain."""
    k, T = res["trained_tasks"], res["device_tasks"]
    A, P = (np.array(res["matrix"][x]) for x in ("meta", "plain"))
    out = []
    for t in range(1, T + 1):
        ref = [A[0, j] if j < k else A[j - k + 1, j] for j in range(k + t - 1)]
        kept = [A[t, j] / r if r > 0 else 1.0 for j, r in enumerate(ref)]
        new = k + t - 1
        out.append({"after": res["task_names"][new], "worst_kept": float(min(kept)),
                    "worst_task": res["task_names"][int(np.argmin(kept))], "new_meta": float(A[t, new]),
                    "new_plain": float(P[t, new]), "gap": float(P[t, new] - A[t, new])})
    return {"rows": out, "kept_ok": all(r["worst_kept"] >= KEEP for r in out),
            "gap_ok": all(r["gap"] <= GAP for r in out)}


def report(res: dict) -> str:
    names, k = res["task_names"], res["trained_tasks"]
    head = "| model, after | " + " | ".join(names) + " |"
    lines = [head, "|---" * (len(names) + 1) + "|"]
    for label, title in MODELS:
        for t, row in enumerate(res["matrix"][label]):
            when = "start" if t == 0 else f"device task {names[k + t - 1]}"
            lines.append(f"| {title}, {when} | " + " | ".join(f"{100 * v:.1f} %" for v in row) + " |")
    g = goals(res)
    lines += ["", "| after | worst earlier task kept (metaplastic) | new task: metaplastic | plain | gap |",
              "|---|---|---|---|---|"]
    for r in g["rows"]:
        lines.append(f"| {r['after']} | {100 * r['worst_kept']:.1f} % ({r['worst_task']}) | "
                     f"{100 * r['new_meta']:.1f} % | {100 * r['new_plain']:.1f} % | {100 * r['gap']:+.1f} points |")
    if res.get("states"):
        lines += ["", "| model, after | " + " | ".join(f"layer {l}: saturated / plastic" for l in
                                                       range(len(res["states"]["meta"][0]["layers"]))) + " |",
                  "|---" * (1 + len(res["states"]["meta"][0]["layers"])) + "|"]
        for label, title in MODELS:
            at = {s["step"]: s["layers"] for s in res["states"][label]}
            for t in range(res["device_tasks"] + 1):
                when = "start" if t == 0 else f"device task {names[k + t - 1]}"
                lines.append(f"| {title}, {when} | " + " | ".join(
                    f"{100 * st['saturated']:.1f} / {100 * st['plastic']:.1f} %" for st in at[t * res["samples"]])
                    + " |")
        lines += ["", "(saturated: |h| at the top of the range; plastic: f_meta(|h|) >= 1/2, a push toward zero keeps "
                  "at least half its size)"]
    lines += ["", f"goal: earlier tasks keep >= {KEEP:.0%}: {'met' if g['kept_ok'] else 'MISSED'}; "
              f"new tasks within {100 * GAP:.0f} points of the plain BNN: {'met' if g['gap_ok'] else 'MISSED'}"]
    return "\n".join(lines)


def plot(res: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metabnn.export.device_meta import away_text

    names, S, k = res["task_names"], res["samples"], res["trained_tasks"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, (label, title) in zip(axes, MODELS):
        curve = res["curves"][label]
        steps = [c["step"] for c in curve]
        for j, n in enumerate(names):
            ax.plot(steps, [100 * c[n] for c in curve], "-o", markersize=2.5, color=f"C{j}", label=n)
        for t in range(1, res["device_tasks"]):
            ax.axvline(t * S, color="0.6", lw=0.8, ls="--")
        away = res.get("away", ["none", None])
        ax.set_title(title + (" (device m " + " / ".join(f"{m:g}" for m in res["device_m"])
                              + ("" if away[0] == "none" else f", away {away_text(*away)}") + ")"
                              if label == "meta" else ""), fontsize=10)
        ax.set_xlabel("samples learned on the device")
        ax.grid(alpha=0.3)
    fig.suptitle(f"tasks {names[k]}..{names[-1]} learned on the device in turn, {S:,} samples each, one at a time, "
                 "no boundary signal (dashed: where the stream changes task)", fontsize=10)
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[1].legend(fontsize=8, loc="lower left")
    return fig


def _main(argv) -> int:
    from metabnn.export.device_meta import away_text

    a = parse_args(argv)
    out = check_output_dir(a.out)  # an unwritable --out fails now, not after the streams
    res = run_sequence(a)
    text = report(res)
    res["goals"] = goals(res)
    print(text)
    write_results(out, "device_sequence", f"Engine: {res['engine']}; {a.samples} samples per device task, "
                  f"lr_shift per layer {' / '.join(map(str, res['lr_shifts']))}, {a.hidden_bits} hidden bits, "
                  f"rounding {a.rounding}, {a.table} tables, "
                  f"away table {away_text(*a.away)}, "
                  f"{a.eval_size} test "
                  "images per task" + (" (diagnostic: normalization frozen)" if a.frozen_norm else "") + ".", text,
                  res, plot(res))
    return 0


def main(argv=None) -> int:
    from metabnn.cli import run_main  # one line per user error, its exit code

    return run_main("device_sequence", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
