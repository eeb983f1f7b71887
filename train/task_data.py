"""The data a deployed model is checked on: the test set of the task it was trained for.

A model trained on permuted MNIST is at chance on plain MNIST although it is
correct, so `metabnn verify` must feed what training fed. The `.mbnn` metadata
(docs/FORMAT.md 6.1) names the task sequence and its seed; this module rebuilds
that sequence with metabnn.train.tasks (the very code that trained the model)
and hands back one task's test set, its normalization bank and its training
samples for on-device learning steps. Files without metadata get MNIST, as
before, with a label that says it was assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from metabnn.errors import UsageError

from . import data as data_mod
from . import tasks as tasks_mod


@dataclass
class TaskData:
    label: str  # a human name of the data, e.g. "pmnist task 2 of 2 (seed 0) test set"
    name: str  # the test set's name (what --task takes), "mnist" for files without metadata
    test_x: np.ndarray  # uint8 [n, 784]
    test_y: np.ndarray  # int64 [n]
    bank: int  # the normalization bank that belongs to this task
    train_x: np.ndarray  # uint8 [m, 784]: samples for learning steps, from the same task
    train_y: np.ndarray


def _has_data(meta: dict | None) -> bool:
    return bool(meta) and "spec" in meta


def task_names(meta: dict | None) -> list[str]:
    """The names `--task` accepts: the test sets the model was measured on (training task names map to them)."""
    if not _has_data(meta):
        return []
    return [s["name"] for s in meta["test_sets"]]


def pick_test_set(meta: dict | None, task: str | None) -> int:
    """Index of the test set for `task` (a test set or training task name; None: the last task trained).

    Needs no data, so a command can reject a wrong --task before any slow work."""
    if not _has_data(meta):
        if task is not None:
            raise UsageError(f"--task {task!r}: the model file records no tasks (exported before metabnn "
                             "recorded them); it can only be checked on MNIST, without --task")
        return 0
    if task is None:
        return meta["tasks"][-1]["test_set"]
    sets = task_names(meta)
    if task in sets:
        return len(sets) - 1 - sets[::-1].index(task)  # a name used twice (mnist,mnist): the later one
    by_task = [t["test_set"] for t in meta["tasks"] if t["name"] == task]
    if by_task:
        return by_task[-1]
    raise UsageError(f"--task {task!r}: the model was trained on {', '.join(dict.fromkeys(sets))}; "
                     "name one of those")


def _label(meta: dict, j: int) -> str:
    sets, seed = meta["test_sets"], meta["seed"]
    kind, _, k = tasks_mod.parse(meta["spec"])
    if kind == "pmnist":
        return f"pmnist task {j + 1} of {k} (seed {seed}) test set"
    if kind == "stream":
        return f"{sets[j]['name']} test set (after a stream of {k} parts, seed {seed})"
    return f"{sets[j]['name']} test set (task {j + 1} of {len(sets)} of {meta['spec']})"


def _np(t: torch.Tensor) -> np.ndarray:
    return t.cpu().numpy()


def for_model(meta: dict | None, task: str | None = None, data_dir=None) -> TaskData:
    """The test set (and learning samples and bank) of `task` for a model with this metadata.

    Raises UsageError for an unknown task name or a task sequence this metabnn cannot rebuild as it was
    trained, DataMissingError when the data set is not installed."""
    j = pick_test_set(meta, task)
    if not _has_data(meta):
        ds = data_mod.load("mnist", data_dir)
        return TaskData("MNIST test set (the model file does not say what it was trained on: assumed MNIST)",
                        "mnist", _np(ds.test_x), _np(ds.test_y), 0, _np(ds.train_x), _np(ds.train_y))
    try:
        seq = tasks_mod.build(meta["spec"], meta["seed"], data_dir)
    except UsageError as e:
        raise UsageError(f"the model's task sequence {meta['spec']!r} cannot be rebuilt here: {e}") from None
    recorded = meta.get("fingerprint")
    if recorded is not None and seq.fingerprint != recorded:
        raise UsageError(f"this installation draws other permutations for {meta['spec']!r} seed {meta['seed']} "
                         f"than training did ({seq.fingerprint} vs {recorded} recorded): the torch version "
                         "changed its random generator; verify with the torch the model was trained with")
    if len(seq.evals) != len(meta["test_sets"]) or seq.evals[j].name != meta["test_sets"][j]["name"]:
        raise UsageError(f"the model's metadata does not match the task sequence {meta['spec']!r} "
                         "this metabnn builds (file written by another version?)")
    ev = seq.evals[j]
    mine = [t for t in seq.tasks if t.test_index == j]
    train_x = torch.cat([t.train_x for t in mine])
    train_y = torch.cat([t.train_y for t in mine])
    return TaskData(_label(meta, j), ev.name, _np(ev.x), _np(ev.y), meta["test_sets"][j]["bank"],
                    _np(train_x), _np(train_y))
