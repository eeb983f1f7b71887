"""Seconds per training epoch of `metabnn train`, the work the authors' code does per epoch.

One epoch = 600 batches of 100 over a permuted-MNIST training set (512-512 BNN,
MetaAdam), then accuracy on that training set and on every task's test set.
The authors' code takes about 70 s for this on a 2-core machine (issue 2).

    python benchmarks/train_speed.py [--epochs 3] [--threads 2] [--hidden 512 512] [--tasks pmnist:2]

Prints one line per epoch and the median. Task-end extras (the BN-protocol
comparison table) are excluded: the run stops before the first task ends.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--tasks", default="pmnist:2")
    ap.add_argument("--bn", default=DEFAULTS["bn"])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = dict(DEFAULTS, tasks=a.tasks, hidden=a.hidden, epochs=a.epochs + 1, device=a.device, bn=a.bn,
               verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment(cfg, Path(tmp), progress=False)
        exp.run(stop_after=a.epochs)
        secs = exp.results["seconds_per_epoch"]
    for i, s in enumerate(secs, 1):
        print(f"epoch {i}: {s:.2f} s")
    print(f"median: {statistics.median(secs):.2f} s/epoch ({a.tasks}, hidden {a.hidden}, bn {a.bn}, "
          f"{a.threads} threads, {a.device}); authors' code: ~70 s")


if __name__ == "__main__":
    main()
