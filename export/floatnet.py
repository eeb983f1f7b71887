"""The boundary between training and export: a trained network as plain NumPy.

The trainer (metabnn.train.checkpoint.load_floatnet) turns a `model.pt`
checkpoint into a FloatNet; the exporter (metabnn.export.quantize) turns a
FloatNet into the integer model of docs/FORMAT.md. Neither side needs the
other's internals, and tests can build FloatNets by hand without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metabnn.sim.model import ConvGeom
from metabnn.sim.ops.conv2d import as_map, patches
from metabnn.sim.ops.maxpool import windows


@dataclass
class BNState:
    """One BatchNorm1d state in eval form: y = gamma * (a - mean) / sqrt(var + eps) + beta."""

    gamma: np.ndarray  # [N] float
    beta: np.ndarray  # [N] float
    mean: np.ndarray  # [N] float
    var: np.ndarray  # [N] float, >= 0
    eps: float = 1e-5


@dataclass
class FloatLayer:
    """A BinaryLinear (no bias) followed by BatchNorm1d, or (conv set) a BinaryConv2d followed by BatchNorm2d.

    `weight` holds the real-valued hidden weights W_h, shape [N, K]; the forward
    pass uses sign(W_h) with sign(0) = +1. The first layer sees pixels / 255 in
    [0, 1]; every later layer sees +-1. Every layer but the last is followed by sign().
    """

    weight: np.ndarray  # [N, K] float32; a conv: [N, C, k, k], torch's layout
    meta: float  # metaplasticity m of this layer (0 = plain BNN)
    bn: list[BNState]  # one normalization state per bank (task); same length in every layer
    # a conv layer: where it slides, zero padding, and the 2x2 max-pool after its sign (FORMAT.md 3.3)
    conv: ConvGeom | None = None

    @property
    def n_in(self) -> int:
        """Values the layer reads: K for a dense layer, C*H*W for a conv."""
        g = self.conv
        return self.weight.shape[1] if g is None else g.in_c * g.in_h * g.in_w


@dataclass
class FloatNet:
    layers: list[FloatLayer]
    # 0: normalization frozen at test time. a > 0: the task-free stream-adaptive
    # normalization of docs/FORMAT.md (per-neuron running mean, rate 2^-a, variance frozen).
    adapt_shift: int = 0
    bn_mode: str = "frozen"
    info: dict = field(default_factory=dict)  # training configuration, for the record

    @property
    def n_banks(self) -> int:
        return len(self.layers[0].bn)

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [lay.weight.shape[0] for lay in self.layers]


def float_forward(net: FloatNet, images: np.ndarray, bank: int = 0, dtype=np.float32) -> np.ndarray:
    """The float network's logits for uint8 images (frozen normalization of one bank).

    Plain NumPy, mirroring the PyTorch eval-mode forward, so exporter tests can
    compare integer and float decisions without torch.
    """
    x = np.asarray(images, dtype=dtype) / dtype(255.0)
    for i, lay in enumerate(net.layers):
        w = np.where(lay.weight >= 0, 1, -1).astype(dtype)
        bn = lay.bn[bank]
        g = lay.conv
        if g is None:
            a = x.reshape(len(x), -1) @ w.T
            stats = lambda v: v.astype(dtype)
        else:  # the conv as a matrix product over its windows (synapse order (ky, kx, c), FORMAT.md 3.3)
            wk = w.transpose(0, 2, 3, 1).reshape(len(w), -1)
            a = (patches(as_map(x, g), g, dtype) @ wk.T).transpose(0, 2, 1).reshape(len(x), -1, g.out_h, g.out_w)
            stats = lambda v: v.astype(dtype)[:, None, None]
        y = (a - stats(bn.mean)) / np.sqrt(stats(bn.var) + dtype(bn.eps)) * stats(bn.gamma) + stats(bn.beta)
        x = y if i == len(net.layers) - 1 else np.where(y >= 0, 1, -1).astype(dtype)
        if g is not None and g.pool:
            x = windows(x).max(axis=-1)
    return x
