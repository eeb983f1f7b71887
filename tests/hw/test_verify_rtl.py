"""`metabnn verify --backends golden,rtl --learn STEPS` from the command line: RTL inference and on-chip
learning steps (engines + update units) compared with the golden model, weight for weight."""

from metabnn.cli import main
from metabnn.export import save
from metabnn.sim import random_model


def test_verify_rtl_inference_and_learning(hw_tools, tmp_path, capsys, mnist):
    f = tmp_path / "m.mbnn"
    save(random_model((784, 24, 10), seed=5, lr_shift=4), f)
    rc = main(["verify", str(f), "--backends", "golden,rtl", "--limit", "4", "--learn", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rtl = next(line for line in out.splitlines() if line.startswith("rtl"))
    assert "4/4 (100.00%)" in rtl and "2 steps equal" in rtl
