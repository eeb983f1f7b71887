"""The device's trade-off curve: consolidation strength (device m) against what is kept and what is learned.

Task A (MNIST) is learned in PyTorch, by a metaplastic model (m > 0) and a plain one (m = 0). Each model is exported
with one device m after another (the f_meta tables and the hidden range, docs/FORMAT.md 4.1-4.2), and with the m
the rule of export/device_meta.py picks, then learns task B (a fixed pixel permutation of MNIST) on the device, one
sample at a time, no boundary signal. Per device m: accuracy kept on A, accuracy reached on B (test images of
each), and a plot of A kept against B reached with the rule's pick marked.

    python -m metabnn.device_tradeoff --meta-ckpt A_m1.35/model.pt --plain-ckpt A_m0/model.pt --out tradeoff/
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from metabnn.errors import UsageError
from metabnn.fileio import atomic_write_bytes, atomic_write_text, check_output_dir

SWEEP = (0, 1, 2, 4, 8, 16, 32, 64)
MODELS = (("meta", "metaplastic (m > 0)"), ("plain", "plain BNN (m = 0)"))


def parse_args(argv):
    from metabnn.cli import _Parser  # bad options: one line, exit 2
    from metabnn.export.device_meta import DEFAULT_QUANTILE, TABLE_HELP, TABLES

    p = _Parser(prog="python -m metabnn.device_tradeoff", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--meta-ckpt", required=True, help="model.pt trained on MNIST with m > 0")
    p.add_argument("--plain-ckpt", required=True, help="model.pt trained on MNIST with m = 0")
    p.add_argument("--out", default="runs/device_tradeoff", help="output folder (table, JSON, plot)")
    p.add_argument("--ms", type=float, nargs="+", default=list(SWEEP), help="device m values swept")
    p.add_argument("--samples", type=int, default=3000, help="task-B samples learned on the device")
    p.add_argument("--eval-size", type=int, default=1000, help="test images per task")
    p.add_argument("--lr-shift", type=int, default=12, help="on-device learning-rate shift (see metabnn export)")
    p.add_argument("--horizon", type=int, default=None,
                   help="samples a new task takes, for the rule (default: --samples)")
    p.add_argument("--quantile", type=float, default=DEFAULT_QUANTILE,
                   help="the rule consolidates synapses with |W| at or above this quantile of their layer")
    p.add_argument("--probe-samples", type=int, default=100, help="learning steps the rule's probe measures")
    p.add_argument("--table", choices=TABLES, default="edge", help=TABLE_HELP)
    p.add_argument("--engine", choices=("auto", "c", "golden"), default="auto")
    p.add_argument("--seed", type=int, default=0, help="seed of task B's permutation and sample order")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    for name in ("samples", "eval_size", "probe_samples"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1")
    if a.horizon is not None and a.horizon < 1:
        raise UsageError("--horizon must be >= 1")
    if any(not (np.isfinite(m) and m >= 0) for m in a.ms):
        raise UsageError("--ms: every device m must be finite and >= 0")
    if not 0 <= a.lr_shift <= 31:
        raise UsageError("--lr-shift must lie in 0..31")
    if not 0 < a.quantile < 1:
        raise UsageError("--quantile must lie in (0, 1)")
    for ck in (a.meta_ckpt, a.plain_ckpt):
        if not Path(ck).is_file():
            raise UsageError(f"{ck}: no such checkpoint file")
    return a


def task_pair(seed: int, samples: int, eval_size: int):
    """Task B's stream (a fixed permutation of MNIST's training images) and the test sets of A and B."""
    from metabnn.train.data import load

    ds = load("mnist")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(784)
    order = rng.permutation(len(ds.train_y))[:samples]
    xs, ys = ds.train_x.numpy()[order][:, perm], ds.train_y.numpy()[order]
    xa, ya = ds.test_x.numpy()[:eval_size], ds.test_y.numpy()[:eval_size]
    return xs, ys, {"A": (xa, ya), "B": (np.ascontiguousarray(xa[:, perm]), ya)}


def sweep(a) -> dict:
    from metabnn.export.device_meta import set_tables
    from metabnn.export.quantize import from_floatnet
    from metabnn.ondevice import auto_device_meta, learn_stream, pick_engine
    from metabnn.train.checkpoint import load_floatnet

    xs, ys, evals = task_pair(a.seed, a.samples, a.eval_size)
    engine, described = pick_engine(a.engine)
    horizon = a.horizon or a.samples
    rows, rule = [], {}
    for label, ck in (("meta", a.meta_ckpt), ("plain", a.plain_ckpt)):
        net = load_floatnet(ck)
        picks = auto_device_meta(net, horizon, a.quantile, a.probe_samples, lr_shift_base=a.lr_shift,
                                 quiet=a.quiet, table=a.table)
        rule[label] = [{"m": m, "reached": ok, "rate": st.rate, "mean_u": st.mean_size} for m, ok, st in picks]
        print(f"{label}: the rule picks device m = {', '.join(f'{m:g}' for m, _, _ in picks)} (per layer)",
              flush=True)
        settings = [(float(m), float(m)) for m in a.ms] + [("rule", [m for m, _, _ in picks])]
        for name, dm in settings:
            model = set_tables(from_floatnet(net, lr_shift_base=a.lr_shift, device_meta=dm), a.table)
            adapt = model.layers[0].adapt_shift > 0
            _, curve, flips = learn_stream(model, xs, ys, evals, len(ys), adapt=adapt, engine=engine,
                                           desc=f"{label}, device m = {name}", quiet=a.quiet)
            row = {"model": label, "m": name, "layer_m": dm if isinstance(dm, list) else [dm] * len(net.layers),
                   "A_before": curve[0]["A"], "A_after": curve[-1]["A"], "B_before": curve[0]["B"],
                   "B_after": curve[-1]["B"], "flips": flips}
            rows.append(row)
            print(f"  {label} m = {name if name == 'rule' else f'{name:g}'}: A {100 * row['A_before']:.1f} -> "
                  f"{100 * row['A_after']:.1f} %, B {100 * row['B_before']:.1f} -> {100 * row['B_after']:.1f} %",
                  flush=True)
    return {"rows": rows, "rule": rule, "engine": described, "horizon": horizon, "args": vars(a)}


def table(res: dict) -> str:
    lines = ["| device m | metaplastic: A kept | B reached | plain BNN: A kept | B reached |", "|---|---|---|---|---|"]
    by = {(r["model"], str(r["m"])): r for r in res["rows"]}
    for m in dict.fromkeys(str(r["m"]) for r in res["rows"]):
        cells = []
        for label, _ in MODELS:
            r = by[(label, m)]
            cells += [f"{100 * r['A_after']:.1f} %", f"{100 * r['B_after']:.1f} %"]
        name = m if m != "rule" else "rule: " + " / ".join(
            f"{x['m']:g}" for x in res["rule"]["meta"]) + " (plain: " + " / ".join(
            f"{x['m']:g}" for x in res["rule"]["plain"]) + ")"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(res: dict):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for (label, title), color in zip(MODELS, ("C0", "C3")):
        rs = [r for r in res["rows"] if r["model"] == label and r["m"] != "rule"]
        rs.sort(key=lambda r: r["m"])
        ax.plot([100 * r["B_after"] for r in rs], [100 * r["A_after"] for r in rs], "-o", color=color, label=title)
        for r in rs:
            ax.annotate(f"{r['m']:g}", (100 * r["B_after"], 100 * r["A_after"]), textcoords="offset points",
                        xytext=(4, 3), fontsize=7, color=color)
        pick = next(r for r in res["rows"] if r["model"] == label and r["m"] == "rule")
        ax.plot([100 * pick["B_after"]], [100 * pick["A_after"]], "*", color=color, markersize=15,
                markeredgecolor="k", label=f"rule's pick, {label} (m per layer "
                + "/".join(f"{m:g}" for m in pick["layer_m"]) + ")")
    ax.set_xlabel(f"task B reached after {res['args']['samples']:,} samples on the device (%)")
    ax.set_ylabel("task A kept (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title("device m: retention of A against learning of B (labels: device m)", fontsize=10)
    return fig


def write_results(out: Path, stem: str, header: str, text: str, res: dict, fig) -> None:
    """stem.md (header + table), stem.json (everything measured), stem.png (the figure), each atomically."""
    import io

    import matplotlib.pyplot as plt

    atomic_write_text(out / f"{stem}.md", f"{header}\n\n{text}\n")
    atomic_write_text(out / f"{stem}.json", json.dumps(res, indent=1))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(out / f"{stem}.png", buf.getvalue())
    print(f"wrote {out}/{stem}.md, .json, .png")


def _main(argv) -> int:
    a = parse_args(argv)
    out = check_output_dir(a.out)  # an unwritable --out fails now, not after the sweep
    res = sweep(a)
    text = table(res)
    print(text)
    write_results(out, "device_tradeoff", f"Engine: {res['engine']}; {a.samples} task-B samples, lr_shift "
                  f"{a.lr_shift}, {a.table} tables, {a.eval_size} test images per task; rule: quantile {a.quantile}, "
                  "horizon "
                  f"{res['horizon']}.", text, res, plot(res))
    return 0


def main(argv=None) -> int:
    from metabnn.cli import run_main  # one line per user error, its exit code

    return run_main("device_tradeoff", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
