"""2 x 2 max-pool, stride 2, on sign bits (FORMAT.md 3.3 and 4.5): the OR of the +1 bits of each window.

The trainer pools the +-1 outputs of sign(BN(conv)), so the format pools the bits after the threshold (FINN's
order too): max of +-1 values is +1 iff some value is +1. That is exactly what pooling before the threshold would
give when the threshold is monotone non-decreasing (sign is: max then sign = sign then max), but not for a flipped
channel (gamma < 0), where the threshold decreases with acc: pooling bits is right for both. An odd last row or
column is dropped (torch's floor mode).

Learning: the error of a pooled bit goes to one position of its window, the first in row-major order
((0,0), (0,1), (1,0), (1,1)) whose bit equals the pooled bit, i.e. the first +1, or the top-left when all are -1:
torch's max-pool gradient, which routes to the first maximum it meets. The other positions get 0.
"""

from __future__ import annotations

import numpy as np


def windows(x: np.ndarray) -> np.ndarray:
    """[..., C, H, W] -> [..., C, H//2, W//2, 4], window order (0,0), (0,1), (1,0), (1,1)."""
    *lead, c, h, w = x.shape
    ph, pw = h // 2, w // 2
    v = x[..., : 2 * ph, : 2 * pw].reshape(*lead, c, ph, 2, pw, 2)
    return np.moveaxis(v, -3, -2).reshape(*lead, c, ph, pw, 4)


class MaxPool2:
    name = "MaxPool2"
    weighted = False

    def forward(self, x: np.ndarray) -> np.ndarray:
        """+-1 maps [n, C, H, W] -> [n, C, H//2, W//2] (int8)."""
        return windows(np.asarray(x)).max(axis=-1).astype(np.int8)

    def execute(self, x: np.ndarray) -> np.ndarray:
        """One map [C, H, W], window by window: the OR of the window's +1 bits."""
        c, h, w = x.shape
        out = np.full((c, h // 2, w // 2), -1, dtype=np.int8)
        for ch in range(c):
            for y in range(h // 2):
                for xx in range(w // 2):
                    if any(x[ch, 2 * y + dy, 2 * xx + dx] > 0 for dy in (0, 1) for dx in (0, 1)):
                        out[ch, y, xx] = 1
        return out

    def backward(self, back: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The error at the pool's input [C, H, W] from the error at its output [C, H//2, W//2], one sample."""
        c, h, w = x.shape
        ph, pw = h // 2, w // 2
        pick = np.argmax(windows(np.asarray(x)), axis=-1)  # np.argmax: the first maximum, as torch
        spread = np.zeros((c, ph, pw, 4), dtype=np.int64)
        np.put_along_axis(spread, pick[..., None], np.asarray(back, dtype=np.int64)[..., None], axis=-1)
        out = np.zeros((c, h, w), dtype=np.int64)
        out[:, : 2 * ph, : 2 * pw] = np.moveaxis(spread.reshape(c, ph, pw, 2, 2), -2, -3).reshape(c, 2 * ph, 2 * pw)
        return out

    def execute_backward(self, back: np.ndarray, x: np.ndarray) -> np.ndarray:
        """The plain reference of backward: scan each window for its first position holding the pooled bit."""
        c, h, w = x.shape
        out = np.zeros((c, h, w), dtype=np.int64)
        for ch in range(c):
            for y in range(h // 2):
                for xx in range(w // 2):
                    cells = [(2 * y + dy, 2 * xx + dx) for dy in (0, 1) for dx in (0, 1)]
                    pooled = max(x[ch, cy, cx] for cy, cx in cells)
                    cy, cx = next(p for p in cells if x[ch, p[0], p[1]] == pooled)
                    out[ch, cy, cx] = back[ch, y, xx]
        return out
