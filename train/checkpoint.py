"""The checkpoint file (`model.pt`, `checkpoint.pt`) and what the exporter reads from it.

A checkpoint is one torch.save'd dict:
  format "metabnn-checkpoint", version 1,
  config   the run's full configuration (model, hidden, bn, adapt_shift, meta, ...),
  model    the model's state_dict (hidden weights W_h, BatchNorm states),
  banks    one BatchNorm bank per finished task (list of per-BN state dicts),
  progress {task, epoch} done; `optimizer`, `ewc`, `results` to resume,
  data     what the model was trained on (tasks.describe: the .mbnn metadata, docs/FORMAT.md 6.1).
Writes are atomic (metabnn.fileio), so a kill mid-write leaves the previous
checkpoint intact. Reads use torch's weights-only unpickler: everything above
is tensors and plain Python data, so a real checkpoint loads and a crafted
pickle cannot run code.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from metabnn.errors import UsageError
from metabnn.fileio import atomic_write_with
from metabnn.export.floatnet import BNState, FloatLayer, FloatNet

FORMAT, VERSION = "metabnn-checkpoint", 1


def save(path: Path, ckpt: dict) -> None:
    atomic_write_with(path, lambda f: torch.save(ckpt, f))


def _refusal(path: Path, e: Exception) -> UsageError:
    """The one line for a file the unpickler refused: name the code it would have run, if it says."""
    found = re.search(r"GLOBAL ([\w.]+)", str(e))
    if "Weights only load failed" in str(e) and found:
        return UsageError(f"{path}: refused to load: unpickling it would run {found.group(1)}; a metabnn "
                          "checkpoint holds only tensors and plain data (torch.load weights_only=True)")
    return UsageError(f"{path} is not a metabnn checkpoint (not a torch file of tensors and plain data)")


def read(path) -> dict:
    """A checkpoint, loaded with torch's weights-only unpickler: a crafted file cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such checkpoint file")
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of foreign files
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise _refusal(path, e) from None
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror or type(e).__name__}") from None
    except Exception as e:  # torch raises many types for a non-checkpoint file
        raise UsageError(f"{path} is not a metabnn checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UsageError(f"{path} is not a metabnn checkpoint (no '{FORMAT}' marker)")
    if ckpt.get("version") != VERSION:
        raise UsageError(f"{path}: checkpoint version {ckpt.get('version')} (this metabnn reads {VERSION})")
    return ckpt


def build_model(ckpt: dict):
    from .models import build

    cfg = ckpt["config"]
    model = build(cfg["model"], cfg["hidden"], cfg.get("channels"), cfg.get("bn_affine", True))
    model.load_state_dict(ckpt["model"])
    return model


def export_banks(ckpt: dict) -> list[list[dict]]:
    """The banks a deployment uses: one per task for task-aware, else the final state only."""
    if ckpt["config"]["bn"] == "task-aware" and ckpt["banks"]:
        return ckpt["banks"]
    from .bn import bank_state

    return [bank_state(build_model(ckpt))]


def load_model(path, bank: int = 0) -> torch.nn.Module:
    """The network in eval mode, BatchNorm frozen to bank `bank`; forward(pixels [B, 784] in [0, 1]) -> logits."""
    from .bn import load_bank

    ckpt = read(path)
    model = build_model(ckpt)
    banks = export_banks(ckpt)
    if not 0 <= bank < len(banks):
        raise UsageError(f"{path}: bank {bank} does not exist (it has {len(banks)})")
    load_bank(model, banks[bank])
    return model.eval()


def _data(ckpt: dict, n_banks: int) -> dict:
    """What the model was trained on (docs/FORMAT.md 6.1): recorded by the trainer, or rebuilt from the
    config of a checkpoint written before it recorded it (same names and banks, no fingerprint)."""
    from .tasks import describe

    cfg = ckpt["config"]
    return ckpt.get("data") or describe(cfg["tasks"], cfg["seed"], cfg["bn"], n_banks)


def _weighted_layers(model) -> list[tuple]:
    """(weight module, its BatchNorm, conv geometry or None) per weighted layer, in forward order (the order of
    the BatchNorm banks). A conv net's features are [BinaryConv2d, BatchNorm2d, sign] stages, each maybe followed
    by MaxPool2d(2) (after the sign), on 1 x 28 x 28 images, then its MLP head."""
    from metabnn.sim.model import ConvGeom

    out = []
    if getattr(model, "kind", None) == "conv":
        mods = list(model.features)
        c, side = 1, 28
        for i, mod in enumerate(mods):
            if isinstance(mod, torch.nn.Conv2d):
                pool = 2 if i + 3 < len(mods) and isinstance(mods[i + 3], torch.nn.MaxPool2d) else 0
                k, st, pad = mod.kernel_size[0], mod.stride[0], mod.padding[0]
                g = ConvGeom(in_c=c, in_h=side, in_w=side, kernel=k, stride=st, pad=pad, pool=pool)
                out.append((mod, mods[i + 1], g))
                c, side = mod.out_channels, g.map_h
        blocks = model.head.blocks
    else:
        blocks = model.blocks
    return out + [(blk.lin, blk.bn, None) for blk in blocks]


def load_floatnet(path) -> FloatNet:
    """A BNN MLP or conv net checkpoint as the exporter's FloatNet (hidden weights, m, BN banks, task-free BN
    mode; a conv layer's weight [N, C, k, k] as torch holds it, with its geometry)."""
    ckpt = read(path)
    cfg = ckpt["config"]
    if cfg["model"] not in ("bnn", "conv"):
        raise UsageError(f"{path}: a {cfg['model']} model cannot be exported (only the BNN MLP and conv net can)")
    model = build_model(ckpt)
    banks = export_banks(ckpt)
    weighted = _weighted_layers(model)
    n_layers = len(weighted)
    metas = cfg["meta"] if isinstance(cfg["meta"], list) else [cfg["meta"]] * n_layers
    layers = []
    for i, (lin, bn, geom) in enumerate(weighted):
        states = []
        n = lin.weight.shape[0]
        for bank in banks:
            s = bank[i]
            states.append(BNState(
                # without affine parameters (the default) BN is gamma = 1, beta = 0
                gamma=s["weight"].numpy().astype(np.float64) if "weight" in s else np.ones(n),
                beta=s["bias"].numpy().astype(np.float64) if "bias" in s else np.zeros(n),
                mean=s["running_mean"].numpy().astype(np.float64),
                var=s["running_var"].numpy().astype(np.float64),
                eps=float(bn.eps),
            ))
        layers.append(FloatLayer(weight=lin.weight.detach().numpy().astype(np.float32),
                                 meta=float(metas[i]), bn=states, conv=geom))
    adaptive = cfg["bn"] == "adaptive"
    return FloatNet(
        layers=layers,
        adapt_shift=int(cfg["adapt_shift"]) if adaptive else 0,
        # the exporter needs the test-time form only: frozen-after-1 tests as frozen
        bn_mode="frozen" if cfg["bn"] == "frozen-after-1" else cfg["bn"],
        info={**{k: cfg[k] for k in ("tasks", "hidden", "epochs", "meta", "lr", "weight_decay", "seed", "bn")},
              "data": _data(ckpt, len(banks))},
    )
