"""metabnn.bits_study (the README's hidden-bits table) with both roundings, on the session's trained model: the
rows and files it writes, its cross-check of the C stream against golden, and its bad options."""

from __future__ import annotations

import json

import pytest

from metabnn.bits_study import main


def test_both_roundings_at_a_sub_lsb_width(cbackend, trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "bits"
    # lr shift 16 at 8 bits = 20 at 4 bits: every nearest step rounds to 0, stochastic ones do not
    rc = main(["--meta-ckpt", str(trained_checkpoint), "--plain-ckpt", str(trained_checkpoint), "--widths", "4",
               "--rounding", "nearest", "stochastic", "--samples", "60", "--every", "30", "--eval-size", "100",
               "--lr-shift", "16", "--check-steps", "3", "--out", str(out)])
    assert rc == 0
    rows = json.loads((out / "bits_study.json").read_text())["rows"]
    assert [(r["rounding"], r["bits"], r["model"]) for r in rows] == \
        [("nearest", 4, "m>0"), ("nearest", 4, "m=0"), ("stochastic", 4, "m>0"), ("stochastic", 4, "m=0")]
    assert (out / "bits_study.png").stat().st_size > 0
    assert "| stochastic | 4 | m>0 |" in (out / "bits_study.md").read_text()
    curves = json.loads((out / "bits_study.json").read_text())["curves"]
    assert set(curves) == {"nearest/4/m>0", "nearest/4/m=0", "stochastic/4/m>0", "stochastic/4/m=0"}


@pytest.mark.parametrize("argv,needle", [(["--rounding", "up"], "--rounding"),
                                         (["--sr-seed", "-1"], "--sr-seed -1"),
                                         (["--widths", "1"], "--widths")])
def test_bad_options_are_one_line_exit_2(argv, needle, capsys, tmp_path):
    try:
        rc = main(["--meta-ckpt", "a.pt", "--plain-ckpt", "b.pt", "--out", str(tmp_path / "o"), *argv])
    except SystemExit as e:  # argparse's own refusal of a choice
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
