"""--lr-schedule: the rates themselves, that a run takes them (per task, on the fused and the autograd path, with
no recompilation), that a resumed run is bit-identical, and that checkpoints from before the option still resume."""

import copy
import math

import pytest
import torch

from metabnn.errors import UsageError
from metabnn.train import checkpoint as ckpt_mod
from metabnn.train import step as step_mod
from metabnn.train.experiment import Experiment
from metabnn.train.models import build
from metabnn.train.optim import MetaAdam, param_groups
from metabnn.train.presets import DEFAULTS
from metabnn.train.schedule import SCHEDULES, lr_at

TINY = dict(DEFAULTS, tasks="pmnist:2", hidden=[32], epochs=3, train_subset=600, test_subset=200, device="cpu",
            compare_shifts=[8], verbose=False)


def test_constant_is_the_default_and_changes_nothing():
    assert DEFAULTS["lr_schedule"] == "constant" and SCHEDULES[0] == "constant"
    assert [lr_at(0.005, "constant", e, 7) for e in range(7)] == [0.005] * 7


def test_cosine_values():
    lr = 0.004
    got = [lr_at(lr, "cosine", e, 4) for e in range(4)]
    want = [lr, lr * (1 + math.cos(math.pi / 4)) / 2, lr / 2, lr * (1 + math.cos(3 * math.pi / 4)) / 2]
    assert got == pytest.approx(want, rel=1e-15)
    assert got[0] == lr  # the first epoch takes the full rate exactly
    twenty = [lr_at(lr, "cosine", e, 20) for e in range(20)]
    assert all(a > b > 0 for a, b in zip(twenty, twenty[1:]))  # falls every epoch, never reaches 0
    assert twenty[-1] / lr == pytest.approx(0.00616, abs=1e-5)  # the --help's "lr * 0.006 in the 20th of 20"


def test_step_values():
    lr = 0.01
    assert [lr_at(lr, "step", e, 4) for e in range(4)] == pytest.approx([lr, lr, lr / 10, lr / 100], rel=1e-12)
    assert lr_at(lr, "step", 0, 1) == lr  # one epoch: no drop
    assert [lr_at(lr, "step", e, 2) for e in range(2)] == pytest.approx([lr, lr / 10], rel=1e-12)  # ceil(6/4) = 2
    twenty = [lr_at(lr, "step", e, 20) for e in range(20)]
    assert twenty == pytest.approx([lr] * 10 + [lr / 10] * 5 + [lr / 100] * 5, rel=1e-12)
    five = [lr_at(lr, "step", e, 5) for e in range(5)]  # ceil(5/2) = 3, ceil(15/4) = 4
    assert five == pytest.approx([lr] * 3 + [lr / 10, lr / 100], rel=1e-12)


def test_bad_epoch_or_schedule():
    with pytest.raises(ValueError, match="not in 0..2"):
        lr_at(0.1, "cosine", 3, 3)
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        lr_at(0.1, "linear", 0, 3)


def _weight_moves(step, lr):
    """How far one step moves every hidden weight of a fresh seeded MLP at learning rate lr."""
    torch.manual_seed(0)
    model = build("bnn", [48, 24])
    opt = MetaAdam(param_groups(model, 1.35), lr=0.005)
    for g in opt.param_groups:
        g["lr"] = lr  # as Experiment._set_lr does
    before = [p.detach().clone() for p in model.parameters() if p.dim() >= 2]
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (200, 784), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (200,), generator=gen)
    step(model, opt, x, y)
    return [p.detach() - b for p, b in zip([p for p in model.parameters() if p.dim() >= 2], before)]


def _fused(model, opt, x, y):
    step_mod.FusedStep(model, opt)(x, y, torch.arange(100))


def _autograd(model, opt, x, y):
    loss = torch.nn.functional.cross_entropy(model(x[:100].float() / 255), y[:100])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()  # MetaAdam's compiled (or eager) hidden-weight update: the conv net's path


