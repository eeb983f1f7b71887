"""mbnn_conv2d_fast (firmware/src/conv2d_fast.c), the conv ops' inference kernel, against the reference kernels
mbnn_conv2d_pixels / mbnn_conv2d_bits (the C99 code the learning forward keeps) on random geometries: channel
counts around the 32-bit word and the 16-channel vector group, odd maps, kernels 1..5, strides above the kernel,
every padding 0..k-1 (positions whose window is mostly or wholly off the map), several banks; in every build this
machine compiles (the default one with its vector kernel, the portable one, x86-64-v3 and v2). The output map
is compared word for word, padding bits included, and nothing is written past it or past the scratch the size
query gives. Whole models through mbnn_forward (which runs this kernel) are held to the golden model by
test_firmware_conv.py."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from test_firmware_conv import LAYERS_OFFSET

from metabnn.export.errors import FormatError
from metabnn.export.mbnn import to_bytes
from metabnn.sim import random_conv_model
from metabnn.sim.forward import forward

SENTINEL = 0xA5A5A5A5


def _models(n, seed):
    rng = np.random.default_rng(seed + 1)
    rng_geo = np.random.default_rng(seed)
    models = []
    while len(models) < n:
        c0 = int(rng_geo.choice([1, 1, 2, 3, 5]))
        h0, w0 = (int(v) for v in rng_geo.integers(1, 14, size=2))
        h, w, convs, ok = h0, w0, [], True
        for n_out in (int(rng_geo.choice([1, 5, 15, 16, 17, 31, 32, 33, 48, 64, 65, 70])),
                      int(rng_geo.choice([1, 3, 16, 31, 32, 33, 63, 64, 65, 80]))):
            k = int(rng_geo.integers(1, 6))
            pad = int(rng_geo.integers(0, k))
            stride = int(rng_geo.choice([1, 1, 2, 3, 6]))
            if h + 2 * pad < k or w + 2 * pad < k:
                ok = False
                break
            convs.append((n_out, k, stride, pad, 0))
            h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        if not ok or convs[-1][0] * h * w > 4096:
            continue
        bits, table_bits = ((2, 0), (8, 4), (16, 6))[int(rng.integers(0, 3))]
        model = random_conv_model((c0, h0, w0), tuple(convs), (3,), bits=bits, table_bits=table_bits,
                                  banks=int(rng.integers(1, 3)), seed=int(rng.integers(0, 1 << 30)))
        try:
            to_bytes(model)
        except FormatError:  # random_conv_model's thresholds can leave the range for K = 1 at b = 2
            continue
        models.append(model)
    return models


# the fmnist-conv preset's convs (3 x 3, pad 1, 32 and 64 channels: whole words, two and four vector groups) on a
# smaller map, and a 3-channel image with a pad of 2 and a stride-2 bits conv, then the random ones
MODELS = [random_conv_model((1, 16, 16), ((32, 3, 1, 1, 0), (64, 3, 1, 1, 0)), (3,), seed=1),
          random_conv_model((3, 9, 9), ((32, 3, 1, 2, 0), (32, 3, 2, 1, 0)), (3,), banks=2, seed=2)] + _models(24, 14)


def declare(lib):
    P, U = ctypes.c_void_p, ctypes.c_uint32
    for name, args in {"mbnn_conv2d_pixels": [P, U, P, P, P, P, P, P], "mbnn_conv2d_bits": [P, U, P, P, P, P, P],
                       "mbnn_conv2d_fast": [P, U, P, P, P]}.items():
        f = getattr(lib, name)
        f.argtypes, f.restype = args, ctypes.c_int
    lib.mbnn_conv2d_fast_bytes.argtypes, lib.mbnn_conv2d_fast_bytes.restype = [P], ctypes.c_size_t
    lib.mbnn_conv2d_fast_kernel.restype = ctypes.c_char_p
    lib.mbnn_model_struct_size.restype = ctypes.c_size_t
    return lib


def layer_ptr(backend, session, l):
    lib = backend.lib
    stride = (lib.mbnn_model_struct_size() - LAYERS_OFFSET(backend)) // 16
    return ctypes.addressof(session.model) + LAYERS_OFFSET(backend) + l * stride


def random_map(rng, c, h, w, density):
    """A channel-packed position-major +-1 map, padding bits 0."""
    bits = rng.random((h * w, c)) < density
    cw = (c + 31) // 32
    words = np.zeros((h * w, cw), np.uint32)
    for i in range(c):
        words[:, i // 32] |= bits[:, i].astype(np.uint32) << np.uint32(i % 32)
    return words.reshape(-1)


def run_both(backend, model, l, inp, bank):
    """The reference kernel's and the fast kernel's output maps of conv layer l on input `inp` (pixels uint8 or
    map words); each buffer with a sentinel past its end."""
    lib = declare(backend.lib)
    lay = model.layers[l]
    g = lay.conv
    oh, ow = (g.in_h + 2 * g.pad - g.kernel) // g.stride + 1, (g.in_w + 2 * g.pad - g.kernel) // g.stride + 1
    n_words = oh * ow * ((lay.N + 31) // 32)
    with backend.open(to_bytes(model), bank=bank, writable=False) as s:
        lp = layer_ptr(backend, s, l)
        ref = np.full(n_words + 1, SENTINEL, np.uint32)
        acc = np.zeros(lay.N, np.int32)
        if l == 0:
            window = np.zeros(lay.K + 8, np.uint8)
            planes = np.zeros(8 * ((lay.K + 31) // 32 + 1), np.uint64)
            st = lib.mbnn_conv2d_pixels(lp, bank, inp.ctypes.data, window.ctypes.data, planes.ctypes.data,
                                        acc.ctypes.data, ref.ctypes.data, None)
        else:
            window = np.zeros(2 * ((lay.K + 31) // 32), np.uint32)
            st = lib.mbnn_conv2d_bits(lp, bank, inp.ctypes.data, window.ctypes.data, acc.ctypes.data,
                                      ref.ctypes.data, None)
        assert st == 0
        nbytes = lib.mbnn_conv2d_fast_bytes(lp)
        scratch = np.full(nbytes // 8 + 2, 0xA5A5A5A5A5A5A5A5, np.uint64)
        fast = np.full(n_words + 1, SENTINEL, np.uint32)
        assert lib.mbnn_conv2d_fast(lp, bank, inp.ctypes.data, scratch.ctypes.data if nbytes else None,
                                    fast.ctypes.data) == 0
        assert scratch.view(np.uint8)[nbytes:].tolist() == [0xA5] * (len(scratch) * 8 - nbytes)
    assert ref[-1] == SENTINEL and fast[-1] == SENTINEL
    return ref[:-1], fast[:-1]


def backends(request):
    out = {"default": request.getfixturevalue("cbackend"), "portable": request.getfixturevalue("portable_backend")}
    try:
        out.update(request.getfixturevalue("x86_level_backends"))
    except pytest.skip.Exception:
        pass
    return out


@pytest.mark.parametrize("mi", range(len(MODELS)))
def test_fast_conv_equals_reference(request, mi):
    model = MODELS[mi]
    rng = np.random.default_rng(mi)
    g0, g1 = model.layers[0].conv, model.layers[1].conv
    pixels = rng.integers(0, 256, size=model.input_size, dtype=np.uint8)
    pixels[rng.random(model.input_size) < 0.3] = 0
    extremes = [np.full(model.input_size, 255, np.uint8), np.zeros(model.input_size, np.uint8)]
    maps = [random_map(rng, g1.in_c, g1.in_h, g1.in_w, d) for d in (0.0, 0.5, 1.0)]
    bank = model.n_banks - 1
    for name, fw in backends(request).items():
        for x in [pixels] + extremes:
            ref, fast = run_both(fw, model, 0, x, bank)
            assert np.array_equal(ref, fast), f"{name}: pixels conv, model {mi}"
        for mp in maps:
            ref, fast = run_both(fw, model, 1, mp, bank)
            assert np.array_equal(ref, fast), f"{name}: bits conv, model {mi}"
    # and the whole model (the fast kernel in mbnn_forward) equals the golden one
    x = np.stack([pixels] + extremes)
    assert np.array_equal(request.getfixturevalue("cbackend").scores(to_bytes(model), x, bank=bank),
                          forward(model, x, bank=bank))


def test_fast_conv_kernel_names(request):
    names = {k: declare(fw.lib).mbnn_conv2d_fast_kernel().decode() for k, fw in backends(request).items()}
    assert names["portable"] == "c"
    assert set(names.values()) <= {"avx512-lanes", "c", "c-smlad"}


def test_fast_conv_refuses_bad_calls(cbackend):
    lib = declare(cbackend.lib)
    st = cbackend.status_str
    model = MODELS[0]
    buf = np.zeros(4096, np.uint64)
    p = buf.ctypes.data
    with cbackend.open(to_bytes(model), writable=False) as s:
        lp = layer_ptr(cbackend, s, 0)
        need = lib.mbnn_conv2d_fast_bytes(lp)
        assert st(lib.mbnn_conv2d_fast(None, 0, p, p, p)) == "null pointer"
        assert st(lib.mbnn_conv2d_fast(lp, 0, None, p, p)) == "null pointer"
        assert st(lib.mbnn_conv2d_fast(lp, 0, p, p, None)) == "null pointer"
        if need:
            assert st(lib.mbnn_conv2d_fast(lp, 0, p, None, p)) == "null pointer"
            assert st(lib.mbnn_conv2d_fast(lp, 0, p, p + 4, p)) .startswith("misaligned buffer")
        dense = layer_ptr(cbackend, s, 2)  # the dense head is not a conv
        assert lib.mbnn_conv2d_fast_bytes(dense) == 0
        assert st(lib.mbnn_conv2d_fast(dense, 0, p, p, p)) == "argument out of range"
