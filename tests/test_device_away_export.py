"""`metabnn export --device-away` (FORMAT.md 4.2.1): none is the default (the RTL update unit has no table yet);
auto writes G = F in every layer whose f_meta table is not all 1, and none with --hex-dir; the shapes; bad options
are one line and exit 2."""

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


def test_hex_dir_exports_without_the_table(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "rtl.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out), "--device-meta", "8",
                 "--device-away", "auto", "--hex-dir", str(tmp_path / "hex")]) == 0
    assert "away tables in 0 of 3 layers" in capsys.readouterr().out
    assert all(lay.away is None for lay in load(out).layers)


@pytest.mark.parametrize("extra,needle", [
    (["--device-away", "cosine"], "--device-away 'cosine'"),
    (["--device-away", "pow:-1"], "finite and > 0"),
    (["--device-away", "mirror", "--hex-dir", "HEX"], "RTL update unit has no away table"),
])
def test_bad_away_options(trained_checkpoint, tmp_path, capsys, extra, needle):
    extra = [str(tmp_path / "hex") if e == "HEX" else e for e in extra]
    assert main(["export", str(trained_checkpoint), "--out", str(tmp_path / "x.mbnn"), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
