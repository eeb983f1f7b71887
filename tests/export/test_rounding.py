"""Stochastic rounding in the container and the exporter (docs/FORMAT.md 4.4, 6): the descriptor fields
rounding / sr_seed / sr_step written, read and checked; a learned model keeps its step counter; the CLI."""

import struct
import zlib

import numpy as np
import pytest

from metabnn.cli import main
from metabnn.export import FormatError, from_bytes, load, save, to_bytes
from metabnn.sim import learn_step, random_model
from metabnn.sim.threefry import layer_seed

DESC0 = 24  # descriptor of layer 0
ROUNDING, SR_SEED, SR_STEP = 40, 44, 48


def _model(**kw):
    return random_model((40, 33, 10), bits=4, table_bits=3, seed=11, rounding=1, sr_step=0xFFFFFFF0, **kw)


def _recrc(b: bytearray) -> bytes:
    b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xFFFFFFFF)
    return bytes(b)


def test_fields_at_their_offsets_and_round_trip():
    m = _model()
    data = to_bytes(m)
    for l, lay in enumerate(m.layers):
        d = DESC0 + 64 * l
        assert data[d + ROUNDING] == 1
        assert struct.unpack_from("<II", data, d + SR_SEED) == (lay.sr_seed, 0xFFFFFFF0)
    m2 = from_bytes(data)
    assert [(l.rounding, l.sr_seed, l.sr_step) for l in m2.layers] == \
        [(l.rounding, l.sr_seed, l.sr_step) for l in m.layers]
    assert to_bytes(m2) == data  # canonical


def test_a_learned_model_saved_and_loaded_continues_its_stream(tmp_path):
    m = _model()
    rng = np.random.default_rng(0)
    steps = [(rng.integers(0, 256, 40).astype(np.uint8), int(rng.integers(0, 10))) for _ in range(20)]
    for im, y in steps[:18]:  # past the u32 wrap of sr_step
        m, _ = learn_step(m, im, y)
    assert all(l.sr_step == 2 for l in m.layers)
    save(m, tmp_path / "learned.mbnn")
    again = load(tmp_path / "learned.mbnn")
    assert all(l.sr_step == 2 for l in again.layers)
    for im, y in steps[18:]:
        m, _ = learn_step(m, im, y)
        again, _ = learn_step(again, im, y)
    assert to_bytes(m) == to_bytes(again)


@pytest.mark.parametrize("rounding,field,value,needle", [
    (1, ROUNDING, b"\x02", "rounding 2 must be 0"),
    (0, SR_SEED, struct.pack("<I", 7), "sr_seed 7 and sr_step 0 must be 0"),
    (0, SR_STEP, struct.pack("<I", 1), "sr_step 1 must be 0"),
    (1, 41, b"\x01", "reserved descriptor bytes"),
    (1, 52, b"\x01", "reserved descriptor bytes"),
    (1, 63, b"\x01", "reserved descriptor bytes"),
])
def test_loader_checks(rounding, field, value, needle):
    m = _model() if rounding else random_model((40, 33, 10), bits=4, table_bits=3, seed=11)
    b = bytearray(to_bytes(m))
    off = DESC0 + 64 + field  # layer 1
    b[off: off + len(value)] = value
    with pytest.raises(FormatError, match=needle):
        from_bytes(_recrc(b))


def test_writer_refuses_a_seed_on_a_nearest_layer():
    m = random_model((40, 33, 10), seed=2)
    m.layers[0].sr_seed = 5
    with pytest.raises(FormatError, match="must be 0 when rounding is nearest"):
        to_bytes(m)


def test_export_cli_rounding(tmp_path, capsys, trained_checkpoint):
    out = tmp_path / "s.mbnn"
    # one device m for both exports: the default (auto) picks m by a rule that knows the rounding
    assert main(["export", str(trained_checkpoint), "--out", str(out), "--rounding", "stochastic",
                 "--sr-seed", "4000000000", "--device-meta", "16"]) == 0
    assert "stochastic rounding" in capsys.readouterr().out
    m = load(out)
    assert [(l.rounding, l.sr_seed, l.sr_step) for l in m.layers] == \
        [(1, layer_seed(4000000000, l), 0) for l in range(len(m.layers))]
    assert len({l.sr_seed for l in m.layers}) == len(m.layers)
    near = tmp_path / "n.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(near), "--device-meta", "16"]) == 0
    n = load(near)
    assert all((l.rounding, l.sr_seed, l.sr_step) == (0, 0, 0) for l in n.layers)
    # the rounding changes only the three descriptor fields
    for a, b in zip(m.layers, n.layers):
        assert np.array_equal(a.hidden, b.hidden) and np.array_equal(a.table, b.table)


@pytest.mark.parametrize("argv,needle", [(["--sr-seed", "3"], "--rounding stochastic"),
                                         (["--rounding", "stochastic", "--sr-seed", "-1"], "--sr-seed -1"),
                                         (["--rounding", "stochastic", "--sr-seed", str(1 << 32)], "outside"),
                                         (["--rounding", "up"], "--rounding")])
def test_export_cli_bad_rounding(tmp_path, capsys, monkeypatch, argv, needle):
    """A nonsense rounding option is one line, exit 2, before any file is read or written."""
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["export", "missing.pt", "--out", "m.mbnn", *argv])
    except SystemExit as e:  # argparse's own refusal of a choice
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
