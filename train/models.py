"""The three networks the trainer runs: BNN MLP (the paper's), full-precision MLP, binary conv net.

MLPs are a list of blocks (linear -> BatchNorm1d -> activation, none after the
last) so that the BatchNorm protocols in bn.py can walk them layer by layer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .layers import BinaryConv2d, BinaryLinear, SignActivation, fan_in_init_width

N_IN, N_OUT = 784, 10


class Block(nn.Module):
    def __init__(self, lin: nn.Module, bn: nn.Module, act: nn.Module | None):
        super().__init__()
        self.lin, self.bn, self.act = lin, bn, act

    def forward(self, x):
        x = self.bn(self.lin(x))
        return self.act(x) if self.act is not None else x


class MLP(nn.Module):
    """kind='bnn': BinaryLinear -> BN -> sign; kind='fp': Linear -> BN -> ReLU. Last block: no activation."""

    def __init__(self, hidden: list[int], kind: str = "bnn", init_width: float = 0.1, affine: bool = True):
        super().__init__()
        self.kind, self.hidden = kind, list(hidden)
        sizes = [N_IN] + list(hidden) + [N_OUT]
        blocks = []
        for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            if kind == "bnn":
                lin, act = BinaryLinear(k, n, bias=False, init_width=init_width), SignActivation()
            else:
                lin, act = nn.Linear(k, n, bias=False), nn.ReLU()
                nn.init.uniform_(lin.weight, -fan_in_init_width(k) / 2, fan_in_init_width(k) / 2)
            # affine=False is an option (one published version of the authors' code has it),
            # but measured here it keeps far less of task 1 (docs/TRAINING.md)
            blocks.append(Block(lin, nn.BatchNorm1d(n, affine=affine), None if last else act))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x


POOL = "p"  # in a channels spec: a 2x2 max-pool after the sign of the conv before it
LEGACY_CHANNELS = [32, 64]  # the conv net before pools could be placed: each conv followed by a pool


def conv_plan(channels: list) -> list:
    """A channels spec as the list of stages: ints (a conv's output channels) and POOL.

    A spec without any POOL is the original form (every conv followed by a pool), so checkpoints written before
    pools could be placed build the same net. Raises ValueError on a spec no net can follow."""
    spec = list(channels)
    if not spec or not isinstance(spec[0], int):
        raise ValueError("the channels spec must start with a conv layer's channel count")
    if POOL not in spec:
        spec = [s for c in spec for s in (c, POOL)]
    side = 28
    for s in spec:
        if s == POOL:
            if side < 2:
                raise ValueError(f"a 2x2 max-pool needs a map of at least 2x2 (it is {side}x{side} there)")
            side //= 2  # floor, as torch's and the golden model's pool (an odd last row/column is dropped)
        elif not isinstance(s, int) or isinstance(s, bool) or s < 1:
            raise ValueError(f"channels: {s!r} is neither a channel count >= 1 nor {POOL!r}")
    return spec


def n_convs(channels: list) -> int:
    return sum(1 for s in conv_plan(channels) if s != POOL)


class ConvNet(nn.Module):
    """Binary conv net for 28x28 inputs: stages of [BinaryConv2d 3x3 pad 1 -> BN2d -> sign], a 2x2 max-pool
    where the spec says POOL (after the sign: FINN's order, what the golden model's MaxPool2 on bits computes),
    then the map flattened in NCHW order into a BNN MLP head.

    Padding is zeros: at the border a tap reads nothing, the golden model's convention (sim/ops/conv2d.py).
    """

    def __init__(self, channels: list, hidden: list[int], init_width: float = 0.1, affine: bool = True):
        super().__init__()
        plan = conv_plan(channels)
        self.kind, self.channels, self.hidden = "conv", list(channels), list(hidden)
        feats, c_in, side = [], 1, 28
        for s in plan:
            if s == POOL:
                feats.append(nn.MaxPool2d(2))
                side //= 2
                continue
            feats += [BinaryConv2d(c_in, s, 3, padding=1, init_width=init_width), nn.BatchNorm2d(s, affine=affine),
                      SignActivation()]
            c_in = s
        self.features = nn.Sequential(*feats)
        self.feature_shape = (c_in, side, side)
        self.head = MLP(hidden, "bnn", init_width, affine)
        # the head's first layer sees the flattened feature map, not 784 pixels
        first = self.head.blocks[0]
        n0 = hidden[0] if hidden else N_OUT
        first.lin = BinaryLinear(c_in * side * side, n0, init_width=init_width)

    def forward(self, x):
        x = self.features(x.view(-1, 1, 28, 28))
        return self.head(x.flatten(1))


GAMMA_INITS = ["one", "uniform"]


def build(model: str, hidden: list[int], channels: list[int] | None = None, affine: bool = True,
          gamma_init: str = "one") -> nn.Module:
    """gamma_init: BatchNorm weights start at 1 ("one", PyTorch's default since 1.2, hence the authors' code
    run today; the trainer's default) or U[0, 1) ("uniform", PyTorch <= 1.1's default, so the authors'
    code as published; docs/TRAINING.md Fidelity). Drawn after every hidden weight, so both inits give
    the same hidden weights for one seed."""
    if gamma_init not in GAMMA_INITS:
        raise ValueError(f"gamma_init must be one of {GAMMA_INITS}, got {gamma_init!r}")
    net = ConvNet(channels or LEGACY_CHANNELS, hidden, affine=affine) if model == "conv" else MLP(hidden, kind=model, affine=affine)
    if gamma_init == "uniform":
        for m in bn_modules(net):
            if m.affine:
                nn.init.uniform_(m.weight)
    return net


def bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
