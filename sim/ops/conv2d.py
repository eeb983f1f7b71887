"""Binary conv2d (FORMAT.md 3.3 and 4.5): Conv2dPixels (first layer, uint8 pixels) and Conv2dBits (+-1 maps).

A conv layer is a dense layer applied at every output position to the window of K = C k^2 input values, with
the synapse order i = (ky k + kx) C + c (taps row-major, channels innermost: the order of a channel-packed map's
words, as FINN's sliding-window generator emits them). Taps outside the image are zero padding: they contribute
nothing, so at a border position the sum runs over the in-image taps only, exactly as the trainer's
zero-padded convolution of +-1 (or x/255) values.

Vectorised by im2col (a float32 matrix product, exact below 2^24 as in dense.py), in chunks of images so a batch
never holds more than about 2^24 patch values; `execute` is the plain per-position reference.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from metabnn.sim.bits import pack_bits, popcount32
from metabnn.sim.model import ConvGeom
from metabnn.sim.ops import threshold
from metabnn.sim.ops.weighted import WeightedOp

CHUNK_VALUES = 1 << 24


def as_map(x: np.ndarray, g: ConvGeom) -> np.ndarray:
    """[n, C*H*W] (CHW order, a flat image included) or [n, C, H, W] -> [n, C, H, W]."""
    x = np.asarray(x)
    return x.reshape(x.shape[0], g.in_c, g.in_h, g.in_w)


def patches(x: np.ndarray, g: ConvGeom, dtype=np.float32) -> np.ndarray:
    """[n, C, H, W] -> [n, P, K]: the window of every output position, synapse order (ky, kx, c), 0 off the image."""
    n, p, k, s = x.shape[0], g.pad, g.kernel, g.stride
    xp = np.zeros((n, g.in_c, g.in_h + 2 * p, g.in_w + 2 * p), dtype=dtype)
    xp[:, :, p:p + g.in_h, p:p + g.in_w] = x
    v = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :g.out_h, :g.out_w]
    return v.transpose(0, 2, 3, 4, 5, 1).reshape(n, g.positions, k * k * g.in_c)


class Conv2dPixels(WeightedOp):
    name = "Conv2dPixels"

    @property
    def geom(self) -> ConvGeom:
        return self.layer.conv

    def acc(self, x: np.ndarray) -> np.ndarray:
        """Accumulators [n, N, OH, OW] (int64)."""
        g, lay = self.geom, self.layer
        x = as_map(x, g)
        w = lay.weights_pm1(np.float32)
        step = max(1, CHUNK_VALUES // max(1, g.positions * lay.K))
        out = np.empty((x.shape[0], lay.N, g.out_h, g.out_w), dtype=np.int64)
        for i in range(0, x.shape[0], step):
            a = patches(x[i:i + step], g) @ w.T  # [n, P, N]
            out[i:i + step] = a.transpose(0, 2, 1).reshape(-1, lay.N, g.out_h, g.out_w)
        return out

    def taps(self, x: np.ndarray, oy: int, ox: int) -> tuple[np.ndarray, np.ndarray]:
        """(values [K], inside [K] bool) of the window at output (oy, ox) of one map [C, H, W]."""
        g = self.geom
        vals, inside = np.zeros(self.layer.K, dtype=np.int64), np.zeros(self.layer.K, dtype=bool)
        for ky in range(g.kernel):
            for kx in range(g.kernel):
                y, xx = oy * g.stride + ky - g.pad, ox * g.stride + kx - g.pad
                if 0 <= y < g.in_h and 0 <= xx < g.in_w:
                    base = (ky * g.kernel + kx) * g.in_c
                    vals[base:base + g.in_c] = x[:, y, xx]
                    inside[base:base + g.in_c] = True
        return vals, inside

    def reference_acc(self, vals: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """acc_j at one position: sum of w_ji x_i over the in-image taps."""
        return self.layer.weights_pm1(np.int64) @ np.where(inside, vals, 0)

    def execute(self, x: np.ndarray, bank: int = 0) -> np.ndarray:
        """One sample, frozen normalization, position by position: the plain reference of `forward`."""
        g = self.geom
        xm = as_map(np.asarray(x)[None], g)[0]
        acc = np.zeros((self.layer.N, g.out_h, g.out_w), dtype=np.int64)
        for oy in range(g.out_h):
            for ox in range(g.out_w):
                acc[:, oy, ox] = self.reference_acc(*self.taps(xm, oy, ox))
        d = threshold.centred(self.layer, acc[None], bank, False)
        return threshold.outputs(self.layer, d, bank)[0]

    def back_input(self, delta: np.ndarray) -> np.ndarray:
        """back [C, H, W] at every input value: sum over the positions and taps that read it of w * delta
        (a transposed convolution), with this step's binary weights before the update. Padding taps read no input,
        so they pass nothing down."""
        g, lay = self.geom, self.layer
        cols = delta.reshape(lay.N, g.positions).T.astype(np.int64) @ lay.weights_pm1(np.int64)  # [P, K]
        cols = cols.reshape(g.out_h, g.out_w, g.kernel, g.kernel, g.in_c)
        p, s = g.pad, g.stride
        back = np.zeros((g.in_c, g.in_h + 2 * p + s * g.kernel, g.in_w + 2 * p + s * g.kernel), dtype=np.int64)
        for ky in range(g.kernel):
            for kx in range(g.kernel):
                back[:, ky:ky + s * g.out_h:s, kx:kx + s * g.out_w:s] += cols[:, :, ky, kx, :].transpose(2, 0, 1)
        return back[:, p:p + g.in_h, p:p + g.in_w]

    def gradient(self, x: np.ndarray, delta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """grad_ji = sum over positions p of delta_jp * x_ip (exact, int64 [len(rows), K])."""
        g = self.geom
        cols = patches(as_map(np.asarray(x)[None], g), g, np.int64)[0]  # [P, K]
        return np.asarray(delta, dtype=np.int64).reshape(self.layer.N, g.positions)[rows] @ cols

    def execute_learning(self, x: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(back [C, H, W], grad [N, K]) tap by tap: the plain reference of back_input and gradient."""
        g, lay = self.geom, self.layer
        xm = as_map(np.asarray(x)[None], g)[0]
        w = lay.weights_pm1(np.int64)
        back = np.zeros((g.in_c, g.in_h, g.in_w), dtype=np.int64)
        grad = np.zeros((lay.N, lay.K), dtype=np.int64)
        for oy in range(g.out_h):
            for ox in range(g.out_w):
                vals, inside = self.taps(xm, oy, ox)
                dv = np.asarray(delta, dtype=np.int64)[:, oy, ox]
                grad += np.outer(dv, np.where(inside, vals, 0))
                for ky in range(g.kernel):
                    for kx in range(g.kernel):
                        y, xx = oy * g.stride + ky - g.pad, ox * g.stride + kx - g.pad
                        if 0 <= y < g.in_h and 0 <= xx < g.in_w:
                            base = (ky * g.kernel + kx) * g.in_c
                            back[:, y, xx] += dv @ w[:, base:base + g.in_c]
        return back, grad


class Conv2dBits(Conv2dPixels):
    name = "Conv2dBits"

    def reference_acc(self, vals: np.ndarray, inside: np.ndarray) -> np.ndarray:
        """acc_j = K_in - 2 popcount((a XOR w_j) AND mask) on packed words: the mask keeps the in-image taps
        (K_in of them), so the padding contributes nothing, whatever bit a backend stores there."""
        a, mask = pack_bits(vals > 0), pack_bits(inside)
        k_in = int(inside.sum())
        return np.array([k_in - 2 * int(popcount32((a ^ row) & mask).sum()) for row in self.layer.signs],
                        dtype=np.int64)
