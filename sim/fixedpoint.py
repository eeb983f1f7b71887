"""The integer helpers of docs/FORMAT.md section 1, vectorised over NumPy arrays.

`rsr` is the single rounding right shift used everywhere in the format
(round to nearest, ties away from zero, symmetric around 0).
"""

from __future__ import annotations

import numpy as np


def rsr(x, s: int):
    """Rounding right shift: sgn(x) * ((|x| + 2^(s-1)) >> s); rsr(x, 0) = x."""
    x = np.asarray(x, dtype=np.int64)
    if s == 0:
        return x
    return np.sign(x) * ((np.abs(x) + (1 << (s - 1))) >> s)


def sat(x, lo: int, hi: int):
    """Saturate to [lo, hi] (int64 in, int64 out)."""
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)
