"""On-device continual learning with the golden model: a stream of single samples, accuracy curves.

The learner sees one (image, label) at a time and never a task boundary; every
`every` samples the current model is evaluated on each named test set (on a copy,
so evaluation never changes the learner).
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from metabnn.sim.forward import predict
from metabnn.sim.learn import learn_step
from metabnn.sim.model import Model


def evaluate(model: Model, eval_sets: dict, bank: int = 0, adapt: bool = False) -> dict:
    """Accuracy on every named (images, labels) set. With adapt, each set is one stream that starts
    from the model's current normalization state (the device's view)."""
    return {name: float((predict(model.copy(), x, bank=bank, adapt=adapt) == y).mean())
            for name, (x, y) in eval_sets.items()}


def learn_stream(model: Model, images: np.ndarray, labels: np.ndarray, eval_sets: dict, every: int,
                 bank: int = 0, adapt: bool = False, desc: str | None = None, quiet: bool = False):
    """Learn the stream sample by sample. Returns (final model, curve, flips per layer).

    curve: list of {"step": n, "<set name>": accuracy, ...}, including step 0.
    """
    curve = [{"step": 0, **evaluate(model, eval_sets, bank, adapt)}]
    flips = np.zeros(len(model.layers), dtype=np.int64)
    for n, (x, y) in enumerate(tqdm(zip(images, labels), total=len(labels), desc=desc, disable=quiet,
                                    leave=False), start=1):
        model, info = learn_step(model, x, int(y), bank=bank, adapt=adapt)
        flips += info.flips
        if n % every == 0 or n == len(labels):
            curve.append({"step": n, **evaluate(model, eval_sets, bank, adapt)})
    return model, curve, flips
