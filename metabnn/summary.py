"""`metabnn summary CHECKPOINT`: a Larq-style table of a trained network, before export.

Per layer: the op, its output shape (one image), its 1-bit parameters (the binary weights, sign(W_h)), its
float parameters (BatchNorm's gamma, beta, running mean and variance; a full-precision layer's weights), and
memory in bytes two ways:

  inference  1 bit per binary weight, 32 bits per float parameter: what a model that only infers must hold
  learning   b bits per binary weight (the quantized hidden weight, whose top bit is the sign; b = the
             export's --hidden-bits), 32 bits per float parameter: what a model that keeps learning holds

Each layer's weights are counted as their own byte array (bits rounded up to bytes per layer); the float32
equivalent is every parameter at 32 bits, as Larq's summary reports it. The counts are of the trained network:
the exporter folds each BatchNorm into integer per-neuron constants (docs/FORMAT.md), whose sizes
`metabnn export --summary` prints.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from metabnn.errors import UsageError

HIDDEN_BITS = (2, 16)  # the widths the exporter accepts (metabnn export --hidden-bits)


@dataclass
class Row:
    name: str
    op: str
    shape: tuple[int, ...]
    one_bit: int  # binary weights
    floats: int  # 32-bit parameters
    infer_bytes: int
    learn_bytes: int


def _op(m: nn.Module) -> str | None:
    """The row label of a leaf module, None for modules that are no layer of their own (containers)."""
    from metabnn.train.layers import BinaryConv2d, BinaryLinear, SignActivation

    if isinstance(m, BinaryConv2d):
        k, s, p = m.kernel_size, m.stride, m.padding
        return f"binary conv {k[0]}x{k[1]} s{s[0]} p{p[0]}"
    if isinstance(m, BinaryLinear):
        return "binary dense"
    if isinstance(m, nn.Linear):
        return "dense (float)"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "batch norm"
    if isinstance(m, SignActivation):
        return "sign"
    if isinstance(m, nn.MaxPool2d):
        return f"max-pool {m.kernel_size}x{m.kernel_size}"
    if isinstance(m, nn.ReLU):
        return "relu"
    return None


def _counts(m: nn.Module) -> tuple[int, int]:
    """(1-bit parameters, float parameters) of one leaf module: a binary layer's weights are 1 bit, all else 32."""
    from metabnn.train.layers import BinaryConv2d, BinaryLinear

    binary = isinstance(m, (BinaryConv2d, BinaryLinear))
    one_bit = m.weight.numel() if binary else 0
    floats = sum(p.numel() for name, p in m.named_parameters(recurse=False) if not (binary and name == "weight"))
    # BatchNorm's running statistics are buffers, not parameters, yet a deployment needs them (Larq counts them)
    floats += sum(b.numel() for name, b in m.named_buffers(recurse=False) if name in ("running_mean", "running_var"))
    return one_bit, floats


