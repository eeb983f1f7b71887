"""The C loader: every rejection of docs/FORMAT.md section 6 returns an error status, the
accept/reject decision agrees with the Python reader (metabnn.export.mbnn.from_bytes), and
misuse of the API (alignment, read-only learning, bank, label) is a status, not a crash."""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest
from firmware_mutations import base_images, mutants, seal

from metabnn.export import FormatError
from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim import random_model
from metabnn.backends.c import FirmwareError, _Aligned

OK = 0


def status_name(cb, data: bytes) -> str:
    return cb.status_str(cb.load_status(data))


def python_accepts(data: bytes) -> bool:
    try:
        from_bytes(data)
        return True
    except FormatError:
        return False


def test_valid_images_load(cbackend):
    for data in base_images():
        assert cbackend.load_status(data) == OK


def edit(data: bytes, fmt: str, off: int, value, fix_size=False) -> bytes:
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    return seal(b, fix_size)


@pytest.fixture(scope="module")
def img():
    return to_bytes(random_model((40, 20, 5), bits=8, table_bits=3, banks=2, seed=1))


def test_specific_rejections(cbackend, img):
    d0 = 24  # descriptor of layer 0
    L = 2
    o_signs0, o_hidden0, o_table0, o_norm0 = struct.unpack_from("<IIII", img, d0 + 24)
    exp_off = struct.unpack_from("<I", img, 16)[0]
    cases = {
        "image truncated": [img[:27], img[:-1]],
        "bad magic (not a .mbnn image)": [edit(img, "4s", 0, b"MBNX")],
        "unsupported format version": [edit(img, "<H", 4, 2)],
        "header file size differs from the buffer size": [img + b"\0\0\0\0"],
        "CRC-32 mismatch": [img[:-1] + bytes([img[-1] ^ 1])],
        "reserved field not zero": [edit(img, "<H", 10, 1), edit(img, "B", d0 + 63, 1)],
        "layer count out of range or descriptors do not fit": [edit(img, "<H", 6, 1), edit(img, "<H", 6, 17)],
        "bank count out of range": [edit(img, "<H", 8, 0), edit(img, "<H", 8, 256)],
        "layer chain does not fit (kinds or K/N)": [edit(img, "B", d0 + 8, 1), edit(img, "B", d0 + 9, 1),
                                                    edit(img, "<I", d0 + 64, 21)],
        "descriptor field out of range": [edit(img, "B", d0 + 10, 1), edit(img, "B", d0 + 10, 17),
                                          edit(img, "B", d0 + 11, 8), edit(img, "B", d0 + 12, 32),
                                          edit(img, "B", d0 + 13, 32), edit(img, "B", d0 + 14, 25),
                                          edit(img, "B", d0 + 15, 1), edit(img, "B", d0 + 64 + 15, 3),
                                          edit(img, "B", d0 + 64 + 15, 41), edit(img, "<f", d0 + 16, -1.0),
                                          edit(img, "<f", d0 + 16, float("nan")), edit(img, "<f", d0 + 20, 0.0),
                                          edit(img, "<f", d0 + 20, float("inf")), edit(img, "<I", d0, 0),
                                          edit(img, "<I", d0, 16385)],
        "section misaligned, out of bounds or overlapping": [
            edit(img, "<I", d0 + 24, o_signs0 + 4), edit(img, "<I", d0 + 24, len(img)),
            edit(img, "<I", d0 + 28, o_signs0), edit(img, "<I", 16, o_norm0), edit(img, "<I", 16, 0),
            edit(img, "<I", d0 + 36, 0xFFFFFFF8), edit(img, "<I", 20, 1)],  # 20: the metadata offset
    }
    for want, images in cases.items():
        for data in images:
            assert status_name(cbackend, data) == want
            assert not python_accepts(data)
    # content checks: values inside sections
    signs_first = struct.unpack_from("<I", img, o_signs0)[0]
    content = {
        "sign bit disagrees with hidden weight, or padding bit set": [
            edit(img, "<I", o_signs0, signs_first ^ 1),
            edit(img, "<I", o_signs0 + 4, struct.unpack_from("<I", img, o_signs0 + 4)[0] | 0x80000000)],
        "table entry out of range": [edit(img, "<H", o_table0, 32769), edit(img, "<H", exp_off, 32767),
                                     edit(img, "<H", exp_off + 2, 40000)],
        "normalization record out of range": [edit(img, "<i", o_norm0, 256 * 255 * 40 + 1),
                                              edit(img, "<i", o_norm0 + 4, 512 * 255 * 40 + 2),
                                              edit(img, "<i", o_norm0 + 16, 2)],
        # layer 1's signs are 5 rows x 1 word = 20 bytes, padded to 24: bytes 20..23 are a gap
        "non-zero byte between sections": [edit(img, "B", struct.unpack_from("<I", img, d0 + 64 + 24)[0] + 21, 1)],
    }
    b1 = struct.unpack_from("<I", img, d0 + 64 + 36)[0]
    content["normalization record out of range"] += [edit(img, "<i", b1 + 4, 32768),
                                                     edit(img, "<q", b1 + 8, (1 << 47) + 1)]
    for want, images in content.items():
        for data in images:
            assert status_name(cbackend, data) == want, want
            assert not python_accepts(data)


