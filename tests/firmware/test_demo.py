"""The continual-learning demo program: its CSV equals what the golden model computes for
the same stream (accuracy on A and on permuted B every N samples, learning B one sample at a
time), and bad input gives one message and a non-zero exit."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from firmware_demo_data import write_mbds

from metabnn.export.mbnn import to_bytes
from metabnn.sim import learn_step, predict, random_model
from metabnn.backends.c import FIRMWARE

DEMO = FIRMWARE / "build" / "mbnn_demo"


def golden_curve(model, data, every, adapt):
    tx, ty, vx, vy, perm = data
    rows = ["samples,acc_a,acc_b"]
    m = model
    n = len(tx)
    for s in range(n + 1):
        if s % every == 0 or s == n:
            accs = []
            for x in (vx, vx[:, perm]):
                bp = (10000 * int((predict(m.copy(), x) == vy).sum())) // len(vy)
                accs.append(f"{bp // 100}.{bp % 100:02d}")
            rows.append(f"{s},{accs[0]},{accs[1]}")
        if s == n:
            break
        m, _ = learn_step(m, tx[s][perm], int(ty[s]), adapt=adapt)
    return rows


@pytest.mark.parametrize("adapt", [False, True])
def test_demo_curve_equals_golden(cbackend, tmp_path, adapt):
    model = random_model((64, 48, 10), adapt_shift=4, meta=1.5, lr_shift=3, seed=9)
    (tmp_path / "m.mbnn").write_bytes(to_bytes(model))
    data = write_mbds(tmp_path / "d.mbds", K=64, n_train=25, n_test=30, seed=1)
    args = [str(DEMO), str(tmp_path / "m.mbnn"), str(tmp_path / "d.mbds"), "--every", "10"] + (["--adapt"] if adapt else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == golden_curve(model, data, 10, adapt)


def test_demo_bad_input(cbackend, tmp_path):
    model = random_model((64, 16, 10), seed=2)
    (tmp_path / "m.mbnn").write_bytes(to_bytes(model)[:-1])
    write_mbds(tmp_path / "d.mbds", K=64, n_train=5, n_test=5, seed=1)
    (tmp_path / "bad.mbds").write_bytes(b"MBDS" + bytes(20))
    for args, msg in [([tmp_path / "m.mbnn", tmp_path / "d.mbds"], "truncated"),
                      ([tmp_path / "nope.mbnn", tmp_path / "d.mbds"], "cannot open"),
                      ([tmp_path / "d.mbds", tmp_path / "bad.mbds"], "not a valid MBDS")]:
        r = subprocess.run([str(DEMO), *map(str, args)], capture_output=True, text=True)
        assert r.returncode != 0 and msg in r.stderr and r.stderr.count("\n") == 1
