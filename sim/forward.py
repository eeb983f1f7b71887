"""Vectorised integer inference (docs/FORMAT.md section 3): the golden model's fast path.

Accumulators are computed with a float32 matrix product: every partial sum is an
integer of magnitude < 2^24 (|acc| <= 255 * 16384 for pixels, <= 65536 for bits),
so float32 holds it exactly whatever the summation order. `tests/sim/scalar_reference.py`
computes the same with XOR-popcount on packed words, and the tests hold them equal.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.fixedpoint import rsr
from metabnn.sim.model import SIGN, Layer, Model


def layer_acc(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Accumulators [n, N] (int64) for inputs x [n, K]: uint8 pixels or +-1."""
    w = layer.weights_pm1(np.float32)
    xin = np.asarray(x, dtype=np.float32)
    return (xin @ w.T).astype(np.int64)


def layer_out(layer: Layer, d: np.ndarray, bank: int) -> np.ndarray:
    """From centred accumulators d: SIGN -> +-1 (int8), SCORES -> int64 scores."""
    if layer.out_kind == SIGN:
        bit = (d >= layer.C[bank]) ^ (layer.flip[bank] != 0)
        return np.where(bit, 1, -1).astype(np.int8)
    return layer.g[bank].astype(np.int64) * d + layer.b[bank].astype(np.int64)


def centred(layer: Layer, acc: np.ndarray, bank: int, adapt: bool) -> np.ndarray:
    """d = acc*256 - M for every sample, in stream order.

    Frozen: one vector M for all samples. Adaptive (FORMAT.md 3.1): sample n uses
    the M left by samples 0..n-1, then M += rsr(d_n, a). The scan updates
    `layer.M[bank]` in place.
    """
    acc256 = acc * 256
    M = layer.M[bank].astype(np.int64)
    if not (adapt and layer.adapt_shift > 0):
        return acc256 - M
    a = layer.adapt_shift
    d = np.empty_like(acc256)
    for n in range(acc256.shape[0]):
        d[n] = acc256[n] - M
        M = M + rsr(d[n], a)
    layer.M[bank] = M.astype(np.int32)
    return d


def forward(model: Model, images: np.ndarray, bank: int = 0, adapt: bool = False,
            record: list | None = None) -> np.ndarray:
    """Scores [n, classes] (int64). With adapt=True the model's M state moves (in place).

    If `record` is a list, (inputs, d) of every layer is appended to it (for learning).
    """
    x = np.asarray(images)
    if x.ndim != 2 or x.shape[1] != model.input_size:
        raise ValueError(f"expected images of shape [n, {model.input_size}], got {x.shape}")
    if not 0 <= bank < model.n_banks:
        raise ValueError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
    for layer in model.layers:
        acc = layer_acc(layer, x)
        d = centred(layer, acc, bank, adapt)
        if record is not None:
            record.append((x, d))
        x = layer_out(layer, d, bank)
    return x


def argmax_first(scores: np.ndarray) -> np.ndarray:
    """argmax with the lowest index winning ties (np.argmax already does so)."""
    return np.argmax(scores, axis=-1)


def predict(model: Model, images: np.ndarray, bank: int = 0, adapt: bool = False) -> np.ndarray:
    """Class labels for uint8 images [n, K0]. With adapt=True, `model` is updated in place
    by the stream-adaptive normalization, exactly as a device would after these images."""
    return argmax_first(forward(model, images, bank=bank, adapt=adapt))
