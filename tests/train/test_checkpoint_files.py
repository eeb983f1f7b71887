"""The trainer's files: every checkpoint kind loads with torch.load(weights_only=True) and resumes, a failed
write is one line (exit 2) that keeps the previous checkpoint, --resume with nothing to resume is an error,
and progress bars stay out of logs."""

import errno
import os

import numpy as np
import pytest
import torch

from metabnn.cli import main
from metabnn.train import checkpoint
from metabnn.train.data import _save_cache
from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS

TINY = dict(DEFAULTS, tasks="pmnist:2", hidden=[16, 16], epochs=1, train_subset=300, test_subset=100,
            device="cpu", compare_shifts=[6], verbose=False)


# the suite's `mnist` fixture (tests/conftest.py) skips when MNIST is not installed
needs_mnist = pytest.mark.usefixtures("mnist")


def train(argv, capsys):
    rc = main(["train", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@needs_mnist
@pytest.mark.parametrize("kw", [
    dict(ewc_lambda=10.0, ewc_samples=20),                       # EWC memories in the resume state
    dict(model="conv", channels=[4, 4], bn="task-aware"),      # conv net, one BN bank per task
    dict(model="fp", bn="frozen-after-1", meta=0.0),            # full-precision baseline
    dict(tasks="stream:mnist:2", meta=[1.0, 2.0, 0.5]),         # a stream, per-layer m
], ids=["bnn-ewc", "conv", "fp", "stream"])
def test_every_checkpoint_kind_loads_weights_only_and_resumes(tmp_path, kw):
    cfg = dict(TINY, **kw)
    assert Experiment(cfg, tmp_path, progress=False).run(stop_after=1) is None
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # optimizer, EWC, results, config
    assert {"optimizer", "ewc", "results", "config"} <= set(state)
    exp = Experiment(cfg, tmp_path, progress=False)
    assert exp.try_resume() and exp.progress_at == {"task": 1, "epoch": 0}
    assert exp.run() is not None
    torch.load(tmp_path / "model.pt", weights_only=True)
    if cfg["model"] == "bnn":
        assert checkpoint.load_floatnet(tmp_path / "model.pt").sizes == [784, 16, 16, 10]


def test_resume_with_nothing_to_resume_is_an_error(tmp_path, capsys):
    typo = tmp_path / "rnus" / "pmnist"
    rc, out, err = train(["--resume", "--out", str(typo)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "--resume" in err and str(typo) in err and "nothing" not in out
    assert not typo.exists()  # no new run was started there
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "model.pt").write_bytes(b"a finished run without its checkpoint")
    rc, _, err = train(["--resume", "--out", str(tmp_path / "half")], capsys)
    assert rc == 2 and "no checkpoint.pt" in err


@needs_mnist
def test_resume_refuses_a_crafted_checkpoint(tmp_path, capsys):
    marker = tmp_path / "PAYLOAD_RAN"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "config": Payload()},
               run_dir / "checkpoint.pt")
    rc, _, err = train(["--tasks", "mnist", "--hidden", "8", "--epochs", "1", "--train-subset", "100",
                        "--test-subset", "50", "--device", "cpu", "--quiet", "--resume", "--out", str(run_dir)],
                       capsys)
    assert rc == 2 and "refused" in err and len(err.strip().splitlines()) == 1, err
    assert not marker.exists()


@needs_mnist
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_last_one(tmp_path, capsys, monkeypatch, code):
    argv = ["--tasks", "pmnist:2", "--hidden", "8", "--epochs", "1", "--train-subset", "200", "--test-subset",
            "50", "--device", "cpu", "--quiet", "--out", str(tmp_path)]
    rc, _, err = train(argv + ["--stop-after-epochs", "1"], capsys)
    assert rc == 0, err
    before = (tmp_path / "checkpoint.pt").read_bytes()
    real = os.replace

    def replace(src, dst, *a, **kw):
        if os.path.basename(os.fspath(dst)) == "checkpoint.pt":
            raise OSError(code, os.strerror(code))
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    rc, _, err = train(argv + ["--resume"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"cannot write {tmp_path / 'checkpoint.pt'}: {os.strerror(code)}" in err
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


@needs_mnist
@pytest.mark.parametrize("progress, bar", [(None, False), (False, False), (True, True)])
def test_progress_bars_only_on_a_terminal(tmp_path, capfd, progress, bar):
    # capfd: stderr is a pipe here, as in a log or CI; None (the CLI's default) must then show no bar
    Experiment(dict(TINY, tasks="mnist"), tmp_path, progress=progress).run()
    err = capfd.readouterr().err
    assert ("\r" in err) == bar, err[:200]


def test_an_unwritable_data_cache_is_a_note_not_an_error(tmp_path, capsys):
    (tmp_path / "file").write_text("in the way")
    _save_cache(tmp_path / "file" / "mnist.npz", x=np.zeros(3))
    err = capsys.readouterr().err
    assert err.startswith("note: MNIST not cached") and len(err.strip().splitlines()) == 1
    _save_cache(tmp_path / "cache" / "mnist.npz", x=np.arange(3))
    with np.load(tmp_path / "cache" / "mnist.npz") as z:
        assert z["x"].tolist() == [0, 1, 2]
