"""The .mbnn metadata section (docs/FORMAT.md 6.1): canonical JSON, the version-1 key set, every corruption a FormatError."""

import json
import struct
import zlib

import pytest

from metabnn.export import FormatError, from_bytes, to_bytes
from metabnn.export import metadata
from metabnn.sim import random_model

META = {
    "version": 1, "spec": "pmnist:2", "seed": 3, "kind": "tasks", "fingerprint": "crc32:0badf00d",
    "tasks": [{"name": "pmnist1", "test_set": 0}, {"name": "pmnist2", "test_set": 1}],
    "test_sets": [{"name": "pmnist1", "bank": 0}, {"name": "pmnist2", "bank": 1}],
    "training": {"hidden": [16], "lr": 0.005, "weight_decay": 1e-7, "note": "Zürich"},
}


def image(meta, banks=2) -> bytes:
    m = random_model((30, 16, 10), banks=banks, seed=5)
    m.meta = meta
    return to_bytes(m)


def resealed(data: bytes, edit) -> bytes:
    """Apply edit(bytearray) and fix the size field and CRC, so only the metadata checks can object."""
    b = bytearray(data[:-4])
    edit(b)
    b += b"\0\0\0\0"
    struct.pack_into("<I", b, 12, len(b))
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
    return bytes(b)


def replace_json(data: bytes, text: bytes) -> bytes:
    """The same image with the metadata JSON replaced by `text` (length field and padding adjusted)."""
    off = struct.unpack_from("<I", data, 20)[0]

    def edit(b):
        del b[off:]
        b += struct.pack("<I", len(text)) + text
        b += bytes(-len(b) % 8)
    return resealed(data, edit)


def test_round_trip_keeps_metadata_and_bytes():
    data = image(META)
    m = from_bytes(data)
    assert m.meta == META and to_bytes(m) == data
    off = struct.unpack_from("<I", data, 20)[0]
    n = struct.unpack_from("<I", data, off)[0]
    assert off % 8 == 0 and off + 4 + n <= len(data) - 4
    assert data[off + 4: off + 4 + n].decode() == json.dumps(META, sort_keys=True, separators=(",", ":"),
                                                            ensure_ascii=False)


def test_file_without_metadata_is_unchanged_and_loads():
    m = random_model((30, 16, 10), banks=2, seed=5)
    plain = to_bytes(m)
    assert struct.unpack_from("<I", plain, 20)[0] == 0 and from_bytes(plain).meta is None
    # the metadata goes after every other section: the rest of the layout does not move
    with_meta = image(META)
    assert with_meta[24:len(plain) - 4] == plain[24:-4]


def test_unknown_keys_are_kept():
    meta = {"version": 1, "x-note": [1, 2, {"a": None}]}
    assert from_bytes(image(meta)).meta == meta


@pytest.mark.parametrize("text,needle", [
    (b'{"version":1}\xff', "UTF-8"),
    (b'{"version":1', "not valid JSON"),
    (b'[1]', "not an object"),
    (b'{"version": 1}', "canonical"),
    (b'{"x":1,"version":1}', "canonical"),
    (b'{"version":1,"version":1}', "twice"),
    (b'{"version":1,"x":NaN}', "not a JSON number"),
    (b'{"version":2}', "version 2"),
    (b'{"version":true}', "version True"),
    (b'{"spec":"pmnist:2","version":1}', "go together"),
    (b'{"version":1,"x":"\\u00e9"}', "canonical"),
    (b'[' * 5000 + b']' * 5000, "not valid JSON"),
])
def test_bad_json_is_a_format_error(text, needle):
    with pytest.raises(FormatError, match=needle):
        from_bytes(replace_json(image({"version": 1}), text))


