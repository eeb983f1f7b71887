"""The on-device learning step (docs/FORMAT.md 4.3, with 4.4 on layers whose rounding is stochastic), batch 1,
integers only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metabnn.sim.bits import pack_bits
from metabnn.sim.fixedpoint import rsr, sat
from metabnn.sim.forward import argmax_first, forward
from metabnn.sim.metaplastic import metaplastic_update
from metabnn.sim.model import Q15_ONE, STOCHASTIC, Model
from metabnn.sim.threefry import synapse_draws

DELTA_MAX = 32767


@dataclass
class StepInfo:
    predicted: int  # the class the forward pass of this step chose (before the update)
    error: np.ndarray  # e, Q15 [classes]
    deltas: list  # per layer [N] int64, first layer first
    inputs: list  # per layer input vector [K] (pixels or +-1)
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


def backward(model: Model, record: list, e: np.ndarray, bank: int) -> list:
    """Deltas of every layer (FORMAT.md 4.3 steps 3-4), using the binary weights before the update."""
    layers = model.layers
    out = layers[-1]
    deltas = [None] * len(layers)
    deltas[-1] = sat(np.sign(out.g[bank].astype(np.int64)) * e, -DELTA_MAX, DELTA_MAX)
    for l in range(len(layers) - 2, -1, -1):
        lay, above = layers[l], layers[l + 1]
        back = above.weights_pm1(np.int64).T @ deltas[l + 1]
        d = record[l][1][0]
        inside = (d >= lay.lo[bank]) & (d <= lay.hi[bank])
        back = np.where(inside, back, 0)
        sign = np.where(lay.flip[bank] != 0, -1, 1)
        deltas[l] = sat(sign * rsr(back, lay.bshift), -DELTA_MAX, DELTA_MAX)
    return deltas


def learn_step(model: Model, image: np.ndarray, label: int, bank: int = 0, adapt: bool = False):
    """One learning step on one uint8 image. Returns (new_model, StepInfo); `model` is not changed."""
    new = model.copy()
    x = np.asarray(image).reshape(1, -1)
    if not 0 <= int(label) < model.n_classes:
        raise ValueError(f"label {label} out of range 0..{model.n_classes - 1}")
    record: list = []
    scores = forward(new, x, bank=bank, adapt=adapt, record=record)[0]
    e = output_error(scores, int(label), new.layers[-1].score_frac, new.exp_table)
    deltas = backward(new, record, e, bank)
    inputs, flips = [], []
    for lay, (xin, _), delta in zip(new.layers, record, deltas):
        xv = np.asarray(xin[0], dtype=np.int64)
        # a neuron with delta 0 has a zero gradient on every synapse: only the others can change
        rows = np.flatnonzero(delta)
        h_new = lay.hidden.copy()
        draws = synapse_draws(rows, lay.K, lay.sr_seed, lay.sr_step) if lay.rounding == STOCHASTIC else None
        h_new[rows] = metaplastic_update(lay.hidden[rows], xv, delta[rows], lr_shift=lay.lr_shift,
                                         table=lay.table, bits=lay.bits, table_bits=lay.table_bits, draws=draws)
        flips.append(int(np.count_nonzero((h_new >= 0) != (lay.hidden >= 0))))
        lay.hidden = h_new
        lay.signs = pack_bits(h_new >= 0)
        inputs.append(xv)
        if lay.rounding == STOCHASTIC:  # every step counts, whether or not a synapse changed (4.4)
            lay.sr_step = (lay.sr_step + 1) & 0xFFFFFFFF
    info = StepInfo(predicted=int(argmax_first(scores)), error=e, deltas=deltas, inputs=inputs, flips=flips)
    return new, info
