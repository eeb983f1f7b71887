"""Bit packing of +-1 vectors (docs/FORMAT.md section 2).

Bit 1 = +1, bit 0 = -1; element i at bit (i mod 32) of uint32 word i // 32;
padding bits of the last word are 0.
"""

from __future__ import annotations

import numpy as np


def n_words(k: int) -> int:
    return (k + 31) // 32


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool/0-1 array [..., K] -> uint32 words [..., ceil(K/32)] (padding zero)."""
    bits = np.asarray(bits).astype(bool)
    k = bits.shape[-1]
    w = n_words(k)
    padded = np.zeros(bits.shape[:-1] + (w * 32,), dtype=np.uint8)
    padded[..., :k] = bits
    # little-endian bit order inside each byte, bytes little-endian inside each word
    as_bytes = np.packbits(padded.reshape(bits.shape[:-1] + (w * 4, 8)), axis=-1, bitorder="little")
    return as_bytes.reshape(bits.shape[:-1] + (w * 4,)).view("<u4").astype(np.uint32)


def unpack_bits(words: np.ndarray, k: int) -> np.ndarray:
    """uint32 words [..., W] -> bool array [..., K]."""
    words = np.ascontiguousarray(np.asarray(words, dtype="<u4"))
    as_bytes = words.view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")
    return bits[..., :k].astype(bool)


def to_pm1(bits: np.ndarray, dtype=np.int8) -> np.ndarray:
    """bool -> +1 / -1."""
    return np.where(bits, 1, -1).astype(dtype)


def popcount32(words: np.ndarray) -> np.ndarray:
    """Population count of every uint32 (vectorised)."""
    return np.bitwise_count(np.asarray(words, dtype=np.uint32)).astype(np.int64)
