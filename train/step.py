"""One training step of the BNN MLP as a single function: forward, hand-written backward and MetaAdam, compiled.

Why: at batch 100 the elementwise work around the 8 matrix products of a step
(BatchNorm, sign, the |z| <= 1 window, the loss, the optimizer over every hidden
weight) and the per-op Python and autograd dispatch cost as much as the products
themselves on this CPU. Written as one function without autograd, torch.compile
fuses everything between two products into one C++ loop, the optimizer into one
pass per weight (W, grad, both moments in; W, moments and sign(W) out), and the
batch is gathered from the uint8 training set and scaled to [0, 1] inside the
first kernel, so the whole step is one compiled call.

The arithmetic is the autograd path's (experiment.py's fallback: BinaryLinear,
BatchNorm1d in training mode, SignActivation, F.cross_entropy, MetaAdam.step),
restated; tests/train/test_step.py checks that both give the same weights,
statistics and losses up to float rounding. The state stays where it lives
(model parameters and buffers, MetaAdam's state), updated in place, so
checkpoints, --resume and the autograd path are unchanged. Used where it
applies (FusedStep.applies): the BNN MLP, one process, no EWC penalty,
BatchNorm trained; and only compiled: with METABNN_COMPILE=0, or where compiling
fails, the trainer takes the autograd path.
"""

from __future__ import annotations

import sys

import torch
import torch.nn as nn

from .layers import binary_weight, remember_sign
from .models import MLP
from .optim import MetaAdam, compile_or_off


def _sign(t: torch.Tensor) -> torch.Tensor:
    return (t >= 0).to(t.dtype) * 2 - 1  # sign(0) = +1, as layers.sign_pm1


def _bn_train(a, gamma, beta, eps):
    """BatchNorm1d in training mode: batch mean and biased variance; (z, xhat, 1/std, mean, variance)."""
    mean = a.mean(0)
    c = a - mean
    var = (c * c).mean(0)
    rstd = 1 / torch.sqrt(var + eps)
    xhat = c * rstd
    z = xhat * gamma + beta if gamma is not None else xhat
    return z, xhat, rstd, mean, var


def _bn_backward(g, xhat, rstd, gamma):
    """Gradients of BatchNorm1d (training mode) w.r.t. its input, gamma and beta, from dL/dz."""
    gg = (g * xhat).sum(0) if gamma is not None else None
    gb = g.sum(0) if gamma is not None else None
    gx = g * gamma if gamma is not None else g
    ga = rstd * (gx - gx.mean(0) - xhat * (gx * xhat).mean(0))
    return ga, gg, gb


def _meta_adam(p, g, exp_avg, exp_avg_sq, hp) -> None:
    """MetaAdam's step of one tensor (optim._update; plain Adam where meta = 0, as for every 1-D tensor), with its
    numbers hp = [step_size, beta1, beta2, eps, weight_decay, meta] as a tensor row: a Python float would be one
    more graph input, wrapped into a tensor on every call.

    With e = exp(-2 m |W|) in (0, 1]: tanh(m |W|) = (1 - e) / (1 + e), so f_meta = 1 - tanh^2 = 4 e / (1 + e)^2,
    and the step, step_size * exp_avg * (f_meta where toward zero, else 1) / (sqrt(exp_avg_sq) + eps), takes one
    division instead of optim._update's two. Timed alone it is no faster (the pass is bound by its square root,
    divisions and exp together; docs/TRAINING.md, Speed), but f_meta keeps its relative precision at small m |W|,
    where sigmoid(2 m W) - 1/2 cancels. Toward zero <=> exp_avg has W's sign (at W = 0, f_meta = 1: either
    branch); m = 0: e = 1, f_meta = 1, Adam.
    """
    step_size, beta1, beta2, eps, wd, meta = hp.unbind()
    # = g + wd * p exactly; written as a subtraction so that inductor does not turn the product that made g
    # plus this sum into one addmm (which costs 3 extra passes over W: wd * W, a copy of it, the GEMM's beta)
    g = g - p * -wd
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).add_(g * g * (1 - beta2))
    e = torch.exp(p.abs() * (-2 * meta))
    a2 = (1 + e) * (1 + e)
    num = torch.where(exp_avg * p > 0, 4 * e, a2)  # f_meta's numerator toward zero, else a2 / a2 = 1
    p.sub_(step_size * exp_avg * num / (a2 * (exp_avg_sq.sqrt() + eps)))


