"""FloatNet -> integer Model: BatchNorm folded to thresholds, hidden weights quantized.

Every formula here is the informational part of docs/FORMAT.md (3.2, 4.1, 4.2),
computed in float64 from the float32 parameters of the trained network. A conv layer (3.3) folds exactly as a
dense one, per output channel: its accumulator at every position is a dense accumulator of its K = C k^2 taps.
"""

from __future__ import annotations

import math

import numpy as np

from metabnn.export.errors import FormatError
from metabnn.export.floatnet import BNState, FloatNet
from metabnn.sim.bits import pack_bits
from metabnn.sim.model import BITS, NEAREST, PIXELS, SCORES, SIGN, STOCHASTIC, Layer, Model, default_exp_table
from metabnn.sim.metaplastic import f_meta_table
from metabnn.sim.threefry import layer_seed

ACOSH_256 = math.acosh(256.0)  # m|W| past this: f_meta < 2^-16, fully consolidated
Q_MIN, Q_MAX = 4, 40


def round_half_away(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def default_table_bits(bits: int) -> int:
    return min(8, bits - 1)


def default_lr_shift(layer_index: int, bits: int, base: int = 14) -> int:
    """Learning-rate shift at `bits` hidden bits: the same float step size for every width
    (one LSB is 2^(8-b) of an 8-bit LSB); the pixel layer's gradients are 255x larger."""
    s = base - (bits - 8) + (8 if layer_index == 0 else 0)
    return int(min(max(s, 0), 31))


def conv_lr_extra(positions: int) -> int:
    """A conv synapse's gradient sums `positions` products of random sign: it grows like sqrt(positions), so
    its shift grows by half their log2 (the same argument as default_bshift; informational, not tuned on a device)."""
    return int(math.ceil(math.log2(max(positions, 1)) / 2))


def kernel_rows(weight: np.ndarray) -> np.ndarray:
    """torch's conv weight [N, C, k, k] as the format's rows [N, K], synapse i = (ky k + kx) C + c (FORMAT.md 3.3)."""
    w = np.asarray(weight)
    return w.transpose(0, 2, 3, 1).reshape(w.shape[0], -1)


def terms_above(net: FloatNet, l: int) -> int:
    """How many +-delta terms the error reaching layer l's output sums: the neurons of a dense layer above, or
    a conv above's channels times its taps per input (k^2 / stride^2, at least 1)."""
    if l + 1 >= len(net.layers):
        return 1
    above = net.layers[l + 1]
    g = above.conv
    n = above.weight.shape[0]
    return n if g is None else n * max(1, (g.kernel * g.kernel) // (g.stride * g.stride))


def default_bshift(n_above: int) -> int:
    """Backward sums over n_above +-delta terms grow like sqrt(n_above): shift that back."""
    return int(math.ceil(math.log2(max(n_above, 1)) / 2))


def quantize_hidden(w: np.ndarray, meta: float, bits: int) -> tuple[np.ndarray, float]:
    """(h int16 [N, K], scale) per FORMAT.md 4.1: the sign of every weight is kept."""
    w = np.asarray(w, dtype=np.float64)
    hmax = (1 << (bits - 1)) - 1
    wmax = float(np.max(np.abs(w))) if w.size else 0.0
    w_r = wmax if meta <= 0 else min(wmax, ACOSH_256 / meta)
    scale = w_r / hmax if w_r > 0 else 1.0
    h = np.clip(round_half_away(w / scale), -hmax - 1, hmax)
    h = np.where((w < 0) & (h == 0), -1, h)
    return h.astype(np.int16), float(np.float32(scale))


def _fold_sign(bn: BNState, s_in: int, R: int):
    """M, C, lo, hi, f for one SIGN layer (FORMAT.md 3.2 and the window fold of 4.3)."""
    gamma, beta, mu = (np.asarray(a, dtype=np.float64) for a in (bn.gamma, bn.beta, bn.mean))
    G = gamma / np.sqrt(np.asarray(bn.var, dtype=np.float64) + bn.eps)
    D = 512 * R
    M = np.clip(round_half_away(mu * s_in * 256), -256 * R, 256 * R)
    k = 256.0 * s_in
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (mu - beta / G) * k - M  # the threshold on d
        lo_a = (mu + (-1 - beta) / G) * k - M  # |y| <= 1 window on d (gamma > 0 order)
        hi_a = (mu + (1 - beta) / G) * k - M
    pos, neg, zero = G > 0, G < 0, G == 0
    C = np.zeros_like(t)
    C[pos] = np.ceil(t[pos])
    C[neg] = np.floor(t[neg]) + 1
    C[zero] = -D - 1
    f = np.where(neg | (zero & (beta < 0)), 1, 0)
    lo, hi = np.empty_like(t), np.empty_like(t)
    lo[pos], hi[pos] = np.ceil(lo_a[pos]), np.floor(hi_a[pos])
    lo[neg], hi[neg] = np.ceil(hi_a[neg]), np.floor(lo_a[neg])
    inside = np.abs(beta) <= 1
    lo[zero] = np.where(inside[zero], -D - 1, D + 1)
    hi[zero] = np.where(inside[zero], D + 1, -D - 1)
    clip = lambda a: np.clip(np.nan_to_num(a, nan=0.0, posinf=D + 1, neginf=-D - 1), -D - 1, D + 1)
    return M, clip(C), clip(lo), clip(hi), f


def _fold_scores(bns: list[BNState], s_in: int, R: int):
    """M, g, b per bank and the shared score fraction bits Q (FORMAT.md 3.2)."""
    k = 256.0 * s_in
    parts = []
    for bn in bns:
        mu = np.asarray(bn.mean, dtype=np.float64)
        G = np.asarray(bn.gamma, dtype=np.float64) / np.sqrt(np.asarray(bn.var, dtype=np.float64) + bn.eps)
        M = np.clip(round_half_away(mu * k), -256 * R, 256 * R)
        beta = np.asarray(bn.beta, dtype=np.float64) + G * (M - k * mu) / k
        parts.append((M, G / k, beta))
    for Q in range(Q_MAX, Q_MIN - 1, -1):
        gs = [round_half_away(gk * 2.0 ** Q) for _, gk, _ in parts]
        bs = [round_half_away(beta * 2.0 ** Q) for _, _, beta in parts]
        if all(np.all(np.abs(g) <= 32767) for g in gs) and all(np.all(np.abs(b) <= 2.0 ** 47) for b in bs):
            return [p[0] for p in parts], gs, bs, Q
    raise FormatError("output layer BatchNorm gain too large to fold into 16-bit integer scores")


def from_floatnet(net: FloatNet, hidden_bits: int = 8, table_bits: int | None = None,
                  lr_shift_base: int = 14, lr_shifts: list[int] | None = None,
                  bshifts: list[int] | None = None, device_meta: float | list[float] | None = None,
                  stochastic: bool = False, sr_seed: int = 0) -> Model:
    """The integer model of a trained network. Raises FormatError for shapes the format cannot hold.

    `device_meta` builds the f_meta tables (and the hidden range) from another m than training's:
    the consolidation strength of on-device learning, a deployment choice (None: the trained m).
    `stochastic`: every layer learns with stochastic rounding (FORMAT.md 4.4), seeds derived from `sr_seed`."""
    if not 2 <= hidden_bits <= 16:
        raise FormatError(f"hidden bits {hidden_bits} outside 2..16")
    tb = default_table_bits(hidden_bits) if table_bits is None else table_bits
    if not 0 <= tb <= min(hidden_bits - 1, 12):
        raise FormatError(f"table bits {tb} outside 0..{min(hidden_bits - 1, 12)} for {hidden_bits} hidden bits")
    if len(net.layers) < 2:
        raise FormatError("the format needs at least one hidden layer (2 or more layers)")
    L = len(net.layers)
    if net.adapt_shift and any(fl.conv is not None for fl in net.layers):
        raise FormatError("stream-adaptive normalization is defined for dense layers only: export a conv net "
                          "trained with --bn frozen or task-aware")
    layers = []
    for l, fl in enumerate(net.layers):
        weight = fl.weight if fl.conv is None else kernel_rows(fl.weight)
        N, K = weight.shape
        in_kind = PIXELS if l == 0 else BITS
        out_kind = SCORES if l == L - 1 else SIGN
        s_in = 255 if in_kind == PIXELS else 1
        R = K * s_in
        # one m for every layer, or one per layer (the device-m rule picks per layer: export/device_meta.py)
        dm = device_meta[l] if isinstance(device_meta, (list, tuple)) else device_meta
        meta = float(fl.meta if dm is None else dm)
        if not (math.isfinite(meta) and meta >= 0):
            raise FormatError(f"metaplasticity m = {meta} must be finite and >= 0")
        h, scale = quantize_hidden(weight, meta, hidden_bits)
        lr = default_lr_shift(l, hidden_bits, lr_shift_base)
        if fl.conv is not None:
            lr = min(lr + conv_lr_extra(fl.conv.positions), 31)
        lay = Layer(K=K, N=N, in_kind=in_kind, out_kind=out_kind, bits=hidden_bits, table_bits=tb,
                    lr_shift=lr_shifts[l] if lr_shifts else lr,
                    bshift=bshifts[l] if bshifts else default_bshift(terms_above(net, l)),
                    adapt_shift=int(net.adapt_shift), score_frac=0, meta=meta, scale=scale,
                    signs=pack_bits(h >= 0), hidden=h,
                    table=f_meta_table(meta, scale, hidden_bits, tb), M=None, conv=fl.conv)
        if out_kind == SIGN:
            folds = [_fold_sign(bn, s_in, R) for bn in fl.bn]
            lay.M, lay.C, lay.lo, lay.hi, lay.flip = (np.stack([f[i] for f in folds]).astype(np.int32)
                                                     for i in range(5))
        else:
            Ms, gs, bs, Q = _fold_scores(fl.bn, s_in, R)
            lay.M = np.stack(Ms).astype(np.int32)
            lay.g = np.stack(gs).astype(np.int32)
            lay.b = np.stack(bs).astype(np.int64)
            lay.score_frac = Q
        layers.append(lay)
    model = Model(layers=layers, exp_table=default_exp_table(), meta=file_metadata(net))
    return set_rounding(model, stochastic, sr_seed)


def set_rounding(model: Model, stochastic: bool, sr_seed: int = 0) -> Model:
    """The model (changed in place) with every layer's rounding set: stochastic layers get the per-layer seeds
    of FORMAT.md 4.4 and start at step 0; nearest layers keep seed and step 0 (the loader insists)."""
    if not 0 <= sr_seed < 1 << 32:
        raise FormatError(f"sr_seed {sr_seed} outside 0..2^32-1")
    for l, lay in enumerate(model.layers):
        lay.rounding = STOCHASTIC if stochastic else NEAREST
        lay.sr_seed = layer_seed(sr_seed, l) if stochastic else 0
        lay.sr_step = 0
    return model


def file_metadata(net: FloatNet) -> dict | None:
    """The `.mbnn` metadata (FORMAT.md 6.1): the trainer's description of the data, plus the training
    options for the record. None for a FloatNet that does not say what it was trained on."""
    data = net.info.get("data")
    if data is None:
        return None
    return {**data, "training": {k: v for k, v in net.info.items() if k != "data"}}
