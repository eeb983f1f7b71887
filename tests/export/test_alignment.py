"""Section alignment of the .mbnn writer (FORMAT.md 6): packed signs on 64-byte file offsets, so a
64-byte-aligned buffer gives the binary kernel cache-line-aligned rows; readers still take any
multiple of 8, so files written before the change (8-byte sections) load unchanged."""

import struct
import zlib

import numpy as np
import pytest

from mbnn_layout import relayout_8, sections, sign_offsets

from metabnn.export import FormatError, from_bytes, to_bytes
from metabnn.export.mbnn import DESC, HEADER, SIGN_ALIGN
from metabnn.sim import predict, random_model
from metabnn.sim.bits import n_words


def _meta(n_banks: int) -> dict:
    return {"version": 1, "spec": "pmnist:2", "seed": 3, "kind": "tasks",
            "tasks": [{"name": f"pmnist{i}", "test_set": i - 1} for i in (1, 2)],
            "test_sets": [{"name": f"pmnist{i}", "bank": (i - 1) % n_banks} for i in (1, 2)]}


def _random_case(seed: int):
    """A model of random depth, widths (from 4: random_model's thresholds need K >= 3; rarely a multiple of
    32), bits, banks, rounding and metadata."""
    rng = np.random.default_rng(seed)
    L = int(rng.integers(2, 6))
    sizes = [int(rng.integers(4, 300)) for _ in range(L)] + [int(rng.integers(2, 12))]
    bits = int(rng.integers(2, 17))
    banks = int(rng.integers(1, 5))
    m = random_model(tuple(sizes), bits=bits, table_bits=int(rng.integers(0, min(bits - 1, 12) + 1)), banks=banks,
                     adapt_shift=int(rng.integers(0, 4)), seed=seed, rounding=int(rng.integers(0, 2)))
    if rng.random() < 0.5:
        m.meta = _meta(banks)
    return m


@pytest.mark.parametrize("seed", range(40))
def test_every_sign_section_on_64_bytes_and_canonical(seed):
    m = _random_case(seed)
    data = to_bytes(m)
    assert SIGN_ALIGN == 64 and all(off % 64 == 0 for off in sign_offsets(data)), sign_offsets(data)
    assert all(off % 8 == 0 for _, off, _ in sections(data))
    assert to_bytes(from_bytes(data)) == data  # export -> load -> export, byte for byte


@pytest.mark.parametrize("seed", range(12))
def test_an_8_aligned_file_of_before_loads_and_reexports_aligned(seed):
    m = _random_case(seed)
    new = to_bytes(m)
    old = relayout_8(new)
    # the crafted file really is of the old kind: some sign section off a cache line, every section packed at 8
    assert any(off % 64 for off in sign_offsets(old)) and len(old) <= len(new)
    # its cost: at most 56 bytes of zeros per layer, in front of that layer's signs
    assert len(new) - len(old) <= 56 * len(m.layers)
    m_old = from_bytes(old)
    assert to_bytes(m_old) == new  # the same model; writing it again moves its signs onto cache lines
    x = np.random.default_rng(seed).integers(0, 256, (20, m.input_size)).astype(np.uint8)
    assert np.array_equal(predict(m_old, x), predict(m, x))


def test_a_section_off_by_8_is_still_accepted_and_off_by_4_is_not():
    """The reader's rule stays "a multiple of 8": a sign section moved 8 bytes later loads, 4 bytes does not."""
    m = random_model((40, 33, 10), bits=8, seed=1)
    data = relayout_8(to_bytes(m))
    field = HEADER.size + DESC.size * 1 + 24  # layer 1's signs
    off = struct.unpack_from("<I", data, field)[0]
    nbytes = 4 * 10 * n_words(33)

    def moved(by: int) -> bytes:
        b = bytearray(data)
        sig = bytes(b[off: off + nbytes])
        # grow the file by 8 zero bytes right after the section, then slide it `by` bytes into them
        b[off + nbytes: off + nbytes] = bytes(8)
        for fld, o, _ in sections(data):
            if o > off:
                struct.pack_into("<I", b, fld, o + 8)
        b[off: off + nbytes + 8] = bytes(by) + sig + bytes(8 - by)
        struct.pack_into("<I", b, field, off + by)
        struct.pack_into("<I", b, 12, len(b))
        struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
        return bytes(b)

    assert to_bytes(from_bytes(moved(8))) == to_bytes(m)
    with pytest.raises(FormatError, match="not aligned to 8"):
        from_bytes(moved(4))
