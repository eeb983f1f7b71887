"""On-device continual learning: a stream of single samples, with accuracy curves.

The learner sees one (image, label) at a time and never a task boundary; every
`every` samples the current model is evaluated on each named test set (on a copy,
so evaluation never changes the learner). Two engines run the same stream:
the golden model (metabnn.sim.learn_step) and the C firmware, which is bit-exact
with it (tests/firmware, `metabnn verify --learn`) and about 100x faster.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from metabnn.errors import UsageError
from metabnn.sim.forward import predict
from metabnn.sim.learn import learn_step
from metabnn.sim.model import Model


def evaluate(model: Model, eval_sets: dict, bank: int = 0, adapt: bool = False) -> dict:
    """Accuracy on every named (images, labels) set. With adapt, each set is one stream that starts
    from the model's current normalization state (the device's view)."""
    return {name: float((predict(model.copy(), x, bank=bank, adapt=adapt) == y).mean())
            for name, (x, y) in eval_sets.items()}


def learn_stream(model: Model, images: np.ndarray, labels: np.ndarray, eval_sets: dict, every: int,
                 bank: int = 0, adapt: bool = False, engine: str = "golden", desc: str | None = None,
                 quiet: bool = False):
    """Learn the stream sample by sample. Returns (final model, curve, sign flips per layer).

    curve: list of {"step": n, "<set name>": accuracy, ...}, including step 0.
    engine: "golden" or "c" (see `pick_engine`).
    """
    if engine == "c":
        return _learn_stream_c(model, images, labels, eval_sets, every, bank, adapt, desc, quiet)
    start = model
    curve = [{"step": 0, **evaluate(model, eval_sets, bank, adapt)}]
    for n, (x, y) in enumerate(tqdm(zip(images, labels), total=len(labels), desc=desc, disable=quiet,
                                    leave=False), start=1):
        model, _ = learn_step(model, x, int(y), bank=bank, adapt=adapt)
        if n % every == 0 or n == len(labels):
            curve.append({"step": n, **evaluate(model, eval_sets, bank, adapt)})
    return model, curve, _flips(start, model)


def _flips(a: Model, b: Model) -> list[int]:
    return [int(np.count_nonzero((la.hidden >= 0) != (lb.hidden >= 0))) for la, lb in zip(a.layers, b.layers)]


def _learn_stream_c(model, images, labels, eval_sets, every, bank, adapt, desc, quiet):
    from metabnn.export.mbnn import from_bytes, to_bytes
    from metabnn.sim.backend_c import CBackend

    be = CBackend()

    def acc(image: bytes) -> dict:
        return {k: float((be.predict(image, x, bank=bank, adapt=adapt) == y).mean()) for k, (x, y) in eval_sets.items()}

    blob = to_bytes(model)
    curve = [{"step": 0, **acc(blob)}]
    with be.open(blob, bank=bank, adapt=adapt) as s:
        for n, (x, y) in enumerate(tqdm(zip(images, labels), total=len(labels), desc=desc, disable=quiet,
                                        leave=False), start=1):
            s.learn_step(x, int(y))
            if n % every == 0 or n == len(labels):
                curve.append({"step": n, **acc(s.image())})
        final = from_bytes(s.image())
    return final, curve, _flips(model, final)


def pick_engine(engine: str = "auto") -> tuple[str, str]:
    """("c" | "golden", description). auto: the firmware when it builds here, else the golden model."""
    if engine not in ("auto", "c", "golden"):
        raise UsageError(f"unknown engine {engine!r} (auto, c, golden)")
    if engine != "golden":
        try:
            from metabnn.sim.backend_c import CBackend
            ok, why = CBackend().available()
        except ImportError as e:
            ok, why = False, str(e)
        if ok:
            return "c", "C firmware (bit-exact with metabnn.sim.learn_step)"
        if engine == "c":
            raise UsageError(f"the C firmware is not available: {why}")
    return "golden", "golden model (metabnn.sim.learn_step)"
