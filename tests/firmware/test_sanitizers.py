"""The firmware built with -fsanitize=address,undefined (any finding aborts the process):
the golden-model comparison through the mbnn_check tool, and the loader fuzz through
mbnn_fuzz, where every image sits in a heap buffer of exactly its size."""

from __future__ import annotations

import os
import struct
import subprocess

import numpy as np
import pytest
from firmware_cases import make_case
from firmware_mutations import mutants

from metabnn.export.mbnn import to_bytes
from metabnn.sim import learn_step, predict

ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1", UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")


def run(tool, *args):
    r = subprocess.run([str(tool), *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


@pytest.mark.parametrize("case,rounding,away", [(1, 0, 0), (2, 0, 0), (4, 0, 0), (5, 0, 0), (7, 0, 0), (1, 1, 0),
                                                (4, 1, 0), (5, 1, 0), (4, 0, 1), (7, 1, 1)])
def test_sanitized_learning_equals_golden(asan_tools, tmp_path, case, rounding, away):
    """rounding 1: stochastic (FORMAT.md 4.4), sr_step crossing the u32 wrap in the odd cases; away 1: every layer
    with an away table (FORMAT.md 4.2.1)."""
    model, images, labels, bank = make_case(case, rounding)
    if away:
        for lay in model.layers:
            lay.away = np.linspace(32768, 0, 1 << lay.table_bits).round().astype(np.uint16)
    n = 8
    (tmp_path / "m.mbnn").write_bytes(to_bytes(model))
    (tmp_path / "x.u8").write_bytes(images[:n].tobytes())
    (tmp_path / "y.u32").write_bytes(np.asarray(labels[:n], "<u4").tobytes())
    out = run(asan_tools / "mbnn_check", "predict", tmp_path / "m.mbnn", tmp_path / "x.u8", n, bank, 1, tmp_path / "p.mbnn")
    golden = model.copy()
    assert [int(v) for v in out.split()] == predict(golden, images[:n], bank=bank, adapt=True).tolist()
    assert (tmp_path / "p.mbnn").read_bytes() == to_bytes(golden)
    run(asan_tools / "mbnn_check", "learn", tmp_path / "m.mbnn", tmp_path / "x.u8", n, bank, 1, tmp_path / "s.bin",
        tmp_path / "y.u32")
    states = (tmp_path / "s.bin").read_bytes()
    size = len(to_bytes(model))
    g = model
    for t in range(n):
        g, _ = learn_step(g, images[t], int(labels[t]), bank=bank, adapt=True)
        assert states[t * size:(t + 1) * size] == to_bytes(g), f"step {t}"


def test_sanitized_loader_fuzz(asan_tools, cbackend, tmp_path):
    cases = mutants(4000, seed=5)
    with open(tmp_path / "cases.bin", "wb") as f:
        for c in cases:
            f.write(struct.pack("<I", len(c)) + c)
    out = run(asan_tools / "mbnn_fuzz", tmp_path / "cases.bin").split()
    assert len(out) == len(cases)
    # the sanitized build decides exactly as the normal one
    assert [int(s) for s in out] == [cbackend.load_status(c) for c in cases]


def test_sanitized_demo_runs(asan_tools, tmp_path):
    from firmware_demo_data import write_mbds
    model, _, _, _ = make_case(0)
    (tmp_path / "m.mbnn").write_bytes(to_bytes(model))
    write_mbds(tmp_path / "d.mbds", K=64, n_train=30, n_test=20, seed=0)
    out = run(asan_tools / "mbnn_demo", tmp_path / "m.mbnn", tmp_path / "d.mbds", "--every", 10, "--adapt")
    assert out.splitlines()[0] == "samples,acc_a,acc_b" and len(out.splitlines()) == 5
