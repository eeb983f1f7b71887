"""`metabnn train --model conv`: the --channels spec, the fmnist-conv preset, bad specs as one line (exit 2), and a
tiny run of a spec with pools through the trainer, its checkpoint and --resume."""

import argparse
import json

import pytest
import torch

from metabnn.errors import UsageError
from metabnn.train import checkpoint as ckpt_mod
from metabnn.train import cli as train_cli
from metabnn.train.data import load
from metabnn.train.models import POOL, ConvNet


def resolve(*argv):
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    return train_cli.resolve(parser.parse_args(["train", *argv]))


@pytest.mark.parametrize("argv", [["--channels", "8,p,16,16,p"], ["--channels", "8", "p", "16,16", "P"]],
                         ids=["commas", "spaces"])
def test_channels_spec_with_pools(argv):
    cfg = resolve("--model", "conv", *argv)
    assert cfg["channels"] == [8, POOL, 16, 16, POOL]
    assert cfg["bn"] == "frozen"  # the MLP's adaptive default does not apply to a conv net


def test_meta_counts_one_value_per_weight_layer_pools_excluded():
    cfg = resolve("--model", "conv", "--channels", "8,p,16,p", "--hidden", "32", "--meta", "1", "2", "3", "4")
    assert cfg["meta"] == [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(UsageError, match="1 value or 4"):
        resolve("--model", "conv", "--channels", "8,p,16,p", "--hidden", "32", "--meta", "1", "2", "3", "4", "5")


def test_preset_fmnist_conv():
    cfg = resolve("--preset", "fmnist-conv")
    assert cfg["model"] == "conv" and cfg["tasks"] == "fmnist" and cfg["bn"] == "frozen"
    net = ConvNet(cfg["channels"], cfg["hidden"])
    assert net(torch.rand(2, 784)).shape == (2, 10)
    assert resolve("--preset", "fmnist-conv", "--channels", "4,p")["channels"] == [4, POOL]  # an option wins


def test_preset_fmnist_conv_aug_is_the_cosine_run_with_1_pixel_shifts():
    cos, aug = resolve("--preset", "fmnist-conv-cosine"), resolve("--preset", "fmnist-conv-aug")
    assert aug["augment_shift"] == 1 and cos["augment_shift"] == 0
    assert {k: v for k, v in aug.items() if k != "augment_shift"} == {k: v for k, v in cos.items() if k != "augment_shift"}


def test_preset_fmnist_mnist_conv_is_the_same_net_on_two_tasks():
    one, two = resolve("--preset", "fmnist-conv"), resolve("--preset", "fmnist-mnist-conv")
    assert two["tasks"] == "fmnist,mnist" and two["train_subset"] == 10000 and two["meta"] == 1.35
    assert all(two[k] == one[k] for k in ("model", "channels", "hidden", "bn"))
    assert resolve("--preset", "fmnist-mnist-conv", "--meta", "0")["meta"] == 0.0  # the plain-BNN baseline


@pytest.mark.parametrize("spec, needle", [("p,8", "start with a conv"), ("8,x", "'x': not a whole number"),
                                          ("8,0", "--channels 0"), ("4,p,p,p,p,p", "at least 2x2")])
def test_bad_channels_one_line_exit_2(capsys, tmp_path, spec, needle):
    import metabnn.cli as c

    old, c.COMMANDS = c.COMMANDS, ["metabnn.train.cli"]
    try:
        rc = c.main(["train", "--model", "conv", "--channels", spec, "--out", str(tmp_path / "o")])
    finally:
        c.COMMANDS = old
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o").exists()  # refused before anything was made


def _have_fmnist():
    try:
        load("fmnist")
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _have_fmnist(), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_tiny_conv_run_with_pools_checkpoints_and_resumes(tmp_path, capsys):
    import metabnn.cli as c

    out = tmp_path / "run"
    argv = ["train", "--tasks", "fmnist", "--model", "conv", "--channels", "4,p,8,p", "--hidden", "16",
            "--epochs", "2", "--train-subset", "600", "--test-subset", "200", "--device", "cpu", "--quiet",
            "--out", str(out)]
    old, c.COMMANDS = c.COMMANDS, ["metabnn.train.cli"]
    try:
        assert c.main(argv + ["--stop-after-epochs", "1"]) == 0
        assert not (out / "model.pt").exists() and (out / "checkpoint.pt").is_file()
        assert c.main(argv + ["--resume"]) == 0
    finally:
        c.COMMANDS = old
    r = json.loads((out / "results.json").read_text())
    assert r["config"]["channels"] == [4, POOL, 8, POOL]
    assert len(r["curves"]["test_acc"]) == 2 and r["acc"][0][0] > 0.3  # learned: chance is 0.1
    model = ckpt_mod.build_model(ckpt_mod.read(out / "model.pt"))  # the spec survives the weights-only reader
    assert isinstance(model, ConvNet) and model.feature_shape == (8, 7, 7)