def train_step(x_all, y_all, idx, layers, moments, hp):
    """One step on the batch x_all[idx] (uint8 pixels), y_all[idx]; every tensor of the state updated in place.

    layers: per block (W_h, sign(W_h), gamma, beta (both None without affine), running_mean, running_var,
    num_batches_tracked); moments: per block, per parameter (W_h, then gamma and beta) (exp_avg, exp_avg_sq);
    hp [blocks, 3, 8] float32: per block and parameter the optimizer's numbers (_meta_adam), then the BatchNorm
    momentum and eps. Returns (mean loss of the batch, the new sign(W_h) of every block).
    """
    x = x_all[idx].to(torch.float32).div(255)
    y = y_all[idx]
    n, last = x.shape[0], len(layers) - 1
    saved, h = [], x
    for k, (w, wb, gamma, beta, rmean, rvar, nbt) in enumerate(layers):
        momentum, eps = hp[k, 0, 6], hp[k, 0, 7]
        a = h.matmul(wb.t())
        z, xhat, rstd, mean, var = _bn_train(a, gamma, beta, eps)
        # running statistics as nn.BatchNorm1d keeps them: unbiased variance, exponential average
        rmean.lerp_(mean, momentum)
        rvar.lerp_(var * (n / (n - 1)), momentum)
        nbt.add_(1)
        saved.append((h, xhat, rstd, z))
        h = _sign(z) if k < last else z
    # mean cross-entropy and its gradient softmax - onehot, / batch
    lse = torch.logsumexp(h, 1, keepdim=True)
    loss = (lse.squeeze(1) - h.gather(1, y[:, None]).squeeze(1)).mean()
    g = (torch.exp(h - lse) - nn.functional.one_hot(y, h.shape[1]).to(h.dtype)) / n
    signs = [None] * len(layers)
    for k in range(last, -1, -1):
        w, wb, gamma, beta = layers[k][:4]
        h_in, xhat, rstd, z = saved[k]
        if k < last:
            g = g * (z.abs() <= 1).to(g.dtype)  # the sign's straight-through window, |z| <= 1
        ga, gg, gb = _bn_backward(g, xhat, rstd, gamma)
        gw = ga.t().matmul(h_in)  # straight through sign(W_h) to W_h
        if k > 0:
            g = ga.matmul(wb)
        _meta_adam(w, gw, *moments[k][0], hp[k, 0, :6])
        signs[k] = _sign(w)
        if gamma is not None:
            _meta_adam(gamma, gg, *moments[k][1], hp[k, 1, :6])
            _meta_adam(beta, gb, *moments[k][2], hp[k, 2, :6])
    return loss, signs


_compiled = None  # the compiled train_step; False where compiling is off or has failed in this process


def _compiled_step():
    global _compiled
    if _compiled is None:
        _compiled = compile_or_off(train_step)
    return _compiled


class FusedStep:
    """The compiled train_step bound to a model and its MetaAdam; call it with (x_all, y_all, idx) -> loss."""

    def __init__(self, model: MLP, opt: MetaAdam):
        self.model, self.opt = model, opt
        self.blocks = list(model.blocks)
        self.momentum = self.blocks[0].bn.momentum

    @staticmethod
    def applies(model: nn.Module, opt: MetaAdam) -> bool:
        """The BNN MLP with every BatchNorm1d trained with running statistics, each parameter in one group."""
        if not isinstance(model, MLP) or model.kind != "bnn" or not model.training or not _compiled_step():
            return False
        bns = [b.bn for b in model.blocks]
        if any(not isinstance(m, nn.BatchNorm1d) or not m.training or not m.track_running_stats
               or m.momentum is None or m.momentum != bns[0].momentum for m in bns):
            return False
        if any(not p.requires_grad or p.dtype != torch.float32 for p in model.parameters()):
            return False
        grouped = [p for g in opt.param_groups for p in g["params"]]
        return len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))

    def inputs(self) -> tuple[list, list, torch.Tensor]:
        """The step's arguments from the live state, each parameter's step count advanced by one."""
        layers, moments, hp = [], [], []
        for b in self.blocks:
            w, bn = b.lin.weight, b.bn
            layers.append((w, binary_weight(w), bn.weight, bn.bias, bn.running_mean, bn.running_var,
                           bn.num_batches_tracked))
            params = (w, bn.weight, bn.bias) if bn.affine else (w,)
            states = [self.opt.fused_state(p) for p in params]
            moments.append([(m, v) for m, v, _ in states])
            rows = [list(h) + [0.0] * (6 - len(h)) if p.dim() < 2 else list(h) for p, (_, _, h) in zip(params, states)]
            rows += [[0.0] * 6] * (3 - len(rows))
            hp.append([r + [self.momentum, bn.eps] for r in rows])
        return layers, moments, torch.tensor(hp, dtype=torch.float32)

    @torch.no_grad()
    def __call__(self, x_all: torch.Tensor, y_all: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        layers, moments, hp = self.inputs()
        try:
            loss, signs = _compiled_step()(x_all, y_all, idx, layers, moments, hp)
        except Exception as e:  # compiling failed before the step ran: nothing was updated yet
            self.opt.undo_fused_count([p for b in self.blocks for p in b.parameters()])
            _compile_failed(e)
            raise FusedStepUnavailable from e
        for b, s in zip(self.blocks, signs):
            remember_sign(b.lin.weight, s)
        return loss


class FusedStepUnavailable(RuntimeError):
    """Compiling the fused step failed; the caller takes the autograd path (nothing was changed)."""


def _compile_failed(e: Exception) -> None:
    global _compiled
    _compiled = False
    print(f"note: the training step runs without torch.compile ({type(e).__name__}: "
          f"{str(e).splitlines()[0][:120] if str(e) else ''}); about 2x slower on a CPU", file=sys.stderr)
