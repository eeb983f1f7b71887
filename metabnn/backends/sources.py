"""Where the C and RTL sources are: beside the package in an installed wheel, at the repo root in a checkout.

The wheel carries firmware/ and hw/ as package data (`metabnn/firmware`, `metabnn/hw`); a source checkout
has them next to the `metabnn/` folder. Builds never go to either place: see cache.py.
"""

from __future__ import annotations

from pathlib import Path

import metabnn

_PACKAGE = Path(metabnn.__file__).resolve().parent


def source_root(name: str) -> Path | None:
    """The folder holding `name` ("firmware" or "hw"), or None when neither the wheel nor a checkout has it."""
    if name not in ("firmware", "hw"):
        raise ValueError(f"unknown source tree {name!r}")
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        # a marker file of each tree, so an unrelated folder of that name is not taken for it
        marker = candidate / ("include/metabnn.h" if name == "firmware" else "rtl/mbnn_top.sv")
        if marker.is_file():
            return candidate
    return None


def file_list(top: str) -> list[Path]:
    """The RTL sources of `top` from its file list hw/rtl/<top>.f (one source a line, relative to hw/rtl, `//`
    comment lines): the one list that the backends, Verilator's lint (`-F`), the tests and `metabnn fpga` all read."""
    from metabnn.errors import MetabnnError

    hw = source_root("hw")
    listing = hw / "rtl" / f"{top}.f" if hw is not None else None
    if listing is None or not listing.is_file():
        raise MetabnnError(f"no file list for {top!r}: hw/rtl/{top}.f is missing from this installation")
    names = [line.strip() for line in listing.read_text().splitlines()]
    return [listing.parent / n for n in names if n and not n.startswith("//")]
