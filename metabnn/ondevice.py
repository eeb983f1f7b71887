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
                 quiet: bool = False, on_eval=None, frozen=()):
    """Learn the stream sample by sample. Returns (final model, curve, sign flips per layer).

    curve: list of {"step": n, "<set name>": accuracy, ...}, including step 0.
    engine: a backend that learns, "golden" or "c" (see `pick_engine`).
    on_eval: called as on_eval(step, model) at every evaluation (step 0 too), e.g. to record `layer_state`.
    frozen: layers that do not learn (FORMAT.md 4.5 "Frozen layers"; golden and c take it).
    """
    be = backends.get(engine)
    backends.require(be, adapt=adapt)
    curve = [{"step": 0, **evaluate(model, eval_sets, bank, adapt, engine)}]
    if on_eval is not None:
        on_eval(0, model)
    final = model
    # progress bars only on a terminal (tqdm's disable=None), never with --quiet
    with tqdm(total=len(labels), desc=desc, disable=True if quiet else None, leave=False) as bar:
        kw = {"frozen": tuple(frozen)} if frozen else {}
        for step, m in be.learn(model, images, labels, bank=bank, adapt=adapt, every=every, **kw):
            bar.update(step - bar.n)
            curve.append({"step": step, **evaluate(m, eval_sets, bank, adapt, engine)})
            if on_eval is not None:
                on_eval(step, m)
            final = m
    return final, curve, _flips(model, final)


def layer_state(model: Model) -> list:
    """Per layer, how much of it the device can still move: the fraction of hidden weights saturated at the top of
    the range (|h| = hmax, FORMAT.md 4.3's saturation) and the fraction still plastic (f_meta(|h|) >= 1/2 in the
    layer's own table, so a push toward zero keeps at least half its size)."""
    from metabnn.sim.metaplastic import table_index

    out = []
    for lay in model.layers:
        h = np.abs(lay.hidden.astype(np.int64))
        hmax = (1 << (lay.bits - 1)) - 1
        f = lay.table[table_index(h, lay.bits, lay.table_bits)]
        out.append({"saturated": float(np.mean(h >= hmax)), "plastic": float(np.mean(f >= 16384))})
    return out


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


def update_stats(model: Model, images: np.ndarray, labels: np.ndarray, bank: int = 0, adapt: bool = False,
                 quiet: bool = True) -> list:
    """How often and by how much each layer's synapses are updated while `model` learns the stream
    (golden learning step, FORMAT.md 4.3; a conv layer's gradient summed over positions, 4.5): per layer an
    export.device_meta.UpdateStats, the measured input of the device-m rule. |u| is the step before f_meta, so it does not depend on the table being probed.
    A layer that rounds stochastically (4.4) is counted by the expected outcome of its draw: |grad| >> s, or one
    more with probability (|grad| mod 2^s) / 2^s (counted to nearest, a 4-bit layer's steps are nearly all 0
    and the rule would see nothing move)."""
    from metabnn.export.device_meta import UpdateStats
    from metabnn.sim.learn import learn_step
    from metabnn.sim.metaplastic import U_MAX, step_size
    from metabnn.sim.model import STOCHASTIC
    from metabnn.sim.ops import ops_of

    counts = [np.zeros(U_MAX + 1, dtype=np.float64) for _ in model.layers]
    m = model
    for x, y in tqdm(zip(images, labels), total=len(labels), desc="probing the device's updates",
                     disable=True if quiet else None, leave=False):
        new, info = learn_step(m, x, int(y), bank=bank, adapt=adapt)
        weighted = [op for op in ops_of(m) if op.weighted]
        for c, lay, op, delta, xin in zip(counts, m.layers, weighted, info.deltas, info.inputs):
            # the op's own gradient (FORMAT.md 4.3; a conv synapse's sums delta * x over the positions, 4.5), for the
            # neurons with a non-zero delta; a zero gradient is no update
            rows = np.flatnonzero(np.asarray(delta).reshape(lay.N, -1).any(axis=1))
            grad = np.abs(op.gradient(xin, delta, rows)).ravel() if rows.size else np.zeros(0, np.int64)
            grad = grad[grad != 0]
            if not grad.size:
                continue
            if lay.rounding == STOCHASTIC:
                q, frac = grad >> lay.lr_shift, (grad & ((1 << lay.lr_shift) - 1)) / float(1 << lay.lr_shift)
                c += np.bincount(np.minimum(q, U_MAX), weights=1.0 - frac, minlength=U_MAX + 1)
                c += np.bincount(np.minimum(q + 1, U_MAX), weights=frac, minlength=U_MAX + 1)
            else:
                c += np.bincount(np.abs(step_size(grad, lay.lr_shift)), minlength=U_MAX + 1)  # |u| before f_meta
        m = new
    n = len(labels)
    return [UpdateStats.from_counts(c, n * lay.N * lay.K) for c, lay in zip(counts, model.layers)]


