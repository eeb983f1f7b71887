"""Kernels held to plain references: the builtin and portable popcounts, CRC-32."""

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
