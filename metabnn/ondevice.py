"""On-device continual learning: a stream of single samples, with accuracy curves.

The learner sees one (image, label) at a time and never a task boundary; every
`every` samples the current model is evaluated on each named test set (backends
predict on a copy, so evaluation never changes the learner). Any backend that learns
runs the stream (metabnn.backends): the golden model, or the C firmware, which is
bit-exact with it (tests/firmware, `metabnn verify --learn`) and about 100x faster.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from metabnn import backends
from metabnn.errors import UsageError
from metabnn.sim.model import Model


def evaluate(model: Model, eval_sets: dict, bank: int = 0, adapt: bool = False, engine: str = "golden") -> dict:
    """Accuracy on every named (images, labels) set. With adapt, each set is one stream that starts
    from the model's current normalization state (the device's view)."""
    be = backends.get(engine)
    return {name: float((be.predict(model, x, bank=bank, adapt=adapt) == y).mean())
            for name, (x, y) in eval_sets.items()}


def learn_stream(model: Model, images: np.ndarray, labels: np.ndarray, eval_sets: dict, every: int,
                 bank: int = 0, adapt: bool = False, engine: str = "golden", desc: str | None = None,
                 quiet: bool = False):
    """Learn the stream sample by sample. Returns (final model, curve, sign flips per layer).

    curve: list of {"step": n, "<set name>": accuracy, ...}, including step 0.
    engine: a backend that learns, "golden" or "c" (see `pick_engine`).
    """
    be = backends.get(engine)
    backends.require(be, adapt=adapt)
    curve = [{"step": 0, **evaluate(model, eval_sets, bank, adapt, engine)}]
    final = model
    # progress bars only on a terminal (tqdm's disable=None), never with --quiet
    with tqdm(total=len(labels), desc=desc, disable=True if quiet else None, leave=False) as bar:
        for step, m in be.learn(model, images, labels, bank=bank, adapt=adapt, every=every):
            bar.update(step - bar.n)
            curve.append({"step": step, **evaluate(m, eval_sets, bank, adapt, engine)})
            final = m
    return final, curve, _flips(model, final)


def _flips(a: Model, b: Model) -> list[int]:
    return [int(np.count_nonzero((la.hidden >= 0) != (lb.hidden >= 0))) for la, lb in zip(a.layers, b.layers)]


def pick_engine(engine: str = "auto") -> tuple[str, str]:
    """("c" | "golden", description). auto: the firmware when it builds here, else the golden model."""
    if engine not in ("auto", "c", "golden"):
        raise UsageError(f"unknown engine {engine!r} (auto, c, golden)")
    if engine != "golden":
        ok, why = backends.get("c").available()
        if ok:
            return "c", "C firmware (bit-exact with metabnn.sim.learn_step)"
        if engine == "c":
            raise UsageError(f"the C firmware is not available: {why}")
    return "golden", "golden model (metabnn.sim.learn_step)"
