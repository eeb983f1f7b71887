"""Kernels held to plain references: the builtin and portable popcounts, the pixel-layer kernels
(every SIMD path this machine can compile against the portable C reference), the binary layer, CRC-32."""

from __future__ import annotations

import ctypes
import zlib

import numpy as np
import pytest


@pytest.mark.parametrize("W", [0, 1, 2, 3, 4, 5, 7, 8, 31, 128, 257])
def test_popcount_builtin_equals_portable_equals_numpy(cbackend, W):
    rng = np.random.default_rng(W)
    lib = cbackend.lib
    for trial in range(20):
        a = rng.integers(0, 1 << 32, size=max(W, 1), dtype=np.uint64).astype(np.uint32)
        b = rng.integers(0, 1 << 32, size=max(W, 1), dtype=np.uint64).astype(np.uint32)
        if trial == 0:
            a[:] = 0xFFFFFFFF
            b[:] = 0
        want_x = int(np.bitwise_count(a[:W] ^ b[:W]).sum())
        want_a = int(np.bitwise_count(a[:W] & b[:W]).sum())
        pa, pb = a.ctypes.data, b.ctypes.data
        assert lib.mbnn_xor_popcount(pa, pb, W) == want_x
        assert lib.mbnn_xor_popcount_portable(pa, pb, W) == want_x
        assert lib.mbnn_and_popcount(pa, pb, W) == want_a
        assert lib.mbnn_and_popcount_portable(pa, pb, W) == want_a


def test_popcount_unaligned_word_offsets(cbackend):
    """The 64-bit pairing must not care whether the row starts on an 8-byte boundary."""
    rng = np.random.default_rng(7)
    a = rng.integers(0, 1 << 32, size=40, dtype=np.uint64).astype(np.uint32)
    b = rng.integers(0, 1 << 32, size=40, dtype=np.uint64).astype(np.uint32)
    for off in range(4):
        W = 33
        want = int(np.bitwise_count(a[off:off + W] ^ b[off:off + W]).sum())
        assert cbackend.lib.mbnn_xor_popcount(a.ctypes.data + 4 * off, b.ctypes.data + 4 * off, W) == want


@pytest.mark.parametrize("n", [0, 1, 3, 100, 4097])
def test_crc32_equals_zlib(cbackend, n):
    data = np.random.default_rng(n).integers(0, 256, size=n, dtype=np.uint8).tobytes()
    buf = ctypes.create_string_buffer(data, max(n, 1))
    assert cbackend.lib.mbnn_crc32(0, buf, n) == zlib.crc32(data)
    # chaining
    half = n // 2
    c = cbackend.lib.mbnn_crc32(0, buf, half)
    assert cbackend.lib.mbnn_crc32(c, ctypes.byref(buf, half), n - half) == zlib.crc32(data)


def test_status_names(cbackend):
    names = [cbackend.status_str(i) for i in range(25)]
    assert names[0] == "ok" and len(set(names)) == 25
    assert cbackend.status_str(999) == "unknown status"


class _Layer(ctypes.Structure):
    """mbnn_layer of firmware/include/metabnn.h, field for field."""
    _fields_ = [("K", ctypes.c_uint32), ("N", ctypes.c_uint32), ("W", ctypes.c_uint32),
                ("in_kind", ctypes.c_uint8), ("out_kind", ctypes.c_uint8), ("bits", ctypes.c_uint8),
                ("table_bits", ctypes.c_uint8), ("lr_shift", ctypes.c_uint8), ("bshift", ctypes.c_uint8),
                ("adapt_shift", ctypes.c_uint8), ("score_frac", ctypes.c_uint8),
                ("signs", ctypes.c_void_p), ("hidden", ctypes.c_void_p), ("table", ctypes.c_void_p),
                ("away", ctypes.c_void_p), ("norm", ctypes.c_void_p), ("desc", ctypes.c_void_p), ("sr_seed", ctypes.c_uint32),
                ("rounding", ctypes.c_uint8), ("sign_version", ctypes.c_uint32),
                ("op", ctypes.c_uint8), ("kernel", ctypes.c_uint8), ("stride", ctypes.c_uint8), ("pad", ctypes.c_uint8),
                ("pool", ctypes.c_uint8), ("in_c", ctypes.c_uint16), ("in_h", ctypes.c_uint16), ("in_w", ctypes.c_uint16),
                ("out_h", ctypes.c_uint16), ("out_w", ctypes.c_uint16), ("map_h", ctypes.c_uint16),
                ("map_w", ctypes.c_uint16)]


