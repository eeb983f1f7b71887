"""The on-device learning step (docs/FORMAT.md 4.3, with 4.4 on layers whose rounding is stochastic and 4.5 through
conv and pool layers), batch 1, integers only: the op sequence walked backward."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metabnn.sim.forward import argmax_first, run_ops
from metabnn.sim.model import Q15_ONE, Model
from metabnn.sim.ops import threshold

DELTA_MAX = threshold.DELTA_MAX


@dataclass
class StepInfo:
    predicted: int  # the class the forward pass of this step chose (before the update)
    error: np.ndarray  # e, Q15 [classes]
    deltas: list  # per layer int64, first layer first: [N] dense, [N, OH, OW] conv (one per position); None
    # for a frozen layer below every layer that learns (learn_step's `frozen`)
    inputs: list  # per layer input vector [K] dense (pixels or +-1), the input map flattened (C*H*W) conv
    flips: list  # per layer: number of synapses whose sign changed


def output_error(scores: np.ndarray, label: int, score_frac: int, exp_table: np.ndarray) -> np.ndarray:
    """e = p - onehot in Q15, p from the exp table (FORMAT.md 4.3 step 2)."""
    s = np.asarray(scores, dtype=np.int64)
    z = s - s.max()
    u = np.minimum((-z) >> (score_frac - 4), 255)
    eu = np.asarray(exp_table, dtype=np.int64)[u]
    p = (eu * Q15_ONE) // eu.sum()
    e = p.copy()
    e[label] -= Q15_ONE
    return e


def backward(trace: list, e: np.ndarray, bank: int, lowest: int = 0) -> list:
    """The delta of every weighted op (FORMAT.md 4.3 steps 3-4, 4.5), first layer first, from the forward `trace`
    [(op, input, d)] of one sample, using the binary weights before the update. The walk stops at weighted layer
    `lowest` (no error goes below it; the layers under it get None: they are frozen, FORMAT.md 4.5)."""
    n_weighted = sum(1 for op, _, _ in trace if op.weighted)
    deltas = []
    back = None
    for i in range(len(trace) - 1, -1, -1):
        op, x, d = trace[i]
        if not op.weighted:
            back = op.backward(back, x[0])
            continue
        delta = threshold.output_delta(op.layer, e, bank) if back is None else op.delta(back, d[0], bank)
        deltas.append(delta)
        if n_weighted - len(deltas) <= lowest:  # the lowest layer that learns: nothing below needs an error
            break
        if i > 0:  # the first op's input is the image: no error goes below it
            back = op.back_input(delta)
    return [None] * (n_weighted - len(deltas)) + deltas[::-1]


def conv_layers(model: Model) -> tuple[int, ...]:
    """The indices of a model's conv layers: what `learn_step(frozen=...)` leaves alone when only the dense layers
    learn (the RTL's on-chip learning of a conv net, FORMAT.md 4.5 "Frozen layers")."""
    return tuple(l for l, lay in enumerate(model.layers) if lay.conv is not None)


def learn_step(model: Model, image: np.ndarray, label: int, bank: int = 0, adapt: bool = False,
               frozen=()):
    """One learning step on one uint8 image. Returns (new_model, StepInfo); `model` is not changed.

    `frozen`: indices of layers that do not learn this step (FORMAT.md 4.5 "Frozen layers"): their hidden weights,
    signs and sr_step stay as they are (flips 0); every other layer ends exactly as in the full step. Their deltas
    are None below the lowest layer that learns (the backward stops there), computed as usual above it."""
    new = model.copy()
    x = np.asarray(image).reshape(1, -1)
    if not 0 <= int(label) < model.n_classes:
        raise ValueError(f"label {label} out of range 0..{model.n_classes - 1}")
    frozen = frozenset(int(l) for l in frozen)
    if any(not 0 <= l < len(model.layers) for l in frozen):
        raise ValueError(f"frozen layers {sorted(frozen)}: the model has layers 0..{len(model.layers) - 1}")
    plastic = [l for l in range(len(model.layers)) if l not in frozen]
    trace: list = []
    scores = run_ops(new, x, bank=bank, adapt=adapt, trace=trace)[0]
    e = output_error(scores, int(label), new.layers[-1].score_frac, new.exp_table)
    deltas = backward(trace, e, bank, lowest=min(plastic, default=len(model.layers)))
    weighted = [(op, xin) for op, xin, _ in trace if op.weighted]
    inputs, flips = [], []
    for l, ((op, xin), delta) in enumerate(zip(weighted, deltas)):
        xv = np.asarray(xin[0], dtype=np.int64).reshape(-1)
        flips.append(0 if l in frozen else op.update(xv, delta))
        inputs.append(xv)
    info = StepInfo(predicted=int(argmax_first(scores)), error=e, deltas=deltas, inputs=inputs, flips=flips)
    return new, info
