"""Two settings of the trainer against each other, epoch by epoch, on a machine shared with others.

    python benchmarks/train_speed_ab.py --threads 2 --hidden 512 512 --pairs 6 \
        --a GOMP_SPINCOUNT=0 --b GOMP_SPINCOUNT=10000

Each setting is a set of environment variables (what libgomp and the trainer read when they start: they cannot
change inside one process), given to its own worker process. Both workers build the same run (train_speed.py's:
permuted MNIST, batches of 100, evaluation after each epoch) and compile it, then take turns: a's epoch and its
matrix products replayed (train_speed.time_products), then b's, then a's again, and so on, the first of each pair
alternating between a and b; while one runs the other waits on a pipe (asleep, no CPU). So the two see the same
load, minute by minute, and a per-pair difference in the epoch's ratio to its products survives the drift of a
busy machine that a comparison of two separate runs does not. Prints every epoch, the medians of both, and the
median of the per-pair differences of the ratio (b - a) with their range.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def worker(threads: int, hidden: list[int], tasks: str) -> None:
    """The child: one warm-up epoch, then one timed epoch + its products per 'go' line on stdin."""
    # metabnn.train first: it sets the OpenMP defaults before torch loads libgomp
    from metabnn.train.experiment import Experiment
    from metabnn.train.presets import DEFAULTS

    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import recorded_products, time_products

    torch.set_num_threads(threads)
    cfg = dict(DEFAULTS, tasks=tasks, hidden=hidden, epochs=1000, device="cpu", verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment(cfg, Path(tmp), progress=False)
        exp.run(stop_after=1)
        n = len(exp.seq.tasks[0].train_y)
        n_steps = len([s for s in range(0, n, cfg["batch_size"]) if n - s >= 2])
        step_calls, eval_calls = recorded_products(exp)
        print(json.dumps({"ready": exp.results["seconds_per_epoch"][0]}), flush=True)
        for line in sys.stdin:
            if line.strip() != "go":
                break
            t0 = os.times()
            exp.run(stop_after=1)
            cpu = sum(os.times()[:2]) - sum(t0[:2])
            t, e = time_products(step_calls, eval_calls, n_steps)
            print(json.dumps({"epoch": exp.results["seconds_per_epoch"][-1], "train": t, "eval": e, "cpu": cpu}),
                  flush=True)


def _env(pairs: list[str]) -> dict:
    env = dict(os.environ)
    for kv in pairs:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise SystemExit(f"error: {kv!r} is not NAME=VALUE")
        if v:
            env[k] = v
        else:
            env.pop(k, None)  # NAME= : unset, the trainer's default
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", nargs="*", default=[], metavar="NAME=VALUE", help="setting a (NAME= unsets NAME)")
    ap.add_argument("--b", nargs="*", default=[], metavar="NAME=VALUE", help="setting b")
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--tasks", default="pmnist:2")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        return worker(a.threads, a.hidden, a.tasks)
    if a.pairs < 1:
        raise SystemExit("error: --pairs must be >= 1")
    cmd = [sys.executable, __file__, "--worker", "--threads", str(a.threads), "--hidden", *map(str, a.hidden),
           "--tasks", a.tasks]
    procs = {}
    for name, setting in (("a", a.a), ("b", a.b)):  # started one after the other: their compiles do not overlap
        p = subprocess.Popen(cmd, env=_env(setting), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        msg = json.loads(p.stdout.readline() or "{}")
        if "ready" not in msg:
            raise SystemExit(f"error: worker {name} did not start")
        procs[name] = p
    print(f"a: {' '.join(a.a) or '(defaults)'}\nb: {' '.join(a.b) or '(defaults)'}\n"
          f"{a.tasks}, hidden {a.hidden}, {a.threads} thread(s); load average {os.getloadavg()[0]:.2f}")
    res = {"a": [], "b": []}
    for i in range(a.pairs):
        for name in ("ab" if i % 2 == 0 else "ba"):
            p = procs[name]
            p.stdin.write("go\n")
            p.stdin.flush()
            r = json.loads(p.stdout.readline())
            r["gemm"] = r["train"] + r["eval"]
            r["ratio"] = r["epoch"] / r["gemm"]
            res[name].append(r)
            print(f"pair {i + 1} {name}: epoch {r['epoch']:.2f} s (cpu {r['cpu']:.2f} s), GEMMs {r['gemm']:.2f} s "
                  f"({r['train']:.2f} + {r['eval']:.2f}), ratio {r['ratio']:.3f}; load {os.getloadavg()[0]:.2f}",
                  flush=True)
    for p in procs.values():
        p.stdin.close()
        p.wait()
    for name in ("a", "b"):
        rs = res[name]
        print(f"{name}: epoch median {statistics.median(r['epoch'] for r in rs):.3f} s, cpu "
              f"{statistics.median(r['cpu'] for r in rs):.3f} s, GEMMs {statistics.median(r['gemm'] for r in rs):.3f} s,"
              f" ratio median {statistics.median(r['ratio'] for r in rs):.3f}")
    d = [rb["ratio"] - ra["ratio"] for ra, rb in zip(res["a"], res["b"])]
    de = [rb["epoch"] - ra["epoch"] for ra, rb in zip(res["a"], res["b"])]
    print(f"ratio b - a per pair: median {statistics.median(d):+.3f} (min {min(d):+.3f}, max {max(d):+.3f}); "
          f"epoch b - a: median {statistics.median(de):+.3f} s (min {min(de):+.3f}, max {max(de):+.3f})")


if __name__ == "__main__":
    main()
