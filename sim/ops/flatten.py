"""Flatten (FORMAT.md 3.3): a conv map [C, H, W] becomes the vector a dense layer reads, in torch's NCHW order
(index c*H*W + y*W + x), so the dense weights are the trainer's as they are. No arithmetic: learning reshapes the
error back."""

from __future__ import annotations

import numpy as np


class Flatten:
    name = "Flatten"
    weighted = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return x.reshape(x.shape[0], -1)

    def execute(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x).reshape(-1)

    def backward(self, back: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.asarray(back).reshape(np.asarray(x).shape)