def _packed(rng, rows, K):
    """rows x ceil(K/32) random sign words with the padding bits zero, as the loader requires."""
    W = (K + 31) // 32
    words = rng.integers(0, 1 << 32, size=(rows, W), dtype=np.uint64).astype(np.uint32)
    if K % 32:
        words[:, -1] &= np.uint32((1 << (K % 32)) - 1)
    return words


def _backend(request, name):
    """A fixture's backend, or one of the x86 level builds by its -march name."""
    if name.startswith("x86-64"):
        return request.getfixturevalue("x86_level_backends")[name]
    return request.getfixturevalue(name)


def _dense_bits(lib, K, N, signs_addr, x_addr):
    lay = _Layer(K=K, N=N, W=(K + 31) // 32, in_kind=1, signs=signs_addr)
    acc = np.full(N, -(1 << 31), dtype=np.int32)  # every entry must be written
    f = lib.mbnn_dense_bits
    f.argtypes, f.restype = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int
    st = f(ctypes.byref(lay), x_addr, acc.ctypes.data)
    return st, acc


# K: below, at and around the 32/64-bit word and the 4-word (256-bit) block; N: around the
# block of 4 rows. Odd W puts every other row on a 4-byte (not 8-byte) boundary.
@pytest.mark.parametrize("backend_name", ["cbackend", "portable_backend", "x86-64-v3", "x86-64-v2"])
@pytest.mark.parametrize("K", [1, 31, 32, 33, 63, 64, 65, 200, 255, 256, 257, 300, 511, 784, 1000, 2049, 4096])
def test_dense_bits_equals_plain_row_kernel(request, backend_name, K):
    """The register-blocked mbnn_dense_bits == K - 2 mbnn_xor_popcount(x, w_j, W) per row == numpy."""
    lib = _backend(request, backend_name).lib
    rng = np.random.default_rng(K)
    W = (K + 31) // 32
    for N in (1, 3, 4, 5, 7, 8, 9, 13, 30):
        for offset in (0, 1):  # the arrays start 8-byte aligned, or only 4-byte aligned
            signs_buf = np.zeros(offset + N * W, dtype=np.uint32)
            x_buf = np.zeros(offset + W, dtype=np.uint32)
            signs_buf[offset:] = _packed(rng, N, K).ravel()
            x_buf[offset:] = _packed(rng, 1, K)[0]
            signs, x = signs_buf[offset:].reshape(N, W), x_buf[offset:]
            st, got = _dense_bits(lib, K, N, signs_buf.ctypes.data + 4 * offset, x_buf.ctypes.data + 4 * offset)
            assert st == 0
            want = K - 2 * np.bitwise_count(signs ^ x).sum(axis=1).astype(np.int64)
            plain = [K - 2 * lib.mbnn_xor_popcount(x.ctypes.data, signs[j].ctypes.data, W) for j in range(N)]
            assert plain == want.tolist()
            assert got.tolist() == want.tolist(), f"K={K} N={N} offset={offset}"


# K = 777: several chunks per row; 500 and 512: one chunk, the rows reduced 8 at a time (AVX-512)
@pytest.mark.parametrize("backend_name", ["cbackend", "portable_backend", "x86-64-v3", "x86-64-v2"])
@pytest.mark.parametrize("K", [777, 500, 512])
def test_dense_bits_extremes(request, backend_name, K):
    """All-agree and all-disagree rows (acc = +K and -K) next to random ones, across blocks."""
    lib = _backend(request, backend_name).lib
    rng = np.random.default_rng(1)
    N = 11
    W = (K + 31) // 32
    x = _packed(rng, 1, K)[0]
    signs = _packed(rng, N, K)
    full = _packed(rng, 1, K)[0] | np.uint32(0xFFFFFFFF)
    if K % 32:
        full[-1] = (1 << (K % 32)) - 1
    signs[0] = x
    signs[5] = x ^ full
    signs[10] = x ^ full
    st, got = _dense_bits(lib, K, N, signs.ctypes.data, x.ctypes.data)
    assert st == 0
    assert got[0] == K and got[5] == -K and got[10] == -K
    assert got.tolist() == (K - 2 * np.bitwise_count(signs ^ x).sum(axis=1).astype(np.int64)).tolist()
    assert W == signs.shape[1]


def test_dense_bits_rejects_bad_calls(cbackend):
    lib = cbackend.lib
    x = np.zeros(1, dtype=np.uint32)
    signs = np.zeros(1, dtype=np.uint32)
    st, _ = _dense_bits(lib, 32, 1, signs.ctypes.data, None)  # no input vector
    assert cbackend.status_str(st) == "null pointer"
    lay = _Layer(K=32, N=1, W=1, in_kind=0, signs=signs.ctypes.data)  # a PIXELS layer
    acc = np.zeros(1, dtype=np.int32)
    assert cbackend.status_str(lib.mbnn_dense_bits(ctypes.byref(lay), x.ctypes.data, acc.ctypes.data)) \
        == "argument out of range"


def _libs(request, cbackend, names):
    """(name, ctypes library) of the native build and of the named variant builds."""
    libs = [("native", cbackend.lib)]
    if "portable" in names:
        libs.append(("portable", request.getfixturevalue("portable_backend").lib))
    if "x86" in names:
        libs += [(k, b.lib) for k, b in request.getfixturevalue("x86_level_backends").items()]
    return libs


def _dense_pixels(lib, K, N, signs_addr, x_addr):
    """(kernel status, acc, portable status, acc) of one PIXELS layer, planes scratch as in the workspace."""
    lay = _Layer(K=K, N=N, W=(K + 31) // 32, in_kind=0, signs=signs_addr)
    planes = np.zeros(8 * ((K + 31) // 32 + 1) // 2 + 1, dtype=np.uint64)  # 8-byte aligned
    fast, ref = lib.mbnn_dense_pixels, lib.mbnn_dense_pixels_portable
    fast.argtypes, fast.restype = [ctypes.c_void_p] * 4, ctypes.c_int
    ref.argtypes, ref.restype = [ctypes.c_void_p] * 3, ctypes.c_int
    acc = np.full(N, -(1 << 31), dtype=np.int32)  # every entry must be written
    acc_ref = acc.copy()
    st = fast(ctypes.byref(lay), x_addr, planes.ctypes.data, acc.ctypes.data)
    st_ref = ref(ctypes.byref(lay), x_addr, acc_ref.ctypes.data)
    return st, acc, st_ref, acc_ref


def _pixel_cases(rng, K, N):
    """(name, signs [N, W] with zero padding, pixels [K]): random, and the extremes of both."""
    signs = _packed(rng, N, K)
    ones = _packed(rng, N, K) | np.uint32(0xFFFFFFFF)
    if K % 32:
        ones[:, -1] = (1 << (K % 32)) - 1
    zeros = np.zeros_like(signs)
    mixed = signs.copy()
    mixed[::2] = ones[::2]  # alternate rows all +1 and random, across the blocks of 4 rows
    px = rng.integers(0, 256, size=K, dtype=np.uint8)
    full, dark = np.full(K, 255, np.uint8), np.zeros(K, np.uint8)
    return [("random", signs, px), ("all +1, pixels 255", ones, full), ("all -1, pixels 255", zeros, full),
            ("all +1, random pixels", ones, px), ("all -1, random pixels", zeros, px), ("pixels 0", signs, dark),
            ("mixed rows, pixels 255", mixed, full)]


# K: every tail of the 4-pixel nibble, the 32-bit word, the 64-pixel plane word and the AVX2 word,
# odd W (rows only 4-byte aligned), and more than 32 words (the portable kernel folds its 16-bit
# lanes every 1,024 pixels: 9,000 pixels of 255 under +1 weights cross that 8 times).
@pytest.mark.parametrize("K", [1, 3, 4, 5, 31, 32, 33, 63, 64, 65, 100, 127, 200, 255, 256, 257, 784, 1000,
                               1023, 1024, 1025, 2049, 4100, 9000])
def test_dense_pixels_every_kernel_equals_portable_and_numpy(request, cbackend, K):
    rng = np.random.default_rng(1000 + K)
    kernels = set()
    for name, lib in _libs(request, cbackend, ("portable", "x86")):
        lib.mbnn_dense_pixels_kernel.restype = ctypes.c_char_p
        kernels.add(lib.mbnn_dense_pixels_kernel().decode())
        for N in (1, 3, 4, 5, 9) if K < 4000 else (5,):
            for case, signs, px in _pixel_cases(rng, K, N):
                for off in (0, 1):  # signs 8- or only 4-byte aligned; pixels at an odd address
                    sb = np.zeros(off + signs.size, dtype=np.uint32)
                    sb[off:] = signs.ravel()
                    xb = np.zeros(off + K, dtype=np.uint8)
                    xb[off:] = px
                    st, got, st_ref, ref = _dense_pixels(lib, K, N, sb.ctypes.data + 4 * off, xb.ctypes.data + off)
                    bits = np.unpackbits(signs.view(np.uint8), axis=1, bitorder="little")[:, :K]
                    want = (2 * bits.astype(np.int64) - 1) @ px.astype(np.int64)
                    assert st == 0 and st_ref == 0
                    assert ref.tolist() == want.tolist(), f"portable, K={K} N={N} {case}"
                    assert got.tolist() == want.tolist(), f"{name} kernel, K={K} N={N} {case} offset {off}"
    assert "portable" in kernels and len(kernels) >= 2, kernels  # a fast kernel was compared, not only the reference


def test_dense_pixels_extreme_sums(cbackend):
    """acc = +-255 K exactly: the largest masked sums every kernel must carry without overflow."""
    for name, lib in _libs(None, cbackend, ()):
        for K in (784, 4100):
            rng = np.random.default_rng(K)
            _, ones, full = _pixel_cases(rng, K, 4)[1]
            st, got, _, ref = _dense_pixels(lib, K, 4, ones.ctypes.data, full.ctypes.data)
            assert st == 0 and got.tolist() == ref.tolist() == [255 * K] * 4, name
            zeros = np.zeros_like(ones)
            st, got, _, ref = _dense_pixels(lib, K, 4, zeros.ctypes.data, full.ctypes.data)
            assert st == 0 and got.tolist() == ref.tolist() == [-255 * K] * 4, name


def test_dense_pixels_rejects_bad_calls(cbackend):
    lib = cbackend.lib
    signs, x, acc = np.zeros(1, np.uint32), np.zeros(32, np.uint8), np.zeros(1, np.int32)
    f, ref = lib.mbnn_dense_pixels, lib.mbnn_dense_pixels_portable
    f.argtypes, ref.argtypes = [ctypes.c_void_p] * 4, [ctypes.c_void_p] * 3
    planes = np.zeros(32, np.uint64)
    bits = _Layer(K=32, N=1, W=1, in_kind=1, signs=signs.ctypes.data)  # a BITS layer
    assert cbackend.status_str(f(ctypes.byref(bits), x.ctypes.data, planes.ctypes.data, acc.ctypes.data)) \
        == "argument out of range"
    assert cbackend.status_str(ref(ctypes.byref(bits), x.ctypes.data, acc.ctypes.data)) == "argument out of range"
    lay = _Layer(K=32, N=1, W=1, in_kind=0, signs=signs.ctypes.data)
    assert cbackend.status_str(f(ctypes.byref(lay), None, planes.ctypes.data, acc.ctypes.data)) == "null pointer"
    assert cbackend.status_str(ref(ctypes.byref(lay), x.ctypes.data, None)) == "null pointer"
    # the planes scratch: required (8-byte aligned) by the bit-plane kernels, ignored by the others
    lib.mbnn_dense_pixels_kernel.restype = ctypes.c_char_p
    planes_kernel = lib.mbnn_dense_pixels_kernel().decode().endswith("planes")
    st = cbackend.status_str(f(ctypes.byref(lay), x.ctypes.data, None, acc.ctypes.data))
    assert st == ("null pointer" if planes_kernel else "ok")
    st = cbackend.status_str(f(ctypes.byref(lay), x.ctypes.data, planes.ctypes.data + 4, acc.ctypes.data))
    assert st == ("misaligned buffer (image needs 4-byte, workspace 8-byte alignment)" if planes_kernel else "ok")
