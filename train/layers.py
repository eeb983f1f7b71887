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


_SIGN = "_metabnn_sign"  # on a hidden weight: (its version and data pointer, sign(W_h)) as MetaAdam left it


def remember_sign(w: torch.Tensor, sign: torch.Tensor) -> None:
    """Keep sign(w), computed by the optimizer in the pass that updated w, for the next forward to use.

    Valid only while w is unchanged: keyed by w's version counter (bumped by every in-place change through
    autograd's view of w: optimizer steps, load_state_dict, copy_ under no_grad) and its data pointer.
    A change through w.data bypasses the counter; call forget_sign(w) after one.
    """
    setattr(w, _SIGN, ((w._version, w.data_ptr()), sign))


def forget_sign(w: torch.Tensor) -> None:
    if hasattr(w, _SIGN):
        delattr(w, _SIGN)


def binary_weight(w: torch.Tensor) -> torch.Tensor:
    """sign(w), from the optimizer's pass when w has not changed since (saves three passes per step)."""
    kept = getattr(w, _SIGN, None)
    if kept is not None and kept[0] == (w._version, w.data_ptr()):
        return kept[1]
    return sign_pm1(w)


class _SignWeight(torch.autograd.Function):
    """Forward sign(W_h); backward passes the gradient straight through to W_h, unclipped."""

    @staticmethod
    def forward(ctx, w):
        return sign_pm1(w)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _BinaryLinearFn(torch.autograd.Function):
    """x @ sign(W_h)^T with the straight-through gradient to W_h: one autograd node, the products of F.linear."""

    @staticmethod
    def forward(ctx, x, w):
        wb = binary_weight(w)
        ctx.save_for_backward(x, wb)
        return x.matmul(wb.t())

    @staticmethod
    def backward(ctx, grad):
        x, wb = ctx.saved_tensors
        gx = grad.matmul(wb) if ctx.needs_input_grad[0] else None
        gw = grad.reshape(-1, grad.shape[-1]).t().mm(x.reshape(-1, x.shape[-1])) if ctx.needs_input_grad[1] else None
        return gx, gw


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
        out = _BinaryLinearFn.apply(x, self.weight)
        return out + self.bias if self.bias is not None else out


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
