"""The C firmware on convolutional models (docs/FORMAT.md version 2, 3.3): conv2d on pixels and on bits, 2 x 2
max-pool on sign bits and flatten, every score equal to metabnn.sim; the ops alone against the golden ops'
plain `execute` references; the loader's version-2 checks against export/mbnn.py's reader; the workspace
size query; on-device learning through conv, pool and flatten equal to the golden model step by step."""

from __future__ import annotations

import ctypes
import struct

import numpy as np
import pytest
from firmware_mutations import seal
from test_loader import edit, python_accepts

from metabnn.export.mbnn import to_bytes
from metabnn.sim import learn_step, random_conv_model, random_model
from metabnn.sim.bits import pack_bits, unpack_bits
from metabnn.sim.forward import forward
from metabnn.sim.ops import Flatten, MaxPool2

# (image C x H x W, convs (out channels, kernel, stride, pad, pool), dense sizes, extra random_conv_model kwargs):
# borders of every kind (pad 0 .. k-1, stride above the kernel, 1 x 1 kernels), channel counts around the 32-bit
# word (1, 31, 32, 33, 64, 65), odd maps under the pool (last row/column dropped), several banks, b = 2..16
CASES = [
    ((1, 8, 8), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (10,), {}),
    ((3, 9, 7), ((33, 3, 2, 1, 2), (40, 2, 1, 1, 0)), (12, 5), dict(bits=4, table_bits=2)),
    ((2, 12, 12), ((32, 5, 1, 2, 2), (64, 3, 1, 0, 2)), (7,), dict(bits=12, table_bits=6)),
    ((1, 6, 6), ((5, 1, 1, 0, 0),), (3,), dict(banks=2)),
    ((1, 28, 28), ((8, 3, 1, 1, 2), (16, 3, 1, 1, 2)), (32, 10), dict(bits=8, banks=3)),
    ((4, 11, 13), ((31, 4, 3, 3, 0), (65, 3, 2, 2, 2)), (9,), dict(bits=16, table_bits=12)),
    ((1, 5, 5), ((2, 5, 1, 4, 0), (1, 3, 4, 2, 0), (3, 2, 1, 1, 2)), (4,), dict(bits=2, table_bits=0)),
    ((5, 7, 6), ((3, 2, 2, 0, 0), (32, 1, 1, 0, 0)), (2,), dict(seed=9)),
]


def images_for(model, n, seed):
    """Random pixels, some images with long zero runs and some all 0 / all 255."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n, model.input_size), dtype=np.uint8)
    x[1::3] *= rng.random((len(x[1::3]), model.input_size)) < 0.3
    x[0] = 255
    x[-1] = 0
    return x


def build(case, seed=0):
    image, convs, dense, kw = case
    kw = dict(kw)
    return random_conv_model(image, convs, dense, seed=kw.pop("seed", seed), **kw)


@pytest.mark.parametrize("ci", range(len(CASES)))
def test_conv_inference_equals_golden(cbackend, ci):
    model = build(CASES[ci], seed=ci)
    data = to_bytes(model)
    x = images_for(model, 24, ci)
    for bank in range(model.n_banks):
        want = forward(model, x, bank=bank)
        assert np.array_equal(cbackend.scores(data, x, bank=bank), want), f"bank {bank}"
        assert np.array_equal(cbackend.predict(data, x, bank=bank), np.argmax(want, axis=1))
    # read-only (the image in flash) gives the same
    with cbackend.open(data, writable=False) as s:
        assert np.array_equal(s.forward(x), forward(model, x))


def test_conv_with_an_adaptive_dense_head_equals_golden(cbackend):
    """Stream adaptation (FORMAT.md 3.1) moves the dense layers' M after conv layers (a conv has none): the scores
    of every image in stream order and the final M equal to the golden model's."""
    model = build(CASES[1], seed=3)
    for lay in model.layers:
        if lay.conv is None:
            lay.adapt_shift = 3
    data = to_bytes(model)
    x = images_for(model, 16, 4)
    golden = model.copy()
    want = forward(golden, x, adapt=True)
    with cbackend.open(data, adapt=True) as s:
        got = s.forward(x)
        assert np.array_equal(got, want)
        assert s.image() == to_bytes(golden)


def test_conv_other_kernels_equal_golden(portable_backend, x86_level_backends):
    """Conv goes through each build's row kernels (dense_pixels, dense_bits): the portable build and the x86-64
    v3 / v2 builds give the same scores."""
    for ci in (1, 2, 5):
        model = build(CASES[ci], seed=ci)
        data, x = to_bytes(model), images_for(model, 8, ci)
        want = forward(model, x)
        for fw in (portable_backend, *x86_level_backends.values()):
            assert np.array_equal(fw.scores(data, x), want)