def probe_stream(train_x: np.ndarray, train_y: np.ndarray, samples: int, seed: int = 0):
    """A stand-in for the unseen task the device will learn: `samples` of the model's own training images under
    a pixel permutation it was never trained on (same input statistics, an error as large as a new task's)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(train_x.shape[1])
    order = rng.permutation(len(train_y))[:samples]
    return np.ascontiguousarray(train_x[order][:, perm]), train_y[order]


def auto_device_meta(net, horizon: int, quantile: float, probe_samples: int = 100, data_dir=None,
                     seed: int = 0, quiet: bool = True, stochastic: bool = False, table: str = "edge",
                     **export_options) -> list:
    """The device m of every layer by the rule of export/device_meta.py, from a probe of the learning step.

    The probe learns `probe_samples` of a new task (`probe_stream` of the model's training data, rebuilt from its
    metadata) on the model exported with m = 0 (|u| before f_meta does not depend on the table), rounding as the
    device will. The rule walks the device's `table` (export.device_meta.device_table). Returns per layer
    (m, reached, UpdateStats). Raises DataMissingError / UsageError when the data cannot be had."""
    from metabnn.export import device_meta as rule
    from metabnn.export.quantize import file_metadata, from_floatnet
    from metabnn.train.task_data import for_model

    plain = from_floatnet(net, device_meta=0.0, stochastic=stochastic, **export_options)
    data = for_model(file_metadata(net), data_dir=data_dir)
    xs, ys = probe_stream(data.train_x, data.train_y, probe_samples, seed)
    stats = update_stats(plain, xs, ys, bank=data.bank, adapt=plain.layers[0].adapt_shift > 0, quiet=quiet)
    picks = []
    for fl, lay, st in zip(net.layers, plain.layers, stats):
        m, reached = rule.pick(np.abs(np.asarray(fl.weight, dtype=np.float64)), lay.bits, lay.table_bits, st,
                               horizon, quantile, stochastic, table)
        picks.append((m, reached, st))
    return picks


def device_meta_or_trained(net, horizon: int | None = None, quantile: float | None = None, stochastic: bool = False,
                           table: str = "edge", say=print, scale: float = 1.0, **export_options):
    """`metabnn export --device-meta auto`: the rule's m per layer (times `scale`, export.device_meta.rule_scale),
    said in one line. Where the training data cannot be had for the probe (not installed, a sequence this metabnn
    cannot rebuild) the trained m, said why."""
    from metabnn.errors import DataMissingError
    from metabnn.export import device_meta as rule

    try:
        picks = auto_device_meta(net, rule.DEFAULT_HORIZON if horizon is None else horizon,
                                 rule.DEFAULT_QUANTILE if quantile is None else quantile, stochastic=stochastic,
                                 table=table, **export_options)
    except (DataMissingError, UsageError) as e:
        say(f"device m: the trained m (no data to probe the device's updates: {e}); --device-meta M sets one")
        return None
    picks = [(rule.scaled(m, scale), ok, st) for m, ok, st in picks]
    say("device m (the rule, docs/ONDEVICE.md" + ("" if scale == 1.0 else f", times {scale:g}") + "): " + ", ".join(
        f"layer {l} {m:g}" + ("" if ok else " (the most this width allows)") for l, (m, ok, _) in enumerate(picks)))
    return [m for m, _, _ in picks]
