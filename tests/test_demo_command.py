"""`metabnn demo` end to end on a tiny configuration: every stage runs and reports, nothing is faked."""

import json

import pytest

from metabnn.cli import main


def test_tiny_demo_end_to_end(tmp_path, capsys, mnist):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--hidden", "32", "32", "--epochs", "1", "--train-subset", "3000",
            "--device-samples", "200", "--eval-every", "100", "--eval-size", "300", "--verify-images", "200",
            "--learn-steps", "3", "--quiet"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    for f in ("summary.md", "demo.json", "accuracy_matrix.png", "hidden_weights.png", "retention.png",
              "meta.mbnn", "plain.mbnn"):
        assert (out / f).stat().st_size > 0, f
    blob = json.loads((out / "demo.json").read_text())
    rows = {r["backend"]: r for r in blob["verify"]}
    assert rows["golden"]["status"] == "ok" and rows["golden"]["total"] == 200
    for name in ("onnx", "c", "rtl"):  # integer backends agree exactly (all installed by the set-up)
        assert rows[name]["status"] == "ok" and rows[name]["equal"] == 200
    for name in ("c", "rtl"):  # the update units learn with the away table (G = F) the demo exports
        assert rows[name]["learn"] == "3 steps equal"
    # tasks 3, 4, 5 learned on the device one after another, in one stream: each is measured at every evaluation
    dev = blob["device"]
    curve = dev["curves"]["meta"]
    assert [c["step"] for c in curve] == [0, 100, 200, 300, 400, 500, 600]
    assert dev["task_names"] == [f"pmnist{t}" for t in range(1, 6)]
    for t, name in enumerate(("pmnist3", "pmnist4", "pmnist5"), start=1):  # each learned during its own samples
        assert curve[2 * t][name] > curve[2 * t - 2][name] + 0.1, (name, curve)
    assert len(dev["matrix"]["meta"]) == 4 and len(dev["goals"]["rows"]) == 3
    summary = (out / "summary.md").read_text()
    assert "device task pmnist5" in summary and "goal: earlier tasks keep" in summary
    assert "done in" in text
    # the device tables are what `metabnn export` writes by default: the rule's m per layer, export's edge tables
    from metabnn.export.device_meta import AWAY_SCALE, device_table
    from metabnn.export.mbnn import load

    dm = blob["device"]["device_meta"]
    assert len(dm) == 3 and all(m > 0 for m in dm), dm
    # with the away table (--device-away auto, the demo's default) the rule's m times AWAY_SCALE
    assert f"device m (the rule, docs/ONDEVICE.md, times {AWAY_SCALE:g})" in text
    meta = load(out / "meta.mbnn")
    assert [lay.meta for lay in meta.layers] == pytest.approx(dm)
    for lay in meta.layers:  # the file keeps m and scale as float32: an entry may round one Q15 step apart
        want = device_table(lay.meta, lay.scale, lay.bits, lay.table_bits, "edge").astype(int)
        assert abs(lay.table.astype(int) - want).max() <= 1
        assert lay.away is not None and (lay.away == lay.table).all()  # auto: G = F (mirror)
    plain = load(out / "plain.mbnn")
    assert all((lay.table == 32768).all() and lay.away is None for lay in plain.layers)

    # a second run with the same --out reuses the trained models instead of training again
    assert main(argv) == 0
    assert "reusing the trained meta model" in capsys.readouterr().out


def test_demo_rejects_nonsense(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--device-samples", "0"]) == 2
    assert "device-samples" in capsys.readouterr().err
    for bad in ("0", "-3", "lots", "nan"):  # --device-meta: auto or a number > 0
        assert main(["demo", "--out", str(tmp_path), "--device-meta", bad]) == 2
        assert "--device-meta" in capsys.readouterr().err
    for bad, says in ((["--device-away", "sideways"], "--device-away"), (["--device-tasks", "0"], "device-tasks"),
                      (["--eval-every", "700"], "--eval-every 700 must divide"),
                      (["--device-meta", "8", "--device-scale", "2"], "--device-scale scales")):
        assert main(["demo", "--out", str(tmp_path), *bad]) == 2
        assert says in capsys.readouterr().err, bad
