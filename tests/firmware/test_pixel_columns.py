"""The first layer by columns (firmware/src/dense_pixels_columns.c) held to the portable reference and numpy, and
the column copy the workspace keeps between calls: rebuilt after a learning step that flips a layer-0 sign, after
another model is loaded into the same buffers, never used stale.

The kernel exists in x86 AVX-512 BW builds; elsewhere mbnn_pixel_columns_words() is 0, the other two entry points
answer "argument out of range" (tested on the x86-64-v3 build), and the workspace tests still hold."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from test_kernels import _Layer, _packed, _pixel_cases

from metabnn.backends.c import MODE_INFER, _Aligned
from metabnn.export.mbnn import from_bytes, to_bytes
from metabnn.sim import forward, learn_step, random_model

P = ctypes.c_void_p


def _bind(lib):
    lib.mbnn_pixel_columns_words.argtypes, lib.mbnn_pixel_columns_words.restype = [P], ctypes.c_size_t
    lib.mbnn_pixel_columns_build.argtypes, lib.mbnn_pixel_columns_build.restype = [P, P], ctypes.c_int
    lib.mbnn_dense_pixels_columns.argtypes, lib.mbnn_dense_pixels_columns.restype = [P] * 4, ctypes.c_int
    lib.mbnn_dense_pixels_portable.argtypes, lib.mbnn_dense_pixels_portable.restype = [P] * 3, ctypes.c_int
    return lib


@pytest.fixture(scope="module")
def columns_lib(cbackend):
    lib = _bind(cbackend.lib)
    probe = _Layer(K=784, N=512, W=25, in_kind=0)
    if lib.mbnn_pixel_columns_words(ctypes.byref(probe)) == 0:
        pytest.skip("this build has no column kernel (x86 AVX-512 BW only)")
    return lib


def _columns_acc(lib, K, N, signs, px):
    """acc of the column kernel (copy built from `signs`) and of the portable reference."""
    lay = _Layer(K=K, N=N, W=(K + 31) // 32, in_kind=0, signs=signs.ctypes.data)
    words = lib.mbnn_pixel_columns_words(ctypes.byref(lay))
    assert words == 16 * K * ((N + 511) // 512)
    cols = np.full(words + 16, 0xDEADBEEF, dtype=np.uint32)  # every word of the copy must be written
    cols_addr = cols.ctypes.data + (-cols.ctypes.data % 64)
    assert lib.mbnn_pixel_columns_build(ctypes.byref(lay), cols_addr) == 0
    acc = np.full(N, -(1 << 31), dtype=np.int32)
    ref = acc.copy()
    assert lib.mbnn_dense_pixels_columns(ctypes.byref(lay), px.ctypes.data, cols_addr, acc.ctypes.data) == 0
    assert lib.mbnn_dense_pixels_portable(ctypes.byref(lay), px.ctypes.data, ref.ctypes.data) == 0
    return acc, ref


def _sparse(rng, K):
    """MNIST-like: ~80 % zeros in runs (borders, gaps), the rest mostly near 255."""
    px = np.zeros(K, np.uint8)
    for start in rng.integers(0, K, size=max(1, K // 40)):
        px[start:start + rng.integers(1, 9)] = rng.choice([255, 254, 253, rng.integers(1, 256)])
    return px


# K: every tail of the 64-pixel chunk and the 32-pixel word; N: one neuron, a partial 32-neuron word, exactly one
# block of 512, one past it (a second block of one neuron), several blocks.
@pytest.mark.parametrize("K", [1, 31, 32, 33, 63, 64, 65, 255, 256, 257, 784, 1025])
@pytest.mark.parametrize("N", [1, 33, 512, 513, 1100])
def test_columns_equal_portable_and_numpy(columns_lib, K, N):
    rng = np.random.default_rng(7 * K + N)
    cases = _pixel_cases(rng, K, N) + [("sparse", _packed(rng, N, K), _sparse(rng, K))]
    for case, signs, px in cases:
        acc, ref = _columns_acc(columns_lib, K, N, np.ascontiguousarray(signs), px)
        bits = np.unpackbits(signs.view(np.uint8), axis=1, bitorder="little")[:, :K]
        want = (2 * bits.astype(np.int64) - 1) @ px.astype(np.int64)
        assert ref.tolist() == want.tolist(), f"portable K={K} N={N} {case}"
        assert acc.tolist() == want.tolist(), f"columns K={K} N={N} {case}"


def test_columns_sums_past_the_16_bit_flush(columns_lib):
    """9,000 pixels of 255 under +1 weights: S = 2,295,000, folded from the 16-bit lanes 35 times."""
    K, N = 9000, 40
    ones = np.full((N, (K + 31) // 32), 0xFFFFFFFF, np.uint32)
    ones[:, -1] = (1 << (K % 32)) - 1
    ones[1::3] = 0  # every third row all -1
    acc, ref = _columns_acc(columns_lib, K, N, ones, np.full(K, 255, np.uint8))
    assert acc.tolist() == ref.tolist() == [-255 * K if j % 3 == 1 else 255 * K for j in range(N)]


def test_columns_bad_calls(columns_lib, cbackend):
    lib = columns_lib
    signs, x, acc, cols = np.zeros(1, np.uint32), np.zeros(32, np.uint8), np.zeros(1, np.int32), np.zeros(64, np.uint32)
    bits = _Layer(K=32, N=1, W=1, in_kind=1, signs=signs.ctypes.data)
    lay = _Layer(K=32, N=1, W=1, in_kind=0, signs=signs.ctypes.data)
    assert lib.mbnn_pixel_columns_words(ctypes.byref(bits)) == 0 and lib.mbnn_pixel_columns_words(None) == 0
    status = cbackend.status_str
    assert status(lib.mbnn_pixel_columns_build(ctypes.byref(bits), cols.ctypes.data)) == "argument out of range"
    assert status(lib.mbnn_pixel_columns_build(ctypes.byref(lay), None)) == "null pointer"
    assert status(lib.mbnn_dense_pixels_columns(ctypes.byref(bits), x.ctypes.data, cols.ctypes.data,
                                                acc.ctypes.data)) == "argument out of range"
    for args in ((None, x, cols, acc), (lay, None, cols, acc), (lay, x, None, acc), (lay, x, cols, None)):
        ptrs = [None if a is None else (ctypes.byref(a) if a is lay else a.ctypes.data) for a in args]
        assert status(lib.mbnn_dense_pixels_columns(*ptrs)) == "null pointer"


def test_no_column_kernel_without_avx512(request):
    """The x86-64-v3 (AVX2) build has no column kernel: size 0, and the entry points refuse."""
    fw = request.getfixturevalue("x86_level_backends")["x86-64-v3"]
    lib = _bind(fw.lib)
    lay = _Layer(K=784, N=512, W=25, in_kind=0)
    x, cols, acc = np.zeros(784, np.uint8), np.zeros(8, np.uint32), np.zeros(512, np.int32)
    assert lib.mbnn_pixel_columns_words(ctypes.byref(lay)) == 0
    assert fw.status_str(lib.mbnn_pixel_columns_build(ctypes.byref(lay), cols.ctypes.data)) == "argument out of range"
    assert fw.status_str(lib.mbnn_dense_pixels_columns(ctypes.byref(lay), x.ctypes.data, cols.ctypes.data,
                                                       acc.ctypes.data)) == "argument out of range"


def _flipping_model(seed):
    """A 200-40-30-10 model whose learning steps flip layer-0 signs (lr_shift 0: every step is large)."""
    return random_model((200, 40, 30, 10), bits=4, table_bits=2, meta=0.0, lr_shift=0, seed=seed)


def test_copy_follows_learning(cbackend):
    """predict (builds the copy), learn (flips layer-0 signs), predict again, with one workspace: the second
    predictions are the learned model's, not the copy's of before."""
    model = _flipping_model(1)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(30, 200), dtype=np.uint8)
    x[:, rng.random(200) < 0.6] = 0  # sparse, as the column kernel meets MNIST
    y = rng.integers(0, 10, size=30)
    golden = model
    with cbackend.open(to_bytes(model)) as s:
        assert np.array_equal(s.forward(x), forward(golden, x))
        flipped = 0
        for t in range(6):
            before = golden.layers[0].signs.copy()
            golden, _ = learn_step(golden, x[t], int(y[t]))
            flipped += int(np.count_nonzero(before != golden.layers[0].signs))
            s.learn_step(x[t], int(y[t]))
            assert np.array_equal(s.forward(x), forward(golden, x)), f"after step {t}"
        assert flipped > 0  # the test exercised a changed layer 0
        assert s.image() == to_bytes(golden)


def test_copy_of_another_model_in_the_same_buffers(cbackend):
    """Load A, infer, load B (same shapes) into the same image buffer with the same workspace: B's scores; then A's
    again. The loader's sign_version (the image's CRC) tells the copies apart."""
    lib = cbackend.lib
    a, b = to_bytes(_flipping_model(2)), to_bytes(_flipping_model(3))
    assert len(a) == len(b) and a != b
    x = np.random.default_rng(2).integers(0, 256, size=(8, 200), dtype=np.uint8)
    img = _Aligned(a)
    model = ctypes.create_string_buffer(lib.mbnn_model_struct_size())
    size = ctypes.c_size_t()
    assert lib.mbnn_load(model, img.buf, img.size) == 0
    assert lib.mbnn_workspace_size(model, MODE_INFER, ctypes.byref(size)) == 0
    ws = (ctypes.c_uint64 * (size.value // 8))()
    scores = np.zeros(10, np.int64)
    for data in (a, b, a):
        ctypes.memmove(img.buf, data, len(data))
        assert lib.mbnn_load(model, img.buf, img.size) == 0
        want = forward(from_bytes(data), x)
        for n in range(len(x)):
            assert lib.mbnn_forward(model, x[n].ctypes.data, 200, ws, size.value, scores.ctypes.data, 10) == 0
            assert scores.tolist() == want[n].tolist()


def test_learning_workspace_serves_inference(cbackend, portable_backend):
    """The copy sits at the same offset in both modes and the learning workspace is the larger: a writable session
    infers with it. Without a column kernel the sizes are those of before."""
    data = to_bytes(random_model((784, 512, 512, 10), seed=0))
    sizes = {}
    for name, fw in (("native", cbackend), ("portable", portable_backend)):
        with fw.open(data, writable=False) as s_inf, fw.open(data) as s_learn:
            sizes[name] = (s_inf.ws_size, s_learn.ws_size)
    words = _bind(cbackend.lib).mbnn_pixel_columns_words(ctypes.byref(_Layer(K=784, N=512, W=25, in_kind=0)))
    assert sizes["native"][0] <= sizes["native"][1]
    assert sizes["portable"] == (2256, 6480)  # docs/FIRMWARE.md, "Kernels per target"
    if words:
        planes = 4 * 8 * (25 + 1)  # the bit-plane scratch of this build's mbnn_dense_pixels
        assert sizes["native"] == (2256 + planes + 64 + 4 * words + 56, 6480 + planes + 64 + 4 * words + 56)
