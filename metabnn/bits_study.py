"""How many hidden bits does on-device learning need?

Start from models trained on task A (MNIST) with m > 0 and with m = 0, export each at b hidden bits, then learn
task B (a fixed pixel permutation of MNIST) on the device, one sample at a time, with the integer learning step of
docs/FORMAT.md 4.3, rounded to nearest or stochastically (4.4). Report what is kept of A and what is reached on B,
per width and rounding.

The stream runs through the C firmware when it is built (it is bit-exact with metabnn.sim's learn_step, and this
script re-checks that on the first steps of every configuration); otherwise through the golden model itself.

    python -m metabnn.bits_study --meta-ckpt A_m1.35/model.pt --plain-ckpt A_m0/model.pt --out bits/ \
        --widths 2 4 8 --rounding nearest stochastic
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from metabnn.errors import MetabnnError, UsageError
from metabnn.export.device_meta import TABLE_HELP, TABLES, set_tables
from metabnn.fileio import atomic_write_bytes, atomic_write_text

WIDTHS = (4, 6, 8, 12, 16)
ROUNDINGS = ("nearest", "stochastic")


def cross_check(model, xs, ys, adapt: bool, steps: int) -> None:
    """The firmware's state after each of the first steps equals the golden model's (else: a bug)."""
    from metabnn import backends
    from metabnn.verify import compare_learning

    be = backends.get("c")
    if not be.available()[0]:
        return
    where = compare_learning(be, model, xs[:steps], ys[:steps], bank=0, adapt=adapt)
    if where:
        raise MetabnnError(f"firmware and golden model differ: {where}")


def main(argv=None) -> int:
    from metabnn.cli import _Parser, run_main  # bad options and user errors: one line, exit 2 (the project's rule)

    p = _Parser(prog="python -m metabnn.bits_study", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--meta-ckpt", required=True, help="model.pt trained on MNIST with m > 0")
    p.add_argument("--plain-ckpt", required=True, help="model.pt trained on MNIST with m = 0")
    p.add_argument("--out", default="runs/bits_study")
    p.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    p.add_argument("--samples", type=int, default=4000, help="task-B samples learned on the device")
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--eval-size", type=int, default=1000)
    p.add_argument("--lr-shift", type=int, default=14, help="learning-rate shift at 8 bits (see metabnn export)")
    p.add_argument("--device-meta", type=float, default=None,
                   help="m of the on-device f_meta table for the m>0 model (default: the trained m)")
    p.add_argument("--lsb-lr", action="store_true",
                   help="the same learning-rate shift at every width (steps of equal size in LSBs) instead of "
                   "the same step size in float weight units")
    p.add_argument("--rounding", nargs="+", choices=ROUNDINGS, default=["nearest"],
                   help="rounding of the learning step (FORMAT.md 4.3 / 4.4); both: every width with each")
    p.add_argument("--sr-seed", type=int, default=0, help="seed of stochastic rounding (as metabnn export's)")
    p.add_argument("--table", choices=TABLES, default="edge", help=TABLE_HELP)
    p.add_argument("--engine", choices=("auto", "c", "golden"), default="auto")
    p.add_argument("--check-steps", type=int, default=10, help="firmware steps re-checked against golden")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    return run_main("bits_study", _run, a)


def _run(a) -> int:
    from metabnn.export.quantize import default_lr_shift, from_floatnet
    from metabnn.ondevice import learn_stream, pick_engine
    from metabnn.train.checkpoint import load_floatnet
    from metabnn.train.data import load

    if any(not 2 <= w <= 16 for w in a.widths):
        raise UsageError("--widths must lie in 2..16")
    if not 0 <= a.sr_seed < 1 << 32:
        raise UsageError(f"--sr-seed {a.sr_seed} outside 0..4294967295")
    roundings = list(dict.fromkeys(a.rounding))  # each once, in the order given
    ds = load("mnist")
    rng = np.random.default_rng(a.seed)
    perm = rng.permutation(784)
    order = rng.permutation(len(ds.train_y))[: a.samples]
    xs, ys = ds.train_x.numpy()[order][:, perm], ds.train_y.numpy()[order]
    xa, ya = ds.test_x.numpy()[: a.eval_size], ds.test_y.numpy()[: a.eval_size]
    evals = {"A": (xa, ya), "B": (xa[:, perm], ya)}
    engine, described = pick_engine(a.engine)
    nets = {"m>0": load_floatnet(a.meta_ckpt), "m=0": load_floatnet(a.plain_ckpt)}
    rows, curves = [], {}
    for rounding in roundings:
        for bits in a.widths:
            for label, net in nets.items():
                lr = [default_lr_shift(l, 8, a.lr_shift) for l in range(len(net.layers))] if a.lsb_lr else None
                model = from_floatnet(net, hidden_bits=bits, lr_shift_base=a.lr_shift, lr_shifts=lr,
                                      device_meta=a.device_meta if label == "m>0" else 0.0,
                                      stochastic=rounding == "stochastic", sr_seed=a.sr_seed)
                set_tables(model, a.table)
                adapt = model.layers[0].adapt_shift > 0
                if engine == "c" and a.check_steps:
                    cross_check(model, xs, ys, adapt, a.check_steps)
                _, curve, _ = learn_stream(model, xs, ys, evals, a.every, adapt=adapt, engine=engine, quiet=True)
                curves[f"{rounding}/{bits}/{label}"] = curve
                rows.append({"rounding": rounding, "bits": bits, "model": label, "A_before": curve[0]["A"],
                             "A_after": curve[-1]["A"], "B_after": curve[-1]["B"]})
                r = rows[-1]
                print(f"{rounding:<10} b={bits:>2} {label}: A {100 * r['A_before']:.1f} -> {100 * r['A_after']:.1f} %, "
                      f"B {100 * curve[0]['B']:.1f} -> {100 * r['B_after']:.1f} %", flush=True)
    out = Path(a.out)
    table = ["| rounding | hidden bits | model | A before | A after | B after |", "|---|---|---|---|---|---|"]
    table += [f"| {r['rounding']} | {r['bits']} | {r['model']} | {100 * r['A_before']:.1f} % | "
              f"{100 * r['A_after']:.1f} % | {100 * r['B_after']:.1f} % |" for r in rows]
    text = "\n".join(table)
    print(text)
    atomic_write_text(out / "bits_study.md", f"Engine: {described}; {a.samples} task-B samples; learning rate "
                      f"{'equal in LSBs' if a.lsb_lr else 'equal in float units'} (shift {a.lr_shift} at 8 bits); "
                      f"device m {a.device_meta if a.device_meta is not None else 'as trained'}, {a.table} tables; "
                      "rounding "
                      f"{', '.join(roundings)}.\n\n{text}\n")
    atomic_write_text(out / "bits_study.json", json.dumps({"rows": rows, "curves": curves, "engine": described,
                                                           "args": vars(a)}, indent=1))
    _plot(rows, out / "bits_study.png")
    print(f"wrote {out}/bits_study.md, .json, .png")
    return 0


def _plot(rows, path: Path) -> None:
    """One panel per model (m > 0, m = 0): A kept and B reached against the width, a line per rounding."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, label in zip(axes, ("m>0", "m=0")):
        for rounding, style in (("stochastic", "-o"), ("nearest", "--s")):
            rs = [r for r in rows if r["model"] == label and r["rounding"] == rounding]
            if not rs:
                continue
            bits = [r["bits"] for r in rs]
            ax.plot(bits, [100 * r["A_after"] for r in rs], style, color="C0", label=f"A kept, {rounding}")
            ax.plot(bits, [100 * r["B_after"] for r in rs], style, color="C1", label=f"B reached, {rounding}")
        ax.set_xlabel("hidden-weight bits on the device")
        ax.set_title(f"model trained with {label.replace('>', ' > ').replace('=', ' = ')}")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test accuracy (%)")
    fig.suptitle("on-device learning of task B after task A, by hidden-weight width and rounding")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


if __name__ == "__main__":
    sys.exit(main())
