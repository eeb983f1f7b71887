"""metabnn.fpga.memories: the wide sign-word layout the flow writes for synthesis (l<l>_wpe.hex), which layers'
sign words go to the iCE40 UP5K's SPRAM, and the 'W' commands that fill it. No tools needed."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from metabnn.fpga import memories
from metabnn.sim import random_model


def test_wide_words_layout():
    """wmem[g*W + w] holds word w of neuron g*PE + p at bits [32p +: 32]; lanes past N are zero."""
    signs = np.arange(1, 5 * 3 + 1, dtype=np.uint32).reshape(5, 3) * 0x01010101
    wide = memories.wide_words(signs, 2)
    assert len(wide) == 3 * 3  # ceil(5/2) groups x W
    for g in range(3):
        for w in range(3):
            v = wide[g * 3 + w]
            assert v & 0xFFFFFFFF == int(signs[2 * g, w])
            assert v >> 32 == (int(signs[2 * g + 1, w]) if 2 * g + 1 < 5 else 0)
    assert memories.wide_words(signs, 1) == [int(v) for v in signs.reshape(-1)]  # PE 1: FORMAT order


def test_write_wide_files(tmp_path):
    model = random_model((40, 12, 10), seed=2)
    assert memories.write_wide(model, tmp_path, 1) == []  # PE 1 reads the FORMAT file itself
    paths = memories.write_wide(model, tmp_path, 3)
    assert [p.name for p in paths] == ["l0_wpe.hex", "l1_wpe.hex"]
    lines = paths[0].read_text().split()
    assert len(lines) == 4 * 2 and all(len(s) == 24 for s in lines)  # 4 groups x W 2, 96-bit words
    assert [int(s, 16) for s in lines] == memories.wide_words(model.layers[0].signs, 3)


def test_spram_layers_784_128_128_10():
    """The issue's model: at PE 1 the two big layers take two blocks each (all four); at PE 2 a layer takes
    four, the largest (layer 0) wins; never with --learn, never on a part without SPRAM."""
    model = random_model((784, 128, 128, 10), seed=1)
    assert memories.spram_layers(model, "ice40-up5k", 1, False) == [0, 1]
    assert memories.spram_layers(model, "ice40-up5k", 2, False) == [0]
    assert memories.spram_layers(model, "ice40-up5k", 3, False) == []  # 6 blocks a layer: more than 4
    assert memories.spram_layers(model, "ice40-up5k", 1, True) == []
    assert memories.spram_layers(model, "ecp5-25k", 1, False) == []
    assert memories.spram_layers(model, "ice40-hx8k", 1, False) == []


def test_spram_depth_limit():
    """A layer deeper than one block (16K wide words) stays in block RAM."""
    model = random_model((32 * 1025, 16, 10), seed=0)  # W = 1025 words a row, 16 rows: 16,400 words
    assert memories.spram_layers(model, "ice40-up5k", 1, False) == [1]


def test_sign_writes_cover_every_word():
    model = random_model((40, 12, 10), seed=3)
    cmds = memories.sign_writes(model, [0, 1])
    lay0, lay1 = model.layers[0], model.layers[1]
    assert len(cmds) == lay0.N * lay0.W + lay1.N * lay1.W
    seen = {}
    for c in cmds:
        assert c[:1] == b"W" and len(c) == 15
        layer, sel, addr, data, mask = struct.unpack("<BBIII", c[1:])
        assert sel == 0 and mask == 0xFFFFFFFF  # whole words: direct SPRAM writes, no read-modify-write
        seen[(layer, addr)] = data
    for l, lay in ((0, lay0), (1, lay1)):
        for a, v in enumerate(lay.signs.reshape(-1)):
            assert seen[(l, a)] == int(v)


def test_sign_masks_are_whole_bytes():
    """The engine writes sign words in whole bytes (mbnn_layer.sv, docs/HARDWARE.md): the host's 'W' command
    takes a sign mask of whole bytes and refuses one that splits a byte, in one line naming it; other memories
    ignore the mask."""
    from metabnn.fpga import protocol

    for ok in (0xFFFFFFFF, 0, 0x00FF00FF, 0xFF000000, 0x0000FF00):
        assert protocol.sign_mask_problem(ok) is None
        assert protocol.mem_write(0, 0, 3, 0x12345678, ok)[-4:] == ok.to_bytes(4, "little")
    for bad, byte in ((0x0FFF, 1), (0x1, 0), (0xFFFFFF7F, 0), (0x80FFFFFF, 3)):
        why = protocol.sign_mask_problem(bad)
        assert why and f"splits byte {byte}" in why and "\n" not in why
        with pytest.raises(ValueError, match="whole bytes"):
            protocol.mem_write(0, 0, 3, 0, bad)
    assert protocol.mem_write(1, 2, 0, 5, 0x1)  # C: the mask is not used
