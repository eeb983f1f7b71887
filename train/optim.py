"""MetaAdam: Adam with the paper's metaplastic attenuation (Laborieux et al. 2021, Eq. 2).

For hidden weights (dim >= 2) an update that would move W_h toward zero, i.e.
sign(W_h) * exp_avg > 0 (the step is -lr * exp_avg / denom), has its first
moment multiplied by f_meta = 1 - tanh^2(m * |W_h|): the larger |W_h| has grown,
the harder it is to flip the binary weight. The stored moment is unchanged, so
this is exactly the authors' Adam_meta. 1-D tensors (BatchNorm) take plain Adam.

The step is written for speed, because on a CPU it costs as much as the matrix
products of a small MLP. A hidden-weight tensor is updated by one torch.compile'd
kernel (a single pass over W, grad and both moments; compiled once per process,
about 15 s here, then cached by torch on disk), else, where compiling is off
(METABNN_COMPILE=0) or fails (no C++ compiler), by the same arithmetic as 11
in-place float passes into per-tensor scratch buffers: torch.where, bool masks
and tanh are each 5-25x slower than a float multiply on this CPU (measured).
Measured per step of a 512-512 MLP, 1 thread: one-op-at-a-time 25 ms, eager
passes 4.1 ms, compiled 1.6 ms. 1-D tensors go through torch._foreach ops (one
dispatch for all of them). The one-op-at-a-time step is
tests/train/reference_optim.py; all agree to float rounding (tests/train/test_optim.py).
"""

from __future__ import annotations

import math
import os
import sys
from numbers import Real

import torch

from metabnn.errors import UsageError

from .layers import remember_sign


def _update(p, g, exp_avg, exp_avg_sq, step_size: float, beta1: float, beta2: float, eps: float, wd: float,
            meta: float) -> None:
    """One MetaAdam step of a hidden-weight tensor, written as whole-tensor math for torch.compile to fuse.

    d = sigmoid(2 m W) - 1/2 = tanh(m W) / 2 has the sign of W, and 4 d^2 = tanh^2(m |W|) = 1 - f_meta.
    Toward zero <=> exp_avg has W's sign <=> exp_avg * d > 0 (at W = 0, f_meta = 1: either branch), so
    used = exp_avg * f_meta there and exp_avg elsewhere = exp_avg - 4 d relu(exp_avg * d). m = 0: d = 0, Adam.
    """
    g = g + wd * p  # L2 into the gradient, before the moments
    exp_avg.lerp_(g, 1 - beta1)  # = beta1 * exp_avg + (1 - beta1) * g
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    d = torch.sigmoid(p * (2 * meta)) - 0.5
    used = exp_avg - 4 * d * torch.clamp(exp_avg * d, min=0)
    p.sub_(step_size * used / (exp_avg_sq.sqrt() + eps))


def _update_all(ps, gs, exp_avgs, exp_avg_sqs, hps) -> list:
    """_update on every hidden weight of the step (hps: per tensor (step_size, beta1, beta2, eps, wd, meta)), in
    one compiled call (dynamo's per-call overhead, ~0.1 ms here, is paid once per step, not once per tensor);
    returns each new sign(W), computed in the same pass, for the binary layers' next forward."""
    signs = []
    for p, g, m, v, hp in zip(ps, gs, exp_avgs, exp_avg_sqs, hps):
        _update(p, g, m, v, *hp)
        signs.append((p >= 0).to(p.dtype) * 2 - 1)
    return signs


_compiled = None  # the compiled _update_all; False once compiling is off or has failed in this process


def min_chunk_size() -> int | None:
    """The smallest loop, in elements a thread, that inductor splits over threads: TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE
    (train/__init__.py sets its default, 65536, before torch loads; None where a user has unset it: inductor's
    own 512). Checked here because torch reads it as soon as anything imports its compiler (creating a
    torch.optim optimizer does) and fails on a bad value with a bare ValueError; `metabnn train` calls this
    first."""
    chunk = os.environ.get("TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE", "").strip()
    if chunk and not chunk.isdigit():
        raise UsageError(f"TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE={chunk!r}: not a whole number of elements")
    return int(chunk) if chunk else None


def compile_or_off(fn):
    """torch.compile(fn) with dynamic shapes (one kernel set whatever the layer sizes and the batch; floats are
    inputs, so a new step size never recompiles), or False where METABNN_COMPILE=0 or torch has no compile."""
    if os.environ.get("METABNN_COMPILE", "1") == "0" or not hasattr(torch, "compile"):
        return False
    chunk = min_chunk_size()
    # one compile per distinct model layout (number of weight tensors, dtype); a process that trains
    # many models (a test session) would otherwise hit dynamo's default limit of 8 and fall back
    from torch import _dynamo

    _dynamo.config.recompile_limit = max(_dynamo.config.recompile_limit, 64)
    # size_asserts off: the generated wrapper re-checks every input's sizes and strides (47 calls a training
    # step) that dynamo's guards have checked already before choosing the compiled code
    options = {"size_asserts": False}
    if chunk is not None:  # passed to the compile too: torch's inductor may have read its environment first
        options["cpp.min_chunk_size"] = chunk
    return torch.compile(fn, dynamic=True, fullgraph=True, options=options)


def _compiled_update():
    global _compiled
    if _compiled is None:
        _compiled = compile_or_off(_update_all)
    return _compiled


def _compile_failed(e: Exception) -> None:
    global _compiled
    _compiled = False
    print(f"note: MetaAdam runs without torch.compile ({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
          "about 2.5x slower per step on a CPU", file=sys.stderr)


