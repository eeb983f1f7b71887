"""from_onnx: the .onnx file alone gives back the whole integer model, so learning can go on from it;
anything that is not such a file raises FormatError and nothing else."""

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from metabnn.export import FormatError, to_bytes  # noqa: E402
from metabnn.export.onnx_export import from_onnx, save_onnx, to_onnx  # noqa: E402
from metabnn.sim import learn_step, random_model  # noqa: E402


def assert_same_model(a, b):
    """Every field of every layer, and the exp table; the .mbnn bytes say the same canonically."""
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        for f in ("K", "N", "in_kind", "out_kind", "bits", "table_bits", "lr_shift", "bshift", "adapt_shift",
                  "score_frac"):
            assert getattr(la, f) == getattr(lb, f), f
        for f in ("meta", "scale"):  # float32 in the format, as in .mbnn
            assert np.float32(getattr(la, f)) == np.float32(getattr(lb, f)), f
        for f in ("signs", "hidden", "table", "M", "C", "lo", "hi", "flip", "g", "b"):
            va, vb = getattr(la, f), getattr(lb, f)
            assert (va is None) == (vb is None), f
            if va is not None:
                np.testing.assert_array_equal(np.asarray(va, np.int64), np.asarray(vb, np.int64), err_msg=f)
    np.testing.assert_array_equal(a.exp_table, b.exp_table)
    assert to_bytes(a) == to_bytes(b)


@pytest.mark.parametrize("kw", [
    dict(sizes=(70, 33, 10), bits=8, banks=3, adapt_shift=3),
    dict(sizes=(100, 37, 33, 10), bits=12, table_bits=11, meta=0.0),
    dict(sizes=(5, 3, 2), bits=2, table_bits=0),
    dict(sizes=(40, 20, 10), bits=16, table_bits=12, banks=2, meta=1.35),
])
def test_onnx_to_model_equals_original(tmp_path, kw):
    model = random_model(**kw, seed=kw["bits"])
    for bank in range(model.n_banks):
        path = tmp_path / f"m{bank}.onnx"
        save_onnx(model, path, bank=bank)
        back = from_onnx(path)
        assert_same_model(model, back)
        # canonical: onnx -> model -> onnx gives the same bytes
        assert to_onnx(back, bank).SerializeToString() == path.read_bytes()


def test_learning_goes_on_from_the_onnx_file(tmp_path):
    model = random_model((60, 24, 10), banks=2, seed=11)
    save_onnx(model, tmp_path / "m.onnx", bank=1)
    back = from_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(2).integers(0, 256, (5, 60)).astype(np.uint8)
    for i, img in enumerate(x):
        model, info_a = learn_step(model, img, i % 10, bank=1)
        back, info_b = learn_step(back, img, i % 10, bank=1)
        assert info_a.flips == info_b.flips
    assert_same_model(model, back)


def test_metadata_names_version_bits_and_m():
    model = random_model((30, 12, 10), bits=6, table_bits=3, meta=0.75, banks=2)
    meta = {p.key: p.value for p in to_onnx(model, 1).metadata_props}
    assert meta["metabnn.format_version"] == "1" and meta["metabnn.bank"] == "1" and meta["metabnn.banks"] == "2"
    assert meta["metabnn.sizes"] == "30,12,10"
    layers = json.loads(meta["metabnn.layers"])
    assert [(e["bits"], e["table_bits"], e["meta"]) for e in layers] == [(6, 3, 0.75)] * 2


BASE = random_model((40, 33, 10), bits=8, banks=2, seed=7)


def _edit(fn):
    proto = to_onnx(BASE, 0)
    fn(proto)
    return proto.SerializeToString()


def _set_meta(key, value):
    def fn(p):
        for e in p.metadata_props:
            if e.key == key:
                e.value = value
    return fn


def _edit_layers(fn_layers):
    def fn(p):
        for e in p.metadata_props:
            if e.key == "metabnn.layers":
                layers = json.loads(e.value)
                fn_layers(layers)
                e.value = json.dumps(layers)
    return fn


def _replace_init(name, array):
    def fn(p):
        for i, t in enumerate(p.graph.initializer):
            if t.name == name:
                p.graph.initializer[i].CopyFrom(onnx.numpy_helper.from_array(array, name))
    return fn


@pytest.mark.parametrize("data,needle", [
    (b"", "no 'metabnn.format_version'"),
    (b"\x08\x07garbage\xff\xff\xff", "not an ONNX model"),
    (_edit(lambda p: p.ClearField("metadata_props")), "not a metabnn ONNX model"),
    (_edit(_set_meta("metabnn.format_version", "2")), "format version"),
    (_edit(_set_meta("metabnn.bank", "x")), "bank"),
    (_edit(_set_meta("metabnn.bank", "5")), "bank 5 out of range"),
    (_edit(_set_meta("metabnn.layers", "{[")), "not valid JSON"),
    (_edit(_set_meta("metabnn.layers", "[]")), "2..16 layers"),
    (_edit(_set_meta("metabnn.exp_table", "[1, 2]")), "exp table"),
    (_edit(_edit_layers(lambda L: L[0].update(bits=40))), "field bits"),
    (_edit(_edit_layers(lambda L: L[0].update(table=[1, 2]))), "table"),
    (_edit(_edit_layers(lambda L: L[0].update(meta=float("nan")))), "not valid JSON|meta"),
    (_edit(_edit_layers(lambda L: L[1].update(K=32))), "K = 32|expected"),
    (_edit(_edit_layers(lambda L: L.reverse())), "kinds|expected"),
    (_edit(_edit_layers(lambda L: L[0]["lo"][0].__setitem__(0, 1 << 40))), "lo must be"),
    (_edit(_replace_init("l0.hidden", np.zeros((33, 40), np.int16))), "l0.hidden"),
    (_edit(_replace_init("l1.g", np.full((2, 10), 40000, np.int32))), "l1.g"),
    (_edit(_replace_init("l0.M", np.zeros((0, 33), np.int32))), "1 <= B <= 255"),
    (_edit(lambda p: p.graph.initializer.pop()), "missing|does not compute"),
    (_edit(lambda p: p.graph.node[-1].attribute[-1].__setattr__("i", 1)), "does not compute"),
    (_edit(lambda p: p.graph.node.pop(3)), "does not compute"),
])
def test_bad_files_raise_format_error(data, needle):
    with pytest.raises(FormatError, match=needle):
        from_onnx(data)


def test_missing_file_is_a_format_error(tmp_path):
    with pytest.raises(FormatError, match="cannot read"):
        from_onnx(tmp_path / "nope.onnx")


def test_mutated_files_raise_format_error_or_load():
    """Random byte flips: only FormatError escapes; what still loads is a valid model (the .mbnn reader agrees)."""
    good = to_onnx(BASE, 1).SerializeToString()
    rng = np.random.default_rng(0)
    loaded = 0
    for _ in range(300):
        b = bytearray(good)
        for pos in rng.integers(0, len(b), size=rng.integers(1, 4)):
            b[pos] = rng.integers(0, 256)
        if rng.random() < 0.2:
            b = b[: rng.integers(0, len(b))]
        try:
            m = from_onnx(bytes(b))
        except FormatError:
            continue
        to_bytes(m)
        loaded += 1
    assert loaded < 300
