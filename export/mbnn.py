"""The `.mbnn` container (docs/FORMAT.md section 6): bytes <-> metabnn.sim.Model.

The writer is canonical (sections in a fixed order, packed signs on 64-byte offsets, zero padding), so
export -> load -> export is byte-identical. The reader trusts nothing: every
size is checked against the buffer before it is read, so a corrupt file raises
FormatError naming the problem, never a NumPy, struct or memory error.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import zlib
from pathlib import Path

import numpy as np

from metabnn.export import metadata
from metabnn.export.errors import FormatError
from metabnn.fileio import atomic_write_bytes
from metabnn.sim.bits import n_words, pack_bits
from metabnn.sim.model import (BITS, CONV2D, DENSE, NEAREST, PIXELS, SCORES, SIGN, SOFTMAX_TABLE_SIZE, STOCHASTIC,
                               ConvGeom, Layer, Model)

MAGIC = b"MBNN"
# 1: dense layers only; 2: conv2d layers too (FORMAT.md 3.3). A dense model is always written as version 1, so its
# bytes do not depend on this reader knowing version 2.
VERSION_DENSE, VERSION_CONV = 1, 2
VERSIONS = (VERSION_DENSE, VERSION_CONV)
HEADER = struct.Struct("<4sHHHHII I")  # magic, version, L, B, reserved, size, exp offset, metadata offset
# ... offsets, rounding, op (v2; reserved in v1), away (FORMAT.md 4.2.1), reserved, sr_seed, sr_step,
# conv geometry (v2: in_c, in_h, in_w, kernel, stride, pad, pool; reserved in v1), reserved
DESC = struct.Struct("<IIBBBBBBBBffIIIIBBBBIIHHHBBBB2s")
assert HEADER.size == 24 and DESC.size == 64

MAX_LAYERS, MAX_BANKS = 16, 255
MAX_K_PIXELS, MAX_K, MAX_N = 16384, 65536, 65536
MAX_SIDE, MAX_KERNEL, MAX_STRIDE, MAX_IMAGE = 1024, 16, 16, 1 << 20  # conv maps, FORMAT.md 6
MAX_FILE = 1 << 31
G_MAX, B_MAX = 32767, 1 << 47
SIGN_REC = np.dtype([("M", "<i4"), ("C", "<i4"), ("lo", "<i4"), ("hi", "<i4"), ("f", "<i4")])
SCORE_REC = np.dtype([("M", "<i4"), ("g", "<i4"), ("b", "<i8")])
assert SIGN_REC.itemsize == 20 and SCORE_REC.itemsize == 16


SIGN_ALIGN = 64  # writers start every packed-sign section on a cache line (FORMAT.md 6); readers accept 8


def _align(n: int, a: int = 8) -> int:
    return (n + a - 1) & ~(a - 1)


def _hidden_dtype(bits: int) -> str:
    return "<i1" if bits <= 8 else "<i2"


# ----------------------------------------------------------------------------- writer

def to_bytes(model: Model) -> bytes:
    """Serialize a Model. The model is validated by reading the result back."""
    L, B = len(model.layers), model.n_banks
    chunks: list[bytes] = []
    pos = HEADER.size + DESC.size * L

    def place(data: bytes, align: int = 8) -> int:
        """Append a section at the next multiple of `align`; the gap before it and its tail are zeros."""
        nonlocal pos
        gap = _align(pos, align) - pos
        off = pos + gap
        padded = b"\0" * gap + data + b"\0" * (_align(len(data)) - len(data))
        chunks.append(padded)
        pos += len(padded)
        return off

    exp_off = place(np.asarray(model.exp_table, dtype="<u2").tobytes())
    descs = []
    version = VERSION_CONV if model.has_conv else VERSION_DENSE
    for lay in model.layers:
        # a cache line: with the image in a 64-byte-aligned buffer, the binary kernel's rows start there
        o_signs = place(np.ascontiguousarray(lay.signs, dtype="<u4").tobytes(), SIGN_ALIGN)
        o_hidden = place(np.ascontiguousarray(lay.hidden).astype(_hidden_dtype(lay.bits)).tobytes())
        # the away table G (FORMAT.md 4.2.1) follows F in the same section
        tables = [lay.table] if lay.away is None else [lay.table, lay.away]
        o_table = place(b"".join(np.asarray(t, dtype="<u2").tobytes() for t in tables))
        if lay.out_kind == SIGN:
            rec = np.zeros((B, lay.N), SIGN_REC)
            rec["M"], rec["C"], rec["lo"], rec["hi"], rec["f"] = lay.M, lay.C, lay.lo, lay.hi, lay.flip
        else:
            rec = np.zeros((B, lay.N), SCORE_REC)
            rec["M"], rec["g"], rec["b"] = lay.M, lay.g, lay.b
        o_norm = place(rec.tobytes())
        g = lay.conv or ConvGeom(0, 0, 0, 0, 0, 0, 0)  # a dense layer's geometry bytes are zero
        descs.append(DESC.pack(lay.K, lay.N, lay.in_kind, lay.out_kind, lay.bits, lay.table_bits,
                               lay.lr_shift, lay.bshift, lay.adapt_shift, lay.score_frac,
                               float(lay.meta), float(lay.scale), o_signs, o_hidden, o_table, o_norm,
                               lay.rounding, lay.op, int(lay.away is not None), 0, lay.sr_seed, lay.sr_step,
                               g.in_c, g.in_h, g.in_w, g.kernel, g.stride, g.pad, g.pool, b"\0" * 2))
    meta_off = 0  # 0: no metadata section (FORMAT.md 6.1); written last, so old layouts do not move
    if model.meta is not None:
        blob = metadata.encode(model.meta)
        meta_off = place(struct.pack("<I", len(blob)) + blob)
    size = pos + 4
    head = HEADER.pack(MAGIC, version, L, B, 0, size, exp_off, meta_off)
    body = head + b"".join(descs) + b"".join(chunks)
    data = body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)
    from_bytes(data)  # never write a file our own reader would reject
    return data


def save(model: Model, path) -> None:
    atomic_write_bytes(path, to_bytes(model))


# ----------------------------------------------------------------------------- reader

def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise FormatError(msg)


def _range(name: str, arr: np.ndarray, lo: int, hi: int, where: str) -> None:
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        bad = arr[(arr < lo) | (arr > hi)].flat[0]
        raise FormatError(f"{where}: {name} value {int(bad)} outside [{lo}, {hi}]")


def _check_header(head: bytes, n: int) -> tuple:
    """The header fields, once magic, version and size agree with an `n`-byte file.

    Needs only the first 24 bytes, so load() can refuse a huge or foreign file before reading it."""
    _check(n >= HEADER.size + 4, f"file too short ({n} bytes) to hold a header")
    fields = HEADER.unpack_from(head, 0)
    magic, version, size = fields[0], fields[1], fields[5]
    _check(magic == MAGIC, f"not a .mbnn file (magic {magic!r}, expected {MAGIC!r})")
    _check(version in VERSIONS, f"unsupported format version {version} (this reader knows 1 and 2)")
    _check(size == n, f"header says {size} bytes but the file has {n} (truncated or padded)")
    _check(n <= MAX_FILE, f"file of {n} bytes exceeds the 2 GiB limit")
    return fields


def _metadata_blob(off: int, section) -> bytes | None:
    """The JSON bytes of the metadata section (FORMAT.md 6.1) at header offset `off`, 0 meaning none."""
    if off == 0:
        return None
    nbytes = struct.unpack_from("<I", section(off, 4, "metadata length"))[0]
    _check(1 <= nbytes <= metadata.MAX_META_BYTES,
           f"metadata: length {nbytes} outside 1..{metadata.MAX_META_BYTES}")
    return section(off + 4, nbytes, "metadata", aligned=False)


def from_bytes(data: bytes) -> Model:
    """Parse and validate a `.mbnn` image; raises FormatError on any problem."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("expected bytes")
    data = bytes(data)
    n = len(data)
    magic, version, L, B, res0, size, exp_off, meta_off = _check_header(data, n)
    crc_stored = struct.unpack_from("<I", data, n - 4)[0]
    crc = zlib.crc32(data[: n - 4]) & 0xFFFFFFFF
    _check(crc == crc_stored, f"checksum mismatch (stored {crc_stored:#010x}, computed {crc:#010x}): file is corrupt")
    _check(res0 == 0, "reserved header field (offset 10) is not zero")
    _check(2 <= L <= MAX_LAYERS, f"layer count {L} outside 2..{MAX_LAYERS}")
    _check(1 <= B <= MAX_BANKS, f"bank count {B} outside 1..{MAX_BANKS}")
    desc_end = HEADER.size + DESC.size * L
    _check(desc_end <= n - 4, "file too short for its layer descriptors")

    sections: list[tuple[int, int, str]] = [(0, desc_end, "header")]

    def section(off: int, nbytes: int, what: str, aligned: bool = True) -> bytes:
        _check(not aligned or off % 8 == 0, f"{what}: offset {off} not aligned to 8 bytes")
        _check(off >= desc_end and off + nbytes <= n - 4,
               f"{what}: bytes [{off}, {off + nbytes}) outside the data area [{desc_end}, {n - 4})")
        sections.append((off, nbytes, what))
        return data[off: off + nbytes]

    exp_table = np.frombuffer(section(exp_off, 2 * SOFTMAX_TABLE_SIZE, "exp table"), "<u2").astype(np.uint16)
    _check(int(exp_table[0]) == 32768, f"exp table: E[0] = {int(exp_table[0])}, must be 32768")
    _range("E", exp_table, 0, 32768, "exp table")

    layers = []
    prev = None
    for l in range(L):
        where = f"layer {l}"
        (K, N, in_kind, out_kind, bits, tbits, lr_shift, bshift, adapt, qfrac, meta, scale,
         o_signs, o_hidden, o_table, o_norm, rounding, op, away, res1, sr_seed, sr_step, *geom, res2) = \
            DESC.unpack_from(data, HEADER.size + DESC.size * l)
        _check(res1 == 0 and res2 == b"\0" * 2 and (version == VERSION_CONV or (op == 0 and not any(geom))),
               f"{where}: reserved descriptor bytes are not zero")
        _check(rounding in (NEAREST, STOCHASTIC), f"{where}: rounding {rounding} must be 0 (nearest) or 1 (stochastic)")
        _check(away in (0, 1), f"{where}: away {away} must be 0 (no away table) or 1 (FORMAT.md 4.2.1)")
        _check(rounding == STOCHASTIC or sr_seed == sr_step == 0,
               f"{where}: sr_seed {sr_seed} and sr_step {sr_step} must be 0 when rounding is nearest")
        conv = _conv_geom(op, geom, K, adapt, prev, where)
        _check(conv is None or l < L - 1, f"{where}: the output layer must be dense (a conv layer has no scores)")
        want_in = PIXELS if l == 0 else BITS
        want_out = SCORES if l == L - 1 else SIGN
        _check(in_kind == want_in, f"{where}: input kind {in_kind}, expected {want_in} ({'pixels' if want_in == PIXELS else 'bits'})")
        _check(out_kind == want_out, f"{where}: output kind {out_kind}, expected {want_out} ({'sign' if want_out == SIGN else 'scores'})")
        kmax = MAX_K_PIXELS if in_kind == PIXELS else MAX_K
        _check(1 <= K <= kmax, f"{where}: K = {K} outside 1..{kmax}")
        _check(1 <= N <= MAX_N, f"{where}: N = {N} outside 1..{MAX_N}")
        if conv is None and prev is not None and K != prev.out_size:
            what = f"N = {prev.N}" if prev.conv is None else f"{prev.out_size} outputs"
            raise FormatError(f"{where}: K = {K} does not match the previous layer's {what}")
        _check(2 <= bits <= 16, f"{where}: hidden bits {bits} outside 2..16")
        _check(0 <= tbits <= min(bits - 1, 12), f"{where}: table bits {tbits} outside 0..{min(bits - 1, 12)}")
        _check(lr_shift <= 31 and bshift <= 31, f"{where}: shift out of range (lr_shift {lr_shift}, bshift {bshift})")
        _check(adapt <= 24, f"{where}: adapt_shift {adapt} outside 0..24")
        if out_kind == SCORES:
            _check(4 <= qfrac <= 40, f"{where}: score fraction bits {qfrac} outside 4..40")
        else:
            _check(qfrac == 0, f"{where}: score fraction bits must be 0 in a sign layer")
        _check(math.isfinite(meta) and meta >= 0, f"{where}: m = {meta} must be finite and >= 0")
        _check(math.isfinite(scale) and scale > 0, f"{where}: scale = {scale} must be finite and > 0")

        W = n_words(K)
        signs = np.frombuffer(section(o_signs, 4 * N * W, f"{where} signs"), "<u4").reshape(N, W)
        hdt = _hidden_dtype(bits)
        hidden = np.frombuffer(section(o_hidden, np.dtype(hdt).itemsize * N * K, f"{where} hidden weights"),
                               hdt).reshape(N, K).astype(np.int16)
        tables = np.frombuffer(section(o_table, (2 << tbits) * (1 + away), f"{where} f_meta table"),
                               "<u2").astype(np.uint16).reshape(1 + away, 1 << tbits)
        table = tables[0]
        rec_t = SIGN_REC if out_kind == SIGN else SCORE_REC
        rec = np.frombuffer(section(o_norm, rec_t.itemsize * B * N, f"{where} normalization"), rec_t).reshape(B, N)

        hmin, hmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        _range("hidden weight", hidden, hmin, hmax, where)
        _check(np.array_equal(pack_bits(hidden >= 0), signs),
               f"{where}: packed sign bits disagree with the hidden weights (or padding bits are not zero)")
        _range("f_meta table entry", table, 0, 32768, where)
        if away:
            _range("away table entry", tables[1], 0, 32768, where)
        R = K * (255 if in_kind == PIXELS else 1)
        D = 512 * R
        _range("M", rec["M"], -256 * R, 256 * R, where)
        lay = Layer(K=K, N=N, in_kind=in_kind, out_kind=out_kind, bits=bits, table_bits=tbits,
                    lr_shift=lr_shift, bshift=bshift, adapt_shift=adapt, score_frac=qfrac,
                    meta=float(meta), scale=float(scale), signs=signs.astype(np.uint32).copy(),
                    hidden=hidden.copy(), table=table.copy(), M=rec["M"].astype(np.int32),
                    rounding=rounding, sr_seed=sr_seed, sr_step=sr_step, conv=conv,
                    away=tables[1].copy() if away else None)
        if out_kind == SIGN:
            for name in ("C", "lo", "hi"):
                _range(name, rec[name], -D - 1, D + 1, where)
            _range("flip bit", rec["f"], 0, 1, where)
            lay.C, lay.lo, lay.hi = (rec[x].astype(np.int32) for x in ("C", "lo", "hi"))
            lay.flip = rec["f"].astype(np.int32)
        else:
            _range("g", rec["g"], -G_MAX, G_MAX, where)
            _range("b", rec["b"], -B_MAX, B_MAX, where)
            lay.g, lay.b = rec["g"].astype(np.int32), rec["b"].astype(np.int64)
        layers.append(lay)
        prev = lay
    _check(version == VERSION_DENSE or any(lay.conv is not None for lay in layers),
           "format version 2 without a conv layer: a dense model is written as version 1")

    meta_blob = _metadata_blob(meta_off, section)

    # sections must not overlap, and every byte no section covers must be zero
    sections.sort()
    covered = 0
    for off, nbytes, what in sections:
        _check(off >= covered, f"{what} overlaps the previous section")
        _check(not any(data[covered:off]), f"non-zero padding bytes before {what}")
        covered = off + nbytes
    _check(not any(data[covered: n - 4]), "non-zero bytes after the last section")
    # its bytes are now known to be its own: only then is the JSON worth reading
    meta = None if meta_blob is None else metadata.decode(meta_blob, B)
    return Model(layers=layers, exp_table=exp_table, meta=meta)


