"""metabnn.fpga.memories: the wide sign-word layout the flow writes for synthesis (l<l>_wpe.hex). No tools
needed."""

from __future__ import annotations

import numpy as np

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