@pytest.mark.parametrize("change,needle", [
    (lambda m: m["test_sets"][1].update(bank=2), "bank 2 but the model has 2"),
    (lambda m: m["test_sets"][1].update(bank=-1), "bank must be an integer >= 0"),
    (lambda m: m["tasks"][0].update(test_set=2), "must index test_sets"),
    (lambda m: m.update(kind="sets"), "kind"),
    (lambda m: m.update(seed="0"), "seed"),
    (lambda m: m.update(spec=""), "spec"),
    (lambda m: m.update(test_sets=[]), "test_sets"),
    (lambda m: m.update(tasks=[{"test_set": 0}]), "name"),
    (lambda m: m.update(training=[1]), "training"),
    (lambda m: m.update(fingerprint=7), "fingerprint"),
])
def test_key_set_is_checked_by_reader_and_writer(change, needle):
    bad = json.loads(json.dumps(META))
    change(bad)
    text = json.dumps(bad, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(FormatError, match=needle):
        from_bytes(replace_json(image(META), text))
    with pytest.raises(FormatError, match=needle):
        image(bad)  # the writer refuses what the reader would refuse


def test_writer_refuses_what_json_cannot_hold():
    import numpy as np

    with pytest.raises(FormatError, match="not encodable"):
        image({"version": 1, "seed": np.int64(1)})
    with pytest.raises(FormatError, match="not encodable"):
        image({"version": 1, "x": float("nan")})
    with pytest.raises(FormatError, match="bytes of JSON"):
        image({"version": 1, "x": "a" * metadata.MAX_META_BYTES})


def overlap_norm(b: bytearray) -> None:
    """Point the metadata at layer 0's first flip bit f (an aligned u32), set to 1: a 1-byte JSON inside a section."""
    f_off = struct.unpack_from("<I", b, 24 + 36)[0] + 16
    struct.pack_into("<I", b, f_off, 1)
    struct.pack_into("<I", b, 20, f_off)


@pytest.mark.parametrize("edit,needle", [
    (lambda b, off: struct.pack_into("<I", b, off, 0), "length 0 outside"),
    (lambda b, off: struct.pack_into("<I", b, off, 65537), "length 65537 outside"),
    (lambda b, off: struct.pack_into("<I", b, off, 4096), "outside the data area"),
    (lambda b, off: struct.pack_into("<I", b, 20, off + 4), "not aligned"),
    (lambda b, off: struct.pack_into("<I", b, 20, 8), "outside the data area"),
    (lambda b, off: overlap_norm(b), "overlaps"),
    (lambda b, off: b.__setitem__(len(b) - 1, 1), "non-zero"),  # the padding after the JSON
])
def test_section_layout_is_checked(edit, needle):
    data = image({"version": 1, "pad": "xy"})  # 4 + 25 bytes: 3 bytes of padding follow
    off = struct.unpack_from("<I", data, 20)[0]
    assert (4 + struct.unpack_from("<I", data, off)[0]) % 8
    with pytest.raises(FormatError, match=needle):
        from_bytes(resealed(data, lambda b: edit(b, off)))


def test_any_corrupted_metadata_byte_fails_the_crc():
    data = image(META)
    off = struct.unpack_from("<I", data, 20)[0]
    for i in range(off, len(data) - 4, 7):
        b = bytearray(data)
        b[i] ^= 0x20
        with pytest.raises(FormatError, match="checksum"):
            from_bytes(bytes(b))


def test_onnx_carries_the_same_metadata():
    pytest.importorskip("onnx")
    from metabnn.export.onnx_export import KEY, from_onnx, to_onnx

    m = random_model((30, 16, 10), banks=2, seed=5)
    m.meta = META
    proto = to_onnx(m, bank=1)
    props = {p.key: p.value for p in proto.metadata_props}
    assert props[KEY + "trained_on"].encode() == metadata.encode(META)
    back = from_onnx(proto)
    assert back.meta == META and to_bytes(back) == to_bytes(m)
    m.meta = None
    assert KEY + "trained_on" not in {p.key for p in to_onnx(m).metadata_props} and from_onnx(to_onnx(m)).meta is None
    bad = to_onnx(m)
    bad.metadata_props.add(key=KEY + "trained_on", value='{"version":2}')
    with pytest.raises(FormatError, match="version 2"):
        from_onnx(bad)
