"""Collect the binarized CNN runs (issue 14) into docs/results/conv/results.json and curves.png.

    .venv/bin/python docs/results/conv/collect.py [--runs runs/conv] [--out docs/results/conv]

Reads RUNS/<name>/results.json of every finished run found (fmnist-conv: the single-task model;
fmnist-mnist-m*: Fashion-MNIST then MNIST per metaplasticity m) and RUNS/<name>/model.pt for the memory summary;
writes one small JSON (accuracies after each task, per-epoch curves, seconds per epoch, `metabnn summary`'s totals)
and a plot of the per-epoch test accuracies. A run stopped before its end is taken from its checkpoint.pt, marked
"partial" (resume it with the same command and --resume).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _run(d: Path) -> dict | None:
    """A finished run (results.json, model.pt) or, failing that, a partial one (checkpoint.pt, resumable)."""
    from metabnn.summary import summarize
    from metabnn.train import checkpoint as ckpt_mod

    if (d / "results.json").exists():
        r, cfg, model, partial = json.loads((d / "results.json").read_text()), None, d / "model.pt", None
    elif (d / "checkpoint.pt").exists():
        c = ckpt_mod.read(d / "checkpoint.pt")
        r, cfg, model = c["results"], c["config"], d / "checkpoint.pt"
        total = len(r["task_names"]) * cfg["epochs"]
        partial = (f"stopped after {len(r['curves']['epoch'])} of {total} epochs ({len(r['task_names'])} task(s) x "
                   f"{cfg['epochs']}); the same command with --resume continues it")
        print(f"collect: {d} is partial ({partial})", file=sys.stderr)
    else:
        print(f"collect: {d} has neither results.json nor checkpoint.pt, left out", file=sys.stderr)
        return None
    out = {"tasks": r["task_names"], "evals": r["eval_names"], "bn": r["bn"], "config": r.get("config", str(cfg)),
           "partial": partial, "acc": r["acc"], "acc_by_bn": r.get("acc_by_bn", {}), "curves": r["curves"], "seconds_per_epoch": r["seconds_per_epoch"]}
    if model.exists():
        out["memory"] = summarize(model)["totals"]
    return out


def _plot(runs: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for k, (name, r) in enumerate(runs.items()):
        c = r["curves"]
        x = list(range(1, len(c["epoch"]) + 1))
        for j, ev in enumerate(r["evals"]):  # one colour per run, one line style per test set
            ax.plot(x, [row[j] * 100 for row in c["test_acc"]], marker="o", ms=3, color=f"C{k}",
                    label=f"{name}: {ev} test" + (" (partial run)" if r["partial"] else ""),
                    ls=["-", "--", ":", "-."][j % 4])
    ax.set_xlabel("epoch over the whole sequence (test accuracy under the run's --bn protocol)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("binary CNN 32,p,64,p + 512 (metabnn train, CPU)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", default="runs/conv")
    ap.add_argument("--out", default=str(Path(__file__).parent))
    a = ap.parse_args(argv)
    root = Path(a.runs)
    if not root.is_dir():
        print(f"collect: {root} is not a folder", file=sys.stderr)
        return 2
    runs = {d.name: r for d in sorted(root.iterdir()) if d.is_dir() and (r := _run(d)) is not None}
    if not runs:
        print(f"collect: no finished run under {root}", file=sys.stderr)
        return 2
    out = Path(a.out)
    (out / "results.json").write_text(json.dumps(runs, indent=1) + "\n")
    _plot(runs, out / "curves.png")
    for name, r in runs.items():
        print(f"{name}: acc after each task {[[round(v * 100, 2) for v in row] for row in r['acc']]} "
              f"({', '.join(r['evals'])}); s/epoch {r['seconds_per_epoch']}")
    print(f"wrote {out / 'results.json'}, {out / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
