"""Binary layers with straight-through gradients (Courbariaux/Hubara style, as in the paper's code).

sign() here maps 0 to +1 (torch.sign maps it to 0, which would be a third weight
value the hardware cannot store).

Every pass here is float arithmetic with an out= float tensor: on this CPU a
comparison that returns a bool tensor, torch.where and bool masks cost 5-25x a
float multiply (measured), and these run on every weight at every step.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def sign_pm1(x: torch.Tensor) -> torch.Tensor:
    """+1 where x >= 0 (-0.0 included), -1 elsewhere, in x's dtype."""
    out = torch.ge(x, 0, out=torch.empty_like(x, memory_format=torch.contiguous_format))  # 1.0 / 0.0
    return out.mul_(2).sub_(1)


def in_window(x: torch.Tensor) -> torch.Tensor:
    """1.0 where |x| <= 1 (both ends included), 0.0 elsewhere: the hardtanh STE's gradient window."""
    w = torch.abs(x, out=torch.empty_like(x, memory_format=torch.contiguous_format))
    return torch.le(w, 1, out=w)


class _SignWeight(torch.autograd.Function):
    """Forward sign(W_h); backward passes the gradient straight through to W_h, unclipped."""

    @staticmethod
    def forward(ctx, w):
        return sign_pm1(w)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _SignActivation(torch.autograd.Function):
    """Forward sign(x); backward passes the gradient only where |x| <= 1 (hardtanh STE)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign_pm1(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return in_window(x).mul_(grad)


def binarize_weight(w: torch.Tensor) -> torch.Tensor:
    return _SignWeight.apply(w)


class SignActivation(nn.Module):
    def forward(self, x):
        return _SignActivation.apply(x)


class BinaryLinear(nn.Linear):
    """`.weight` is the real-valued hidden weight W_h; the forward pass uses sign(W_h)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False, init_width: float = 0.1):
        super().__init__(in_features, out_features, bias=bias)
        # The paper's init: U(-width/2, width/2) = U(-0.05, 0.05).
        nn.init.uniform_(self.weight, -init_width / 2, init_width / 2)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x):
        return F.linear(x, binarize_weight(self.weight), self.bias)


class BinaryConv2d(nn.Conv2d):
    """Convolution with sign(W_h) kernels; same hidden-weight pattern as BinaryLinear."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=False, init_width=None):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        if init_width is not None:
            nn.init.uniform_(self.weight, -init_width / 2, init_width / 2)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x):
        return self._conv_forward(x, binarize_weight(self.weight), self.bias)


def fan_in_init_width(fan_in: int) -> float:
    """Kaiming-uniform-like width for full-precision layers (the FP baseline)."""
    return 2 * math.sqrt(3.0 / fan_in)