def _conv_geom(op: int, geom: list, K: int, adapt: int, prev: Layer | None, where: str) -> ConvGeom | None:
    """The conv geometry of a version-2 descriptor, checked (FORMAT.md 3.3, 6); None for a dense layer, whose
    geometry bytes must be zero. `prev` is the layer before (None for the first)."""
    _check(op in (DENSE, CONV2D), f"{where}: op {op} must be 0 (dense) or 1 (conv2d)")
    if op == DENSE:
        _check(not any(geom), f"{where}: a dense layer's conv geometry bytes are not zero")
        return None
    in_c, in_h, in_w, kernel, stride, pad, pool = geom
    _check(prev is None or prev.conv is not None, f"{where}: a conv layer cannot follow a dense layer")
    _check(adapt == 0, f"{where}: adapt_shift {adapt}: stream-adaptive normalization is for dense layers only")
    _check(in_c >= 1 and 1 <= in_h <= MAX_SIDE and 1 <= in_w <= MAX_SIDE,
           f"{where}: input map {in_c} x {in_h} x {in_w} outside 1..65535 x 1..{MAX_SIDE} x 1..{MAX_SIDE}")
    _check(in_c * in_h * in_w <= MAX_IMAGE, f"{where}: input map of {in_c * in_h * in_w} values exceeds {MAX_IMAGE}")
    _check(1 <= kernel <= MAX_KERNEL and 1 <= stride <= MAX_STRIDE and pad < kernel,
           f"{where}: kernel {kernel}, stride {stride}, pad {pad} outside 1..{MAX_KERNEL}, 1..{MAX_STRIDE}, "
           f"0..kernel-1")
    _check(pool in (0, 2), f"{where}: pool {pool} must be 0 (none) or 2 (2x2 max-pool)")
    _check(K == in_c * kernel * kernel, f"{where}: K = {K}, a {kernel}x{kernel} kernel on {in_c} channels has "
           f"{in_c * kernel * kernel} synapses")
    g = ConvGeom(in_c, in_h, in_w, kernel, stride, pad, pool)
    _check(in_h + 2 * pad >= kernel and in_w + 2 * pad >= kernel,
           f"{where}: a {kernel}x{kernel} kernel does not fit the padded {in_h} x {in_w} map")
    _check(g.map_h >= 1 and g.map_w >= 1, f"{where}: the {g.out_h} x {g.out_w} output is too small to pool")
    if prev is not None:
        _check((in_c, in_h, in_w) == (prev.N, prev.conv.map_h, prev.conv.map_w),
               f"{where}: input map {in_c} x {in_h} x {in_w} does not match the previous layer's output "
               f"{prev.N} x {prev.conv.map_h} x {prev.conv.map_w}")
    return g


