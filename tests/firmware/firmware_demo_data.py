"""Synthetic data for the continual-learning demo tests (the real demo uses MNIST)."""

from __future__ import annotations

import numpy as np

from metabnn.backends.c import write_mbds as _write


def synthetic(K: int, n_train: int, n_test: int, seed: int, classes: int = 10):
    rng = np.random.default_rng(seed)
    protos = rng.integers(0, 256, size=(classes, K))
    def draw(n):
        y = rng.integers(0, classes, size=n)
        x = np.clip(protos[y] + rng.integers(-60, 61, size=(n, K)), 0, 255).astype(np.uint8)
        return x, y
    (tx, ty), (vx, vy) = draw(n_train), draw(n_test)
    return tx, ty, vx, vy, rng.permutation(K)


def write_mbds(path, K: int, n_train: int, n_test: int, seed: int):
    data = synthetic(K, n_train, n_test, seed)
    _write(path, *data)
    return data
