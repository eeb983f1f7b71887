"""Random model configurations shared by the firmware tests: sizes with K not a multiple of
32, 1-3 banks, hidden widths 2..16, table bits 0..min(b-1, 12), adaptation on and off."""

from __future__ import annotations

import numpy as np

from metabnn.sim import random_model

# (sizes, bits, table_bits, banks, adapt_shift, meta, lr_shift, bshift)
CONFIGS = [
    ((64, 32, 10), 8, 4, 1, 0, 1.0, 6, 2),
    ((100, 45, 33, 7), 2, 0, 1, 0, 1.5, 3, 1),
    ((37, 70, 5), 3, 2, 2, 4, 0.0, 0, 0),
    ((784, 64, 10), 8, 7, 1, 6, 2.0, 8, 3),
    ((50, 31, 33, 65, 12), 16, 12, 3, 1, 0.5, 10, 4),
    ((1, 1, 2), 12, 5, 2, 24, 3.0, 25, 31),
    ((200, 96, 64, 10), 5, 4, 1, 2, 1.0, 2, 2),
    ((33, 129, 3), 9, 8, 2, 0, 4.0, 5, 0),
    ((16, 8, 4), 4, 3, 1, 3, 1.0, 1, 5),
    ((300, 40, 11), 6, 5, 2, 5, 0.8, 4, 1),
    ((96, 17, 9, 6), 15, 12, 1, 8, 1.2, 7, 2),
    ((64, 64, 2), 7, 1, 4, 2, 0.3, 0, 1),
]


def make_case(i: int, rounding: int = 0):
    """Case i; rounding = 1: the same model with stochastic rounding, its step counter starting near the u32
    wrap in odd cases (FORMAT.md 4.4)."""
    sizes, bits, tb, banks, adapt, meta, lr, bs = CONFIGS[i]
    model = random_model(sizes, bits=bits, table_bits=tb, banks=banks, adapt_shift=adapt, meta=meta,
                         lr_shift=lr, bshift=bs, seed=100 + i, rounding=rounding,
                         sr_step=0xFFFFFFFA if i % 2 else 0)
    rng = np.random.default_rng(i)
    images = rng.integers(0, 256, size=(24, sizes[0]), dtype=np.uint8)
    images[0] = 0  # extremes of the pixel range
    images[1] = 255
    labels = rng.integers(0, sizes[-1], size=24)
    return model, images, labels, banks - 1  # the last bank is the active one
