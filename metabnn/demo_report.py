"""The demo's output folder: plots (accuracy matrices, hidden weights, retention), summary.md, demo.json."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metabnn.fileio import atomic_write_bytes, atomic_write_text  # noqa: E402

LABELS = {"meta": "metaplastic", "plain": "plain BNN, m = 0"}


def _save(fig, path: Path) -> None:
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_acc_matrices(results: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6))
    for ax, (label, r) in zip(np.atleast_1d(axes), results.items()):
        acc = 100 * np.array(r["acc"])
        ax.imshow(acc, vmin=0, vmax=100, cmap="viridis")
        for i in range(acc.shape[0]):
            for j in range(acc.shape[1]):
                ax.text(j, i, f"{acc[i, j]:.1f}", ha="center", va="center",
                        color="white" if acc[i, j] < 60 else "black")
        ax.set_xticks(range(acc.shape[1]), [f"task {j + 1}" for j in range(acc.shape[1])])
        ax.set_yticks(range(acc.shape[0]), [f"after {i + 1}" for i in range(acc.shape[0])])
        m = r.get("config", {}).get("meta", "")
        ax.set_title("metaplastic (m = %g)" % m if label == "meta" else LABELS.get(label, label))
    fig.suptitle("PyTorch training: test accuracy (%) on task j after training task i", y=1.02)
    _save(fig, path)


def plot_hidden_weights(models: dict, path: Path) -> None:
    nets = {label: net for label, (_, net) in models.items()}
    n_layers = len(next(iter(nets.values())).layers)
    fig, axes = plt.subplots(1, n_layers, figsize=(4 * n_layers, 3.2))
    for l, ax in enumerate(np.atleast_1d(axes)):
        for label, net in nets.items():
            w = net.layers[l].weight.ravel()
            ax.hist(w, bins=120, histtype="step", density=True, label=f"{LABELS.get(label, label)}")
        ax.set_yscale("log")
        ax.set_title(f"layer {l + 1} hidden weights W_h")
        ax.set_xlabel("W_h")
    np.atleast_1d(axes)[0].legend()
    fig.suptitle("hidden weights after training both tasks (density, log scale)", y=1.04)
    _save(fig, path)


def _ms(device_meta) -> str:
    """The device m per layer, "13.94 / 10.1 / 8.829" (one number where every layer has it)."""
    ms = list(device_meta) if isinstance(device_meta, (list, tuple)) else [device_meta]
    return f"{ms[0]:g}" if len(set(ms)) == 1 else " / ".join(f"{m:g}" for m in ms)


def plot_retention(dev: dict, path: Path) -> None:
    """device_sequence's plot of the stream: every task's accuracy while tasks 3.. are learned, both models."""
    from metabnn.device_sequence import plot

    _save(plot(dev), path)


def write_report(out: Path, args, results: dict, models: dict, rows: list, dev: dict,
                 seconds: float) -> str:
    from metabnn.device_sequence import report
    from metabnn.export.device_meta import away_text
    from metabnn.verify import format_table

    plot_acc_matrices(results, out / "accuracy_matrix.png")
    plot_hidden_weights(models, out / "hidden_weights.png")
    plot_retention(dev, out / "retention.png")
    lines = ["# metabnn demo", "",
             f"Network 784-{'-'.join(map(str, args.hidden))}-10, {args.epochs} epochs per task, seed {args.seed}; "
             f"metaplastic m = {args.meta:g} against m = 0. Total time {seconds / 60:.1f} min.", "",
             "## Training (PyTorch): accuracy on each task after the last task", "",
             "| model | " + " | ".join(f"task {j + 1}" for j in range(len(results['meta']['acc'][-1]))) + " |",
             "|---|" + "---|" * len(results["meta"]["acc"][-1])]
    for label, r in results.items():
        lines.append(f"| {LABELS[label]} | " + " | ".join(f"{100 * v:.1f} %" for v in r["acc"][-1]) + " |")
    lines += ["", "## Every backend on the same images (metaplastic model)", "", "```",
              format_table(rows), "```", "",
              f"## Learning tasks {dev['task_names'][2]}-{dev['task_names'][-1]} on the device, one after "
              f"another ({dev['samples']} samples each, one at a time, no boundary signal, {dev['engine']})", "",
              f"Device m of the metaplastic model {_ms(dev['device_meta'])} (per layer; "
              f"{'the rule `metabnn export` applies by default' if args.device_meta == 'auto' else '--device-meta'}"
              + ("" if args.device_scale == 1.0 or args.device_meta != "auto" else f", times {args.device_scale:g}")
              + f"), export's f_meta tables, away table {away_text(*args.device_away)}; the plain model learns "
              f"with m = 0 and no away table. Accuracy on {args.eval_size} test images per task:", "",
              report(dev), "",
              "Sign flips per layer over the stream: " + "; ".join(
                  f"{LABELS[label]} {' / '.join(f'{n:,}' for n in f)}" for label, f in dev["flips"].items()) + "."]
    lines += ["", "Plots: accuracy_matrix.png, hidden_weights.png, retention.png."]
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    blob = {"args": {k: v for k, v in vars(args).items() if k != "run"}, "train": {k: r["acc"] for k, r in results.items()},
            "verify": [r.__dict__ for r in rows], "device": dev, "seconds": seconds}
    atomic_write_text(out / "demo.json", json.dumps(blob, indent=1, default=str))
    meta, plain = dev["curves"]["meta"][-1], dev["curves"]["plain"][-1]
    names = [n for n in meta if n != "step"]
    return (f"done in {seconds / 60:.1f} min. After learning {names[-1]} on the device: "
            + ", ".join(f"{n} {100 * meta[n]:.1f} % (metaplastic) vs {100 * plain[n]:.1f} % (m = 0)"
                        for n in names)
            + f". Summary and plots in {out}/")
