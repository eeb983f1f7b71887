"""The paper-scale results (docs/TRAINING.md "The paper's experiments at the paper's scale") from finished runs.

    python -m metabnn.train.paper_report runs/paper/pmnist1024_m1.35 runs/paper/pmnist1024_m0 \
        [--plot docs/results/pmnist1024.png] [--curve docs/results/pmnist1024_tasks.png] [--copy docs/results]

Prints, per run, the test accuracy on every task's test set after the last task, and their mean, under the
task-free default (`adaptive:S`, S the run's --adapt-shift) and under the paper's protocol (`task-aware-batch`:
task j tested with bank j's gamma/beta and the test batch's statistics), as one Markdown table. `--plot` draws
the same numbers as grouped bars (one panel per protocol). `--curve` draws, per protocol, the mean test accuracy
after each task (for a stream: after each part), a one-task run (the whole-set baseline) as a dashed line at its
final accuracy. `--copy DIR` puts each run's small files
(results.json, curves.png) in DIR/NAME/ for committing; the checkpoints stay in runs/.
An unfinished run (no results.json yet) is one line naming it, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from metabnn.errors import UsageError
from metabnn.fileio import atomic_write_bytes

PAPER = "task-aware-batch"


def load_run(folder: Path) -> dict:
    f = folder / "results.json"
    if not f.is_file():
        raise UsageError(f"{folder}: no results.json (the run has not finished; continue it with --resume)")
    try:
        return json.loads(f.read_text())
    except ValueError as e:
        raise UsageError(f"{f}: not a readable results.json ({e})") from None


def protocols(run: dict) -> list[str]:
    """The task-free default the run was configured with, then the paper's protocol, as far as recorded."""
    names = [f"adaptive:{run['config'].get('adapt_shift', 8)}", PAPER]
    return [n for n in names if n in run["acc_by_bn"]]


def final_row(run: dict, protocol: str) -> list[float]:
    """Accuracy on every evaluation set after the last task (fractions)."""
    return list(run["acc_by_bn"][protocol][-1])


def table(named: list[tuple[str, dict]]) -> str:
    lines, last_head = [], None
    for name, run in named:
        evals = run["eval_names"]
        head = f"| run | m | test-time BN | {' | '.join(evals)} | mean |"
        if head != last_head:  # one table per set of evaluation sets
            lines += ([""] if lines else []) + [head, "|" + "---|" * (len(evals) + 4)]
            last_head = head
        for p in protocols(run):
            row = final_row(run, p)
            cells = " | ".join(f"{a * 100:.1f} %" for a in row)
            lines.append(f"| {name} | {run['config']['meta']} | {p} | {cells} | {sum(row) / len(row) * 100:.1f} % |")
    return "\n".join(lines)


def plot(named: list[tuple[str, dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    protos = sorted({p for _, r in named for p in protocols(r)}, key=lambda p: p == PAPER)
    fig, axes = plt.subplots(1, len(protos), figsize=(5.5 * len(protos), 3.6), squeeze=False)
    for ax, p in zip(axes[0], protos):
        runs = [(n, r) for n, r in named if p in r["acc_by_bn"]]
        evals = runs[0][1]["eval_names"]
        x = np.arange(len(evals))
        w = 0.8 / len(runs)
        for i, (n, r) in enumerate(runs):
            ax.bar(x + (i - (len(runs) - 1) / 2) * w, np.array(final_row(r, p)) * 100, w,
                   label=f"{n} (m = {r['config']['meta']})")
        ax.set_xticks(x, evals, rotation=30 if len(evals) > 3 else 0)
        ax.set_ylim(0, 100)
        ax.set_ylabel("test accuracy after the last task (%)")
        ax.set_title(f"test-time BN: {p}")
        ax.legend(fontsize=8, loc="lower left")
    _save(fig, out)


def _save(fig, out: Path) -> None:
    import io

    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())


def curve(named: list[tuple[str, dict]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protos = sorted({p for _, r in named for p in protocols(r)}, key=lambda p: p == PAPER)
    fig, axes = plt.subplots(1, len(protos), figsize=(5.5 * len(protos), 3.6), squeeze=False)
    for ax, p in zip(axes[0], protos):
        for n, r in named:
            if p not in r["acc_by_bn"]:
                continue
            means = [sum(row) / len(row) * 100 for row in r["acc_by_bn"][p]]
            label = f"{n} (m = {r['config']['meta']})"
            if len(means) == 1:
                ax.axhline(means[0], ls="--", color="gray", label=label)
            else:
                ax.plot(range(1, len(means) + 1), means, marker="." if len(means) > 12 else "o", label=label)
        ax.set_xlabel("tasks (parts) learned")
        ax.set_ylabel("mean test accuracy (%)")
        ax.set_title(f"test-time BN: {p}")
        ax.legend(fontsize=8, loc="lower right")
    _save(fig, out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m metabnn.train.paper_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders (the --out of metabnn train)")
    ap.add_argument("--plot", type=Path, help="write the grouped-bar plot here (.png)")
    ap.add_argument("--curve", type=Path, help="write the accuracy-after-each-task plot here (.png)")
    ap.add_argument("--copy", type=Path, help="copy each run's results.json and curves.png to DIR/NAME/")
    args = ap.parse_args(argv)
    try:
        named = [(f.name, load_run(f)) for f in args.runs]
        print(table(named))
        if args.plot:
            plot(named, args.plot)
        if args.curve:
            curve(named, args.curve)
        if args.copy:
            for f in args.runs:
                dest = args.copy / f.name
                dest.mkdir(parents=True, exist_ok=True)
                for small in ("results.json", "curves.png"):
                    if (f / small).is_file():
                        atomic_write_bytes(dest / small, (f / small).read_bytes())
    except (UsageError, OSError) as e:
        print(f"paper_report: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
