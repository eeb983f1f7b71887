"""Co-simulation: the same images (and learning steps) through every backend, compared with the golden model.

Each backend is an object with `name`, `integer` (True when it must agree bit
for bit), `available() -> (ok, reason)` and `predict(images) -> labels`;
integer backends that can learn also have `learn(images, labels) -> states`.
Backends load lazily, so a missing tool (onnxruntime, a C compiler, Verilator)
is reported as "not available", never as a failure.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim.forward import predict as golden_predict
from metabnn.sim.learn import learn_step
from metabnn.sim.model import Model

BACKENDS = ("golden", "onnx", "c", "rtl", "torch")


@dataclass
class Row:
    backend: str
    status: str  # "ok", "MISMATCH", "not available: ..."
    equal: int = 0
    total: int = 0
    correct: int = 0
    seconds: float = 0.0
    integer: bool = True
    learn: str = ""  # summary of the learning comparison
    first_mismatch: list = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.integer and self.status == "MISMATCH"


class Golden:
    name, integer = "golden", True

    def __init__(self, model: Model, bank: int, adapt: bool):
        self.model, self.bank, self.adapt = model, bank, adapt

    def available(self):
        return True, ""

    def predict(self, images):
        return golden_predict(self.model.copy(), images, bank=self.bank, adapt=self.adapt)

    def learn(self, images, labels):
        m, states = self.model.copy(), []
        for x, y in zip(images, labels):
            m, _ = learn_step(m, x, int(y), bank=self.bank, adapt=self.adapt)
            states.append(state_of(m))
        return states


def state_of(model: Model) -> list:
    """What on-device learning changes: per layer (hidden, signs, M)."""
    return [(lay.hidden.copy(), lay.signs.copy(), lay.M.copy()) for lay in model.layers]


def make_backend(name: str, model: Model, bank: int, adapt: bool, checkpoint: str | None):
    """The backend object, or a string saying why it is not available."""
    if name == "golden":
        return Golden(model, bank, adapt)
    try:
        if name == "onnx":
            from metabnn.sim.backend_onnx import OnnxBackend
            if adapt:
                return "frozen normalization only (run without --adapt)"
            return _Wrapped("onnx", True, OnnxBackend(), lambda b, x: b.predict(model, x, bank=bank))
        if name == "c":
            from metabnn.sim.backend_c import CBackend
            blob = to_bytes(model)
            be = CBackend()
            # the firmware hands back its whole sealed .mbnn image after every step: decode it
            return _Wrapped("c", True, be, lambda b, x: b.predict(blob, x, bank=bank, adapt=adapt),
                            lambda x, y: [state_of(from_bytes(im))
                                          for im in be.learn(blob, x, y, bank=bank, adapt=adapt)])
        if name == "rtl":
            from metabnn.sim.backend_rtl import RTLBackend, RTLLearner
            if adapt:
                return "frozen normalization only (run without --adapt)"
            # inference on the engine; learning on the learning top (engines + update units), whose
            # memories are read back after every step
            learner = RTLLearner()
            return _Wrapped("rtl", True, RTLBackend(), lambda b, x: b.predict(model, x, bank=bank),
                            lambda x, y: learner.states(model, x, y, bank=bank))
        if name == "torch":
            if checkpoint is None:
                return "needs --checkpoint model.pt (the float model is not in the .mbnn file)"
            return TorchBackend(checkpoint, bank)
    except ImportError as e:
        return f"{e.name or e} is not installed"
    raise ValueError(name)


class _Wrapped:
    def __init__(self, name, integer, backend, predict, learn=None):
        self.name, self.integer, self.backend = name, integer, backend
        self._predict, self._learn = predict, learn

    def available(self):
        return self.backend.available()

    def predict(self, images):
        return np.asarray(self._predict(self.backend, images))

    @property
    def learn(self):
        return self._learn


class TorchBackend:
    """The float PyTorch model in eval mode: expected to differ only at thresholds (FORMAT.md 3.2)."""

    name, integer = "torch", False

    def __init__(self, checkpoint: str, bank: int):
        self.checkpoint, self.bank = checkpoint, bank

    def available(self):
        return True, ""

    def predict(self, images):
        import torch

        from metabnn.train.checkpoint import load_model
        net = load_model(self.checkpoint, bank=self.bank)
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 255.0
            return net(x).argmax(1).numpy()


def compare_states(a: list, b: list) -> str | None:
    """None if equal, else where they first differ."""
    for l, ((ha, sa, ma), (hb, sb, mb)) in enumerate(zip(a, b)):
        for what, x, y in (("hidden weights", ha, hb), ("sign bits", sa, sb), ("M", ma, mb)):
            x, y = np.asarray(x), np.asarray(y)
            if x.shape != y.shape or not np.array_equal(x.astype(np.int64), y.astype(np.int64)):
                return f"layer {l} {what}"
    return None


def run_verify(model: Model, images, labels, backends, bank=0, adapt=False, checkpoint=None,
               learn_images=None, learn_labels=None, progress=None, limits: dict | None = None) -> list[Row]:
    rows = []
    gold = Golden(model, bank, adapt)
    t0 = time.perf_counter()
    ref = gold.predict(images)
    t_gold = time.perf_counter() - t0
    gold_states = gold.learn(learn_images, learn_labels) if learn_images is not None else None
    for name in backends:
        be = make_backend(name, model, bank, adapt, checkpoint)
        if isinstance(be, str):
            rows.append(Row(name, f"not available: {be}", integer=name != "torch"))
            continue
        ok, why = be.available()
        if not ok:
            rows.append(Row(name, f"not available: {why}", integer=be.integer))
            continue
        if progress:
            progress(name)
        # a slow backend (cycle-level RTL simulation) may take the first n images only
        n = min(len(ref), (limits or {}).get(name) or len(ref))
        if name == "golden":
            pred, secs = ref, t_gold
        else:
            t0 = time.perf_counter()
            pred = np.asarray(be.predict(images[:n]))
            secs = time.perf_counter() - t0
        eq = pred == ref[:n]
        row = Row(name, "ok" if eq.all() else "MISMATCH", int(eq.sum()), n,
                  int((pred == labels[:n]).sum()), secs, be.integer,
                  first_mismatch=[int(i) for i in np.flatnonzero(~eq)[:5]])
        if not be.integer and not eq.all():
            row.status = "differs (float)"
        if gold_states is not None and be.integer:
            learn = getattr(be, "learn", None)
            if name == "golden":
                row.learn = f"{len(gold_states)} steps (reference)"
            elif learn is None:
                row.learn = "(inference only)"
            else:
                states = learn(learn_images, learn_labels)
                bad = next(((i, w) for i, (s, g) in enumerate(zip(states, gold_states))
                            if (w := compare_states(s, g))), None)
                if bad is None and len(states) == len(gold_states):
                    row.learn = f"{len(states)} steps equal"
                else:
                    row.status = "MISMATCH"
                    row.learn = (f"step {bad[0] + 1}: {bad[1]} differ" if bad
                                 else f"{len(states)} of {len(gold_states)} steps")
        rows.append(row)
    return rows


def format_table(rows: list[Row]) -> str:
    out = [f"{'backend':<8} {'status':<10} {'equal to golden':>20} {'accuracy':>9} {'ms/image':>9}  learning"]
    for r in rows:
        if r.total == 0:
            out.append(f"{r.backend:<8} {r.status}")
            continue
        eq = f"{r.equal}/{r.total} ({100 * r.equal / r.total:.2f}%)"
        out.append(f"{r.backend:<8} {r.status:<10} {eq:>20} {100 * r.correct / r.total:>8.2f}% "
                   f"{1000 * r.seconds / r.total:>9.4f}  {r.learn}")
    return "\n".join(out)
