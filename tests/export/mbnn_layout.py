"""Reading a .mbnn file's layout from its header and descriptors alone (FORMAT.md 6), and laying a file out as
writers did before the 64-byte sign rule, so the tests of the Python and the C reader can hold old files too."""

import struct
import zlib

from metabnn.export.mbnn import DESC, HEADER
from metabnn.sim.bits import n_words


def sections(data: bytes) -> list[tuple[int, int, int]]:
    """(header field position, offset, byte length) of every section, read from the header and descriptors."""
    L, B = struct.unpack_from("<HH", data, 6)
    out = [(16, struct.unpack_from("<I", data, 16)[0], 512)]
    meta_off = struct.unpack_from("<I", data, 20)[0]
    if meta_off:
        out.append((20, meta_off, 4 + struct.unpack_from("<I", data, meta_off)[0]))
    for l in range(L):
        d = HEADER.size + DESC.size * l
        K, N, _, out_kind, bits, tbits = struct.unpack_from("<IIBBBB", data, d)
        o_signs, o_hidden, o_table, o_norm = struct.unpack_from("<IIII", data, d + 24)
        out += [(d + 24, o_signs, 4 * N * n_words(K)), (d + 28, o_hidden, (1 if bits <= 8 else 2) * N * K),
                (d + 32, o_table, 2 << tbits), (d + 36, o_norm, (20 if out_kind == 0 else 16) * B * N)]
    return out


def relayout_8(data: bytes) -> bytes:
    """The same model laid out as writers before 64-byte signs did: every section, in file order, at the next
    multiple of 8 after the previous one. Built from the descriptors alone, not by the exporter."""
    L = struct.unpack_from("<H", data, 6)[0]
    secs = sorted(sections(data), key=lambda s: s[1])
    out = bytearray(data[:HEADER.size + DESC.size * L])
    for field, off, nbytes in secs:
        struct.pack_into("<I", out, field, len(out))
        out += data[off: off + nbytes] + bytes(-nbytes % 8)
    out += bytes(4)
    struct.pack_into("<I", out, 12, len(out))
    struct.pack_into("<I", out, len(out) - 4, zlib.crc32(bytes(out[:-4])) & 0xFFFFFFFF)
    return bytes(out)


def sign_offsets(data: bytes) -> list[int]:
    L = struct.unpack_from("<H", data, 6)[0]
    return [struct.unpack_from("<I", data, HEADER.size + DESC.size * l + 24)[0] for l in range(L)]
