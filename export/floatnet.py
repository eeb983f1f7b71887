"""The boundary between training and export: a trained network as plain NumPy.

The trainer (metabnn.train.checkpoint.load_floatnet) turns a `model.pt`
checkpoint into a FloatNet; the exporter (metabnn.export.quantize) turns a
FloatNet into the integer model of docs/FORMAT.md. Neither side needs the
other's internals, and tests can build FloatNets by hand without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
    """A BinaryLinear (no bias) followed by BatchNorm1d.

    `weight` holds the real-valued hidden weights W_h, shape [N, K]; the forward
    pass uses sign(W_h) with sign(0) = +1. The first layer sees pixels / 255 in
    [0, 1]; every later layer sees +-1. Every layer but the last is followed by sign().
    """

    weight: np.ndarray  # [N, K] float32
    meta: float  # metaplasticity m of this layer (0 = plain BNN)
    bn: list[BNState]  # one normalization state per bank (task); same length in every layer


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
        return [self.layers[0].weight.shape[1]] + [lay.weight.shape[0] for lay in self.layers]


def float_forward(net: FloatNet, images: np.ndarray, bank: int = 0, dtype=np.float32) -> np.ndarray:
    """The float network's logits for uint8 images (frozen normalization of one bank).

    Plain NumPy, mirroring the PyTorch eval-mode forward, so exporter tests can
    compare integer and float decisions without torch.
    """
    x = np.asarray(images, dtype=dtype) / dtype(255.0)
    for i, lay in enumerate(net.layers):
        w = np.where(lay.weight >= 0, 1, -1).astype(dtype)
        a = x @ w.T
        bn = lay.bn[bank]
        y = (a - bn.mean.astype(dtype)) / np.sqrt(bn.var.astype(dtype) + dtype(bn.eps)) * bn.gamma.astype(dtype) \
            + bn.beta.astype(dtype)
        x = y if i == len(net.layers) - 1 else np.where(y >= 0, 1, -1).astype(dtype)
    return x
