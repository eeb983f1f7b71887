"""Dense ops: DensePixels (the first layer, uint8 pixels accumulated as +-x) and DenseBits (+-1 inputs,
XNOR-popcount). FORMAT.md 3 and 4.3.

Vectorised accumulators use a float32 matrix product: every partial sum is an integer of magnitude < 2^24
(|acc| <= 255 * 16384 for pixels, <= 65536 for bits), so float32 holds it exactly whatever the summation order.
`execute` is the plain reference on packed words the fast path is tested against.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.bits import pack_bits, popcount32
from metabnn.sim.ops import threshold
from metabnn.sim.ops.weighted import WeightedOp


class DensePixels(WeightedOp):
    name = "DensePixels"

    def acc(self, x: np.ndarray) -> np.ndarray:
        """Accumulators [n, N] (int64) for inputs x [n, K]."""
        w = self.layer.weights_pm1(np.float32)
        return (np.asarray(x, dtype=np.float32) @ w.T).astype(np.int64)

    def reference_acc(self, x: np.ndarray) -> np.ndarray:
        """acc_j = sum_i w_ji x_i, pixel by pixel (one sample [K])."""
        w = self.layer.weights_pm1(np.int64)
        return np.array([sum(int(a) * int(b) for a, b in zip(row, x)) for row in w], dtype=np.int64)

    def execute(self, x: np.ndarray, bank: int = 0) -> np.ndarray:
        """One sample, frozen normalization: the plain reference of `forward`."""
        d = threshold.centred(self.layer, self.reference_acc(np.asarray(x).reshape(-1))[None], bank, False)
        return threshold.outputs(self.layer, d, bank)[0]

    def back_input(self, delta: np.ndarray) -> np.ndarray:
        """back_i = sum_j w_ji delta_j (4.3 step 4), with this step's binary weights before the update."""
        return self.layer.weights_pm1(np.int64).T @ np.asarray(delta, dtype=np.int64)

    def gradient(self, x: np.ndarray, delta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """grad_ji = delta_j * x_i for the rows asked for (int64 [len(rows), K])."""
        return np.outer(np.asarray(delta, dtype=np.int64)[rows], np.asarray(x, dtype=np.int64).reshape(-1))


class DenseBits(DensePixels):
    name = "DenseBits"

    def reference_acc(self, x: np.ndarray) -> np.ndarray:
        """acc_j = K - 2 popcount(a XOR w_j) on packed words (FORMAT.md 2), x = +-1 [K]."""
        a = pack_bits(np.asarray(x) > 0)
        return np.array([self.layer.K - 2 * int(popcount32(a ^ row).sum()) for row in self.layer.signs],
                        dtype=np.int64)
