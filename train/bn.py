"""BatchNorm protocols across tasks: how a network normalizes at test time.

Training is the same for all of them (one BatchNorm per layer, trained on every
task, as in the paper's code) except `frozen-after-1`, which stops BatchNorm
after the first task. What differs is the test:

  frozen            running statistics and affine parameters as they are now
  adaptive          task-free and deployable: variance, gamma, beta frozen; each
                    layer's per-neuron mean tracks the stream of single samples,
                    mean += (a - mean) * 2^-shift, AFTER normalizing that sample
  batch             statistics of the test batch itself (1000 images of one task)
  task-aware        task j tested with the BN state (bank) saved at the end of task j
  task-aware-batch  the authors' protocol: bank j's gamma/beta with test-batch statistics
  frozen-after-1    BatchNorm frozen after task 1 (a training protocol), tested as frozen
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from .models import MLP, bn_modules

PROTOCOLS = ["adaptive", "frozen", "batch", "task-aware", "task-aware-batch", "frozen-after-1"]
# The protocols that need the task identity (or a batch from one task) at test time.
NEEDS_TASK = {"batch", "task-aware", "task-aware-batch"}
TEST_BATCH = 1000  # the authors' test batch: 1000 images of one task


def bank_state(model) -> list[dict]:
    """A detached copy of every BatchNorm state (affine + running statistics): one bank."""
    return [copy.deepcopy({k: v.detach().clone() for k, v in m.state_dict().items()}) for m in bn_modules(model)]


def load_bank(model, bank: list[dict]) -> None:
    for m, s in zip(bn_modules(model), bank, strict=True):
        m.load_state_dict(s)


def stream_mean(a: torch.Tensor, mean0: torch.Tensor, shift: int, chunk: int = 128) -> torch.Tensor:
    """Mean seen by each sample of the stream a [n, N]: m_0 = mean0, m_{t+1} = m_t + (a_t - m_t) * 2^-shift.

    The recurrence is linear, so a chunk of C samples is one [C, C] matmul with
    the decay matrix (instead of n Python steps); float64 keeps it exact enough
    that it matches the step-by-step scan to ~1e-12.
    """
    alpha = 2.0 ** -shift
    n, dev = a.shape[0], a.device
    i = torch.arange(chunk, device=dev, dtype=torch.float64)
    lag = i[:, None] - i[None, :] - 1  # t-1-s
    decay_in = torch.where(lag >= 0, alpha * (1 - alpha) ** lag.clamp(min=0), torch.zeros((), dtype=torch.float64, device=dev))
    decay_m0 = (1 - alpha) ** i  # weight of the chunk's start mean
    out = torch.empty_like(a)
    m = mean0.to(torch.float64)
    for s in range(0, n, chunk):
        blk = a[s : s + chunk].to(torch.float64)
        c = blk.shape[0]
        means = decay_m0[:c, None] * m[None, :] + decay_in[:c, :c] @ blk
        out[s : s + c] = means.to(a.dtype)
        m = means[-1] + (blk[-1] - means[-1]) * alpha  # the update after the chunk's last sample
    return out


def stream_mean_reference(a: torch.Tensor, mean0: torch.Tensor, shift: int) -> torch.Tensor:
    """Step-by-step scan (what hardware does, in float): the definition stream_mean is tested against."""
    m = mean0.clone().to(torch.float64)
    out = torch.empty_like(a)
    for t in range(a.shape[0]):
        out[t] = m.to(a.dtype)
        m = m + (a[t].to(torch.float64) - m) * 2.0 ** -shift
    return out


@torch.no_grad()
def _adaptive_logits(model: MLP, x: torch.Tensor, shift: int) -> torch.Tensor:
    h = x
    for b in model.blocks:
        a = b.lin(h)
        mean = stream_mean(a, b.bn.running_mean, shift)
        z = (a - mean) / torch.sqrt(b.bn.running_var + b.bn.eps)
        if b.bn.affine:
            z = z * b.bn.weight + b.bn.bias
        h = b.act(z) if b.act is not None else z
    return h


@torch.no_grad()
def _batched(model, x: torch.Tensor, size: int) -> torch.Tensor:
    return torch.cat([model(x[s : s + size]) for s in range(0, x.shape[0], size)])


@torch.no_grad()
def _batch_stats_logits(model, x: torch.Tensor) -> torch.Tensor:
    saved = bank_state(model)
    was_training = model.training
    model.train()  # BN normalizes with the batch's own statistics (running stats restored below)
    try:
        return _batched(model, x, TEST_BATCH)
    finally:
        load_bank(model, saved)
        model.train(was_training)


@torch.no_grad()
def logits(model, x_u8: torch.Tensor, protocol: str, bank: list[dict] | None = None, shift: int = 8) -> torch.Tensor:
    """Logits of uint8 pixels x_u8 [n, 784] under a test-time protocol.

    `bank`: the BN state to test with (task-aware*); None = the model's current one.
    For `adaptive` the rows of x_u8 are the stream, in order.
    """
    x = x_u8.float() / 255
    saved = None
    if bank is not None and protocol.startswith("task-aware"):
        saved = bank_state(model)
        load_bank(model, bank)
    was_training = model.training
    model.eval()
    try:
        if protocol == "adaptive":
            if not isinstance(model, MLP):
                raise ValueError("the adaptive protocol is defined for MLPs only")
            return _adaptive_logits(model, x, shift)
        if protocol in ("batch", "task-aware-batch"):
            return _batch_stats_logits(model, x)
        return _batched(model, x, 4096)
    finally:
        if saved is not None:
            load_bank(model, saved)
        model.train(was_training)


def accuracy(model, x_u8, y, protocol, bank=None, shift=8) -> float:
    pred = logits(model, x_u8, protocol, bank, shift).argmax(1)
    return float((pred == y.to(pred.device)).float().mean())
