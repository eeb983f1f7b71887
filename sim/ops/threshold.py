"""The folded BatchNorm of a weighted op (FORMAT.md 3, 3.1 and 4.3 step 4), shared by dense and conv2d.

Both ops end the same way: d = acc*256 - M per neuron (a conv: per output channel, the same M, C, f, lo, hi at every
position), then the SIGN bit or the SCORES, and in the learning step the straight-through window. Only the shape
of `d` differs ([n, N] for dense, [n, N, H, W] for conv), so the per-neuron vectors are broadcast over the
position axes here, once.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.fixedpoint import rsr, sat
from metabnn.sim.model import SIGN, Layer

DELTA_MAX = 32767


def per_neuron(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A per-neuron vector [N] shaped to broadcast against an array of `ndim` axes whose neuron axis is `axis`."""
    return np.asarray(v).reshape((-1,) + (1,) * (ndim - axis - 1))


def centred(layer: Layer, acc: np.ndarray, bank: int, adapt: bool) -> np.ndarray:
    """d = acc*256 - M for every sample, in stream order.

    Frozen: one vector M for all samples. Adaptive (FORMAT.md 3.1, dense layers only: the loader refuses a conv
    with adapt_shift > 0): sample n uses the M left by samples 0..n-1, then M += rsr(d_n, a). The scan updates
    `layer.M[bank]` in place.
    """
    acc256 = acc * 256
    M = layer.M[bank].astype(np.int64)
    if not (adapt and layer.adapt_shift > 0):
        return acc256 - per_neuron(M, acc.ndim, 1)
    a = layer.adapt_shift
    d = np.empty_like(acc256)
    for n in range(acc256.shape[0]):
        d[n] = acc256[n] - M
        M = M + rsr(d[n], a)
    layer.M[bank] = M.astype(np.int32)
    return d


def outputs(layer: Layer, d: np.ndarray, bank: int) -> np.ndarray:
    """From centred accumulators d [n, N, ...]: SIGN -> +-1 (int8), SCORES -> int64 scores."""
    pn = lambda v: per_neuron(v, d.ndim, 1)
    if layer.out_kind == SIGN:
        bit = (d >= pn(layer.C[bank])) ^ (pn(layer.flip[bank]) != 0)
        return np.where(bit, 1, -1).astype(np.int8)
    return pn(layer.g[bank]).astype(np.int64) * d + pn(layer.b[bank]).astype(np.int64)


def output_delta(layer: Layer, e: np.ndarray, bank: int) -> np.ndarray:
    """The output layer's delta (4.3 step 3): sat(sgn(g_j) * e_j); sgn(0) = 0 here, so a zero gain learns nothing."""
    return sat(np.sign(layer.g[bank].astype(np.int64)) * e, -DELTA_MAX, DELTA_MAX)


def window_delta(layer: Layer, back: np.ndarray, d: np.ndarray, bank: int) -> np.ndarray:
    """The delta of a SIGN layer from the error `back` arriving at its outputs (4.3 step 4), one sample:
    back [N, ...] and d [N, ...] (a conv: per position). Outside [lo, hi] the sign's STE passes nothing."""
    pn = lambda v: per_neuron(v, d.ndim, 0)
    inside = (d >= pn(layer.lo[bank])) & (d <= pn(layer.hi[bank]))
    back = np.where(inside, back, 0)
    sign = np.where(pn(layer.flip[bank]) != 0, -1, 1)
    return sat(sign * rsr(back, layer.bshift), -DELTA_MAX, DELTA_MAX)
