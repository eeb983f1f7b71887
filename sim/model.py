"""The integer model of docs/FORMAT.md as NumPy arrays.

A `Model` is what a `.mbnn` file holds, decoded: per layer the packed signs,
the hidden weights, the f_meta table and the normalization banks. Everything
is an integer except the two informational floats `meta` and `scale`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from metabnn.sim.bits import n_words, to_pm1, unpack_bits

PIXELS, BITS = 0, 1  # input kinds
SIGN, SCORES = 0, 1  # output kinds
NEAREST, STOCHASTIC = 0, 1  # rounding of the learning step

DENSE, CONV2D = 0, 1  # weighted op of a layer (FORMAT.md 3.3); pool and flatten are parameter-free ops (sim/ops)

SOFTMAX_TABLE_SIZE = 256
Q15_ONE = 32768


def default_exp_table() -> np.ndarray:
    """E[u] = round(32768 * exp(-u/16)), u = 0..255 (FORMAT.md 4.3 step 2)."""
    u = np.arange(SOFTMAX_TABLE_SIZE, dtype=np.float64)
    return np.floor(Q15_ONE * np.exp(-u / 16.0) + 0.5).astype(np.uint16)


@dataclass(frozen=True)
class ConvGeom:
    """Where a binary conv2d layer slides (FORMAT.md 3.3): its input map C x H x W, a k x k kernel, the stride, the
    zero padding (out-of-image taps contribute nothing) and the 2 x 2 max-pool after the threshold (0 = none)."""

    in_c: int
    in_h: int
    in_w: int
    kernel: int
    stride: int = 1
    pad: int = 0
    pool: int = 0  # 0 or 2

    @property
    def out_h(self) -> int:
        return (self.in_h + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_w(self) -> int:
        return (self.in_w + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def positions(self) -> int:
        """P: output positions of the convolution (before the pool), the terms of a synapse's gradient."""
        return self.out_h * self.out_w

    @property
    def map_h(self) -> int:
        """Height of the layer's output map (after the pool, which drops an odd last row)."""
        return self.out_h // 2 if self.pool else self.out_h

    @property
    def map_w(self) -> int:
        return self.out_w // 2 if self.pool else self.out_w


@dataclass
class Layer:
    K: int
    N: int
    in_kind: int
    out_kind: int
    bits: int  # b, hidden weight width
    table_bits: int  # k, log2 of the f_meta table size
    lr_shift: int
    bshift: int
    adapt_shift: int  # 0 = frozen normalization
    score_frac: int  # Q for SCORES layers, 0 for SIGN
    meta: float  # m (informational)
    scale: float  # hidden LSB in float weight units (informational)
    signs: np.ndarray  # uint32 [N, W]
    hidden: np.ndarray  # int16 [N, K]
    table: np.ndarray  # uint16 [2^k], Q15 f_meta
    M: np.ndarray  # int32 [B, N], Q8 running mean of acc
    C: np.ndarray | None = None  # int32 [B, N]  (SIGN)
    lo: np.ndarray | None = None  # int32 [B, N]  (SIGN)
    hi: np.ndarray | None = None  # int32 [B, N]  (SIGN)
    flip: np.ndarray | None = None  # int32 [B, N] 0/1 (SIGN)
    g: np.ndarray | None = None  # int32 [B, N]  (SCORES)
    b: np.ndarray | None = None  # int64 [B, N]  (SCORES)
    # rounding of the learning step (FORMAT.md 4.4): 0 to nearest, 1 stochastic from Threefry draws keyed by
    # sr_seed on the counter (synapse, sr_step); sr_step counts this layer's learning steps (saved state).
    rounding: int = 0
    sr_seed: int = 0
    sr_step: int = 0
    # None: a dense layer (K inputs). A ConvGeom: a binary conv2d whose N output channels share one K-synapse
    # kernel each (K = in_c * kernel^2, synapse i = (ky * kernel + kx) * in_c + c, FORMAT.md 3.3).
    conv: ConvGeom | None = None
    # None: pushes away from zero pass unchanged (FORMAT.md 4.3). A uint16 [2^k] Q15 table G, indexed like
    # `table`: they are scaled by G[idx(h)] (FORMAT.md 4.2.1, the descriptor's `away` byte).
    away: np.ndarray | None = None

    @property
    def op(self) -> int:
        return DENSE if self.conv is None else CONV2D

    @property
    def in_size(self) -> int:
        """Values the layer reads (C*H*W for a conv, K for a dense layer)."""
        g = self.conv
        return self.K if g is None else g.in_c * g.in_h * g.in_w

    @property
    def out_size(self) -> int:
        """Values it writes (N for a dense layer, N * map_h * map_w for a conv: what the next layer reads)."""
        g = self.conv
        return self.N if g is None else self.N * g.map_h * g.map_w

    @property
    def W(self) -> int:
        return n_words(self.K)

    @property
    def R(self) -> int:
        """Bound on |acc|."""
        return self.K * (255 if self.in_kind == PIXELS else 1)

    @property
    def D(self) -> int:
        """Bound on |d| = |acc*256 - M|."""
        return 512 * self.R

    @property
    def tshift(self) -> int:
        return self.bits - 1 - self.table_bits

    @property
    def h_min(self) -> int:
        return -(1 << (self.bits - 1))

    @property
    def h_max(self) -> int:
        return (1 << (self.bits - 1)) - 1

    @property
    def n_banks(self) -> int:
        return self.M.shape[0]

    def weights_pm1(self, dtype=np.float32) -> np.ndarray:
        """Binary weights as +-1 [N, K] (from the packed signs)."""
        return to_pm1(unpack_bits(self.signs, self.K), dtype)


