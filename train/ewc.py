"""Elastic weight consolidation (Kirkpatrick et al. 2017), the task-aware baseline.

After each task: the diagonal empirical Fisher of every weight tensor (dim >= 2),
from per-sample gradients of the log-likelihood of the true label on `n` training
samples, with BatchNorm frozen (a single sample has no batch statistics).
Penalty while learning later tasks: lambda/2 * sum_tasks sum_i F_i (w_i - w*_i)^2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weights(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.dim() >= 2]


def fisher(model, x_u8: torch.Tensor, y: torch.Tensor, n: int, gen: torch.Generator) -> dict:
    """{'fisher': [...], 'anchor': [...]} for the weights of `model` on n random samples of (x, y)."""
    ws = weights(model)
    acc = [torch.zeros_like(w) for w in ws]
    idx = torch.randperm(len(y), generator=gen)[:n].to(x_u8.device)
    was_training = model.training
    model.eval()
    for i in idx:
        out = model(x_u8[i : i + 1].float() / 255)
        loss = F.cross_entropy(out, y[i : i + 1])
        grads = torch.autograd.grad(loss, ws)
        for a, g in zip(acc, grads):
            a.add_(g.square())
    model.train(was_training)
    return {"fisher": [a / len(idx) for a in acc], "anchor": [w.detach().clone() for w in ws]}


def penalty(model, memories: list[dict], lam: float) -> torch.Tensor | float:
    if not memories or lam == 0:
        return 0.0
    ws = weights(model)
    total = 0.0
    for mem in memories:
        for w, f, a in zip(ws, mem["fisher"], mem["anchor"]):
            total = total + (f * (w - a).square()).sum()
    return lam / 2 * total