def _read_checked(path: Path) -> bytes:
    """The file's bytes, read only after its type, size and header say it can be a .mbnn file.

    A device (/dev/zero), a FIFO or a multi-GB file of anything is refused before more than
    24 bytes are read, so a wrong path costs a stat and a header, never the memory of the file."""
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it changes nothing for regular files)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        _check(not stat.S_ISDIR(st.st_mode), "is a directory, expected a .mbnn file")
        _check(stat.S_ISREG(st.st_mode), "not a regular file (a device, FIFO or socket cannot hold a model)")
        _check(st.st_size <= MAX_FILE, f"file of {st.st_size} bytes exceeds the 2 GiB limit of the format")
        head = f.read(HEADER.size)
        _check(len(head) == HEADER.size or st.st_size < HEADER.size + 4, "file changed while being read")
        _check_header(head, st.st_size)
        data = head + f.read(st.st_size - len(head))
        _check(len(data) == st.st_size and not f.read(1), "file changed while being read")
    return data


def load(path) -> Model:
    """Read a `.mbnn` file. A missing or unreadable file is a FormatError too (one clear message)."""
    path = Path(path)
    try:
        data = _read_checked(path)
        return from_bytes(data)
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FormatError(f"{path}: is a directory, expected a .mbnn file") from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read ({e.strerror})") from None
    except FormatError as e:
        raise FormatError(f"{path}: {e}") from None
