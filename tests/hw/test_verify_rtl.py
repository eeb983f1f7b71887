"""`metabnn verify --backends golden,rtl --learn STEPS` from the command line: RTL inference and on-chip
learning steps (engines + update units) compared with the golden model, weight for weight."""

import pytest

from metabnn.cli import main
from metabnn.export import save
from metabnn.sim import random_conv_model, random_model


# Two native builds of a shape of its own (~50 s cold): --runslow. The default suite runs the same command line on
# the trained model (tests/test_cli_export_verify.py: all 10,000 images and 1,000 learning steps).
@pytest.mark.slow
def test_verify_rtl_inference_and_learning(hw_tools, tmp_path, capsys, mnist):
    f = tmp_path / "m.mbnn"
    save(random_model((784, 24, 10), seed=5, lr_shift=4), f)
    rc = main(["verify", str(f), "--backends", "golden,rtl", "--limit", "4", "--learn", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rtl = next(line for line in out.splitlines() if line.startswith("rtl"))
    assert "4/4 (100.00%)" in rtl and "2 steps equal" in rtl


@pytest.mark.slow
def test_verify_rtl_learns_a_conv_nets_dense_layers(hw_tools, tmp_path, capsys, mnist):
    """A conv net: the RTL learns its dense layers on chip with the conv layers frozen (mbnn_conv_update_top), and
    verify compares it with the golden step that freezes them; the C firmware learns every layer, compared with the
    full golden step, in the same run."""
    f = tmp_path / "c.mbnn"
    save(random_conv_model((1, 28, 28), ((4, 3, 1, 1, 2), (4, 3, 1, 1, 2)), (16, 10), seed=2, lr_shift=3), f)
    rc = main(["verify", str(f), "--backends", "golden,c,rtl", "--limit", "3", "--learn", "3"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rtl = next(line for line in out.splitlines() if line.startswith("rtl"))
    assert "3/3 (100.00%)" in rtl and "3 steps equal (dense layers; conv layers frozen)" in rtl
    c = next(line for line in out.splitlines() if line.startswith("c "))
    assert "3 steps equal" in c and "frozen" not in c
