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

from .layers import SignActivation
from .models import MLP, bn_modules
from .optim import compile_or_off

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


def _decay_tables(alpha: float, c: int, k: int, dev) -> tuple[torch.Tensor, ...]:
    """float64 weights of the scan m_{t+1} = beta m_t + alpha a_t (beta = 1 - alpha) over k chunks of c samples."""
    beta = 1.0 - alpha
    f64 = dict(device=dev, dtype=torch.float64)
    i = torch.arange(c, **f64)
    lag = i[:, None] - i[None, :] - 1  # t-1-s within a chunk
    within = torch.where(lag >= 0, alpha * beta ** lag.clamp(min=0), torch.zeros((), **f64))  # [c, c]
    j = torch.arange(k, **f64)
    klag = j[:, None] - j[None, :] - 1
    across = torch.where(klag >= 0, (beta**c) ** klag.clamp(min=0), torch.zeros((), **f64))  # [k, k]
    return within, across, beta**i, (beta**c) ** j


def stream_mean_block(a: torch.Tensor, mean0: torch.Tensor, shift: int, chunk: int = 32):
    """(mean seen by each sample of a [n, N], the mean after the last one), starting from mean0 [N] (float64).

    The recurrence m_{t+1} = m_t + (a_t - m_t) * 2^-shift is linear, so it is
    matmuls instead of n Python steps: within chunks of `chunk` samples (a
    [chunk, chunk] decay matrix, batched over the chunks), then the chunks' start
    means (a [K, K] matrix over the K chunk ends). 2 * chunk flops per value, in
    a's row order (a transposed copy costs more than all of it). Within a chunk
    the sums are in a's dtype: their rounding is relative to one chunk's share of
    the mean (a fraction 1 - (1 - 2^-shift)^chunk of it), so it does not build
    up; the means carried from chunk to chunk are float64. Float64 input: matches
    the step-by-step scan to ~1e-12; float32: to float32 rounding.
    """
    n, width = a.shape
    k = n // chunk + 1  # at least one padded row: the mean after the last sample is row n
    alpha = 2.0**-shift
    within, across, pow_i, pow_k = _decay_tables(alpha, chunk, k, a.device)
    blk = torch.cat([a, a.new_zeros(k * chunk - n, width)]).view(k, chunk, width)
    means = torch.matmul(within.to(a.dtype), blk)  # [K, c, N]: each chunk's own samples, from a zero start
    ends = torch.add(means[:, -1], blk[:, -1], alpha=alpha / (1 - alpha)).mul_(1 - alpha)  # and after it
    starts = torch.addmm(pow_k[:, None] * mean0.to(torch.float64)[None, :], across, ends.to(torch.float64))
    # the mean after the last real sample (= seen by padding row n), kept in float64 for the next block
    kk, i = divmod(n, chunk)
    m_next = means[kk, i].to(torch.float64) + pow_i[i] * starts[kk]
    means.addcmul_(pow_i.to(a.dtype).view(1, chunk, 1), starts.to(a.dtype).view(k, 1, width))
    means = means.view(k * chunk, width)
    return means[:n], m_next


def stream_mean(a: torch.Tensor, mean0: torch.Tensor, shift: int, chunk: int = 32,
                block: int = 4096) -> torch.Tensor:
    """Mean seen by each sample of the stream a [n, N]: m_0 = mean0, m_{t+1} = m_t + (a_t - m_t) * 2^-shift."""
    out = torch.empty_like(a)
    m = mean0.to(torch.float64)
    for s in range(0, a.shape[0], block):
        out[s : s + block], m = stream_mean_block(a[s : s + block], m, shift, chunk)
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
def recalibrate(model, x_u8: torch.Tensor, batch: int) -> None:
    """Precise BatchNorm (Wu & Johnson 2021): every BN layer's running statistics replaced by the plain average,
    over the batches of x_u8 (in order, `batch` rows each, 2+ rows), of the batch statistics that training
    normalizes with, all from the current weights. The running average kept during training (momentum 0.1)
    weighs the last ~10 batches, each seen by slightly different weights: measured on the conv net it moves test
    accuracy by up to a point from one epoch to the next. Training never reads the running statistics (train
    mode uses the batch's own), so this changes what is tested and exported, not what is learnt."""
    mods = bn_modules(model)
    was_training, momenta = model.training, [m.momentum for m in mods]
    model.train()
    try:
        for m in mods:
            m.reset_running_stats()
            m.momentum = None  # torch's cumulative average: factor 1 / (batches seen)
        for s in range(0, x_u8.shape[0], batch):
            if x_u8.shape[0] - s >= 2:  # BatchNorm needs 2+ samples, as in training
                model(_pixels(x_u8[s : s + batch]))
    finally:
        for m, mom in zip(mods, momenta):
            m.momentum = mom
        model.train(was_training)


