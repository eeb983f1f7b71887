"""How `metabnn fpga` builds the engine's sign-word memories (hw/rtl/mbnn_layer.sv, docs/HARDWARE.md).

- The wide layout: the PE lanes of a layer read one wide word, wmem[g*W + w] = the 32-bit words w of neurons
  g*PE + p at bits [32p +: 32]. Simulation rearranges l<l>_w.hex (FORMAT order) into it at start; Yosys cannot,
  so at PE > 1 the flow writes l<l>_wpe.hex, the same contents in that layout.
"""

from __future__ import annotations

from pathlib import Path

from metabnn.export.readmemh import layer_file
from metabnn.fileio import atomic_write_text
from metabnn.sim.model import Model


def wide_words(signs, pe: int) -> list[int]:
    """A layer's sign words [N, W] (FORMAT order) as ceil(N/PE)*W wide words of PE*32 bits, lanes past N zero."""
    n, w = signs.shape
    groups = -(-n // pe)
    return [sum(int(signs[g * pe + p, i]) << (32 * p) for p in range(pe) if g * pe + p < n)
            for g in range(groups) for i in range(w)]


def write_wide(model: Model, hexdir: Path, pe: int) -> list[Path]:
    """l<l>_wpe.hex for every layer (PE > 1): what mbnn_chain's synthesis build reads into the wide memories."""
    if pe == 1:
        return []
    paths = []
    for l, lay in enumerate(model.layers):
        path = layer_file(hexdir, l, "wpe")
        atomic_write_text(path, "".join(f"{v:0{8 * pe}x}\n" for v in wide_words(lay.signs, pe)))
        paths.append(path)
    return paths
