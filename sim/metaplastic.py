"""THE metaplastic update rule in integers (docs/FORMAT.md 4.2, 4.3 step 5 and 4.4), and its f_meta table.

One place in Python: the golden learning step, the RTL testbenches and the
firmware tests all call `metaplastic_update`; the exporter builds the table with `f_meta_table`. An update that would move a hidden
weight toward zero (toward flipping its sign) is scaled by f_meta(|h|), read
from a 2^k-entry Q15 table; updates away from zero pass unchanged, or, on a layer that carries the optional
second table g (`away`, same index), are scaled by g(|h|) with the same rounding (g = 1 everywhere is the rule
without it).

The two roundings of the rule (the gradient shift and the f_meta product) are either to nearest (4.3) or
stochastic (4.4, a layer with rounding = 1): the same rule, only the added rounding constant differs, so both
live here side by side.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.fixedpoint import rsr, sat

U_MAX = 65535  # |u| is saturated here before the table multiply (keeps it < 2^31)
Q15_MASK = 0x7FFF


def table_index(h: np.ndarray, bits: int, table_bits: int) -> np.ndarray:
    """idx(h) = min(|h| >> (b - 1 - k), 2^k - 1)."""
    tshift = bits - 1 - table_bits
    return np.minimum(np.abs(h) >> tshift, (1 << table_bits) - 1)


def step_size(grad: np.ndarray, lr_shift: int, r0: np.ndarray | None = None) -> np.ndarray:
    """u before the table: -rsr(grad, s) to nearest (4.3), or -sgn(grad) * ((|grad| + (r0 & (2^s-1))) >> s) (4.4)."""
    if r0 is None:
        return sat(-rsr(grad, lr_shift), -U_MAX, U_MAX)
    noise = np.asarray(r0, dtype=np.int64) & ((1 << lr_shift) - 1)
    q = (np.abs(grad) + noise) >> lr_shift  # a zero gradient stays 0: noise < 2^s
    return sat(-np.sign(grad) * q, -U_MAX, U_MAX)


def attenuate(u: np.ndarray, f: np.ndarray, r1: np.ndarray | None = None) -> np.ndarray:
    """sgn(u) * ((|u| * F + c) >> 15): c = 16384 (half up, 4.3) or r1 & 0x7FFF (stochastic, 4.4)."""
    c = 16384 if r1 is None else np.asarray(r1, dtype=np.int64) & Q15_MASK
    return np.sign(u) * ((np.abs(u) * f + c) >> 15)


def metaplastic_update(hidden: np.ndarray, x: np.ndarray, delta: np.ndarray, *, lr_shift: int,
                       table: np.ndarray, bits: int, table_bits: int, draws=None,
                       away: np.ndarray | None = None) -> np.ndarray:
    """New hidden weights [N, K] after one step with layer input x [K] and deltas [N].

    grad = delta_j * x_i;  u = sat(-rsr(grad, lr_shift), +-65535);
    toward zero -> u = sgn(u) * ((|u| * F[idx(h)] + 16384) >> 15);  h' = sat(h + u).
    draws = (r0, r1), uint32 [N, K] from threefry.synapse_draws: the two roundings are stochastic (4.4).
    away: the optional table g of pushes away from zero (apply_gradient).
    """
    grad = np.outer(np.asarray(delta, dtype=np.int64), np.asarray(x, dtype=np.int64))
    return apply_gradient(hidden, grad, lr_shift=lr_shift, table=table, bits=bits, table_bits=table_bits,
                          draws=draws, away=away)


def apply_gradient(hidden: np.ndarray, grad: np.ndarray, *, lr_shift: int, table: np.ndarray, bits: int,
                   table_bits: int, draws=None, away: np.ndarray | None = None) -> np.ndarray:
    """The rule from a per-synapse gradient [N, K] (int64) onward: what every op's update calls.

    A dense synapse's gradient is one product delta_j * x_i; a conv synapse's is the exact sum of those products
    over the output positions (FORMAT.md 4.5), rounded once here like any other.
    away: the layer's optional Q15 table g [2^k]: a push away from zero (or from h = 0) becomes
    sgn(u) * ((|u| * G[idx(h)] + c) >> 15), c as for f_meta; None leaves it unchanged."""
    r0, r1 = (None, None) if draws is None else draws
    h = np.asarray(hidden, dtype=np.int64)
    u = step_size(np.asarray(grad, dtype=np.int64), lr_shift, r0)
    toward = ((h > 0) & (u < 0)) | ((h < 0) & (u > 0))
    idx = table_index(h, bits, table_bits)
    f = np.asarray(table, dtype=np.int64)[idx]
    if away is None:
        u = np.where(toward, attenuate(u, f, r1), u)
    else:
        g = np.asarray(away, dtype=np.int64)[idx]
        u = attenuate(u, np.where(toward, f, g), r1)
    return sat(h + u, -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int16)


def f_meta_table(meta: float, scale: float, bits: int, table_bits: int) -> np.ndarray:
    """F[i] = round(32768 * (1 - tanh^2(m * i * 2^tshift * scale))) (FORMAT.md 4.2)."""
    tshift = bits - 1 - table_bits
    w = np.arange(1 << table_bits, dtype=np.float64) * (1 << tshift) * scale
    f = 1.0 - np.tanh(meta * w) ** 2
    return np.floor(32768.0 * f + 0.5).astype(np.uint16)
