"""Version 2 of the .mbnn container (FORMAT.md 3.3, 6): conv2d layers. Round trips, version 1 kept for dense
models, one test per new loader check (CRC made valid so the check itself is reached), and the loader fuzzed."""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metabnn.export.errors import FormatError
from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim import learn_step, predict, random_conv_model, random_model
from metabnn.sim.bits import pack_bits
from metabnn.sim.model import ConvGeom

CONV = random_conv_model((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (7, 10), banks=2, seed=3)
BASE = to_bytes(CONV)
DESC0, DESC1, DESC2 = 24, 24 + 64, 24 + 128  # conv on pixels, conv on bits, the first dense layer


def _recrc(b: bytearray) -> bytes:
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
    return bytes(b)


def _put(offset: int, fmt: str, value) -> bytes:
    b = bytearray(BASE)
    struct.pack_into(fmt, b, offset, value)
    return _recrc(b)


def test_round_trip_is_canonical_and_runs_the_same():
    m = from_bytes(BASE)
    assert struct.unpack_from("<H", BASE, 4)[0] == 2 and to_bytes(m) == BASE
    assert [lay.conv for lay in m.layers] == [lay.conv for lay in CONV.layers]
    x = np.random.default_rng(0).integers(0, 256, (20, 64)).astype(np.uint8)
    assert np.array_equal(predict(m, x, bank=1), predict(CONV.copy(), x, bank=1))
    after, _ = learn_step(m, x[0], 3)
    assert to_bytes(from_bytes(to_bytes(after))) == to_bytes(after)  # learnt state (and sr_step) round-trips


@pytest.mark.parametrize("rounding", [0, 1])
def test_dense_models_stay_version_1(rounding):
    data = to_bytes(random_model((40, 33, 10), seed=7, rounding=rounding))
    assert struct.unpack_from("<H", data, 4)[0] == 1
    assert all(data[24 + 64 * l + 41] == 0 and not any(data[24 + 64 * l + 52: 24 + 64 * l + 64]) for l in range(2))


@pytest.mark.parametrize("offset,fmt,value,needle", [
    (DESC0 + 41, "<B", 2, "op 2 must be 0"),
    (DESC2 + 52, "<H", 5, "a dense layer's conv geometry bytes are not zero"),
    (DESC0 + 54, "<H", 0, "input map 1 x 0 x 8 outside"),
    (DESC0 + 56, "<H", 1025, "input map 1 x 8 x 1025 outside"),
    (DESC0 + 58, "<B", 17, "kernel 17"),
    (DESC0 + 59, "<B", 0, "stride 0"),
    (DESC0 + 60, "<B", 3, "pad 3"),
    (DESC0 + 61, "<B", 3, "pool 3 must be 0"),
    (DESC0 + 58, "<B", 2, "K = 9, a 2x2 kernel on 1 channels has 4 synapses"),
    (DESC1 + 54, "<H", 5, "does not match the previous layer's output 4 x 4 x 4"),
    (DESC1 + 14, "<B", 3, "adapt_shift 3: stream-adaptive normalization is for dense layers only"),
    (DESC2 + 0, "<I", 95, "K = 95 does not match the previous layer's 96 outputs"),
    (4, "<H", 3, "unsupported format version 3"),
])
def test_each_conv_check(offset, fmt, value, needle):
    with pytest.raises(FormatError, match=needle):
        from_bytes(_put(offset, fmt, value))


@pytest.mark.parametrize("data,version,needle", [
    (BASE, 1, "reserved descriptor bytes are not zero"),  # version 1 has no op or geometry bytes
    (to_bytes(random_model((40, 33, 10), seed=7)), 2, "version 2 without a conv layer"),
])
def test_version_must_match_the_layers(data, version, needle):
    b = bytearray(data)
    struct.pack_into("<H", b, 4, version)
    with pytest.raises(FormatError, match=needle):
        from_bytes(_recrc(b))


def _conv0(m, geom: ConvGeom, K: int | None = None):
    """`m` with its first layer's geometry (and, given K, its synapse count) replaced."""
    m = m.copy()
    lay = m.layers[0]
    lay.conv = geom
    if K is not None:
        lay.K, lay.hidden = K, np.zeros((lay.N, K), np.int16)
        lay.signs = pack_bits(lay.hidden >= 0)
    return m


def test_model_level_checks():
    one = random_conv_model((1, 3, 3), ((2, 3, 1, 0, 0),), (4,), seed=1)  # a 1x1 output
    with pytest.raises(FormatError, match="too small to pool"):
        to_bytes(_conv0(one, ConvGeom(1, 3, 3, 3, 1, 0, 2)))
    with pytest.raises(FormatError, match="does not fit the padded 2 x 2 map"):
        to_bytes(_conv0(one, ConvGeom(1, 2, 2, 3, 1, 0, 0)))
    with pytest.raises(FormatError, match="exceeds 1048576"):
        to_bytes(_conv0(one, ConvGeom(2, 1024, 1024, 1, 1, 0, 0), K=2))
    dense_first = random_conv_model((1, 4, 4), ((2, 1, 1, 0, 0),), (4,), seed=1)
    dense_first.layers.insert(0, random_model((16, 16, 3), seed=1).layers[0])
    with pytest.raises(FormatError, match="a conv layer cannot follow a dense layer"):
        to_bytes(dense_first)
    last = random_conv_model((1, 4, 4), ((2, 1, 1, 0, 0), (3, 1, 1, 0, 0)), (), seed=1)
    with pytest.raises(FormatError, match="the output layer must be dense"):
        to_bytes(last)


@settings(max_examples=1500, deadline=None)
@given(st.data())
def test_fuzz_only_format_error_escapes(data):
    b = bytearray(BASE)
    kind = data.draw(st.sampled_from(["field", "geometry", "flip"]))
    if kind == "flip":
        i = data.draw(st.integers(0, len(b) - 5))
        b[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "field":
        b[data.draw(st.integers(0, 24 + 64 * 4 - 1))] = data.draw(st.integers(0, 255))
    else:  # the op byte and the geometry of any descriptor
        l = data.draw(st.integers(0, 3))
        i = 24 + 64 * l + data.draw(st.sampled_from([41] + list(range(52, 64))))
        b[i] = data.draw(st.integers(0, 255))
    try:
        m = from_bytes(_recrc(b))
    except FormatError:
        return
    assert to_bytes(m) == _recrc(b)  # accepted: canonical and usable
    predict(m, np.zeros((1, m.input_size), np.uint8))
