"""Task sequences from a `--tasks` spec.

  pmnist:K          K permuted-MNIST tasks (every task permuted, the first too)
  mnist,fmnist      data sets one after another (any comma list of mnist / fmnist)
  stream:fmnist:K   one data set cut into K equal random parts learned in turn,
                    with no boundary signal; evaluated on the whole test set

Permutations and the stream split come from the run's seed, so a spec plus a
seed names the same tasks on every machine. `describe` writes that down (the
metadata a checkpoint and a `.mbnn` file carry, docs/FORMAT.md 6.1), with a
fingerprint of what the generator drew, so a tool can rebuild the test set a
model was trained for and notice if its torch draws differently.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from metabnn.errors import UsageError

from . import data as data_mod


@dataclass
class Task:
    name: str
    train_x: torch.Tensor  # uint8 [n, 784], already permuted
    train_y: torch.Tensor
    test_index: int  # which eval set measures this task


@dataclass
class EvalSet:
    name: str
    x: torch.Tensor  # uint8 [n, 784]
    y: torch.Tensor


@dataclass
class Sequence:
    spec: str
    kind: str  # "tasks" or "stream": a stream gives no boundary signal
    tasks: list[Task]
    evals: list[EvalSet]
    fingerprint: str | None = None  # crc32 of the permutations / stream order drawn (None: nothing drawn)


def _fingerprint(drawn: list[torch.Tensor]) -> str:
    crc = 0
    for t in drawn:
        crc = zlib.crc32(t.numpy().astype("<i8").tobytes(), crc)
    return f"crc32:{crc & 0xFFFFFFFF:08x}"


def _positive_int(text: str, what: str) -> int:
    try:
        k = int(text)
    except ValueError:
        raise UsageError(f"--tasks: {what} must be a whole number, got {text!r}") from None
    if k < 1:
        raise UsageError(f"--tasks: {what} must be >= 1, got {k}")
    return k


def parse(spec: str) -> tuple[str, list[str], int]:
    """Check a spec without loading data: (kind, data set names, count)."""
    parts = spec.split(":")
    if parts[0] == "pmnist":
        if len(parts) != 2:
            raise UsageError(f"--tasks {spec!r}: write pmnist:K, e.g. pmnist:6")
        return "pmnist", ["mnist"], _positive_int(parts[1], "the number of permuted tasks")
    if parts[0] == "stream":
        if len(parts) != 3 or parts[1] not in data_mod.INSTALL_HINT:
            raise UsageError(f"--tasks {spec!r}: write stream:SET:K with SET mnist or fmnist, e.g. stream:fmnist:60")
        return "stream", [parts[1]], _positive_int(parts[2], "the number of stream parts")
    names = [n.strip() for n in spec.split(",")]
    bad = [n for n in names if n not in data_mod.INSTALL_HINT]
    if bad or not names:
        raise UsageError(f"--tasks {spec!r}: unknown task {bad[0] if bad else ''!r}; "
                         "use pmnist:K, stream:fmnist:K or a comma list of mnist, fmnist")
    return "sets", names, len(names)


def layout(spec: str) -> tuple[str, list[tuple[str, int]], list[str]]:
    """Names without data: (kind, [(task name, index of its test set)], test set names)."""
    kind, names, k = parse(spec)
    if kind == "pmnist":
        sets = [f"pmnist{i + 1}" for i in range(k)]
        return "tasks", [(n, i) for i, n in enumerate(sets)], sets
    if kind == "stream":
        return "stream", [(f"{names[0]}-part{i + 1}", 0) for i in range(k)], [names[0]]
    return "tasks", [(n, i) for i, n in enumerate(names)], list(names)


def build(spec: str, seed: int, data_dir=None) -> Sequence:
    kind, names, k = parse(spec)
    _, task_names, set_names = layout(spec)
    gen = torch.Generator().manual_seed(seed)
    if kind == "pmnist":
        ds = data_mod.load("mnist", data_dir)
        tasks, evals, perms = [], [], []
        for i in range(k):
            perm = torch.randperm(784, generator=gen)
            perms.append(perm)
            tasks.append(Task(task_names[i][0], ds.train_x[:, perm].contiguous(), ds.train_y, i))
            evals.append(EvalSet(set_names[i], ds.test_x[:, perm].contiguous(), ds.test_y))
        return Sequence(spec, "tasks", tasks, evals, _fingerprint(perms))
    if kind == "stream":
        ds = data_mod.load(names[0], data_dir)
        if k > len(ds.train_y):
            raise UsageError(f"--tasks {spec!r}: more parts than training samples")
        order = torch.randperm(len(ds.train_y), generator=gen)
        tasks = [Task(task_names[i][0], ds.train_x[idx], ds.train_y[idx], 0)
                 for i, idx in enumerate(order.tensor_split(k))]
        return Sequence(spec, "stream", tasks, [EvalSet(set_names[0], ds.test_x, ds.test_y)], _fingerprint([order]))
    loaded = {n: data_mod.load(n, data_dir) for n in dict.fromkeys(names)}
    tasks = [Task(n, loaded[n].train_x, loaded[n].train_y, i) for i, n in enumerate(names)]
    evals = [EvalSet(n, loaded[n].test_x, loaded[n].test_y) for n in names]
    return Sequence(spec, "tasks", tasks, evals)


def describe(spec: str, seed: int, bn: str, n_banks: int, fingerprint: str | None = None) -> dict:
    """What a model trained on `spec` with `seed` was trained on: the metadata of docs/FORMAT.md 6.1.

    Banks as metabnn.train.checkpoint.export_banks gives them: with task-aware BatchNorm bank i was
    saved after task i, so a test set takes the bank of the last task it measures (the last bank
    saved if training stopped before that task); every other protocol exports one bank."""
    kind, task_list, set_names = layout(spec)

    def bank(j: int) -> int:
        if bn != "task-aware":
            return 0
        last = max(i for i, (_, s) in enumerate(task_list) if s == j)
        return min(last, n_banks - 1)

    meta = {"version": 1, "spec": spec, "seed": int(seed), "kind": kind,
            "tasks": [{"name": n, "test_set": s} for n, s in task_list],
            "test_sets": [{"name": n, "bank": bank(j)} for j, n in enumerate(set_names)]}
    if fingerprint is not None:
        meta["fingerprint"] = fingerprint
    return meta
