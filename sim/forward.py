"""Vectorised integer inference (docs/FORMAT.md section 3): the golden model's fast path.

The model runs as its op sequence (sim/ops: dense, conv2d, max-pool, flatten), each op exact in integers.
`tests/sim/scalar_reference.py` computes the dense MLP with XOR-popcount on packed words and every op's `execute`
its own plain reference; the tests hold them equal.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.model import PIXELS, Layer, Model
from metabnn.sim.ops import DenseBits, DensePixels, ops_of, threshold


def layer_acc(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Accumulators [n, N] (int64) of a dense layer for inputs x [n, K]: uint8 pixels or +-1."""
    return (DensePixels(layer) if layer.in_kind == PIXELS else DenseBits(layer)).acc(x)


def layer_out(layer: Layer, d: np.ndarray, bank: int) -> np.ndarray:
    """From centred accumulators d: SIGN -> +-1 (int8), SCORES -> int64 scores."""
    return threshold.outputs(layer, d, bank)


centred = threshold.centred


def run_ops(model: Model, images: np.ndarray, bank: int = 0, adapt: bool = False, trace: list | None = None):
    """The output of the op sequence for images [n, input_size]; `trace` (a list) gets (op, input, d) per op,
    d None for the ops without thresholds (what the learning step reads back)."""
    x = np.asarray(images)
    if x.ndim != 2 or x.shape[1] != model.input_size:
        raise ValueError(f"expected images of shape [n, {model.input_size}], got {x.shape}")
    if not 0 <= bank < model.n_banks:
        raise ValueError(f"bank {bank} out of range: the model has {model.n_banks} bank(s)")
    for op in ops_of(model):
        if op.weighted:
            out, d = op.forward(x, bank, adapt)
        else:
            out, d = op.forward(x), None
        if trace is not None:
            trace.append((op, x, d))
        x = out
    return x


def forward(model: Model, images: np.ndarray, bank: int = 0, adapt: bool = False,
            record: list | None = None) -> np.ndarray:
    """Scores [n, classes] (int64). With adapt=True the model's M state moves (in place).

    If `record` is a list, (inputs, d) of every layer (weighted op) is appended to it, first layer first."""
    trace: list | None = None if record is None else []
    scores = run_ops(model, images, bank, adapt, trace)
    if record is not None:
        record.extend((x, d) for op, x, d in trace if op.weighted)
    return scores


def argmax_first(scores: np.ndarray) -> np.ndarray:
    """argmax with the lowest index winning ties (np.argmax already does so)."""
    return np.argmax(scores, axis=-1)


def predict(model: Model, images: np.ndarray, bank: int = 0, adapt: bool = False) -> np.ndarray:
    """Class labels for uint8 images [n, K0]. With adapt=True, `model` is updated in place
    by the stream-adaptive normalization, exactly as a device would after these images."""
    return argmax_first(forward(model, images, bank=bank, adapt=adapt))
