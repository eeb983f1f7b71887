"""The plain, one-op-at-a-time MetaAdam step: the definition the fused step in train/optim.py is tested against.

This is the step train/optim.py had before it was fused (kept verbatim in its
arithmetic): readable, slow (about 20 passes over every tensor per step).
"""

from __future__ import annotations

import math

import torch

from metabnn.train.optim import MetaAdam


class ReferenceMetaAdam(MetaAdam):
    @torch.no_grad()
    def step(self, closure=None):
        assert closure is None, "the reference takes its gradients from .grad"
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
