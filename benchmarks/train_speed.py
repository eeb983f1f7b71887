"""Seconds per training epoch of `metabnn train` against the same epoch's matrix products, in one run.

One epoch = one pass of batches of 100 over a permuted-MNIST training set (600
batches; 512-512 BNN, MetaAdam), then accuracy on that training set and on every
task's test set, and the checkpoint: what `metabnn train` does per epoch.

    python benchmarks/train_speed.py [--epochs 3] [--threads 1] [--hidden 512 512]

The bound: every matrix product of the network in one training step and in one
evaluation is recorded (shape, strides, dtype, as torch dispatches them), then
the epoch's products (steps x the step's, plus the evaluation's) are run again
with torch's own GEMM at the same thread count, in the same process, right
after each epoch, so that both see the same load on a shared machine. The
stream-adaptive BatchNorm's scan (small batched products) is not the network's
and is not counted. Prints each epoch with its GEMM time and ratio, the medians
and spreads, the 1-minute load average before and after (2 shared cores: a
busy machine slows everything), and as its last line ratio_to_gemm_bound=R,
the median over the epochs of (epoch seconds / its GEMM seconds). The first
epoch is a warm-up (it compiles the training step) and is reported, not
counted. Task-end extras (the BN-protocol comparison table) are excluded: the
run stops before the first task ends.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

# metabnn.train before torch: it sets OMP_WAIT_POLICY=PASSIVE, which libgomp reads only when torch loads it;
# with the default spin-wait one run here took 510 s for its first epoch on 2 busy cores (15 s once calm).
from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS
from metabnn.train.step import train_step

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

# the layers' products are 2-D (F.linear-style x @ W^T and its two backward products); the stream-adaptive
# BatchNorm's scan is batched (bmm) or float64 and is not the network's
GEMMS = {torch.ops.aten.mm.default, torch.ops.aten.addmm.default}


class RecordGemms(TorchDispatchMode):
    """Every float32 matrix product dispatched inside the block: (op, [(size, stride) of each tensor arg])."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in GEMMS and all(a.dtype == torch.float32 for a in args if isinstance(a, torch.Tensor)):
            self.calls.append((func, [(tuple(a.shape), a.stride()) if isinstance(a, torch.Tensor) else a
                                      for a in args]))
        return func(*args, **(kwargs or {}))


def recorded_products(exp: Experiment) -> tuple[list, list]:
    """The GEMMs of one training step as the epoch takes it (the fused step's arithmetic run op by op, or the
    autograd path), on a copy of the state (the run is not changed), and of one evaluation."""
    task = exp.seq.tasks[0]
    bs = exp.cfg["batch_size"]
    saved = copy.deepcopy(exp.model.state_dict()), copy.deepcopy(exp.opt.state_dict())
    exp.model.train()
    fused = exp.fused_step(0)
    with RecordGemms() as step, torch.no_grad():
        if fused is not None:  # inductor keeps every product of train_step an aten GEMM, shapes and layouts
            train_step(task.train_x, task.train_y, torch.arange(bs), *fused.inputs())
        else:
            with torch.enable_grad():
                exp.model.zero_grad(set_to_none=True)
                F.cross_entropy(exp.model(task.train_x[:bs].float().div_(255)), task.train_y[:bs]).backward()
    exp.model.load_state_dict(saved[0])
    exp.opt.load_state_dict(saved[1])
    exp.model.zero_grad(set_to_none=True)
    with RecordGemms() as ev:
        exp._evaluate(0)
    return step.calls, ev.calls


def _operands(calls: list) -> list:
    """Fresh random tensors with each call's sizes and strides (the same memory layout as in training)."""
    out = []
    for func, args in calls:
        ts = []
        for a in args:
            if isinstance(a, tuple):
                size, stride = a
                extent = 1 + sum((n - 1) * s for n, s in zip(size, stride))
                ts.append(torch.empty(extent).uniform_(-1, 1).as_strided(size, stride))
            else:
                ts.append(a)
        out.append((func, ts))
    return out


def time_products(step_calls: list, eval_calls: list, n_steps: int) -> tuple[float, float]:
    """Seconds for n_steps x the step's products, and for the evaluation's products, with torch's GEMM."""
    step_ops, eval_ops = _operands(step_calls), _operands(eval_calls)
    for func, ts in step_ops + eval_ops:  # warm: MKL's first call of a shape allocates
        func(*ts)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        for func, ts in step_ops:
            func(*ts)
    t1 = time.perf_counter()
    for func, ts in eval_ops:
        func(*ts)
    return t1 - t0, time.perf_counter() - t1


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} s (min {min(xs):.2f}, max {max(xs):.2f}, n={len(xs)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hidden", type=int, nargs="+", default=[512, 512])
    ap.add_argument("--tasks", default="pmnist:2")
    ap.add_argument("--bn", default=DEFAULTS["bn"])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = dict(DEFAULTS, tasks=a.tasks, hidden=a.hidden, epochs=a.epochs + 2, device=a.device, bn=a.bn,
               verbose=False)
    load_before = os.getloadavg()[0]
    secs, train_g, eval_g = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        exp = Experiment(cfg, Path(tmp), progress=False)
        exp.run(stop_after=1)  # warm-up
        warm = exp.results["seconds_per_epoch"][0]
        n = len(exp.seq.tasks[0].train_y)
        n_steps = len([s for s in range(0, n, cfg["batch_size"]) if n - s >= 2])
        step_calls, eval_calls = recorded_products(exp)
        # side by side: each epoch, then the epoch's products, so both see the same load
        for _ in range(a.epochs):
            exp.run(stop_after=1)
            secs.append(exp.results["seconds_per_epoch"][-1])
            t, e = time_products(step_calls, eval_calls, n_steps)
            train_g.append(t)
            eval_g.append(e)
    gemm = [t + e for t, e in zip(train_g, eval_g)]
    ratios = [s / g for s, g in zip(secs, gemm)]
    load_after = os.getloadavg()[0]
    print(f"epoch 0 (warm-up, compiles the training step): {warm:.2f} s")
    for i, (s, g) in enumerate(zip(secs, gemm), 1):
        print(f"epoch {i}: {s:.2f} s, its GEMMs {g:.2f} s, ratio {s / g:.2f}")
    print(f"{a.tasks}, hidden {a.hidden}, bn {a.bn}, {a.threads} thread(s), {a.device}, {n_steps} steps of "
          f"{cfg['batch_size']} + evaluation of {n} training and "
          f"{sum(len(e.y) for e in exp.seq.evals)} test images")
    print(f"epoch: {spread(secs)}")
    print(f"GEMMs of the epoch ({len(step_calls)} per step, {len(eval_calls)} in the evaluation): {spread(gemm)}; "
          f"training {statistics.median(train_g):.2f} s + evaluation {statistics.median(eval_g):.2f} s")
    print(f"ratio per epoch: median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"load average (1 min): {load_before:.2f} before, {load_after:.2f} after")
    print(f"ratio_to_gemm_bound={statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
