"""The command line: one clear line and exit code 2 for bad input, 1 for a backend mismatch."""

import numpy as np
import pytest

from metabnn.cli import main
from metabnn.export import save, to_bytes
from metabnn.sim import random_model


def run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_export_missing_checkpoint(tmp_path, capsys):
    rc, _, err = run(["export", str(tmp_path / "none.pt"), "--out", str(tmp_path / "m.mbnn")], capsys)
    assert rc == 2 and "no such checkpoint" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_export_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint")
    rc, _, err = run(["export", str(bad), "--out", str(tmp_path / "m.mbnn")], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "m.mbnn").exists()


def test_export_bad_bits(tmp_path, capsys, trained_checkpoint):
    rc, _, err = run(["export", str(trained_checkpoint), "--out", str(tmp_path / "m.mbnn"),
                      "--hidden-bits", "40"], capsys)
    assert rc == 2 and "--hidden-bits" in err


@pytest.mark.parametrize("content,needle", [(b"", "too short"), (b"MBNN\x01\x00" + bytes(60), "header says"),
                                            (b"GIF89a" * 20, "not a .mbnn file")])
def test_verify_corrupt_model(tmp_path, capsys, content, needle):
    f = tmp_path / "m.mbnn"
    f.write_bytes(content)
    rc, _, err = run(["verify", str(f)], capsys)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_verify_bad_options(tmp_path, capsys):
    f = tmp_path / "m.mbnn"
    save(random_model((784, 16, 10)), f)
    rc, _, err = run(["verify", str(f), "--backends", "golden,gpu"], capsys)
    assert rc == 2 and "unknown backend" in err
    rc, _, err = run(["verify", str(f), "--bank", "3"], capsys)
    assert rc == 2 and "bank" in err
    g = tmp_path / "small.mbnn"
    save(random_model((64, 16, 10)), g)
    rc, _, err = run(["verify", str(g)], capsys)
    assert rc == 2 and "784" in err


def test_export_then_verify_every_integer_backend(tmp_path, capsys, trained_checkpoint):
    out = tmp_path / "m.mbnn"
    rc, text, _ = run(["export", str(trained_checkpoint), "--out", str(out), "--onnx", str(tmp_path / "m.onnx"),
                       "--c-header", str(tmp_path / "m.h"), "--summary"], capsys)
    assert rc == 0 and out.exists() and (tmp_path / "m.onnx").exists() and "1-bit params" in text
    rc, text, _ = run(["verify", str(out), "--backends", "golden,onnx,c,torch", "--limit", "300",
                       "--learn", "3", "--checkpoint", str(trained_checkpoint)], capsys)
    assert rc == 0, text
    lines = {l.split()[0]: l for l in text.splitlines() if l and l.split()[0] in ("golden", "onnx", "c", "torch")}
    assert "300/300 (100.00%)" in lines["onnx"]
    # the C firmware builds with the suite's gcc (tests/firmware): it must run here, not report itself missing
    assert "300/300 (100.00%)" in lines["c"] and "3 steps equal" in lines["c"]


def test_verify_reports_a_mismatch():
    """A backend that disagrees with the golden model makes verify fail: no tolerance, in inference and in
    learning."""
    from metabnn import backends, verify

    m = random_model((784, 16, 10), seed=1)
    x = np.random.default_rng(0).integers(0, 256, (20, 784)).astype(np.uint8)
    y = np.random.default_rng(1).integers(0, 10, 20)
    golden = backends.get("golden")

    class Wrong:
        name, integer, adapts = "c", True, True

        def available(self):
            return True, ""

        def predict(self, model, images, bank=0, adapt=False):
            p = golden.predict(model, images)
            p[3] = (p[3] + 1) % 10
            return p

        def learn(self, model, images, labels, bank=0, adapt=False, every=1):
            for step, g in golden.learn(model, images, labels):
                if step == 2:
                    g.layers[1].hidden[0, 0] += 1
                yield step, g

    rows = verify.run_verify(m, x, y, [golden, Wrong()], learn_images=x[:3], learn_labels=y[:3])
    assert not rows[0].failed and rows[0].learn == "3 steps (reference)"
    assert rows[1].failed and rows[1].equal == 19 and rows[1].first_mismatch == [3]
    assert rows[1].learn == "step 2: layer 1 hidden weights differ"


def test_verify_fails_loud_when_a_backend_cannot_run(tmp_path, capsys, monkeypatch):
    """A requested backend that cannot run stops verify with one line and exit 2, before any image runs."""
    f = tmp_path / "m.mbnn"
    save(random_model((784, 16, 10)), f)
    rc, _, err = run(["verify", str(f), "--backends", "golden,torch"], capsys)
    assert rc == 2 and "backend torch cannot run" in err and "--checkpoint" in err
    assert len(err.strip().splitlines()) == 2  # "checking backends: ..." then the error
    rc, _, err = run(["verify", str(f), "--backends", "golden,onnx", "--adapt"], capsys)
    assert rc == 2 and "frozen normalization only" in err
    from metabnn.backends import onnx as onnx_backend
    monkeypatch.setattr(onnx_backend.OnnxBackend, "available", lambda self: (False, "onnxruntime is not installed"))
    rc, out, err = run(["verify", str(f), "--backends", "golden,onnx"], capsys)
    assert rc == 2 and "onnxruntime is not installed" in err and "Traceback" not in err
