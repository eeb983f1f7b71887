"""What every weighted op (dense, conv2d) shares: its layer's thresholds and its update through THE rule.

An op differs from another in how it accumulates (`acc`), which error it passes to its input (`back_input`) and
how a synapse's gradient is formed (`gradient`); the update of the hidden weights from that gradient is the same
rule for all (sim/metaplastic.py), and so is the step counter of stochastic rounding (FORMAT.md 4.4).
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.bits import pack_bits
from metabnn.sim.metaplastic import apply_gradient
from metabnn.sim.model import STOCHASTIC, Layer
from metabnn.sim.ops import threshold
from metabnn.sim.threefry import synapse_draws


class WeightedOp:
    """Base of the ops with synapses. `layer` is the Layer the op reads and (learning) writes."""

    name = "weighted"
    weighted = True

    def __init__(self, layer: Layer):
        self.layer = layer

    # -- inference
    def acc(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: np.ndarray, bank: int, adapt: bool) -> tuple[np.ndarray, np.ndarray]:
        """(outputs, d) for a batch: the vectorised path."""
        d = threshold.centred(self.layer, self.acc(x), bank, adapt)
        return threshold.outputs(self.layer, d, bank), d

    # -- learning (batch 1)
    def delta(self, back: np.ndarray, d: np.ndarray, bank: int) -> np.ndarray:
        return threshold.window_delta(self.layer, back, d, bank)

    def back_input(self, delta: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient(self, x: np.ndarray, delta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, x: np.ndarray, delta: np.ndarray) -> int:
        """Apply one step's gradient to the layer in place; returns how many synapses changed sign.

        Only neurons with a non-zero delta can change (every gradient of the others is 0), so only they are
        computed; stochastic draws depend on the synapse and the step alone, so skipping the others is exact."""
        lay = self.layer
        rows = np.flatnonzero(np.asarray(delta).reshape(lay.N, -1).any(axis=1))
        grad = self.gradient(x, delta, rows)
        draws = synapse_draws(rows, lay.K, lay.sr_seed, lay.sr_step) if lay.rounding == STOCHASTIC else None
        h_new = lay.hidden.copy()
        h_new[rows] = apply_gradient(lay.hidden[rows], grad, lr_shift=lay.lr_shift, table=lay.table,
                                     bits=lay.bits, table_bits=lay.table_bits, draws=draws,
                                     away=lay.away)
        flips = int(np.count_nonzero((h_new >= 0) != (lay.hidden >= 0)))
        lay.hidden = h_new
        lay.signs = pack_bits(h_new >= 0)
        if lay.rounding == STOCHASTIC:  # every step counts, whether or not a synapse changed (4.4)
            lay.sr_step = (lay.sr_step + 1) & 0xFFFFFFFF
        return flips