@pytest.fixture(scope="module")
def lib(cbackend):
    """The library with the conv ops' signatures declared (pointers are 64-bit)."""
    L, P, U = cbackend.lib, ctypes.c_void_p, ctypes.c_uint32
    for name, args in {"mbnn_maxpool2": [P, U, U, U, P], "mbnn_flatten": [P, U, U, U, P],
                       "mbnn_conv2d_pixels": [P, U, P, P, P, P, P, P], "mbnn_conv2d_bits": [P, U, P, P, P, P, P]}.items():
        f = getattr(L, name)
        f.argtypes, f.restype = args, ctypes.c_int
    return L


def _u32(a):
    return np.ascontiguousarray(a, dtype=np.uint32)


def packed_map(pm1):
    """+-1 map [C, H, W] -> the firmware's channel-packed, position-major words [H*W, ceil(C/32)]."""
    c, h, w = pm1.shape
    return _u32(pack_bits(pm1.transpose(1, 2, 0).reshape(h * w, c) > 0))


@pytest.mark.parametrize("c,h,w", [(1, 2, 2), (3, 5, 4), (32, 4, 7), (33, 6, 6), (70, 3, 9)])
def test_maxpool_and_flatten_equal_the_golden_ops(lib, c, h, w):
    rng = np.random.default_rng(c * 100 + h)
    for density in (0.05, 0.5, 0.95):
        x = np.where(rng.random((c, h, w)) < density, 1, -1).astype(np.int8)
        words = packed_map(x)
        cw = words.shape[1]
        out = np.full((h // 2) * (w // 2) * cw + 1, 0xDEADBEEF, np.uint32)  # a sentinel past the end
        assert lib.mbnn_maxpool2(words.ctypes.data, c, h, w, out.ctypes.data) == 0
        assert out[-1] == 0xDEADBEEF
        assert np.array_equal(out[:-1].reshape(-1, cw), packed_map(MaxPool2().execute(x)))
        flat = np.full((c * h * w + 31) // 32 + 1, 0xDEADBEEF, np.uint32)
        assert lib.mbnn_flatten(words.ctypes.data, c, h, w, flat.ctypes.data) == 0
        assert flat[-1] == 0xDEADBEEF
        assert np.array_equal(flat[:-1], pack_bits(Flatten().execute(x) > 0))
        assert np.array_equal(unpack_bits(flat[:-1], c * h * w), x.reshape(-1) > 0)


def test_op_kernels_refuse_bad_calls(cbackend, lib):
    st = cbackend.status_str
    buf = np.zeros(64, np.uint32)
    p = buf.ctypes.data
    assert st(lib.mbnn_maxpool2(None, 1, 2, 2, p)) == "null pointer"
    assert st(lib.mbnn_maxpool2(p, 1, 1, 2, p)) == "argument out of range"
    assert st(lib.mbnn_flatten(p, 0, 2, 2, p)) == "argument out of range"
    assert st(lib.mbnn_flatten(p, 1, 2, 2, None)) == "null pointer"
    # a dense layer is not a conv: the conv kernels refuse it
    model = random_model((16, 8, 3), seed=0)
    with cbackend.open(to_bytes(model)) as s:
        layer0 = ctypes.addressof(s.model) + LAYERS_OFFSET(cbackend)
        assert st(lib.mbnn_conv2d_pixels(layer0, 0, p, p, p, p, p, None)) == "argument out of range"
        assert st(lib.mbnn_conv2d_bits(layer0, 0, p, p, p, p, p, None)) == "argument out of range"
        assert st(lib.mbnn_conv2d_pixels(layer0, 0, None, p, p, p, p, None)) == "null pointer"


def LAYERS_OFFSET(cbackend):
    """Offset of mbnn_model.layers[0]: image, size, writable, adapt, n_layers, n_banks, bank, n_inputs,
    exp_table, frozen, then the layers (metabnn.h; keep in step with its mbnn_model)."""
    class Head(ctypes.Structure):
        _fields_ = [("image", ctypes.c_void_p), ("size", ctypes.c_uint32), ("writable", ctypes.c_uint8),
                    ("adapt", ctypes.c_uint8), ("n_layers", ctypes.c_uint16), ("n_banks", ctypes.c_uint32),
                    ("bank", ctypes.c_uint32), ("n_inputs", ctypes.c_uint32), ("exp_table", ctypes.c_void_p),
                    ("frozen", ctypes.c_uint32)]
    return ctypes.sizeof(Head)


def stochastic(model, step=0xFFFFFFFE):
    """Every layer rounding stochastically (FORMAT.md 4.4), sr_step crossing the u32 wrap within the steps."""
    for l, lay in enumerate(model.layers):
        lay.rounding, lay.sr_seed, lay.sr_step = 1, 1000 + 7 * l, step
    return model


def learn_and_compare(fw, model, steps, bank=0, adapt=False, seed=0):
    """`steps` learning steps in C and in the golden model (FORMAT.md 4.5): after every step the predicted label,
    the flip count and the whole sealed image equal."""
    x = images_for(model, steps, seed)
    y = np.random.default_rng(seed).integers(0, model.n_classes, size=steps)
    golden = model
    total = 0
    with fw.open(to_bytes(model), bank=bank, adapt=adapt) as s:
        for t in range(steps):
            predicted, flips = s.learn_step(x[t], int(y[t]))
            golden, info = learn_step(golden, x[t], int(y[t]), bank=bank, adapt=adapt)
            assert (predicted, flips) == (info.predicted, sum(info.flips)), f"step {t}"
            assert s.image() == to_bytes(golden), f"state after step {t}"
            total += flips
        # and the learned model infers as the golden one
        assert np.array_equal(s.forward(x), forward(golden.copy(), x, bank=bank, adapt=adapt))
    return total


@pytest.mark.parametrize("ci", range(len(CASES)))
@pytest.mark.parametrize("rounding", [0, 1])
def test_conv_learning_equals_golden(cbackend, ci, rounding):
    """Every layer of a conv model learns on the device (conv on pixels and on bits, through the pool and the
    flatten, the dense head), state for state with metabnn.sim's learn_step, nearest and stochastic rounding."""
    model = build(CASES[ci], seed=ci)
    if rounding:
        stochastic(model)
    flips = learn_and_compare(cbackend, model, 6, bank=model.n_banks - 1, seed=ci)
    assert flips > 0  # the steps changed signs: the comparison saw updates


def test_conv_learning_with_an_adaptive_head_and_other_builds(cbackend, portable_backend, x86_level_backends):
    """Learning with stream adaptation in the dense head, and the same steps in the portable (the Cortex-M's
    kernels) and x86-64-v3 / v2 builds."""
    model = build(CASES[4], seed=2)
    for lay in model.layers:
        if lay.conv is None:
            lay.adapt_shift = 4
    assert learn_and_compare(cbackend, model, 5, adapt=True, seed=2) > 0
    for fw in (portable_backend, *x86_level_backends.values()):
        learn_and_compare(fw, stochastic(build(CASES[2], seed=2)), 3, seed=3)


def test_conv_learning_workspace(cbackend):
    """A learning workspace one byte short is refused; the learning size serves inference too."""
    model = build(CASES[1], seed=1)
    x = images_for(model, 1, 0)
    lib = cbackend.lib
    with cbackend.open(to_bytes(model)) as s:
        assert cbackend.status_str(lib.mbnn_learn_step(s.model, x[0].ctypes.data, model.input_size, 0, s.ws,
                                                       s.ws_size - 1, None)) == "workspace too small"
        assert np.array_equal(s.forward(x), forward(model, x))
    with cbackend.open(to_bytes(model), writable=False) as r:
        assert r.ws_size <= s.ws_size


def test_conv_workspace_size(cbackend):
    """The size query covers the conv buffers: one byte less is refused, the size itself runs; checked by hand on
    CASES[0]: 1 x 8 x 8 -> conv 4 (3x3, pad 1, pool) -> 4 x 4 x 4 -> conv 6 (3x3, pad 1) -> 6 x 4 x 4 -> dense 10."""
    model = build(CASES[0])
    data = to_bytes(model)
    lib = cbackend.lib
    x = images_for(model, 1, 0)
    with cbackend.open(data, writable=False) as s:
        size = s.ws_size
        label = ctypes.c_uint32()
        assert cbackend.status_str(lib.mbnn_predict(s.model, x[0].ctypes.data, 64, s.ws, size - 1,
                                                    ctypes.byref(label))) == "workspace too small"
        assert lib.mbnn_predict(s.model, x[0].ctypes.data, 64, s.ws, size, ctypes.byref(label)) == 0
        assert cbackend.status_str(lib.mbnn_predict(s.model, x[0].ctypes.data, 63, s.ws, size,
                                                    ctypes.byref(label))) == "argument out of range"
    a8 = lambda n: (n + 7) // 8 * 8
    K0 = 9  # the first layer's window
    planes = a8(4 * 8 * (1 + 1)) if _plane_kernel(cbackend) else 0
    want = (a8(8 * 10)  # scores
            + a8(4 * 10)  # acc, max N
            + planes
            + 2 * a8(4 * 16)  # ping/pong: the largest map, 4 x 4 positions x 1 word
            + a8(K0) + a8(4 * 2 * 2)  # the pixel window; the bits window and its mask (K = 36: 2 words)
            + a8(4 * 64)  # the first conv's map before the pool: 8 x 8 positions x 1 word
            + a8(4 * 3)  # the flattened 96 bits
            + _fast_scratch(cbackend))  # the inference kernel's weights and thresholds, the larger of the two convs
    assert size == want


def _fast_scratch(cbackend) -> int:
    """mbnn_conv2d_fast's scratch for CASES[0], by hand: conv 4 on pixels (K = 9), conv 6 on 4 bit channels
    (3 x 3 taps, one word each)."""
    a8 = lambda n: (n + 7) // 8 * 8
    cbackend.lib.mbnn_conv2d_fast_kernel.restype = ctypes.c_char_p
    if cbackend.lib.mbnn_conv2d_fast_kernel().decode() == "avx512-lanes":  # 16 channels per group, one group
        thr = a8(4 * (2 * 16 + 1))  # M, C of 16 channels, the group's f bits
        return max(thr + a8(2 * 9 * 1), thr + a8(4 * 9 * 1 * 16))  # 9 masks; 9 tap words x 16 channels
    return max(a8(2 * 10 * (4 + 1)), a8(4 * 9 * 1 * 6))  # int16 weights and window (K rounded up to 10); a copy
    # of the 6 rows with each tap's 4 bits on a word of its own (C = 4 is not a multiple of 32)


def _plane_kernel(cbackend) -> bool:
    cbackend.lib.mbnn_dense_pixels_kernel.restype = ctypes.c_char_p
    return cbackend.lib.mbnn_dense_pixels_kernel().decode() in ("avx512-planes", "popcount-planes")


# ---------------------------------------------------------------------------------------------- the loader

D = 24  # descriptor 0; descriptor l at D + 64 l; op at 41, in_c/in_h/in_w u16 at 52/54/56, kernel 58,
# stride 59, pad 60, pool 61


def test_version2_rejections_agree_with_the_python_reader(cbackend):
    model = build(CASES[0])  # conv, conv, dense
    img = to_bytes(model)
    assert struct.unpack_from("<H", img, 4)[0] == 2 and cbackend.load_status(img) == 0
    dense = to_bytes(random_model((40, 20, 5), seed=1))
    d1, d2 = D + 64, D + 128
    cases = {
        "unsupported format version": [edit(img, "<H", 4, 3), edit(dense, "<H", 4, 2)],
        "reserved field not zero": [edit(img, "B", D + 43, 1), edit(img, "B", D + 62, 1), edit(img, "B", d1 + 63, 1),
                                    edit(img, "B", d2 + 52, 1), edit(img, "B", d2 + 61, 2),
                                    edit(dense, "B", D + 41, 1), edit(dense, "B", D + 52, 1)],
        "layer chain does not fit (kinds or K/N)": [
            edit(img, "<H", d1 + 54, 5),  # in_h != the previous map height
            edit(img, "<H", d1 + 56, 3),
            edit(img, "<I", d2, 95),  # the dense K != 6 x 4 x 4 flattened
            edit(img, "B", D + 61, 0),  # no pool: layer 1's input map would be 8 x 8
        ],
        "descriptor field out of range": [
            edit(img, "B", D + 41, 2),  # op
            edit(img, "<H", d1 + 52, 5),  # in_c: K = 36 is not 5 x 3^2
            edit(img, "B", D + 58, 0), edit(img, "B", D + 58, 17),  # kernel
            edit(img, "B", D + 59, 0), edit(img, "B", D + 59, 17),  # stride
            edit(img, "B", D + 60, 3),  # pad >= kernel
            edit(img, "B", D + 61, 1), edit(img, "B", D + 61, 4),  # pool
            edit(img, "<H", D + 52, 0), edit(img, "<H", D + 54, 0), edit(img, "<H", D + 56, 1025),
            edit(img, "B", D + 14, 1),  # adapt_shift on a conv
        ],
    }
    for want, images in cases.items():
        for data in images:
            assert cbackend.status_str(cbackend.load_status(data)) == want
            assert not python_accepts(data)


def _conv_image(convs, dense, image, **kw):
    return to_bytes(random_conv_model(image, convs, dense, **kw))


def test_version2_structural_rejections(cbackend):
    """Each of export/mbnn.py's structural rules, on models crafted to break only it: the C loader rejects
    what Python rejects."""
    img = _conv_image(((4, 3, 1, 1, 0), (4, 3, 1, 1, 0)), (5,), (2, 6, 6), seed=2)
    d1 = D + 64
    bad = [
        edit(img, "B", D + 58, 1),  # kernel 1: K = 18 != 2 x 1 x 1
        edit(img, "B", D + 41, 0),  # layer 0 dense with geometry bytes left
        edit(img, "B", d1 + 41, 0),  # layer 1 dense (geometry bytes set)
        edit(img, "B", D + 128 + 41, 1),  # the output layer a conv
        edit(edit(img, "B", D + 60, 0), "B", D + 59, 1),  # pad 0: 4 x 4 output, layer 1 reads 6 x 6
    ]
    # a 1 x 1 output cannot be pooled; a 3 x 3 kernel does not fit a 2 x 2 map without padding
    small = _conv_image(((2, 2, 1, 0, 0),), (3,), (1, 2, 2), seed=3)
    fits = _conv_image(((2, 3, 1, 1, 0),), (3,), (1, 2, 2), seed=4)
    bad += [edit(small, "B", D + 61, 2), edit(fits, "B", D + 60, 0)]
    for data in bad:
        st = cbackend.load_status(data)
        assert st != 0 and not python_accepts(data), cbackend.status_str(st)
    # and a conv after a dense layer: layer 1 of a dense model turned into a 1 x 1 conv on 20 x 1 x 1
    dense = to_bytes(random_model((40, 20, 20, 5), seed=1))
    b = bytearray(dense)
    struct.pack_into("<H", b, 4, 2)
    struct.pack_into("B", b, d1 + 41, 1)
    struct.pack_into("<HHHBBBB", b, d1 + 52, 20, 1, 1, 1, 1, 0, 0)
    data = seal(b)
    assert cbackend.status_str(cbackend.load_status(data)) == "layer chain does not fit (kinds or K/N)"
    assert not python_accepts(data)


# ---------------------------------------------------------------------------------------------- sanitizers, Cortex-M

def test_sanitized_conv_inference_equals_golden(asan_tools, tmp_path):
    """mbnn_check (ASan/UBSan, the image in a heap buffer of exactly its size) on conv models: labels equal to the
    golden model's, the image unchanged; learning steps (stochastic rounding too) state for state."""
    from test_sanitizers import run
    for ci in (1, 5, 6):
        model = build(CASES[ci], seed=ci)
        x = images_for(model, 6, ci)
        (tmp_path / "m.mbnn").write_bytes(to_bytes(model))
        (tmp_path / "x.u8").write_bytes(x.tobytes())
        out = run(asan_tools / "mbnn_check", "predict", tmp_path / "m.mbnn", tmp_path / "x.u8", len(x), 0, 0,
                  tmp_path / "p.mbnn")
        assert [int(v) for v in out.split()] == np.argmax(forward(model, x), axis=1).tolist()
        assert (tmp_path / "p.mbnn").read_bytes() == to_bytes(model)
        if ci == 5:
            stochastic(model)
            (tmp_path / "m.mbnn").write_bytes(to_bytes(model))
        y = np.random.default_rng(ci).integers(0, model.n_classes, size=len(x))
        (tmp_path / "y.u32").write_bytes(np.asarray(y, "<u4").tobytes())
        run(asan_tools / "mbnn_check", "learn", tmp_path / "m.mbnn", tmp_path / "x.u8", len(x), 0, 0,
            tmp_path / "s.bin", tmp_path / "y.u32")
        states, size, g = (tmp_path / "s.bin").read_bytes(), len(to_bytes(model)), model
        for t in range(len(x)):
            g, _ = learn_step(g, x[t], int(y[t]))
            assert states[t * size:(t + 1) * size] == to_bytes(g), f"case {ci} step {t}"


def test_conv_model_on_cortex_m4(tmp_path):
    """The conv ops cross-compiled for the Cortex-M4 (portable kernels, USADA8), run under QEMU: every score of a
    conv model equal to the golden model's, from the read-only image in flash, and 4 learning steps state for
    state."""
    from test_cortex_m import _missing_tools, build_and_run, check_against_golden
    missing = _missing_tools()
    if missing:
        pytest.skip(f"Cortex-M test needs {missing}")
    model = build(CASES[5], seed=5)
    x = images_for(model, 3, 5)
    y = np.array([0, 5, 8])
    run = build_and_run(tmp_path, to_bytes(model), x, y, steps=4, extra_cflags="-DBOARD_WS_BYTES=32768")  # 23,960
    check_against_golden(model, x, y, 4, False, run)
