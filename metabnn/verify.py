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


def parse_freeze(spec: str | None, model: Model) -> tuple | None:
    """verify --freeze: "conv" (every conv layer), "none", or layer numbers "0,2" (0 = the first weighted layer), as
    a sorted tuple; None when not given (each backend learns as it does by default). UsageError for nonsense."""
    from metabnn.sim.learn import conv_layers

    return freeze_set(spec, len(model.layers), conv_layers(model))


def freeze_set(spec: str | None, n: int, convs) -> tuple | None:
    """parse_freeze for a net of `n` weighted layers whose conv layers are `convs` (known before it is built)."""
    from metabnn.errors import UsageError

    if spec is None:
        return None
    out: set = set()
    for tok in (t.strip().lower() for t in spec.split(",")):
        if tok == "none":
            continue
        if tok == "conv":
            if not convs:
                raise UsageError("--freeze conv: the model has no conv layers (give layer numbers, e.g. --freeze 0)")
            out.update(convs)
        elif tok.isdigit():
            if int(tok) >= n:
                raise UsageError(f"--freeze {spec}: layer {tok} does not exist (the model has layers 0..{n - 1})")
            out.add(int(tok))
        else:
            raise UsageError(f"--freeze {spec}: {tok!r} is not a layer number, 'conv' or 'none'")
    if len(out) == n:
        raise UsageError(f"--freeze {spec}: that freezes every layer ({n}); nothing would learn")
    return tuple(sorted(out))


def takes_frozen(backend) -> bool:
    """Whether a backend's learning step can freeze any set of layers (its learn() has a `frozen` argument)."""
    import inspect

    return hasattr(backend, "learn") and "frozen" in inspect.signature(backend.learn).parameters


def check_freeze(backend_list, model: Model, frozen: tuple | None) -> None:
    """Before anything runs: every learning backend can learn with the layers `frozen` frozen (UsageError)."""
    from metabnn.errors import UsageError

    if frozen is None:
        return
    for be in backend_list:
        if not be.integer or be.name == "golden" or not hasattr(be, "learn") or takes_frozen(be):
            continue
        if model.has_conv and not getattr(be, "conv_learn", True):
            continue  # it does not learn conv models at all: its row says so
        fixed = frozen_layers(be, model)
        if tuple(frozen) != tuple(fixed):
            have = f"layers {', '.join(map(str, fixed))} frozen (--freeze conv)" if fixed else "every layer"
            raise UsageError(f"--freeze: the {be.name} backend learns {have}, no other set; use that, or leave "
                             f"{be.name} out of --backends")


def frozen_note(frozen) -> str:
    return f" (layers {', '.join(map(str, frozen))} frozen)" if frozen else ""


def compare_learning(backend, model: Model, images, labels, bank: int, adapt: bool,
                     frozen: tuple | None = None) -> str | None:
    """None when `backend` ends every learning step in the golden model's state, else what differed first.
    `frozen`: the layers both freeze (verify --freeze, checked by check_freeze); None: the golden steps freeze
    the layers the backend freezes by itself (frozen_layers)."""
    own = frozen_layers(backend, model)
    frozen = own if frozen is None else tuple(frozen)
    gold = backends.get("golden").learn(model, images, labels, bank=bank, adapt=adapt, frozen=frozen)
    kw = {"frozen": frozen} if frozen and takes_frozen(backend) else {}
    seen = 0
    for (step, g), (_, b) in zip(gold, backend.learn(model, images, labels, bank=bank, adapt=adapt, **kw)):
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
               learn_labels=None, progress=None, first: int = 0, frozen: tuple | None = None) -> list[Row]:
    """One Row per backend (objects from open_backends), every backend on every image and learning step.
    `first`: the test-set number of images[0] (verify --offset): mismatches are named by their number in the set.
    `frozen`: the layers every backend's learning freezes (parse_freeze; check_freeze first); None: each its own."""
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
                row.learn = f"{len(learn_labels)} steps (reference)" + frozen_note(frozen)
            elif not hasattr(be, "learn"):
                row.learn = "(inference only)"
            elif model.has_conv and not getattr(be, "conv_learn", True):
                row.learn = "(inference only on conv models)"
            else:
                where = compare_learning(be, model, learn_images, learn_labels, bank, adapt, frozen)
                row.learn = f"{len(learn_labels)} steps equal" if where is None else where.split(" first at")[0]
                if frozen is not None:
                    row.learn += frozen_note(frozen)
                elif frozen_layers(be, model):
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