class MetaAdam(torch.optim.Optimizer):
    def __init__(self, params, lr=0.005, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, meta=0.0):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        if not isinstance(meta, Real) or meta < 0:
            raise ValueError(f"meta must be a number >= 0, got {meta}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, meta=float(meta))
        super().__init__(params, defaults)
        # scratch buffers per tensor, reused every step; not optimizer state (never saved)
        self._scratch: dict[torch.Tensor, list[torch.Tensor]] = {}

    def reset_state(self) -> None:
        """Forget moments and step counts (the paper resets Adam at each task boundary)."""
        self.state.clear()

    def _buffers(self, p: torch.Tensor, n: int) -> list[torch.Tensor]:
        bufs = self._scratch.get(p)
        if bufs is None or len(bufs) < n or bufs[0].shape != p.shape or bufs[0].dtype != p.dtype:
            bufs = [torch.empty_like(p, memory_format=torch.contiguous_format) for _ in range(n)]
            self._scratch[p] = bufs
        return bufs

    def _moments(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """exp_avg, exp_avg_sq and the step's bias correction sqrt(1 - b2^t) / (1 - b1^t), t counted up."""
        state = self.state[p]
        if len(state) == 0:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["step"] += 1
        return state["exp_avg"], state["exp_avg_sq"], state["step"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        fused = _compiled_update()
        if fused:  # every hidden weight in one compiled call
            work = [(p, g) for g in self.param_groups for p in g["params"] if p.grad is not None and p.dim() >= 2]
            fused = self._fused_step(work) if work else True
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not fused:
                for p in params:
                    if p.dim() >= 2 and group["meta"] != 0:
                        self._eager_meta_step(p, group)
            plain = [p for p in params if p.dim() < 2 or (not fused and group["meta"] == 0)]
            if plain:
                self._plain_steps(plain, group)
        return loss

    def fused_state(self, p: torch.Tensor) -> tuple:
        """(exp_avg, exp_avg_sq, (step_size, beta1, beta2, eps, weight_decay[, meta for a hidden weight])) of p,
        for a step taken outside step() (train/step.py); p's step count is advanced as step() would."""
        group = self._group_of(p)
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq, t = self._moments(p)
        hp = (group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t), beta1, beta2, group["eps"],
              group["weight_decay"])
        return exp_avg, exp_avg_sq, hp + (group["meta"],) if p.dim() >= 2 else hp

    def undo_fused_count(self, params: list[torch.Tensor]) -> None:
        """Take back the step counts fused_state advanced, for a step that did not run."""
        for p in params:
            if p in self.state and self.state[p].get("step", 0) > 0:
                self.state[p]["step"] -= 1

    def _group_of(self, p: torch.Tensor) -> dict:
        groups = getattr(self, "_groups_by_param", None)
        if groups is None or p not in groups:
            groups = self._groups_by_param = {q: g for g in self.param_groups for q in g["params"]}
        return groups[p]

    def _fused_step(self, work: list) -> bool:
        """Every tensor in one compiled call; False (nothing changed) if compiling failed."""
        ps, ms, vs, hps = [], [], [], []
        for p, group in work:
            beta1, beta2 = group["betas"]
            exp_avg, exp_avg_sq, t = self._moments(p)
            ps.append(p); ms.append(exp_avg); vs.append(exp_avg_sq)
            hps.append((group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t), beta1, beta2, group["eps"],
                        group["weight_decay"], group["meta"]))
        try:
            signs = _compiled(ps, [p.grad for p in ps], ms, vs, hps)
        except Exception as e:  # compiling failed before the kernel ran: nothing was updated yet
            for p in ps:
                self.state[p]["step"] -= 1  # the eager step counts them again
            _compile_failed(e)
            return False
        for p, s in zip(ps, signs):
            remember_sign(p, s)
        return True

    def _eager_meta_step(self, p: torch.Tensor, group: dict) -> None:
        """_update as in-place passes into scratch buffers (no temporaries)."""
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq, t = self._moments(p)
        step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        a, d, q = self._buffers(p, 3)
        g = p.grad
        if group["weight_decay"] != 0:
            g = torch.add(g, p, alpha=group["weight_decay"], out=a)
        exp_avg.lerp_(g, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = torch.sqrt(exp_avg_sq, out=a).add_(group["eps"])  # g is dead: its buffer takes denom
        torch.mul(p, 2 * group["meta"], out=d)
        torch.sigmoid(d, out=d).sub_(0.5)
        torch.mul(exp_avg, d, out=q).clamp_(min=0)
        used = torch.addcmul(exp_avg, d, q, value=-4, out=q)
        p.addcdiv_(used, denom, value=-step_size)

    def _plain_steps(self, params: list[torch.Tensor], group: dict) -> None:
        """Plain Adam on a list of tensors at once (BatchNorm's 1-D tensors, and weights with m = 0)."""
        beta1, beta2 = group["betas"]
        moments = [self._moments(p) for p in params]
        exp_avgs = [m[0] for m in moments]
        exp_avg_sqs = [m[1] for m in moments]
        steps = [-group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t) for _, _, t in moments]
        grads = [p.grad for p in params]
        if group["weight_decay"] != 0:
            grads = torch._foreach_add(grads, params, alpha=group["weight_decay"])
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)
        denoms = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denoms, group["eps"])
        torch._foreach_addcdiv_(params, exp_avgs, denoms, steps)


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
