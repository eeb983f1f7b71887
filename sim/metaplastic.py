"""THE metaplastic update rule in integers (docs/FORMAT.md 4.2 and 4.3 step 5), and its f_meta table.

One place in Python: the golden learning step, the RTL testbenches and the
firmware tests all call `metaplastic_update`; the exporter builds the table with `f_meta_table`. An update that would move a hidden
weight toward zero (toward flipping its sign) is scaled by f_meta(|h|), read
from a 2^k-entry Q15 table; updates away from zero pass unchanged.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.fixedpoint import rsr, sat

U_MAX = 65535  # |u| is saturated here before the table multiply (keeps it < 2^31)


def table_index(h: np.ndarray, bits: int, table_bits: int) -> np.ndarray:
    """idx(h) = min(|h| >> (b - 1 - k), 2^k - 1)."""
    tshift = bits - 1 - table_bits
    return np.minimum(np.abs(h) >> tshift, (1 << table_bits) - 1)


def metaplastic_update(hidden: np.ndarray, x: np.ndarray, delta: np.ndarray, *, lr_shift: int,
                       table: np.ndarray, bits: int, table_bits: int) -> np.ndarray:
    """New hidden weights [N, K] after one step with layer input x [K] and deltas [N].

    grad = delta_j * x_i;  u = sat(-rsr(grad, lr_shift), +-65535);
    toward zero -> u = sgn(u) * ((|u| * F[idx(h)] + 16384) >> 15);  h' = sat(h + u).
    """
    h = np.asarray(hidden, dtype=np.int64)
    grad = np.outer(np.asarray(delta, dtype=np.int64), np.asarray(x, dtype=np.int64))
    u = sat(-rsr(grad, lr_shift), -U_MAX, U_MAX)
    toward = ((h > 0) & (u < 0)) | ((h < 0) & (u > 0))
    f = np.asarray(table, dtype=np.int64)[table_index(h, bits, table_bits)]
    scaled = np.sign(u) * ((np.abs(u) * f + 16384) >> 15)
    u = np.where(toward, scaled, u)
    return sat(h + u, -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int16)


def f_meta_table(meta: float, scale: float, bits: int, table_bits: int) -> np.ndarray:
    """F[i] = round(32768 * (1 - tanh^2(m * i * 2^tshift * scale))) (FORMAT.md 4.2)."""
    tshift = bits - 1 - table_bits
    w = np.arange(1 << table_bits, dtype=np.float64) * (1 << tshift) * scale
    f = 1.0 - np.tanh(meta * w) ** 2
    return np.floor(32768.0 * f + 0.5).astype(np.uint16)
