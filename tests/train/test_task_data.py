"""What verify feeds a model: the recorded task sequence rebuilt, one task's test set, its bank, its training samples."""

import pytest
import torch
from test_data import make_set

from metabnn.errors import UsageError
from metabnn.export import metadata
from metabnn.train import data, tasks
from metabnn.train.task_data import for_model, task_names


@pytest.fixture
def mnist_dir(tmp_path):
    make_set(tmp_path, n_train=31, n_test=12)
    return tmp_path


def meta_of(spec, seed, bn="adaptive", n_banks=1, data_dir=None):
    fp = tasks.build(spec, seed, data_dir).fingerprint if data_dir else None
    meta = tasks.describe(spec, seed, bn, n_banks, fp)
    metadata.check(meta, n_banks)  # what describe writes is what the .mbnn reader accepts
    return meta


def test_default_is_the_last_task_with_its_permutation(mnist_dir):
    meta = meta_of("pmnist:3", 4, data_dir=mnist_dir)
    seq = tasks.build("pmnist:3", 4, mnist_dir)
    d = for_model(meta, None, mnist_dir)
    assert d.label == "pmnist task 3 of 3 (seed 4) test set" and d.name == "pmnist3" and d.bank == 0
    assert (d.test_x == seq.evals[2].x.numpy()).all() and (d.test_y == seq.evals[2].y.numpy()).all()
    assert (d.train_x == seq.tasks[2].train_x.numpy()).all() and d.test_x.dtype.name == "uint8"
    # a task by name: its own permutation, not the last one's
    d1 = for_model(meta, "pmnist1", mnist_dir)
    assert d1.label.startswith("pmnist task 1 of 3") and (d1.test_x == seq.evals[0].x.numpy()).all()
    assert not (d1.test_x == d.test_x).all()


def test_task_aware_banks_follow_the_task(mnist_dir):
    meta = meta_of("pmnist:3", 0, bn="task-aware", n_banks=3, data_dir=mnist_dir)
    assert [for_model(meta, f"pmnist{i}", mnist_dir).bank for i in (1, 2, 3)] == [0, 1, 2]
    # a run stopped after 2 tasks saved 2 banks: the third set takes the last one saved
    assert [s["bank"] for s in meta_of("pmnist:3", 0, "task-aware", 2)["test_sets"]] == [0, 1, 1]


def test_sets_and_stream(mnist_dir):
    meta = meta_of("mnist,fmnist", 0, data_dir=mnist_dir)
    assert task_names(meta) == ["mnist", "fmnist"]
    d = for_model(meta, None, mnist_dir)
    assert d.name == "fmnist" and d.label == "fmnist test set (task 2 of 2 of mnist,fmnist)"
    s = meta_of("stream:fmnist:4", 2, bn="task-aware", n_banks=4, data_dir=mnist_dir)
    d = for_model(s, "fmnist-part2", mnist_dir)  # a part names the stream's one test set
    assert d.name == "fmnist" and d.bank == 3 and "stream of 4 parts, seed 2" in d.label
    # learning samples: every part of the stream, i.e. the whole training set in the stream's order
    assert sorted(d.train_y.tolist()) == sorted(data.load("fmnist", mnist_dir).train_y.tolist())


def test_unknown_task_lists_the_valid_names(mnist_dir):
    with pytest.raises(UsageError, match=r"--task 'pmnist4'.*pmnist1, pmnist2, pmnist3"):
        for_model(meta_of("pmnist:3", 0), "pmnist4", mnist_dir)


def test_file_without_metadata_gets_mnist_and_says_so(mnist_dir):
    d = for_model(None, None, mnist_dir)
    assert "assumed MNIST" in d.label and d.bank == 0 and d.test_x.shape == (12, 784)
    for meta in (None, {"version": 1}):
        with pytest.raises(UsageError, match="records no tasks"):
            for_model(meta, "pmnist1", mnist_dir)


def test_other_draws_than_training_are_refused(mnist_dir, monkeypatch):
    meta = meta_of("pmnist:2", 0, data_dir=mnist_dir)
    real = torch.randperm
    monkeypatch.setattr(torch, "randperm", lambda n, generator=None: real(n, generator=generator).flip(0))
    with pytest.raises(UsageError, match="other permutations"):
        for_model(meta, None, mnist_dir)


def test_unbuildable_spec_is_one_usage_error(mnist_dir):
    meta = {**meta_of("pmnist:2", 0), "spec": "cifar:2"}
    with pytest.raises(UsageError, match="cannot be rebuilt here"):
        for_model(meta, None, mnist_dir)
