"""Seconds per training epoch of `metabnn train`, the work the authors' code does per epoch.

One epoch = 600 batches of 100 over a permuted-MNIST training set (512-512 BNN,
MetaAdam), then accuracy on that training set and on every task's test set.
The authors' code takes about 70 s for this on a 2-core machine (issue 2).

    python benchmarks/train_speed.py [--epochs 3] [--threads 2] [--hidden 512 512] [--tasks pmnist:2]

Prints one line per epoch, the median, its ratio to the authors' ~70 s (a figure
quoted in issue 2, measured there, not here), and the 1-minute load average
before and after (2 shared cores: a busy machine slows every epoch). Task-end extras (the BN-protocol
comparison table) are excluded: the run stops before the first task ends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

# metabnn.train before torch: it sets OMP_WAIT_POLICY=PASSIVE, which libgomp reads only when torch loads it;
# with the default spin-wait one run here took 510 s for its first epoch on 2 busy cores (15 s once calm).
from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS

import torch  # noqa: E402


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
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment(cfg, Path(tmp), progress=False)
        exp.run(stop_after=a.epochs)
        secs = exp.results["seconds_per_epoch"]
    for i, s in enumerate(secs, 1):
        print(f"epoch {i}: {s:.2f} s")
    med = statistics.median(secs)
    print(f"median: {med:.2f} s/epoch ({a.tasks}, hidden {a.hidden}, bn {a.bn}, {a.threads} threads, {a.device}); "
          f"authors' code: ~70 s (issue 2), {70 / med:.1f}x; load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
