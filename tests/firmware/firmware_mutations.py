"""Mutated .mbnn images for the loader tests: random byte flips (with and without a fixed-up
CRC), header and descriptor fields set to edge values, truncations and extensions, and
section offsets pointed at each other. Most mutants get a valid CRC so they reach the deep
checks instead of stopping at the checksum."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from metabnn.export.mbnn import to_bytes
from metabnn.sim import random_conv_model, random_model

EDGE_U32 = [0, 1, 2, 3, 4, 7, 8, 23, 24, 31, 32, 255, 256, 16384, 16385, 65535, 65536, 65537,
            0x7FFFFFFF, 0x80000000, 0xFFFFFFF8, 0xFFFFFFFF]


def seal(b: bytearray, fix_size: bool = False) -> bytes:
    if fix_size:
        struct.pack_into("<I", b, 12, len(b))
    if len(b) >= 4:
        struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
    return bytes(b)


def base_images() -> list[bytes]:
    return [
        to_bytes(random_model((40, 20, 5), bits=8, table_bits=3, seed=1)),
        to_bytes(random_model((33, 9, 7, 3), bits=12, table_bits=6, banks=2, adapt_shift=3, seed=2)),
        to_bytes(random_model((8, 40, 2), bits=2, table_bits=0, banks=3, seed=3)),
        # stochastic rounding: the descriptor's rounding, sr_seed and sr_step fields are live (FORMAT.md 4.4)
        to_bytes(random_model((24, 12, 4), bits=4, table_bits=2, seed=4, rounding=1, sr_step=77)),
        # version 2 (FORMAT.md 3.3): conv layers, the op byte and the geometry bytes 52..61 are live
        to_bytes(random_conv_model((2, 9, 9), ((5, 3, 1, 1, 2), (33, 3, 2, 1, 0)), (6, 4), bits=6, table_bits=2,
                                   banks=2, seed=5)),
        to_bytes(random_conv_model((1, 6, 5), ((3, 2, 1, 0, 2),), (3,), seed=6)),
        # away tables (FORMAT.md 4.2.1): descriptor byte 42 is live and the table sections hold F then G
        to_bytes(_with_away(random_model((30, 16, 4), bits=6, table_bits=3, seed=7))),
    ]


def _with_away(model):
    for l, lay in enumerate(model.layers):
        lay.away = ((np.arange(1 << lay.table_bits) * 7919 + 1000 * l) % 32769).astype(np.uint16)
    return model


def mutants(n: int, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bases = base_images()
    out = []
    for _ in range(n):
        base = bases[int(rng.integers(len(bases)))]
        b = bytearray(base)
        L = struct.unpack_from("<H", b, 6)[0]
        kind = int(rng.integers(8))
        if kind == 0:  # random bytes, CRC left stale
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
            out.append(bytes(b))
            continue
        if kind == 1:  # random bytes anywhere, CRC fixed
            for _ in range(int(rng.integers(1, 4))):
                b[int(rng.integers(len(b) - 4))] ^= 1 << int(rng.integers(8))
        elif kind == 2:  # a header or descriptor field set to an edge value
            pos = int(rng.integers(0, (24 + 64 * L) // 2)) * 2
            if rng.random() < 0.5 and pos + 4 <= 24 + 64 * L:
                struct.pack_into("<I", b, pos & ~3, int(rng.choice(EDGE_U32)))
            else:
                b[pos] = int(rng.choice([0, 1, 2, 4, 12, 13, 16, 17, 24, 25, 31, 32, 40, 41, 255]))
        elif kind == 3:  # a section offset pointed at another section, or misaligned
            l = int(rng.integers(L))
            field = 24 + 64 * l + 24 + 4 * int(rng.integers(4))
            offs = [struct.unpack_from("<I", b, 24 + 64 * k + 24 + 4 * f)[0] for k in range(L) for f in range(4)]
            new = int(rng.choice(offs)) + int(rng.choice([0, 0, 4, 8, -8, 1]))
            struct.pack_into("<I", b, field, new & 0xFFFFFFFF)
        elif kind == 4:  # truncated or extended, size field fixed or not
            cut = int(rng.integers(-64, 64))
            b = b[: max(0, len(b) + cut)] if cut < 0 else b + bytes(cut)
            out.append(seal(b, fix_size=bool(rng.random() < 0.7)) if len(b) >= 28 else bytes(b))
            continue
        elif kind == 5:  # L or B changed
            struct.pack_into("<H", b, 6 if rng.random() < 0.5 else 8, int(rng.choice([0, 1, 2, 3, 4, 16, 17, 255, 256])))
        elif kind == 6:  # a value inside the data area (hidden, table, norm record) set to an edge
            pos = int(rng.integers(24 + 64 * L, len(b) - 8)) & ~3
            struct.pack_into("<I", b, pos, int(rng.choice(EDGE_U32)))
        else:  # a gap byte or the version / magic
            pos = int(rng.choice([0, 3, 4, 5, 10, 11, 20, 23]))
            b[pos] ^= int(rng.integers(1, 256))
        out.append(seal(b))
    return out