def rows(model: nn.Module, hidden_bits: int) -> list[Row]:
    """One row per layer, in the order one image flows through them (found by running one, so any of the
    trainer's networks is walked as it computes, the flatten between a conv map and a dense head included)."""
    seen: list[tuple[str, nn.Module, tuple, tuple]] = []
    hooks = []
    for name, m in model.named_modules():
        if _op(m) is not None:
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: seen.append((name, mod, tuple(inp[0].shape[1:]), tuple(out.shape[1:])))))
    was_training = model.training
    model.eval()  # BatchNorm would refuse a batch of one image in training mode
    try:
        with torch.no_grad():
            model(torch.zeros(1, 784))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    out, prev = [], None
    for name, m, in_shape, shape in seen:
        if prev is not None and len(prev) > 1 and len(in_shape) == 1:  # a map became a vector: the flatten
            out.append(Row("flatten", "flatten (NCHW)", in_shape, 0, 0, 0, 0))
        one_bit, floats = _counts(m)
        out.append(Row(name, _op(m), shape, one_bit, floats,
                       infer_bytes=(one_bit + 7) // 8 + 4 * floats,
                       learn_bytes=(one_bit * hidden_bits + 7) // 8 + 4 * floats))
        prev = shape
    return out


def totals(table: list[Row]) -> dict:
    one_bit = sum(r.one_bit for r in table)
    floats = sum(r.floats for r in table)
    infer = sum(r.infer_bytes for r in table)
    float32 = 4 * (one_bit + floats)
    return {"one_bit": one_bit, "floats": floats, "infer_bytes": infer,
            "learn_bytes": sum(r.learn_bytes for r in table), "float32_bytes": float32,
            "compression": round(float32 / infer, 2) if infer else None}


def render(table: list[Row], tot: dict, hidden_bits: int, title: str) -> str:
    head = ["layer", "op", "output shape", "1-bit params", "float params", "inference bytes",
            f"learning bytes (b={hidden_bits})"]
    body = [[r.name, r.op, "x".join(map(str, r.shape)), f"{r.one_bit:,}", f"{r.floats:,}", f"{r.infer_bytes:,}",
             f"{r.learn_bytes:,}"] for r in table]
    body.append(["total", "", "", f"{tot['one_bit']:,}", f"{tot['floats']:,}", f"{tot['infer_bytes']:,}",
                 f"{tot['learn_bytes']:,}"])
    widths = [max(len(row[i]) for row in [head] + body) for i in range(len(head))]

    def line(cells):
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "-" * len(line(head))
    text = [title, rule, line(head), rule] + [line(b) for b in body[:-1]] + [rule, line(body[-1]), rule]
    text.append(f"float32 equivalent: {tot['float32_bytes']:,} bytes; compression of inference memory: "
                f"{tot['compression']}x")
    return "\n".join(text)


def _title(cfg: dict) -> str:
    parts = [f"model {cfg['model']}"]
    if cfg.get("channels"):
        parts.append("channels " + ",".join(map(str, cfg["channels"])))
    parts += [f"hidden {','.join(map(str, cfg['hidden'])) or '-'}", f"m {cfg['meta']}", f"tasks {cfg['tasks']}"]
    return "  ".join(parts)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "summary", help="per-layer table of a trained checkpoint: 1-bit parameters, memory",
        description="Print a Larq-style summary of a checkpoint written by `metabnn train` (model.pt or checkpoint.pt): per "
        "layer the op, output shape, 1-bit and float parameters, and memory at 1 bit per binary weight "
        "(inference) and at b bits (learning on the device, the hidden weights kept); totals.")
    p.add_argument("checkpoint", help="model.pt or checkpoint.pt written by `metabnn train`")
    p.add_argument("--hidden-bits", default="8", metavar="B",
                   help=f"hidden-weight width b for the learning column ({HIDDEN_BITS[0]}..{HIDDEN_BITS[1]}, "
                   "as metabnn export; default 8)")
    p.add_argument("--json", action="store_true", help="print the table as JSON instead")
    p.set_defaults(run=run)


def _bits(text: str) -> int:
    try:
        b = int(text)
    except ValueError:
        raise UsageError(f"--hidden-bits {text!r}: not a whole number") from None
    if not HIDDEN_BITS[0] <= b <= HIDDEN_BITS[1]:
        raise UsageError(f"--hidden-bits {b}: must be {HIDDEN_BITS[0]}..{HIDDEN_BITS[1]}")
    return b


def summarize(path, hidden_bits: int = 8) -> dict:
    from metabnn.train import checkpoint as ckpt_mod

    ckpt = ckpt_mod.read(path)
    try:
        model = ckpt_mod.build_model(ckpt)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:  # a marker but no network we can build
        raise UsageError(f"{path}: the checkpoint's network cannot be rebuilt ({type(e).__name__}: "
                         f"{str(e).splitlines()[0][:120]})") from None
    table = rows(model, hidden_bits)
    return {"title": _title(ckpt["config"]), "hidden_bits": hidden_bits, "layers": [{**asdict(r), "shape": list(r.shape)} for r in table],
            "totals": totals(table)}


def run(args) -> int:
    bits = _bits(args.hidden_bits)
    s = summarize(args.checkpoint, bits)
    if args.json:
        print(json.dumps(s, indent=1))
    else:
        print(render([Row(**{**r, "shape": tuple(r["shape"])}) for r in s["layers"]], s["totals"], bits, s["title"]))
    return 0
