"""`metabnn demo --model conv` end to end on a tiny configuration: a binary CNN trained on Fashion-MNIST, exported,
verified on every backend that runs conv layers, then learning MNIST on the device; nothing is faked."""

import json

import pytest

from metabnn.cli import main


def _have_fmnist() -> bool:
    from metabnn.errors import DataMissingError
    from metabnn.train.data import load

    try:
        load("fmnist")
        return True
    except DataMissingError:
        return False


needs_fmnist = pytest.mark.skipif(not _have_fmnist(),
                                  reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


@needs_fmnist
def test_smallest_conv_demo(tmp_path, capsys, mnist):
    """The default suite's run: a few hundred images, every stage but the RTL (its Verilator build takes minutes)."""
    out = tmp_path / "demo"
    argv = ["demo", "--model", "conv", "--out", str(out), "--hidden", "16", "--epochs", "1", "--train-subset", "300",
            "--device-samples", "60", "--eval-every", "30", "--eval-size", "100", "--verify-images", "40",
            "--learn-steps", "1", "--no-rtl", "--quiet", "--freeze", "0"]  # the first conv frozen on the device
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "rtl left out: --no-rtl" in text and "done in" in text
    blob = json.loads((out / "demo.json").read_text())
    rows = {r["backend"]: r for r in blob["verify"]}
    assert set(rows) == {"golden", "onnx", "c", "torch"}
    for name in ("onnx", "c"):
        assert rows[name]["status"] == "ok" and rows[name]["equal"] == 40
    assert rows["c"]["learn"] == "1 steps equal (layers 0 frozen)"
    assert blob["device"]["frozen"] == [0]
    # the device m is export's default, the rule per layer (conv layers' probe summed over positions)
    assert "device m (the rule" in text and len(blob["device"]["device_meta"]) == 4
    dm = blob["device"]["device_meta"]
    assert all(m >= 0 for m in dm[:2]) and all(m > 0 for m in dm[2:])  # a conv layer may need none (its rate)
    for label in ("meta", "plain"):
        assert [c["step"] for c in blob["device"]["curves"][label]] == [0, 30, 60]
        flips = blob["device"]["flips"][label]
        assert flips[0] == 0 and sum(flips[1:]) > 0, flips  # layer 0 kept its signs, the others learnt
    assert (out / "retention.png").stat().st_size > 0 and "Fashion-MNIST kept" in (out / "summary.md").read_text()


TINY = ["--hidden", "32", "--epochs", "1", "--train-subset", "1000", "--device-samples", "100", "--eval-every", "50",
        "--eval-size", "200", "--verify-images", "100", "--learn-steps", "2", "--quiet"]


@pytest.mark.slow
@needs_fmnist
def test_tiny_conv_demo_end_to_end(tmp_path, capsys, mnist):
    from metabnn import backends

    out = tmp_path / "demo"
    argv = ["demo", "--model", "conv", "--out", str(out), *TINY]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for f in ("summary.md", "demo.json", "retention.png", "meta.mbnn", "plain.mbnn", "meta.onnx", "meta_model.h"):
        assert (out / f).stat().st_size > 0, f
    blob = json.loads((out / "demo.json").read_text())
    assert blob["model"] == "conv"
    rows = {r["backend"]: r for r in blob["verify"]}
    assert rows["golden"]["status"] == "ok" and rows["golden"]["total"] == 100
    for name in ("onnx", "c"):  # integer backends agree exactly (all installed by the set-up)
        assert rows[name]["status"] == "ok" and rows[name]["equal"] == 100
    assert rows["c"]["learn"] == "2 steps equal"
    assert "torch" in rows
    # the RTL is verified exactly when its backend runs conv layers; otherwise the output says why it is left out
    if getattr(backends.get("rtl"), "conv", False):
        assert rows["rtl"]["status"] == "ok" and rows["rtl"]["equal"] == 100
    else:
        assert "rtl" not in rows and "does not run conv layers" in text and "does not run conv" in blob["rtl"]
    # training reached more than chance on Fashion-MNIST, and the device learned MNIST
    assert all(acc[-1][0] > 0.3 for acc in blob["train"].values())
    for label in ("meta", "plain"):
        curve = blob["device"]["curves"][label]
        assert [c["step"] for c in curve] == [0, 50, 100]
        assert curve[-1]["mnist"] > curve[0]["mnist"] + 0.05
    assert "Fashion-MNIST kept" in (out / "summary.md").read_text()
    assert "done in" in text

    # a rerun with the same --out reuses the trained models; other settings train again
    assert main(argv) == 0
    assert "reusing the trained meta model" in capsys.readouterr().out
    assert main(["demo", "--model", "conv", "--out", str(out), *TINY[2:], "--hidden", "16", "--no-rtl"]) == 0
    text = capsys.readouterr().out
    assert "trained with other hidden; training again" in text and "rtl left out: --no-rtl" in text


def test_conv_demo_without_fashion_mnist_one_line(tmp_path, capsys):
    empty = tmp_path / "data"
    empty.mkdir()
    assert main(["demo", "--model", "conv", "--out", str(tmp_path / "o"), "--data-dir", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "trains on Fashion-MNIST" in err and "dataset-fashion-mnist" in err
    assert not (tmp_path / "o" / "train_meta").exists()  # nothing trained


def test_conv_demo_rejects_nonsense(tmp_path, capsys):
    assert main(["demo", "--model", "conv", "--out", str(tmp_path), "--eval-every", "0"]) == 2
    assert "eval-every" in capsys.readouterr().err


@pytest.mark.parametrize("argv,needle", [(["--model", "conv", "--freeze", "7"], "layer 7 does not exist"),
                                         (["--model", "conv", "--freeze", "conv,2,3"], "freezes every layer"),
                                         (["--freeze", "0"], "--freeze is for --model conv")])
def test_demo_refuses_a_bad_freeze_before_training(tmp_path, capsys, argv, needle):
    assert main(["demo", "--out", str(tmp_path / "d"), "--hidden", "16", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
