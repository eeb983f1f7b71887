"""Co-simulation: the same images (and learning steps) through every backend, compared with the golden model.

Backends come from the registry (metabnn.backends). Every backend asked for must run: one that cannot is a
BackendUnavailable error before anything runs (verify never passes with a requested backend left out).
Learning states are compared step by step as they arrive, so a long run never holds every step's weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from metabnn import backends
from metabnn.sim.model import Model


@dataclass
class Row:
    backend: str
    status: str  # "ok", "MISMATCH", "differs (float)"
    equal: int = 0
    total: int = 0
    correct: int = 0
    seconds: float = 0.0
    integer: bool = True
    learn: str = ""  # summary of the learning comparison
    first_mismatch: list = field(default_factory=list)
    detail: str = ""  # where an integer backend first differs

    @property
    def failed(self) -> bool:
        return self.integer and self.status == "MISMATCH"


def state_of(model: Model) -> list:
    """What on-device learning changes: per layer (hidden, signs, M)."""
    return [(lay.hidden, lay.signs, lay.M) for lay in model.layers]


def compare_states(a: list, b: list) -> str | None:
    """None if equal, else where they first differ: the layer, what, and the first neuron (row) and index."""
    axes = {"hidden weights": ("neuron", "synapse"), "sign bits": ("neuron", "word"), "M": ("bank", "neuron")}
    for l, ((ha, sa, ma), (hb, sb, mb)) in enumerate(zip(a, b)):
        for what, x, y in (("hidden weights", ha, hb), ("sign bits", sa, sb), ("M", ma, mb)):
            x, y = np.asarray(x).astype(np.int64), np.asarray(y).astype(np.int64)
            if x.shape != y.shape:
                return f"layer {l} {what}: shape {y.shape} instead of {x.shape}"
            if not np.array_equal(x, y):
                r, c = np.argwhere(x != y)[0]
                return (f"layer {l} {what} differ first at {axes[what][0]} {r}, {axes[what][1]} {c} "
                        f"(golden {x[r, c]}, backend {y[r, c]})")
    return None


def compare_sr_steps(golden: Model, other: Model) -> str | None:
    """None if every layer's stochastic-rounding step counter (FORMAT.md 4.4, saved state) agrees."""
    for l, (a, b) in enumerate(zip(golden.layers, other.layers)):
        if a.sr_step != b.sr_step:
            return f"layer {l} sr_step: golden {a.sr_step}, backend {b.sr_step}"
    return None


def frozen_layers(backend, model: Model) -> tuple:
    """The layers `backend` leaves frozen when it learns `model`: a conv net's conv layers on a backend whose
    `conv_learn` is "dense" (the RTL: FORMAT.md 4.5 "Frozen layers"), else none."""
    from metabnn.sim.learn import conv_layers

    return conv_layers(model) if model.has_conv and getattr(backend, "conv_learn", True) == "dense" else ()


def compare_learning(backend, model: Model, images, labels, bank: int, adapt: bool) -> str | None:
    """None when `backend` ends every learning step in the golden model's state, else what differed first; the
    golden steps freeze the layers the backend freezes (frozen_layers)."""
    gold = backends.get("golden").learn(model, images, labels, bank=bank, adapt=adapt,
                                        frozen=frozen_layers(backend, model))
    seen = 0
    for (step, g), (_, b) in zip(gold, backend.learn(model, images, labels, bank=bank, adapt=adapt)):
        seen = step
        where = compare_states(state_of(g), state_of(b)) or compare_sr_steps(g, b)
        if where:
            return f"step {step}: {where}"
    return None if seen == len(labels) else f"only {seen} of {len(labels)} steps came back"


def open_backends(names, adapt: bool = False, checkpoint: str | None = None, options: dict | None = None,
                  model: Model | None = None) -> list:
    """The requested backends, each checked to run here (on `model`, if given: a conv model needs backends that
    run conv layers). BackendUnavailable names the first that cannot."""
    out = []
    for name in names:
        kw = dict((options or {}).get(name, {}))
        if name == "torch":
            kw["checkpoint"] = checkpoint
        be = backends.get(name, **kw)
        backends.require(be, adapt=adapt and be.integer, model=model)
        out.append(be)
    return out


def run_verify(model: Model, images, labels, backend_list, bank=0, adapt=False, learn_images=None,
               learn_labels=None, progress=None, first: int = 0) -> list[Row]:
    """One Row per backend (objects from open_backends), every backend on every image and learning step.
    `first`: the test-set number of images[0] (verify --offset): mismatches are named by their number in the set."""
    gold = backends.get("golden")
    t0 = time.perf_counter()
    ref = gold.predict(model, images, bank=bank, adapt=adapt)
    t_gold = time.perf_counter() - t0
    rows = []
    for be in backend_list:
        if progress:
            progress(be.name)
        n = len(ref)
        if be.name == "golden":
            pred, secs = ref, t_gold
        else:
            t0 = time.perf_counter()
            # the float model has no stream adaptation: it is compared as it is (FORMAT.md 3.2)
            pred = np.asarray(be.predict(model, images[:n], bank=bank, adapt=adapt and be.integer))
            secs = time.perf_counter() - t0
        eq = pred == ref[:n]
        row = Row(be.name, "ok" if eq.all() else "MISMATCH", int(eq.sum()), n, int((pred == labels[:n]).sum()),
                  secs, be.integer, first_mismatch=[first + int(i) for i in np.flatnonzero(~eq)[:5]])
        if not be.integer and not eq.all():
            row.status = "differs (float)"
        elif not eq.all():
            i = row.first_mismatch[0]
            row.detail = f"image {i}: golden class {ref[i - first]}, {be.name} class {pred[i - first]}"
        if learn_images is not None and be.integer:
            if be.name == "golden":
                row.learn = f"{len(learn_labels)} steps (reference)"
            elif not hasattr(be, "learn"):
                row.learn = "(inference only)"
            elif model.has_conv and not getattr(be, "conv_learn", True):
                row.learn = "(inference only on conv models)"
            else:
                where = compare_learning(be, model, learn_images, learn_labels, bank, adapt)
                row.learn = f"{len(learn_labels)} steps equal" if where is None else where.split(" first at")[0]
                if frozen_layers(be, model):
                    row.learn += " (dense layers; conv layers frozen)"
                if where is not None:
                    row.status = "MISMATCH"
                    row.detail = "; ".join(filter(None, (row.detail, f"learning {where}")))
        rows.append(row)
    return rows


def format_table(rows: list[Row]) -> str:
    out = [f"{'backend':<8} {'status':<10} {'equal to golden':>20} {'accuracy':>9} {'ms/image':>9}  learning"]
    for r in rows:
        if r.total == 0:
            out.append(f"{r.backend:<8} {r.status:<10} {'(no images)':>20}  {r.learn}")
            continue
        eq = f"{r.equal}/{r.total} ({100 * r.equal / r.total:.2f}%)"
        out.append(f"{r.backend:<8} {r.status:<10} {eq:>20} {100 * r.correct / r.total:>8.2f}% "
                   f"{1000 * r.seconds / r.total:>9.4f}  {r.learn}")
    out += [f"{r.backend}: {r.detail}" for r in rows if r.detail]
    return "\n".join(out)
