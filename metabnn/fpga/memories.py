"""How `metabnn fpga` builds the engine's sign-word memories for a part (hw/rtl/mbnn_layer.sv, docs/FPGA.md
"iCE40 UP5K: signs in SPRAM").

- The wide layout: the PE lanes of a layer read one wide word, wmem[g*W + w] = the 32-bit words w of neurons
  g*PE + p at bits [32p +: 32]. Simulation rearranges l<l>_w.hex (FORMAT order) into it at start; Yosys cannot,
  so at PE > 1 the flow writes l<l>_wpe.hex, the same contents in that layout.
- SPRAM (iCE40 UP5K, inference): the largest sign memories go to the four 16K x 16 SPRAM blocks (2*PE blocks a
  layer, at most 16K wide words deep), which frees the block RAMs; SPRAM has no initial contents, so the host
  writes those sign words after configuration with the UART's 'W' command (sign_writes).
"""

from __future__ import annotations

from pathlib import Path

from metabnn.export.readmemh import layer_file
from metabnn.fileio import atomic_write_text
from metabnn.fpga import protocol
from metabnn.sim.model import Model

SPRAM_BLOCKS = {"ice40-up5k": 4}   # SB_SPRAM256KA blocks of the part (iCE40 UltraPlus data sheet)
SPRAM_DEPTH = 16384                # words of 16 bits per block


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


def spram_layers(model: Model, device: str, pe: int, learn: bool) -> list[int]:
    """The layers whose sign words go to SPRAM on this part: the largest first while blocks are left (inference
    only: the learning top keeps its engines' signs in block RAM)."""
    blocks = 0 if learn else SPRAM_BLOCKS.get(device, 0)
    chosen = []
    for l in sorted(range(len(model.layers)), key=lambda i: -model.layers[i].signs.size):
        lay = model.layers[l]
        need, depth = 2 * pe, -(-lay.N // pe) * lay.W
        if need <= blocks and depth <= SPRAM_DEPTH:
            chosen.append(l)
            blocks -= need
    return sorted(chosen)


def sign_writes(model: Model, layers) -> list[bytes]:
    """The 'W' commands that load these layers' sign words (all 32 bits of each) into a fresh bitstream's SPRAM;
    send each and read its ACK before the next (metabnn.fpga.protocol), before the first image."""
    out = []
    for l in layers:
        words = model.layers[l].signs.reshape(-1)   # FORMAT order: word j*W + i
        out += [protocol.mem_write(l, 0, a, int(v)) for a, v in enumerate(words)]
    return out
