"""Learning-rate schedules for `metabnn train --lr-schedule`.

The learning rate of an epoch is a function of the epoch's number within its task (or stream part) and of the
epochs per task only, so a run resumed from a checkpoint takes exactly the rates an uninterrupted run takes. The
schedule restarts at every task, as Adam's moments do under the paper's protocol (--reset-optimizer): each task
is learnt from the full rate down. The rate is held for a whole epoch (no per-step change).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "step")

HELP = ("constant: --lr throughout; cosine: lr * (1 + cos(pi * e / E)) / 2 in epoch e = 0..E-1 of each task's E "
        "epochs (the full rate first, lr * 0.006 in the 20th of 20); step: lr, then lr / 10 from epoch ceil(E/2), "
        "lr / 100 from epoch ceil(3E/4). Restarts at every task (or stream part)")


def lr_at(lr: float, schedule: str, epoch: int, epochs: int) -> float:
    """The learning rate of epoch `epoch` (0-based) of a task trained for `epochs` epochs at base rate `lr`."""
    if not 0 <= epoch < epochs:
        raise ValueError(f"epoch {epoch} is not in 0..{epochs - 1}")
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
    if schedule == "step":
        drops = (2 * epoch >= epochs) + (4 * epoch >= 3 * epochs)  # epoch >= ceil(E/2), epoch >= ceil(3E/4)
        return lr * 0.1**drops
    raise ValueError(f"unknown learning-rate schedule {schedule!r}; choose one of: {', '.join(SCHEDULES)}")
