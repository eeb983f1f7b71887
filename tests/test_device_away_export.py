"""`metabnn export --device-away` (FORMAT.md 4.2.1): none is the default (the RTL update unit has no table yet);
auto writes G = F in every layer whose f_meta table is not all 1, with --hex-dir too (the RTL update unit runs G:
l<l>_a.hex beside the model); the shapes; bad options are one line and exit 2."""

import numpy as np
import pytest

from metabnn.cli import main
from metabnn.export.mbnn import load


def test_auto_mirrors_every_consolidating_layer(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "auto.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out), "--device-meta", "8",
                 "--device-away", "auto"]) == 0
    assert "away tables in 3 of 3 layers" in capsys.readouterr().out
    for lay in load(out).layers:
        assert np.array_equal(lay.away, lay.table) and lay.table.min() < 32768
    plain = tmp_path / "plain.mbnn"  # m = 0: F = 1, so G = F is the rule without a table: none is written
    assert main(["export", str(trained_checkpoint), "--out", str(plain), "--device-meta", "0",
                 "--device-away", "auto"]) == 0
    assert all(lay.away is None for lay in load(plain).layers)
    none = tmp_path / "none.mbnn"  # the default
    assert main(["export", str(trained_checkpoint), "--out", str(none), "--device-meta", "8"]) == 0
    assert all(lay.away is None for lay in load(none).layers)
    assert len(none.read_bytes()) < len(out.read_bytes())
    sq = tmp_path / "sq.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(sq), "--device-meta", "8",
                 "--device-away", "mirror:2"]) == 0
    for lay in load(sq).layers:
        want = np.floor(32768 * (lay.table / 32768.0) ** 2 + 0.5).astype(np.uint16)
        assert np.array_equal(lay.away, want)


def test_hex_dir_exports_the_table(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "rtl.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out), "--device-meta", "8",
                 "--device-away", "mirror", "--hex-dir", str(tmp_path / "hex")]) == 0
    assert "away tables in 3 of 3 layers" in capsys.readouterr().out
    for l, lay in enumerate(load(out).layers):
        hexed = [int(v, 16) for v in (tmp_path / "hex" / f"l{l}_a.hex").read_text().split()]
        assert lay.away is not None and hexed == lay.away.tolist()


@pytest.mark.parametrize("extra,needle", [
    (["--device-away", "cosine"], "--device-away 'cosine'"),
    (["--device-away", "pow:-1"], "finite and > 0"),
])
def test_bad_away_options(trained_checkpoint, tmp_path, capsys, extra, needle):
    extra = [str(tmp_path / "hex") if e == "HEX" else e for e in extra]
    assert main(["export", str(trained_checkpoint), "--out", str(tmp_path / "x.mbnn"), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_per_layer_away_parameter():
    """mirror:P0,P1,..: one P per layer (G = F^P_l in layer l), said back the same way; a count other than the
    model's layers is one UsageError, before anything is learnt."""
    from metabnn.errors import UsageError
    from metabnn.export.device_meta import away_table, away_text, parse_away, set_away
    from metabnn.sim.random_model import random_model

    assert parse_away("mirror:0.9,0.98,1") == ("mirror", (0.9, 0.98, 1.0))
    assert away_text(*parse_away("mirror:0.9,0.98,1")) == "mirror:0.9,0.98,1"
    assert away_text(*parse_away("mirror:0.98")) == "mirror:0.98" and away_text("none", None) == "none"
    m = random_model([30, 20, 16, 10], bits=6, table_bits=3, seed=3)
    for lay in m.layers:
        lay.table = np.array([32768, 30000, 16384, 8192, 4096, 1000, 10, 0], np.uint16)
    set_away(m, "mirror", (0.5, 1.0, 2.0))
    for lay, p in zip(m.layers, (0.5, 1.0, 2.0)):
        assert np.array_equal(lay.away, away_table("mirror", p, lay.table, lay.bits, lay.table_bits))
    assert not np.array_equal(m.layers[0].away, m.layers[2].away)
    with pytest.raises(UsageError, match="2 parameters for a model of 3 layers"):
        set_away(m, "mirror", (0.5, 1.0))
    with pytest.raises(UsageError, match="finite and > 0"):
        parse_away("mirror:0.9,-1")


def test_scaled_device_m():
    """The rule's m times the scale, to 4 significant digits rounded up, without float noise lifting the last
    digit (2.7 * 1.5 = 4.050000000000001 is 4.05); 0 stays 0 and a scale of 1 is the rule's m itself."""
    from metabnn.export.device_meta import AWAY_SCALE, rule_scale, scaled

    assert [scaled(m, 1.5) for m in (4.535, 2.7, 2.681)] == [6.803, 4.05, 4.022]
    assert scaled(0.0, 1.5) == 0.0 and scaled(13.45, 1.0) == 13.45
    assert rule_scale(None, "none") == 1.0 and rule_scale(None, "mirror") == rule_scale(None, "auto") == AWAY_SCALE
    assert rule_scale(2.0, "none") == 2.0
