"""export/readmemh.py on conv models (FORMAT.md version 2): the files hold the engine rows the conv RTL runs
(rtl_layers: paired lanes for a padded conv on sign bits, the first dense layer's columns in stream order), and
those rows compute exactly what metabnn.sim computes. Checked here without a simulator, from the definitions of
the dot units (mbnn_xnor_popcount: +1 per equal valid lane, -1 per different one; mbnn_pixel_dot: +-pixel)."""

from __future__ import annotations

import numpy as np
import pytest

from metabnn.export.readmemh import CONV_SVH_NAME, layer_file, rtl_layers, write_readmemh
from metabnn.sim import forward
from metabnn.sim.bits import unpack_bits
from metabnn.sim.model import BITS, SIGN
from metabnn.sim.ops import Conv2dBits, Conv2dPixels, ops_of, threshold
from metabnn.sim.random_model import random_conv_model

SHAPES = [
    ((1, 9, 9), ((4, 3, 1, 1, 2), (6, 3, 1, 1, 0)), (10,)),
    ((2, 8, 7), ((3, 3, 2, 1, 0), (5, 3, 1, 2, 2)), (7, 4)),
    ((1, 6, 6), ((3, 3, 1, 0, 0), (4, 2, 1, 0, 0)), (5,)),
]


def _read_hex(path, bits):
    vals = [int(line, 16) for line in path.read_text().split()]
    return np.array([v - (1 << bits) if v >> (bits - 1) else v for v in vals], dtype=np.int64)


@pytest.mark.parametrize("shape", SHAPES)
def test_engine_rows_equal_golden(shape):
    """Every conv layer, position by position, through the engine row of rtl_layers (with the paired lanes the
    conv top sends: (a, a) in the image, (0, 1) on padding), and the flattened dense layer on the map in stream
    order: the same outputs as the golden ops."""
    model = random_conv_model(*shape, seed=3)
    rl = rtl_layers(model)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, model.input_size)).astype(np.uint8)
    ops = ops_of(model)
    for n in range(len(x)):
        h = x[n]
        li = 0
        for op in ops:
            if not getattr(op, "weighted", False):
                h = op.execute(h)
                continue
            lay, r = op.layer, rl[li]
            if isinstance(op, (Conv2dPixels, Conv2dBits)):
                g = op.geom
                xm = np.asarray(h).reshape(g.in_c, g.in_h, g.in_w)
                w = unpack_bits(r.signs, r.K)  # [N, K'] engine weights
                got = np.zeros((lay.N, g.out_h, g.out_w), dtype=np.int8)
                for oy in range(g.out_h):
                    for ox in range(g.out_w):
                        vals, inside = op.taps(xm, oy, ox)
                        if lay.in_kind == BITS:
                            a = (vals > 0) & inside
                            if r.paired:
                                a = np.stack([a, a | ~inside], axis=1).reshape(-1)
                            acc = (2 * (a[None, :] == w) - 1).sum(axis=1)
                            assert not r.paired or np.array_equal(acc, 2 * op.reference_acc(vals, inside))
                        else:
                            acc = np.where(w, 1, -1) @ np.where(inside, vals, 0)
                        d = acc * 256 - r.M[0].astype(np.int64)
                        got[:, oy, ox] = np.where((d >= r.C[0]) ^ (r.flip[0] != 0), 1, -1)
                want = op.execute(h)
                assert np.array_equal(got, want), f"layer {li}, image {n}"
                h = want
            else:
                v = np.asarray(h).reshape(-1)
                prev = model.layers[li - 1] if li else None
                if prev is not None and prev.conv is not None:  # the map as streamed: (y W + x) C + c
                    v = v.reshape(prev.N, -1).T.reshape(-1)
                w = np.where(unpack_bits(r.signs, r.K), 1, -1)
                acc = w @ v.astype(np.int64)
                assert np.array_equal(acc, op.reference_acc(np.asarray(h).reshape(-1))), f"layer {li}"
                h = op.execute(h)
            li += 1
    # and the golden model agrees with itself through the ops (the loop above followed ops_of)
    assert forward(model, x).shape == (3, model.n_classes)


def test_paired_layer_arrays():
    model = random_conv_model((1, 8, 8), ((4, 3, 1, 1, 0), (5, 3, 1, 1, 0)), (6,), seed=1)
    model.layers[1].C[0, 0] = 2**31 - 1  # never fires; 2C would not fit int32: clipped past |d'|
    model.layers[1].C[0, 1] = -2**31
    r = rtl_layers(model)
    assert [x.paired for x in r] == [False, True, False]
    lay = model.layers[1]
    assert r[1].K == 2 * lay.K
    assert np.array_equal(unpack_bits(r[1].signs, r[1].K), np.repeat(unpack_bits(lay.signs, lay.K), 2, axis=1))
    assert np.array_equal(r[1].M, 2 * lay.M)
    lim = 1024 * lay.K + 2
    assert r[1].C[0, 0] == lim and r[1].C[0, 1] == -lim
    assert np.array_equal(r[1].C[0, 2:], 2 * lay.C[0, 2:])
    assert np.array_equal(r[0].signs, model.layers[0].signs)  # pixels: unchanged


def test_files_and_header(tmp_path):
    model = random_conv_model((1, 9, 9), ((4, 3, 1, 1, 2), (6, 3, 2, 1, 0)), (7, 5), seed=2, banks=2)
    paths = write_readmemh(model, tmp_path)
    rl = rtl_layers(model)
    for l, r in enumerate(rl):
        w = _read_hex(layer_file(tmp_path, l, "w"), 32) & 0xFFFFFFFF
        assert np.array_equal(w, r.signs.reshape(-1).astype(np.int64))
        assert np.array_equal(_read_hex(layer_file(tmp_path, l, "m"), 32), r.M.reshape(-1))
        if r.out_kind == SIGN:
            assert np.array_equal(_read_hex(layer_file(tmp_path, l, "c"), 32), r.C.reshape(-1))
        else:
            assert np.array_equal(_read_hex(layer_file(tmp_path, l, "b"), 64), r.b.reshape(-1))
    svh = (tmp_path / CONV_SVH_NAME).read_text()
    assert tmp_path / CONV_SVH_NAME in paths and not (tmp_path / "mbnn_model.svh").exists()
    assert "MBNN_L = 4;" in svh and "MBNN_NC = 2;" in svh and "MBNN_B = 2;" in svh
    assert f"MBNN_FC = 6;" in svh and "MBNN_FPOS = 4;" in svh  # 4x4 map after the pool, then stride 2: 2x2
    assert "32'd72" in svh  # the paired layer's K' = 2 * 4 * 9


def test_dense_header_refuses_conv():
    from metabnn.errors import UsageError
    from metabnn.export.readmemh import model_svh

    with pytest.raises(UsageError, match="conv"):
        model_svh(random_conv_model(), "/tmp")