EVAL_BLOCK = 4096  # rows per evaluation matmul: large enough for GEMM speed, small enough to stay in cache


@torch.no_grad()
def _adaptive_logits(model: MLP, x_u8: torch.Tensor, shift: int) -> torch.Tensor:
    """The stream in blocks of EVAL_BLOCK rows through every layer, each layer's mean carried from block to
    block: the same means as one pass over the whole stream, with every intermediate in cache."""
    means = [b.bn.running_mean.to(torch.float64) for b in model.blocks]
    inv_std = [torch.sqrt(b.bn.running_var + b.bn.eps) for b in model.blocks]
    out = []
    for s in range(0, x_u8.shape[0], EVAL_BLOCK):
        h = _pixels(x_u8[s : s + EVAL_BLOCK])
        for i, b in enumerate(model.blocks):
            a = b.lin(h)
            mean, means[i] = stream_mean_block(a, means[i], shift)
            sign = isinstance(b.act, SignActivation)
            # on a CPU only: there its bits are checked (tests/train/test_step_eval.py), as the fused step's are
            if (sign or b.act is None) and a.device.type == "cpu" and _normalize_compiled():
                try:
                    h = _compiled_norm(a, mean, inv_std[i], b.bn.weight, b.bn.bias, sign)
                    continue
                except Exception:  # compiling failed (no C++ compiler): the same operations one by one
                    _normalize_off()
            z = (a - mean).div_(inv_std[i])
            if b.bn.affine:
                z = z.mul_(b.bn.weight).add_(b.bn.bias)
            h = b.act(z) if b.act is not None else z
        out.append(h)
    return torch.cat(out)


def _normalize(a, mean, inv_std, gamma, beta, sign: bool):
    """_adaptive_logits' normalization and sign in one loop (compiled): the same float operations in the same
    order as the eager passes (inductor keeps the division and contracts nothing), so the same bits, 1 pass
    over the layer's outputs instead of 7 (measured: 0.15 s less per evaluation of 60,000 images, 512-512)."""
    z = (a - mean) / inv_std
    if gamma is not None:
        z = z * gamma + beta
    return torch.where(z >= 0, 1.0, -1.0) if sign else z  # layers.sign_pm1: sign(0) = +1


_compiled_norm = None  # torch.compile(_normalize); False where compiling is off or has failed


def _normalize_compiled():
    global _compiled_norm
    if _compiled_norm is None:
        _compiled_norm = compile_or_off(_normalize)
    return _compiled_norm


def _normalize_off() -> None:
    global _compiled_norm
    _compiled_norm = False


def _pixels(x_u8: torch.Tensor) -> torch.Tensor:
    # the bits of x.float() / 255, and in that form: uint8.div(255) converts element by element, unvectorized
    # (measured, 4096 x 784 pixels, 1 thread: 5.8 ms, against 1.3 ms for a float copy and an in-place division)
    return x_u8.to(torch.float32, copy=True).div_(255)  # a copy even of a float input: never in place


@torch.no_grad()
def _batched(model, x_u8: torch.Tensor, size: int) -> torch.Tensor:
    return torch.cat([model(_pixels(x_u8[s : s + size])) for s in range(0, x_u8.shape[0], size)])


@torch.no_grad()
def _batch_stats_logits(model, x_u8: torch.Tensor) -> torch.Tensor:
    saved = bank_state(model)
    was_training = model.training
    model.train()  # BN normalizes with the batch's own statistics (running stats restored below)
    try:
        return _batched(model, x_u8, TEST_BATCH)
    finally:
        load_bank(model, saved)
        model.train(was_training)


@torch.no_grad()
def logits(model, x_u8: torch.Tensor, protocol: str, bank: list[dict] | None = None, shift: int = 8) -> torch.Tensor:
    """Logits of uint8 pixels x_u8 [n, 784] under a test-time protocol.

    `bank`: the BN state to test with (task-aware*); None = the model's current one.
    For `adaptive` the rows of x_u8 are the stream, in order.
    """
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
            return _adaptive_logits(model, x_u8, shift)
        if protocol in ("batch", "task-aware-batch"):
            return _batch_stats_logits(model, x_u8)
        return _batched(model, x_u8, EVAL_BLOCK)
    finally:
        if saved is not None:
            load_bank(model, saved)
        model.train(was_training)


def accuracy(model, x_u8, y, protocol, bank=None, shift=8) -> float:
    pred = logits(model, x_u8, protocol, bank, shift).argmax(1)
    return float((pred == y.to(pred.device)).float().mean())
