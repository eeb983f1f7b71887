"""Backends: the golden model's integer semantics run somewhere else (onnxruntime, the C firmware, the Verilog
under Verilator), plus the float PyTorch model, behind one small protocol and a registry by name.

Every backend has
    name, integer      integer: must agree with the golden model bit for bit (torch is float: reported only)
    adapts             whether it runs the stream-adaptive normalization (FORMAT.md 3.1)
    conv               (optional, default False) whether it runs conv layers (FORMAT.md version 2)
    conv_learn         (optional, default True) with conv: whether its learning step takes a conv model too;
                       "dense": it learns a conv model's dense layers only, the conv layers frozen (the RTL)
    available()        -> (ok, reason): reason says what is missing and how to install it
    predict(model, images, bank=0, adapt=False) -> labels int64 [n]
and backends that learn on the device also
    learn(model, images, labels, bank=0, adapt=False, every=1) -> iterator of (step, Model)
        the model after every `every`-th learning step (and after the last one), steps counted from 1.

    from metabnn import backends
    be = backends.get("c")
    backends.require(be)                    # raises BackendUnavailable (one line, exit 2) with the reason
    labels = be.predict(model, images)

`model` is always a metabnn.sim.Model (what a .mbnn file holds); each backend converts it to what it runs.
Backends import their tools lazily, so `get()` never fails on a missing onnxruntime or Verilator: `available()`
says so.
"""

from __future__ import annotations

import importlib

from metabnn.errors import MetabnnError

# name -> "module:class", in the order verify lists them
REGISTRY = {
    "golden": "metabnn.backends.golden:GoldenBackend",
    "onnx": "metabnn.backends.onnx:OnnxBackend",
    "c": "metabnn.backends.c:CBackend",
    # the Verilog under Verilator, clocked from C++ (hw/native); the cocotb path (metabnn.backends.rtl) drives
    # the same RTL from Python for the protocol tests, about 80x slower
    "rtl": "metabnn.backends.rtl_native:NativeRTL",
    "torch": "metabnn.backends.torch_float:TorchBackend",
}


class BackendUnavailable(MetabnnError):
    """A backend that was asked for cannot run here (the message says why and how to fix it)."""


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def get(name: str, **options):
    """A new backend object by registry name; options go to its constructor (e.g. checkpoint= for torch)."""
    if name not in REGISTRY:
        raise BackendUnavailable(f"unknown backend {name!r}; choose from {', '.join(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)(**options)


def require(backend, adapt: bool = False, model=None) -> None:
    """Raise BackendUnavailable unless `backend` can run here (with `adapt` if asked, on `model` if given: a
    conv model, FORMAT.md version 2, runs only on the backends that say `conv = True`)."""
    if model is not None and model.has_conv and not getattr(backend, "conv", False):
        raise BackendUnavailable(f"backend {backend.name} does not run conv layers yet (FORMAT.md version 2): "
                                 f"leave {backend.name} out of --backends (golden, onnx, c and torch run them)")
    ok, why = backend.available()
    if not ok:
        raise BackendUnavailable(f"backend {backend.name} cannot run: {why}")
    if adapt and not backend.adapts:
        raise BackendUnavailable(f"backend {backend.name} runs frozen normalization only: drop --adapt "
                                 f"or leave {backend.name} out of --backends")
