"""Data-parallel training on torch.distributed: `torchrun --nproc-per-node N -m metabnn train ...`.

What each of the N processes (ranks) does, so that N ranks train the same
network as one process (same weights up to the order of float sums):
- the same seed: the same initial weights (also broadcast from rank 0), the
  same permutations and the same shuffle, so every rank sees the same global
  batches and takes its contiguous part of each (batch / N rows);
- the loss of a part is its summed cross-entropy / the global batch size, and
  the gradients are summed over ranks (one all-reduce of all of them per step):
  exactly the gradient of the global batch's mean loss;
- BatchNorm in training normalizes with the statistics of the whole global
  batch (synchronized: two small all-reduces forward, one backward, per layer),
  as one process would, and so keeps the same running statistics on every
  rank. (Per-rank statistics would make the result depend on N.);
- every rank takes the same optimizer step on the same gradient;
- only rank 0 evaluates, prints, and writes checkpoints and results; on
  --resume rank 0 reads the checkpoint and sends it to the others (no shared
  file system needed).
Backend: nccl on CUDA (one GPU per rank, cuda:LOCAL_RANK), gloo on CPU.
"""

from __future__ import annotations

import atexit
import os
import types
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from metabnn.errors import UsageError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.size > 1


SINGLE = World()


def launched() -> bool:
    """True when started by torchrun (or any launcher setting WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def env_rank() -> int:
    """This process's rank as the launcher set it (0 without one), before the group is joined."""
    try:
        return int(os.environ.get("RANK", "0")) if launched() else 0
    except ValueError:
        return 0


def init(device: torch.device) -> World:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); one process: SINGLE."""
    if not launched():
        return SINGLE
    try:
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as e:
        raise UsageError(f"torch.distributed: the launcher's environment is incomplete ({e}); start with torchrun") from None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        try:
            dist.init_process_group(backend, rank=rank, world_size=size)
        except (RuntimeError, ValueError) as e:
            raise UsageError(f"torch.distributed ({backend}): could not join the group: {str(e).splitlines()[0]}") from None
        atexit.register(_leave)
    return World(rank, size, local)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, world: World) -> torch.device:
    """One GPU per rank on CUDA (cuda:LOCAL_RANK, unless an index was given); CPU ranks share the CPU."""
    if device.type == "cuda" and world.parallel and device.index is None:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def part(n: int, world: World) -> slice:
    """This rank's contiguous rows of a global batch of n (parts differ by at most one row, as tensor_split)."""
    q, r = divmod(n, world.size)
    start = world.rank * q + min(world.rank, r)
    return slice(start, start + q + (1 if world.rank < r else 0))


def broadcast_model(model: torch.nn.Module, world: World) -> None:
    """Every parameter and buffer as rank 0 has it (the same seed already gives the same init; this makes sure)."""
    if world.parallel:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, 0)


def broadcast_object(obj, world: World):
    """rank 0's object on every rank (pickled by torch.distributed; between our own processes only)."""
    if not world.parallel:
        return obj
    box = [obj if world.main else None]
    dist.broadcast_object_list(box, 0)
    return box[0]


def all_reduce_grads(params, world: World) -> None:
    """Sum every gradient over the ranks, in one all-reduce of one flat buffer."""
    if not world.parallel:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def sum_over_ranks(x: torch.Tensor, world: World) -> torch.Tensor:
    if world.parallel:
        x = x.clone()
        dist.all_reduce(x)
    return x


# ---- BatchNorm with the global batch's statistics ------------------------------------------------------------

class _GlobalBatchNorm(torch.autograd.Function):
    """BatchNorm's training forward/backward over the rows of every rank (reduced over all dims but 1)."""

    @staticmethod
    def forward(ctx, x, weight, bias, bn):
        dims = [d for d in range(x.dim()) if d != 1]
        shape = [1, -1] + [1] * (x.dim() - 2)
        # the channel sums and this rank's count of values per channel, in one all-reduce
        sums = torch.cat([x.sum(dims), x.new_tensor([x.numel() // x.shape[1]])])
        dist.all_reduce(sums)
        total = sums[-1]
        mean = sums[:-1] / total
        centered = x - mean.view(shape)
        var = centered.square().sum(dims)  # two passes, as one process's BatchNorm
        dist.all_reduce(var)
        var /= total
        invstd = torch.rsqrt(var + bn.eps)
        if bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked += 1
                mom = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                bn.running_mean.mul_(1 - mom).add_(mean, alpha=mom)
                bn.running_var.mul_(1 - mom).add_(var * (total / (total - 1).clamp(min=1)), alpha=mom)
        xhat = centered * invstd.view(shape)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.dims, ctx.shape, ctx.total, ctx.affine = dims, shape, total, weight is not None
        return xhat * weight.view(shape) + bias.view(shape) if weight is not None else xhat

    @staticmethod
    def backward(ctx, g):
        xhat, invstd, weight = ctx.saved_tensors
        dims, shape = ctx.dims, ctx.shape
        sums = torch.stack([g.sum(dims), (g * xhat).sum(dims)])  # this rank's: the parameters' gradients
        grad_w, grad_b = (sums[1].clone(), sums[0].clone()) if ctx.affine else (None, None)
        dist.all_reduce(sums)  # the global batch's, for the input's gradient
        scale = invstd * (weight if ctx.affine else 1)
        gx = (g - sums[0].view(shape) / ctx.total - xhat * (sums[1] / ctx.total).view(shape)) * scale.view(shape)
        return gx, grad_w, grad_b, None


def _global_bn_forward(self, x):
    if self.training and torch.is_grad_enabled():
        return _GlobalBatchNorm.apply(x, self.weight, self.bias, self)
    return type(self).forward(self, x)  # evaluation (rank 0 alone) and frozen BatchNorm: the module's own


def sync_batchnorm(bn_modules, world: World) -> None:
    """Make each BatchNorm of a training step normalize over the global batch (the class and state stay)."""
    if world.parallel:
        for m in bn_modules:
            m.forward = types.MethodType(_global_bn_forward, m)


def part_loss(logits: torch.Tensor, y: torch.Tensor, global_n: int) -> torch.Tensor:
    """This rank's share of the global batch's mean cross-entropy (the shares sum to it)."""
    return F.cross_entropy(logits, y, reduction="sum") / global_n
