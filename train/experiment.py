"""The task-sequence runner behind `metabnn train`.

One epoch = one shuffled pass over the current task's training set, then the
accuracy on that training set and on every task's test set (the work the
authors' code does per epoch). After every epoch the whole state (model,
optimizer, BN banks, EWC memories, results so far) goes into checkpoint.pt
atomically, so `--resume` continues a killed run and ends bit-identical to an
uninterrupted one: shuffling draws from a generator seeded by (seed, task,
epoch), never from a global stream that a restart would lose.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from metabnn.errors import UsageError
from metabnn.fileio import atomic_write_bytes, atomic_write_text

from . import augment as augment_mod
from . import bn as bn_mod
from . import checkpoint as ckpt_mod
from . import distributed as dist_mod
from . import ewc as ewc_mod
from . import step as step_mod
from . import tasks as tasks_mod
from .schedule import lr_at
from .models import MLP, bn_modules, build
from .optim import MetaAdam, param_groups

# Options that define the result; a resumed run must agree on all of them.
# Checkpoints written before an option existed ran with the value given here.
OLD_DEFAULTS = {"bn_gamma_init": "one", "lr_schedule": "constant", "bn_recalibrate": 0, "augment_shift": 0}
RESULT_KEYS = ["tasks", "model", "hidden", "channels", "epochs", "meta", "lr", "lr_schedule", "weight_decay", "batch_size",
               "seed", "bn", "bn_affine", "bn_gamma_init", "adapt_shift", "reset_optimizer", "ewc_lambda", "ewc_samples", "train_subset",
               "test_subset", "compare_shifts", "bn_recalibrate", "augment_shift"]


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UsageError(f"--device {name!r}: not a device (auto, cpu, cuda, cuda:N)") from None


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed blocks of up to 32 MiB for reuse instead of handing them back to the kernel.

    By default a block over malloc's (adaptive) threshold is mmap'd and unmapped again on free, and a freed heap
    top is trimmed, so every evaluation block's 8-13 MB tensors arrive as fresh, zero-filled pages: measured
    ~50,000-90,000 page faults and 0.1-0.3 s of kernel time per epoch (512-512, 80,000 images), about a sixth of
    the evaluation, and cache-cold memory for what follows. With a fixed mmap threshold of 32 MiB and a trim
    threshold of 1 GiB they come back from the heap: no faults after the first epoch; the process keeps its peak
    memory. Numbers are unchanged (allocation only). False where the C library has no mallopt (not glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h>
    return bool(mallopt(m_trim_threshold, 1 << 30)) and bool(mallopt(m_mmap_threshold, 32 << 20))


def _epoch_generator(seed: int, task: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + task * 10_007 + epoch)


def _subset(seq: tasks_mod.Sequence, n_train: int, n_test: int) -> None:
    """Keep the first n samples of every set (0 = all): for tests and quick looks."""
    for t in seq.tasks:
        if n_train:
            t.train_x, t.train_y = t.train_x[:n_train], t.train_y[:n_train]
    for e in seq.evals:
        if n_test:
            e.x, e.y = e.x[:n_test], e.y[:n_test]


def _to(seq: tasks_mod.Sequence, dev: torch.device) -> None:
    for t in seq.tasks:
        t.train_x, t.train_y = t.train_x.to(dev), t.train_y.to(dev)
    for e in seq.evals:
        e.x, e.y = e.x.to(dev), e.y.to(dev)


def compare_protocols(cfg: dict, model) -> list[str]:
    names = ["frozen", "batch", "task-aware", "task-aware-batch"]
    if isinstance(model, MLP):
        names += [f"adaptive:{s}" for s in cfg["compare_shifts"]]
    return names


class Experiment:
    def __init__(self, cfg: dict, out: Path, data_dir=None, progress: bool | None = None):
        """progress: True shows the bars, False hides them, None shows them only where stderr is a terminal
        (tqdm's own test: no carriage-return spam in logs and CI)."""
        self.cfg, self.out = cfg, Path(out)
        self.progress = progress
        self.dev = resolve_device(cfg["device"])
        if self.dev.type == "cpu":
            keep_freed_memory()
        # under torchrun: join the group, one GPU per rank (train/distributed.py); else a single process
        self.world = dist_mod.init(self.dev)
        self.dev = dist_mod.rank_device(self.dev, self.world)
        augment_mod.check(cfg["tasks"], cfg.get("augment_shift", 0))
        self.seq = tasks_mod.build(cfg["tasks"], cfg["seed"], data_dir)
        _subset(self.seq, cfg["train_subset"], cfg["test_subset"])
        _to(self.seq, self.dev)
        torch.manual_seed(cfg["seed"])  # the weight init
        self.model = build(cfg["model"], cfg["hidden"], cfg.get("channels"), cfg["bn_affine"],
                           cfg["bn_gamma_init"]).to(self.dev)
        dist_mod.broadcast_model(self.model, self.world)
        dist_mod.sync_batchnorm(bn_modules(self.model), self.world)
        try:
            groups = param_groups(self.model, cfg["meta"])
        except ValueError as e:
            raise UsageError(str(e)) from None
        self.opt = MetaAdam(groups, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        self.banks: list = []
        self.ewc: list = []
        self.progress_at = {"task": 0, "epoch": 0}
        self.results = {
            "acc": [], "acc_by_bn": {}, "task_names": [t.name for t in self.seq.tasks],
            "eval_names": [e.name for e in self.seq.evals], "bn": cfg["bn"], "adapt_shift": cfg["adapt_shift"],
            "seed": cfg["seed"], "config": cfg,
            "curves": {"task": [], "epoch": [], "loss": [], "train_acc": [], "test_acc": []},
            "seconds_per_epoch": [],
        }

    # ---- state ----------------------------------------------------------------------------------
    def _ckpt(self, with_resume_state: bool) -> dict:
        c = {"format": ckpt_mod.FORMAT, "version": ckpt_mod.VERSION, "config": self.cfg,
             "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
             "banks": [[{k: v.cpu() for k, v in s.items()} for s in b] for b in self.banks],
             "progress": dict(self.progress_at),
             # what the model was trained on, for the exporter's metadata (docs/FORMAT.md 6.1)
             "data": tasks_mod.describe(self.cfg["tasks"], self.cfg["seed"], self.cfg["bn"],
                                        max(len(self.banks), 1), self.seq.fingerprint)}
        if with_resume_state:
            c["optimizer"] = self.opt.state_dict()
            c["ewc"] = self.ewc
            c["results"] = self.results
        return c

    def try_resume(self) -> bool:
        path = self.out / "checkpoint.pt"
        # rank 0 reads the file and sends it to the other ranks (they need no shared file system)
        c = ckpt_mod.read(path) if self.world.main and path.is_file() else None
        c = dist_mod.broadcast_object(c, self.world)
        if c is None:
            return False
        diff = [k for k in RESULT_KEYS if c["config"].get(k, OLD_DEFAULTS.get(k)) != self.cfg.get(k)]
        if diff:
            raise UsageError(f"--resume: {path} was made with other options ({', '.join(diff)}); "
                             "use the same options or another --out")
        self.model.load_state_dict(c["model"])
        self.opt.load_state_dict(c["optimizer"])
        self.banks = [[{k: v.to(self.dev) for k, v in s.items()} for s in b] for b in c["banks"]]
        self.ewc = [{k: [t.to(self.dev) for t in v] for k, v in m.items()} for m in c["ewc"]]
        self.results = c["results"]
        self.results["config"] = self.cfg  # device may differ
        self.progress_at = c["progress"]
        return True

    # ---- one epoch ------------------------------------------------------------------------------
    def _set_lr(self, e: int) -> None:
        """The rate of epoch e of the current task (train/schedule.py): a function of (e, epochs) alone, so a
        resumed run takes the same rates. Written into every group before the epoch; the fused steps read the
        group's lr at each step as a runtime float (no recompilation)."""
        lr = lr_at(self.cfg["lr"], self.cfg.get("lr_schedule", "constant"), e, self.cfg["epochs"])
        for g in self.opt.param_groups:
            g["lr"] = lr

    def _recalibrate(self, i: int) -> None:
        """--bn-recalibrate N: BN statistics from the first N training images of task i (bn.recalibrate), on every
        rank (the same images, so the same statistics); not where BN is frozen after task 1."""
        n = self.cfg.get("bn_recalibrate", 0)
        if n and not self._bn_frozen(i):
            bn_mod.recalibrate(self.model, self.seq.tasks[i].train_x[:n], self.cfg["batch_size"])

    def _bn_frozen(self, task: int) -> bool:
        return self.cfg["bn"] == "frozen-after-1" and task >= 1

    def _train_epoch(self, i: int, e: int) -> float:
        task, cfg, model = self.seq.tasks[i], self.cfg, self.model
        frozen = self._bn_frozen(i)
        for m in bn_modules(model):
            for p in m.parameters():
                p.requires_grad_(not frozen)
        model.train()
        if frozen:
            for m in bn_modules(model):
                m.eval()  # statistics stay as they were after task 1
        n, bs, world = len(task.train_y), cfg["batch_size"], self.world
        # the same order on every rank (same generator)
        order = torch.randperm(n, generator=_epoch_generator(cfg["seed"], i, e)).to(self.dev)
        fused = self.fused_step(i)
        xs = ys = None
        total, seen = torch.zeros((), device=self.dev), 0
        starts = [s for s in range(0, n, bs) if n - s >= 2]  # BatchNorm needs 2+ samples
        bar = tqdm(starts, desc=f"task {i + 1}/{len(self.seq.tasks)} epoch {e + 1}/{cfg['epochs']}",
                   disable=True if not world.main else None if self.progress is None else not self.progress,
                   leave=False, unit="batch")
        params = list(model.parameters())
        for s in bar:
            nb = min(bs, n - s)  # the global batch; this rank takes its part of it
            if fused is not None:  # one compiled call: gather, forward, backward, optimizer (train/step.py)
                try:
                    total += fused(task.train_x, task.train_y, order[s : s + nb]) * nb  # no host sync per step
                    seen += nb
                    continue
                except step_mod.FusedStepUnavailable:  # compiling failed, nothing changed: the autograd path
                    fused = None
            if xs is None:  # one gather per epoch, then every batch is a view
                xs, ys = task.train_x[order], task.train_y[order]
                k = cfg.get("augment_shift", 0)
                if k:  # the i-th image of the epoch's order takes the i-th draw, on every rank the same
                    xs = augment_mod.shift(xs, augment_mod.draw(n, k, augment_mod.generator(cfg["seed"], i, e)), k)
            mine = dist_mod.part(nb, world)
            x = xs[s + mine.start : s + mine.stop].float().div_(255)
            y = ys[s + mine.start : s + mine.stop]
            if world.parallel:
                loss = dist_mod.part_loss(model(x), y, nb)
            else:
                loss = F.cross_entropy(model(x), y)
            if self.ewc and world.main:  # once, not once per rank: the gradients are summed over ranks
                loss = loss + ewc_mod.penalty(model, self.ewc, cfg["ewc_lambda"])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            dist_mod.all_reduce_grads(params, world)
            self.opt.step()
            total += loss.detach() * nb  # no host sync per step
            seen += nb
        return float(dist_mod.sum_over_ranks(total, world)) / max(seen, 1)

    def fused_step(self, i: int) -> step_mod.FusedStep | None:
        """The compiled whole step for task i where it restates this loop exactly (the BNN MLP on a CPU, one
        process, no EWC penalty, BatchNorm trained, no augmentation); None: the autograd path below."""
        if (self.dev.type != "cpu" or self.world.parallel or self.ewc or self._bn_frozen(i)
                or self.cfg.get("augment_shift", 0)):
            return None
        return step_mod.FusedStep(self.model, self.opt) if step_mod.FusedStep.applies(self.model, self.opt) else None

    def _acc(self, j: int, protocol: str, shift: int) -> float:
        ev = self.seq.evals[j]
        bank = None
        if protocol.startswith("task-aware") and self.seq.kind == "tasks" and j < len(self.banks):
            bank = self.banks[j]
        proto = "frozen" if protocol == "frozen-after-1" else protocol
        return bn_mod.accuracy(self.model, ev.x, ev.y, proto, bank, shift)

    def _evaluate(self, i: int) -> tuple[float, list[float]]:
        proto, shift = self.cfg["bn"], self.cfg["adapt_shift"]
        task = self.seq.tasks[i]
        p = "frozen" if proto == "frozen-after-1" else proto
        train_acc = bn_mod.accuracy(self.model, task.train_x, task.train_y, p, None, shift)
        return train_acc, [self._acc(j, proto, shift) for j in range(len(self.seq.evals))]

    def _task_end(self, i: int) -> None:
        cfg = self.cfg
        self.banks.append(bn_mod.bank_state(self.model))
        if self.world.main:  # accuracies: rank 0 only; banks and EWC memories: every rank (they shape training)
            self.results["acc"].append([self._acc(j, cfg["bn"], cfg["adapt_shift"])
                                        for j in range(len(self.seq.evals))])
            for name in compare_protocols(cfg, self.model):
                proto, _, s = name.partition(":")
                row = [self._acc(j, proto, int(s) if s else cfg["adapt_shift"]) for j in range(len(self.seq.evals))]
                self.results["acc_by_bn"].setdefault(name, []).append(row)
        if cfg["ewc_lambda"] > 0 and i + 1 < len(self.seq.tasks):
            t = self.seq.tasks[i]
            gen = torch.Generator().manual_seed(cfg["seed"] + 7919 * (i + 1))
            self.ewc.append(ewc_mod.fisher(self.model, t.train_x, t.train_y, cfg["ewc_samples"], gen))

    # ---- the run --------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> dict | None:
        """Train what is left; None if stopped early by `stop_after` epochs (checkpoint kept)."""
        cfg, done_now = self.cfg, 0
        n_tasks = len(self.seq.tasks)
        while self.progress_at["task"] < n_tasks:
            i, e = self.progress_at["task"], self.progress_at["epoch"]
            if e == 0 and i > 0 and cfg["reset_optimizer"] and self.seq.kind == "tasks":
                self.opt.reset_state()  # the paper's protocol: fresh Adam moments per task
            self._set_lr(e)
            t0 = time.perf_counter()
            loss = self._train_epoch(i, e)
            self._recalibrate(i)
            main = self.world.main
            if main:  # the other ranks go on to the next epoch and wait for rank 0 at its first all-reduce
                train_acc, test_acc = self._evaluate(i)
                c = self.results["curves"]
                c["task"].append(i); c["epoch"].append(e + 1); c["loss"].append(loss)
                c["train_acc"].append(train_acc); c["test_acc"].append(test_acc)
            if e + 1 == cfg["epochs"]:
                self._task_end(i)
                self.progress_at = {"task": i + 1, "epoch": 0}
            else:
                self.progress_at = {"task": i, "epoch": e + 1}
            self.results["seconds_per_epoch"].append(round(time.perf_counter() - t0, 3))
            if main:
                ckpt_mod.save(self.out / "checkpoint.pt", self._ckpt(True))
            if main and (self.progress or cfg.get("verbose", True)):  # a forced bar comes with its epoch lines
                tests = " ".join(f"{a:.4f}" for a in test_acc)
                print(f"task {i + 1}/{n_tasks} epoch {e + 1}/{cfg['epochs']}: loss {loss:.4f} "
                      f"train {train_acc:.4f} test [{tests}] ({self.results['seconds_per_epoch'][-1]:.1f} s)",
                      flush=True)
            done_now += 1
            if stop_after is not None and done_now >= stop_after and self.progress_at["task"] < n_tasks:
                return None
        self.finish()
        return self.results

    def finish(self) -> None:
        if not self.world.main:
            return
        ckpt_mod.save(self.out / "model.pt", self._ckpt(False))
        atomic_write_text(self.out / "results.json", json.dumps(self.results, indent=1))
        atomic_write_bytes(self.out / "curves.png", plot_png(self.results))


def plot_png(results: dict) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = results["curves"]
    x = list(range(1, len(c["epoch"]) + 1))
    fig, ax = plt.subplots(figsize=(7, 4))
    for j, name in enumerate(results["eval_names"]):
        ax.plot(x, [row[j] for row in c["test_acc"]], label=f"test {name}")
    for k in range(1, len(x)):
        if c["task"][k] != c["task"][k - 1]:
            ax.axvline(k + 0.5, color="grey", lw=0.5, ls="--")
    cfg = results["config"]
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1),
           title=f"{cfg['tasks']}  {cfg['model']} {cfg['hidden']}  m={cfg['meta']}  bn={cfg['bn']}")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
