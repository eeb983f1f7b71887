"""MetaAdam: Adam with the paper's metaplastic attenuation (Laborieux et al. 2021, Eq. 2).

For hidden weights (dim >= 2) an update that would move W_h toward zero, i.e.
sign(W_h) * exp_avg > 0 (the step is -lr * exp_avg / denom), has its first
moment multiplied by f_meta = 1 - tanh^2(m * |W_h|): the larger |W_h| has grown,
the harder it is to flip the binary weight. The stored moment is unchanged, so
this is exactly the authors' Adam_meta. 1-D tensors (BatchNorm) take plain Adam.
"""

from __future__ import annotations

import math
from numbers import Real

import torch


class MetaAdam(torch.optim.Optimizer):
    def __init__(self, params, lr=0.005, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, meta=0.0):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not isinstance(meta, Real) or meta < 0:
            raise ValueError(f"meta must be a number >= 0, got {meta}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta=float(meta))
        super().__init__(params, defaults)

    def reset_state(self) -> None:
        """Forget moments and step counts (the paper resets Adam at each task boundary)."""
        self.state.clear()

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"] != 0:
                    grad = grad.add(p, alpha=group["weight_decay"])  # L2 into the gradient, before the moments
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = exp_avg_sq.sqrt().add_(group["eps"])
                bc1 = 1 - beta1 ** state["step"]
                bc2 = 1 - beta2 ** state["step"]
                step_size = group["lr"] * math.sqrt(bc2) / bc1
                m = group["meta"]
                if p.dim() >= 2 and m != 0:
                    f_meta = 1 - torch.tanh(m * p.abs()).square()
                    toward_zero = torch.where(p >= 0, exp_avg, -exp_avg) > 0
                    used = torch.where(toward_zero, exp_avg * f_meta, exp_avg)
                else:
                    used = exp_avg
                p.addcdiv_(used, denom, value=-step_size)
        return loss


def param_groups(model: torch.nn.Module, meta) -> list[dict]:
    """One group per hidden-weight tensor (so `meta` may be one value per layer), one for the rest.

    `meta` is a number or a list with one value per weight layer, in model order.
    """
    weights = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]
    metas = list(meta) if isinstance(meta, (list, tuple)) else [meta] * len(weights)
    if len(metas) != len(weights):
        raise ValueError(f"--meta needs 1 or {len(weights)} values (one per layer), got {len(metas)}")
    groups = [{"params": [w], "meta": float(m)} for w, m in zip(weights, metas)]
    if others:
        groups.append({"params": others, "meta": 0.0})
    return groups
