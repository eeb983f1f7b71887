"""The .mbnn container: canonical round trip and a reader that lets only FormatError escape."""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metabnn.export import FormatError, from_bytes, load, mbnn, save, to_bytes
from metabnn.sim import predict, random_model


META = {"version": 1, "spec": "pmnist:3", "seed": 1, "kind": "tasks",
        "tasks": [{"name": f"pmnist{i}", "test_set": i - 1} for i in (1, 2, 3)],
        "test_sets": [{"name": f"pmnist{i}", "bank": 0} for i in (1, 2, 3)]}


@pytest.mark.parametrize("bits,banks,meta", [(2, 1, None), (8, 3, None), (9, 1, META), (16, 2, META)])
def test_round_trip_is_byte_identical(tmp_path, bits, banks, meta):
    m = random_model((70, 33, 10), bits=bits, table_bits=min(bits - 1, 4), banks=banks, adapt_shift=3, seed=bits)
    m.meta = meta
    data = to_bytes(m)
    save(m, tmp_path / "m.mbnn")
    m2 = load(tmp_path / "m.mbnn")
    assert to_bytes(m2) == data and m2.meta == meta
    imgs = np.random.default_rng(0).integers(0, 256, (50, 70)).astype(np.uint8)
    assert np.array_equal(predict(m, imgs, bank=banks - 1), predict(m2, imgs, bank=banks - 1))
    assert len(data) % 8 == 4 and data[:4] == b"MBNN"


def _recrc(b: bytearray) -> bytes:
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
    return bytes(b)


BASE = to_bytes(random_model((40, 33, 10), bits=8, banks=2, seed=7))
_with_meta = random_model((40, 33, 10), bits=8, banks=2, seed=7)
_with_meta.meta = {**META, "test_sets": [{"name": f"pmnist{i}", "bank": i % 2} for i in (1, 2, 3)]}
BASE_META = to_bytes(_with_meta)  # the same model with a metadata section


@pytest.mark.parametrize("mutate,needle", [
    (lambda b: b[:100], "header says"),
    (lambda b: b"XBNN" + b[4:], "not a .mbnn file"),
    (lambda b: b[:4] + b"\x03\x00" + b[6:], "version"),  # 2 is the conv version (FORMAT.md 6)
    (lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:], "checksum"),
    (lambda b: b"", "too short"),
])
def test_named_errors(mutate, needle):
    with pytest.raises(FormatError, match=needle):
        from_bytes(mutate(BASE))


@pytest.mark.parametrize("offset,value,needle", [
    (6, (1).to_bytes(2, "little"), "layer count"),
    (24, (100000).to_bytes(4, "little"), "K = 100000 outside"),
    (24 + 64 + 0, (34).to_bytes(4, "little"), "does not match"),  # layer 1 K != layer 0 N
    (24 + 10, bytes([17]), "hidden bits"),
    (24 + 4, (0xFFFFFFF).to_bytes(4, "little"), "N = 268435455 outside"),  # must not allocate
    (24 + 4, (60000).to_bytes(4, "little"), "outside the data area"),  # in range, but no room
])
def test_inconsistent_fields_with_valid_crc(offset, value, needle):
    b = bytearray(BASE)
    b[offset: offset + len(value)] = value
    with pytest.raises(FormatError, match=needle):
        from_bytes(_recrc(b))


def test_sign_hidden_disagreement_is_rejected():
    m = random_model((40, 33, 10), seed=1)
    m.layers[1].signs = m.layers[1].signs ^ np.uint32(1)
    with pytest.raises(FormatError, match="sign bits disagree"):
        to_bytes(m)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        load(tmp_path / "nope.mbnn")


def test_load_refuses_devices_fifos_and_folders(tmp_path):
    import os

    with pytest.raises(FormatError, match="not a regular file"):
        load("/dev/zero")  # endless: reading it first was a MemoryError
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(FormatError, match="not a regular file"):
        load(tmp_path / "fifo")  # opening must not wait for a writer
    with pytest.raises(FormatError, match="is a directory"):
        load(tmp_path)


def test_load_checks_size_and_header_before_reading(tmp_path, monkeypatch):
    """A huge file is refused from its size and its first 24 bytes: the rest is never read."""
    import io

    big = tmp_path / "big.mbnn"
    with open(big, "wb") as f:  # sparse: 3 GiB on paper, a few bytes on disk
        f.write(BASE[:24])
        f.truncate(3 << 30)
    sized = tmp_path / "sized.mbnn"
    with open(sized, "wb") as f:  # under the limit, but the header's size is not the file's
        f.write(BASE[:24])
        f.truncate(64 << 20)
    read_sizes = []
    real_fdopen = mbnn.os.fdopen

    class Spy(io.BufferedReader):  # the file load() opens, counting what it reads
        def read(self, n=-1):
            read_sizes.append(n)
            return super().read(n)

    monkeypatch.setattr(mbnn.os, "fdopen", lambda fd, mode: Spy(real_fdopen(fd, mode, buffering=0)))
    with pytest.raises(FormatError, match="exceeds the 2 GiB limit"):
        load(big)
    assert read_sizes == []
    with pytest.raises(FormatError, match=f"header says {len(BASE)} bytes but the file has {64 << 20}"):
        load(sized)
    assert read_sizes == [24]
    monkeypatch.undo()
    for head, needle in [(b"GIF89a" + bytes(30), "not a .mbnn file"), (b"MBNN\x03\x00" + bytes(30), "version"),
                         (b"MBNN", "too short")]:
        (tmp_path / "x.mbnn").write_bytes(head)
        with pytest.raises(FormatError, match=needle):
            load(tmp_path / "x.mbnn")


@settings(max_examples=2000, deadline=None)
@given(st.data())
def test_fuzz_only_format_error_escapes(data):
    base = data.draw(st.sampled_from([BASE, BASE_META]))
    b = bytearray(base)
    kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "extend", "field", "meta"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(b) - 1))
        b[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "byte":
        for _ in range(data.draw(st.integers(1, 8))):
            b[data.draw(st.integers(0, len(b) - 1))] = data.draw(st.integers(0, 255))
    elif kind == "truncate":
        b = b[: data.draw(st.integers(0, len(b) - 1))]
    elif kind == "extend":
        b += bytes(data.draw(st.integers(1, 64)))
    fix_crc = data.draw(st.booleans()) and len(b) >= 8
    if kind == "field":  # a header or descriptor field, with a valid CRC so the checks behind it run
        i = data.draw(st.integers(0, 24 + 64 * 2 - 1))
        b[i] = data.draw(st.integers(0, 255))
        fix_crc = True
    if kind == "meta":  # inside the metadata section or its header offset, CRC valid: the JSON checks must hold
        off = int.from_bytes(base[20:24], "little") or len(base) - 12
        i = data.draw(st.sampled_from([20, 21]) | st.integers(off, len(base) - 5))
        b[i] = data.draw(st.integers(0, 255))
        fix_crc = True
    if fix_crc:
        b = bytearray(_recrc(b))
    try:
        m = from_bytes(bytes(b))
    except FormatError:
        return
    # accepted: it must then be a fully usable, canonical model
    assert to_bytes(m) == bytes(b)
