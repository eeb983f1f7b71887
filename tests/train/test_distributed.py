"""Data-parallel training: 2 CPU processes under torchrun (gloo, loopback) train the weights 1 process trains.

Every rank takes half of each global batch; gradients are summed over ranks and
BatchNorm uses the global batch's statistics (train/distributed.py), so the only
difference to one process is the order of float sums. The 2-process run is also
stopped after one epoch and resumed by a second torchrun, and only rank 0 writes.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS

pytestmark = pytest.mark.usefixtures("mnist")  # the suite's fixture (tests/conftest.py): skips without MNIST

OPTS = dict(tasks="pmnist:2", hidden=[32, 16], epochs=2, train_subset=500, test_subset=200, meta=1.35,
            batch_size=100, seed=3, ewc_lambda=5.0, ewc_samples=10)


def _argv(out):
    o = OPTS
    return ["--tasks", o["tasks"], "--hidden", *map(str, o["hidden"]), "--epochs", str(o["epochs"]),
            "--train-subset", str(o["train_subset"]), "--test-subset", str(o["test_subset"]),
            "--meta", str(o["meta"]), "--batch-size", str(o["batch_size"]), "--seed", str(o["seed"]),
            "--ewc-lambda", str(o["ewc_lambda"]), "--ewc-samples", str(o["ewc_samples"]),
            "--device", "cpu", "--quiet", "--out", str(out)]


def torchrun(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", METABNN_COMPILE="0")  # eager steps: no compile per rank
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "metabnn", "train", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_two_ranks_train_what_one_process_trains_and_resume(tmp_path, monkeypatch):
    # one process on the autograd path, as the ranks take it: the fused step (train/step.py, one process only)
    # sums in another order, and over 20 steps a weight near 0 takes the other sign (tests/train/test_step.py)
    monkeypatch.setattr(Experiment, "fused_step", lambda self, i: None)
    single = Experiment(dict(DEFAULTS, **OPTS, device="cpu", verbose=False), tmp_path / "one", progress=False).run()

    out = tmp_path / "two"
    first = torchrun(*_argv(out), "--stop-after-epochs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("stopped as asked") == 1  # rank 0 alone speaks
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]  # and writes (atomically: no leftovers)
    second = torchrun(*_argv(out), "--resume", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.count("resuming") == 1

    a = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["model"]
    b = torch.load(out / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:  # 4 epochs x 5 steps, 2 tasks, EWC: equal up to the order of float sums
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)
    two = json.loads((out / "results.json").read_text())
    assert len(two["acc"]) == 2
    for ra, rb in zip(single["acc"], two["acc"]):
        assert ra == pytest.approx(rb, abs=0.011)  # 200 test images: at most two answers may differ
    assert two["curves"]["loss"] == pytest.approx(single["curves"]["loss"], rel=1e-4)