@dataclass
class Model:
    layers: list[Layer]
    exp_table: np.ndarray = field(default_factory=default_exp_table)  # uint16 [256]
    # what the model was trained on (docs/FORMAT.md 6.1), for tools such as `metabnn verify`;
    # the integer model never reads it. None: the file has no metadata section.
    meta: dict | None = None

    @property
    def n_banks(self) -> int:
        return self.layers[0].n_banks

    @property
    def input_size(self) -> int:
        return self.layers[0].in_size

    @property
    def has_conv(self) -> bool:
        """True when some layer is a conv2d: FORMAT.md version 2, which not every backend runs yet."""
        return any(lay.conv is not None for lay in self.layers)

    @property
    def n_classes(self) -> int:
        return self.layers[-1].N

    def copy(self) -> "Model":
        return copy.deepcopy(self)

    def summary(self) -> str:
        """Larq-style summary: 1-bit parameters and memory for inference and learning."""
        rows = [f"{'layer':<6}{'K x N':>14}{'in':>8}{'out':>8}{'b':>4}{'m':>7}"
                f"{'1-bit params':>14}{'infer bytes':>13}{'learn bytes':>13}"]
        tot_p = tot_i = tot_l = 0
        for i, lay in enumerate(self.layers):
            p = lay.K * lay.N
            infer = lay.signs.nbytes + _norm_bytes(lay, banks=self.n_banks)
            learn = infer + lay.hidden.size * (1 if lay.bits <= 8 else 2) + lay.table.nbytes \
                + (0 if lay.away is None else lay.away.nbytes)
            tot_p, tot_i, tot_l = tot_p + p, tot_i + infer, tot_l + learn
            shape = f"{lay.K} x {lay.N}" if lay.conv is None else f"conv{lay.conv.kernel} {lay.K} x {lay.N}"
            rows.append(f"{i:<6}{shape:>14}{['pixels', 'bits'][lay.in_kind]:>8}"
                        f"{['sign', 'scores'][lay.out_kind]:>8}{lay.bits:>4}{lay.meta:>7.3g}"
                        f"{p:>14,}{infer:>13,}{learn:>13,}")
        rows.append(f"{'total':<6}{'':>14}{'':>8}{'':>8}{'':>4}{'':>7}{tot_p:>14,}{tot_i:>13,}{tot_l:>13,}")
        return "\n".join(rows)


def _norm_bytes(lay: Layer, banks: int) -> int:
    return banks * lay.N * (20 if lay.out_kind == SIGN else 16)
