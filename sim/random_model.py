"""Random but valid integer models, for tests of every backend.

Values are drawn where real models put them (thresholds near the middle of the
accumulator's spread, windows around the thresholds, hidden weights across the
whole range including the saturation limits) so that tests exercise both outputs
of every comparison and both branches of the metaplastic rule.
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.bits import pack_bits
from metabnn.sim.metaplastic import f_meta_table
from metabnn.sim.model import BITS, PIXELS, SCORES, SIGN, STOCHASTIC, ConvGeom, Layer, Model
from metabnn.sim.threefry import layer_seed


def random_model(sizes=(64, 32, 10), *, bits: int = 8, table_bits: int = 4, banks: int = 1,
                 adapt_shift: int = 0, meta: float = 1.0, lr_shift: int = 6, bshift: int = 2,
                 seed: int = 0, rounding: int = 0, sr_step: int = 0) -> Model:
    """rounding = 1: every layer rounds stochastically (FORMAT.md 4.4), seeds as the exporter derives them from
    `seed`, all starting at step `sr_step`; the other fields do not depend on it."""
    rng = np.random.default_rng(seed)
    shapes = [(K, N, None) for K, N in zip(sizes[:-1], sizes[1:])]
    return Model(layers=_layers(rng, shapes, bits=bits, table_bits=table_bits, banks=banks, adapt_shift=adapt_shift,
                                meta=meta, lr_shift=lr_shift, bshift=bshift, seed=seed, rounding=rounding,
                                sr_step=sr_step))


def random_conv_model(image=(1, 8, 8), convs=((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), dense=(10,), *, bits: int = 8,
                      table_bits: int = 4, banks: int = 1, meta: float = 1.0, lr_shift: int = 6, bshift: int = 2,
                      seed: int = 0, rounding: int = 0, sr_step: int = 0) -> Model:
    """A random valid conv model (FORMAT.md 3.3): uint8 images C x H x W, then conv layers given as
    (out channels, kernel, stride, pad, pool), then dense layers of the sizes given (the last one the scores)."""
    rng = np.random.default_rng(seed)
    c, h, w = image
    shapes = []
    for n_out, k, stride, pad, pool in convs:
        g = ConvGeom(in_c=c, in_h=h, in_w=w, kernel=k, stride=stride, pad=pad, pool=pool)
        shapes.append((c * k * k, n_out, g))
        c, h, w = n_out, g.map_h, g.map_w
    k_in = c * h * w
    for n_out in dense:
        shapes.append((k_in, n_out, None))
        k_in = n_out
    return Model(layers=_layers(rng, shapes, bits=bits, table_bits=table_bits, banks=banks, adapt_shift=0,
                                meta=meta, lr_shift=lr_shift, bshift=bshift, seed=seed, rounding=rounding,
                                sr_step=sr_step))


def _layers(rng, shapes, *, bits, table_bits, banks, adapt_shift, meta, lr_shift, bshift, seed, rounding,
            sr_step) -> list[Layer]:
    """Layers of the (K, N, conv geometry or None) given, first on pixels, last with scores."""
    layers = []
    for l, (K, N, geom) in enumerate(shapes):
        in_kind = PIXELS if l == 0 else BITS
        out_kind = SCORES if l == len(shapes) - 1 else SIGN
        hmin, hmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        hidden = rng.integers(hmin, hmax + 1, size=(N, K)).astype(np.int16)
        # sprinkle the extremes and zero (sign +1) so saturation and sgn(0) are exercised
        for v in (hmin, hmax, 0, -1, 1):
            hidden[rng.integers(0, N), rng.integers(0, K)] = v
        scale = 1.0 / max(hmax, 1)
        R = K * (255 if in_kind == PIXELS else 1)
        spread = int(np.sqrt(K) * (128 if in_kind == PIXELS else 1) * 256)
        M = rng.integers(-spread, spread + 1, size=(banks, N)).clip(-256 * R, 256 * R).astype(np.int32)
        lay = Layer(K=K, N=N, in_kind=in_kind, out_kind=out_kind, bits=bits, table_bits=table_bits,
                    lr_shift=lr_shift if in_kind == BITS else lr_shift + 6, bshift=bshift,
                    adapt_shift=adapt_shift, score_frac=20 if out_kind == SCORES else 0,
                    meta=meta, scale=scale, signs=pack_bits(hidden >= 0), hidden=hidden,
                    table=f_meta_table(meta, scale, bits, table_bits), M=M, conv=geom)
        if rounding:
            lay.rounding, lay.sr_seed, lay.sr_step = STOCHASTIC, layer_seed(seed, l), sr_step
        if out_kind == SIGN:
            lay.C = rng.integers(-spread, spread + 1, size=(banks, N)).astype(np.int32)
            lay.flip = (rng.random((banks, N)) < 0.3).astype(np.int32)
            half = rng.integers(spread // 4 + 1, 2 * spread + 2, size=(banks, N))
            lay.lo = (lay.C - half).astype(np.int32)
            lay.hi = (lay.C + half).astype(np.int32)
        else:
            lay.g = rng.integers(200, 4000, size=(banks, N)).astype(np.int32)
            lay.g[rng.random((banks, N)) < 0.1] *= -1
            lay.b = rng.integers(-(1 << 21), 1 << 21, size=(banks, N)).astype(np.int64)
        layers.append(lay)
    return layers
