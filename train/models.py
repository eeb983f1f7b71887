"""The three networks the trainer runs: BNN MLP (the paper's), full-precision MLP, small binary conv net.

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


class ConvNet(nn.Module):
    """Binary conv net for 28x28 inputs: 2 x [BinaryConv2d 3x3 -> BN2d -> sign -> maxpool 2], then a BNN MLP head."""

    def __init__(self, channels: list[int], hidden: list[int], init_width: float = 0.1, affine: bool = True):
        super().__init__()
        self.kind, self.channels, self.hidden = "conv", list(channels), list(hidden)
        feats, c_in, side = [], 1, 28
        for c in channels:
            feats += [BinaryConv2d(c_in, c, 3, padding=1, init_width=init_width), nn.BatchNorm2d(c, affine=affine),
                      SignActivation(), nn.MaxPool2d(2)]
            c_in, side = c, side // 2
        self.features = nn.Sequential(*feats)
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
    net = ConvNet(channels or [32, 64], hidden, affine=affine) if model == "conv" else MLP(hidden, kind=model, affine=affine)
    if gamma_init == "uniform":
        for m in bn_modules(net):
            if m.affine:
                nn.init.uniform_(m.weight)
    return net


def bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
