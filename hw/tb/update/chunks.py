"""Packing between metabnn.sim arrays and the update unit's chunked memories.

The unit (hw/rtl/mbnn_update.sv) stores a row of K synapses as G = ceil(K / LANES) chunks;
chunk a = j * G + g holds synapses g*LANES + l at lane l: HB bits each in the hidden
memory, one bit each in the sign words, XB bits each (8 for pixels, 1 for bits) in x.
Pure NumPy/int helpers, no cocotb, so the packing is testable on its own.
"""

from __future__ import annotations

import numpy as np


def n_chunks(K: int, lanes: int) -> int:
    return (K + lanes - 1) // lanes


def pack_lanes(values, width: int, lanes: int) -> int:
    """Little-endian pack of up to `lanes` integers (two's complement, `width` bits each)."""
    mask = (1 << width) - 1
    word = 0
    for l, v in enumerate(values):
        word |= (int(v) & mask) << (l * width)
    return word


def unpack_lanes(word: int, width: int, lanes: int, signed: bool) -> list[int]:
    mask = (1 << width) - 1
    out = []
    for l in range(lanes):
        v = (word >> (l * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def hidden_to_chunks(hidden: np.ndarray, hb: int, lanes: int) -> list[int]:
    """hidden int [N, K] -> N*G chunk words (padding lanes 0)."""
    N, K = hidden.shape
    G = n_chunks(K, lanes)
    words = []
    for j in range(N):
        row = [int(v) for v in hidden[j]] + [0] * (G * lanes - K)
        for g in range(G):
            words.append(pack_lanes(row[g * lanes:(g + 1) * lanes], hb, lanes))
    return words


def chunks_to_hidden(words: list[int], N: int, K: int, hb: int, lanes: int) -> np.ndarray:
    G = n_chunks(K, lanes)
    out = np.zeros((N, G * lanes), dtype=np.int64)
    for a, w in enumerate(words):
        j, g = divmod(a, G)
        out[j, g * lanes:(g + 1) * lanes] = unpack_lanes(w, hb, lanes, signed=True)
    return out[:, :K]


def signs_to_chunks(hidden: np.ndarray, lanes: int) -> list[int]:
    """The sign words the unit must write for hidden [N, K]: bit l = (h >= 0), padding 0."""
    return hidden_to_chunks((np.asarray(hidden) >= 0).astype(np.int64), 1, lanes)


def x_to_chunks(x: np.ndarray, pixels: bool, lanes: int) -> list[int]:
    """Layer input [K] -> G chunk words: pixels as 8-bit lanes, +-1 as bits (1 = +1)."""
    x = np.asarray(x, dtype=np.int64)
    vals = x if pixels else (x > 0).astype(np.int64)
    xb = 8 if pixels else 1
    G = n_chunks(len(vals), lanes)
    padded = list(vals) + [0] * (G * lanes - len(vals))
    return [pack_lanes(padded[g * lanes:(g + 1) * lanes], xb, lanes) for g in range(G)]