def test_metadata_section_is_accepted_and_checked_as_a_section(cbackend):
    """FORMAT.md 6.1: the loader ignores the metadata's JSON but checks its bounds like any section's."""
    m = random_model((40, 20, 5), bits=8, table_bits=3, banks=2, seed=1)
    m.meta = {"version": 1, "note": "x" * 20}  # 4 + 43 bytes: the section ends mid-word, padding follows
    data = to_bytes(m)
    meta_off = struct.unpack_from("<I", data, 20)[0]
    n = struct.unpack_from("<I", data, meta_off)[0]
    assert (4 + n) % 8 and meta_off and cbackend.load_status(data) == OK and python_accepts(data)
    assert cbackend.open(data).predict(np.zeros((1, 40), np.uint8)).shape == (1,)
    bad = {
        "section misaligned, out of bounds or overlapping": [
            edit(data, "<I", 20, meta_off + 4), edit(data, "<I", 20, 24), edit(data, "<I", 20, len(data) - 4),
            edit(data, "<I", 20, struct.unpack_from("<I", data, 24 + 24)[0]),  # onto layer 0's signs
            edit(data, "<I", meta_off, 0), edit(data, "<I", meta_off, 65537),
            edit(data, "<I", meta_off, len(data))],
        "non-zero byte between sections": [edit(data, "B", meta_off + 4 + n, 1)],  # the padding after the JSON
        "CRC-32 mismatch": [data[: meta_off + 6] + bytes([data[meta_off + 6] ^ 1]) + data[meta_off + 7:]],
    }
    for want, images in bad.items():
        for img in images:
            assert status_name(cbackend, img) == want
            assert not python_accepts(img)


def test_hidden_out_of_range(cbackend):
    data = to_bytes(random_model((20, 6, 3), bits=4, table_bits=2, seed=4))
    o_signs, o_hidden = struct.unpack_from("<II", data, 24 + 24)
    b = bytearray(data)
    b[o_hidden] = 8 if b[o_hidden] < 128 else 0xF7  # 8 or -9: outside [-8, 7], sign unchanged
    assert status_name(cbackend, seal(b)) == "hidden weight out of range"


def test_alignment_and_api_misuse(cbackend, img):
    lib = cbackend.lib
    model = ctypes.create_string_buffer(lib.mbnn_model_struct_size())
    buf = (ctypes.c_uint64 * (len(img) // 8 + 2))()
    ctypes.memmove(ctypes.addressof(buf) + 1, img, len(img))
    assert cbackend.status_str(lib.mbnn_load(model, ctypes.addressof(buf) + 1, len(img))) .startswith("misaligned")
    assert cbackend.status_str(lib.mbnn_load(None, None, 0)) == "null pointer"
    # read-only: inference fine, learning and adaptation refused
    ro = cbackend.open(img, writable=False)
    x = np.zeros((1, 40), np.uint8)
    ro.predict(x)
    with pytest.raises(FirmwareError, match="read-only"):
        ro.learn_step(x[0], 0)
    with pytest.raises(FirmwareError, match="bank index"):
        cbackend.open(img, bank=2)
    s = cbackend.open(img)
    with pytest.raises(FirmwareError, match="label out of range"):
        s.learn_step(x[0], 5)
    ws = _Aligned(b"\0" * 64)
    label = ctypes.c_uint32()
    assert cbackend.status_str(lib.mbnn_predict(s.model, x.ctypes.data, 40, ws.buf, 8, ctypes.byref(label))) \
        == "workspace too small"
    assert cbackend.status_str(lib.mbnn_predict(s.model, x.ctypes.data, 39, s.ws, s.ws_size, ctypes.byref(label))) \
        == "argument out of range"
    assert cbackend.status_str(lib.mbnn_set_shifts(s.model, 2, 0, 0)) == "argument out of range"
    assert cbackend.status_str(lib.mbnn_set_shifts(s.model, 0, 32, 0)) == "argument out of range"


def test_fuzz_statuses_agree_with_python_reader(cbackend):
    """Thousands of mutants through the (unsanitized) library: same accept/reject as Python."""
    cases = mutants(3000, seed=11)
    accepted = rejected_after_crc = 0
    for data in cases:
        st = cbackend.load_status(data)
        assert (st == OK) == python_accepts(data), f"C says {cbackend.status_str(st)}"
        accepted += st == OK
        rejected_after_crc += st not in (OK, 4, 5, 6, 7, 8)  # past the header/size/CRC checks
    # the mutants must reach the deep checks, and some survive them (e.g. a flipped M bit)
    assert rejected_after_crc > 500 and accepted > 20
