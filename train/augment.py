"""--augment-shift K: every training image moved by its own random translation of up to K pixels, zero fill.

A shift (dy, dx) moves the picture dy rows down and dx columns right: out[r, c] = in[r - dy, c - dx], and 0 (the
background of MNIST and Fashion-MNIST) where r - dy or c - dx falls outside the 28x28 image. dy and dx are drawn
uniformly from -K..K, one pair per image per epoch, from a generator seeded by (seed, task, epoch) alone, as the
epoch's order is (experiment._epoch_generator), so a resumed run draws what an uninterrupted one draws. Only
training images are moved; accuracies are measured on the images as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from metabnn.errors import UsageError

SIDE = 28
MAX_SHIFT = SIDE - 1
# keeps the augmentation's seeds apart from the shuffling seeds (those stay below 2^40 for any sane seed)
_SALT = 1 << 40


def check(tasks_spec: str, k: int) -> None:
    """Refuse a shift that means nothing: on permuted pixels neighbours are not neighbours."""
    if k and tasks_spec.split(":")[0] == "pmnist":
        raise UsageError(f"--augment-shift {k}: permuted pixels (--tasks {tasks_spec}) have no geometry to shift; "
                         "use it with mnist, fmnist or stream tasks")
    if k > MAX_SHIFT:
        raise UsageError(f"--augment-shift {k}: must be <= {MAX_SHIFT} (the images are {SIDE}x{SIDE})")


def generator(seed: int, task: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(_SALT + seed * 1_000_003 + task * 10_007 + epoch)


def draw(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """n shifts (dy, dx), int64 [n, 2], each in -k..k."""
    return torch.randint(-k, k + 1, (n, 2), generator=gen)


def shift(x: torch.Tensor, d: torch.Tensor, k: int) -> torch.Tensor:
    """Images x [n, 784] (any dtype) moved by d [n, 2] (|d| <= k), zero fill; a new tensor, x is unchanged."""
    n = x.shape[0]
    padded = F.pad(x.view(n, SIDE, SIDE), (k, k, k, k))  # out[r, c] = padded[r - dy + k, c - dx + k]
    d = d.to(x.device)
    ar = torch.arange(SIDE, device=x.device)
    rows = (ar + k - d[:, :1])[:, :, None]
    cols = (ar + k - d[:, 1:])[:, None, :]
    return padded[torch.arange(n, device=x.device)[:, None, None], rows, cols].reshape(n, SIDE * SIDE)