@pytest.mark.parametrize("path", ["fused", "autograd"])
def test_a_changed_rate_is_the_one_the_step_uses(path):
    # the compiled kernels take the step size as a runtime float: a new rate scales the first step (Adam's first
    # step is lr * sign-like g / |g|, here scaled by f_meta) by exactly that factor, and compiles nothing new
    if path == "fused" and not step_mod._compiled_step():
        pytest.skip("torch.compile is off or unavailable here: the trainer takes the autograd path")
    from torch._dynamo.utils import counters

    step = _fused if path == "fused" else _autograd
    full = _weight_moves(step, 0.004)  # compiles here if not yet compiled in this process
    graphs = counters["stats"]["unique_graphs"]
    for lr in (0.001, 0.0003):
        moved = _weight_moves(step, lr)
        for a, b in zip(moved, full):
            torch.testing.assert_close(a, b * (lr / 0.004), atol=1e-8, rtol=1e-4)  # W - W0: float32 rounding of |W| ~ 0.05
    assert counters["stats"]["unique_graphs"] == graphs  # no recompilation for a new rate


def _rates_seen(monkeypatch):
    """The rate in every optimizer group at the start of each training epoch, as (task, epoch, rate)."""
    seen = []
    real = Experiment._train_epoch

    def spy(self, i, e):
        rates = {g["lr"] for g in self.opt.param_groups}
        assert len(rates) == 1
        seen.append((i, e, rates.pop()))
        return real(self, i, e)

    monkeypatch.setattr(Experiment, "_train_epoch", spy)
    return seen


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_a_run_takes_the_rate_of_each_epoch_restarting_per_task(tmp_path, mnist, monkeypatch, schedule):
    seen = _rates_seen(monkeypatch)
    exp = Experiment(dict(TINY, lr_schedule=schedule), tmp_path / schedule, progress=False)
    res = exp.run()
    assert seen == [(i, e, lr_at(TINY["lr"], schedule, e, 3)) for i in range(2) for e in range(3)]
    assert res["config"]["lr_schedule"] == schedule
    const = Experiment(dict(TINY), tmp_path / "constant", progress=False)
    const.run()
    a, b = exp.model.state_dict(), const.model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)  # the rate made a difference


def test_resume_with_a_schedule_is_bit_identical(tmp_path, mnist):
    cfg = dict(TINY, lr_schedule="cosine")
    full = Experiment(cfg, tmp_path / "full", progress=False).run()
    assert Experiment(cfg, tmp_path / "cut", progress=False).run(stop_after=2) is None  # mid task 1
    exp = Experiment(cfg, tmp_path / "cut", progress=False)
    assert exp.try_resume() and exp.progress_at == {"task": 0, "epoch": 2}
    assert exp.run(stop_after=2) is None  # into task 2: the schedule restarts
    exp = Experiment(cfg, tmp_path / "cut", progress=False)
    assert exp.try_resume() and exp.progress_at == {"task": 1, "epoch": 1}
    resumed = exp.run()
    assert resumed["curves"] == full["curves"] and resumed["acc"] == full["acc"]
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "cut" / "model.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_from_before_the_option_resumes_as_constant(tmp_path, mnist):
    cfg = dict(TINY, epochs=2)
    full = Experiment(cfg, tmp_path / "full", progress=False).run()
    out = tmp_path / "old"
    assert Experiment(cfg, out, progress=False).run(stop_after=1) is None
    c = ckpt_mod.read(out / "checkpoint.pt")
    del c["config"]["lr_schedule"]  # as written before --lr-schedule existed
    ckpt_mod.save(out / "checkpoint.pt", c)
    with pytest.raises(UsageError, match="lr_schedule"):
        Experiment(dict(cfg, lr_schedule="cosine"), out, progress=False).try_resume()
    exp = Experiment(cfg, out, progress=False)
    assert exp.try_resume()
    assert exp.run()["curves"] == full["curves"]


def test_cli_option(capsys, tmp_path):
    import metabnn.cli as c

    old, c.COMMANDS = c.COMMANDS, ["metabnn.train.cli"]
    try:
        with pytest.raises(SystemExit) as e:
            c.main(["train", "--lr-schedule", "linear", "--out", str(tmp_path / "o")])
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "invalid choice" in err[0] and "cosine" in err[0]
        with pytest.raises(SystemExit) as e:
            c.main(["train", "--help"])
        assert e.value.code == 0
        assert "--lr-schedule" in capsys.readouterr().out
    finally:
        c.COMMANDS = old
    from metabnn.train.cli import add_parser, resolve
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    add_parser(sub)
    parser = sub.choices["train"]
    assert resolve(parser.parse_args(["--preset", "fmnist-conv"]))["lr_schedule"] == "constant"
    assert resolve(parser.parse_args(["--preset", "fmnist-conv", "--lr-schedule", "step"]))["lr_schedule"] == "step"
