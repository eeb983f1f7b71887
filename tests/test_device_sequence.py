"""`python -m metabnn.device_sequence` on tiny models: the bookkeeping of a task sequence learned on the device,
and the device commands' bad options (one line, exit 2)."""

import json

import pytest

from metabnn import device_sequence, device_tradeoff
from metabnn.cli import main as metabnn_main


@pytest.fixture(scope="module")
def pmnist_pair(tmp_path_factory, mnist):
    """model.pt of a tiny m = 1.35 and m = 0 BNN trained on pmnist:2 (seconds)."""
    out = tmp_path_factory.mktemp("seq")
    cks = {}
    for label, m in (("meta", "1.35"), ("plain", "0")):
        rc = metabnn_main(["train", "--tasks", "pmnist:2", "--hidden", "32", "32", "--epochs", "1", "--meta", m,
                           "--train-subset", "3000", "--test-subset", "500", "--seed", "0", "--quiet",
                           "--out", str(out / label), "--overwrite"])
        assert rc == 0
        cks[label] = out / label / "model.pt"
    return cks


def test_tiny_sequence_bookkeeping(pmnist_pair, tmp_path, capsys):
    out = tmp_path / "seq"
    argv = ["--meta-ckpt", str(pmnist_pair["meta"]), "--plain-ckpt", str(pmnist_pair["plain"]), "--out", str(out),
            "--device-tasks", "2", "--samples", "200", "--eval-every", "100", "--eval-size", "300",
            "--probe-samples", "10", "--engine", "golden", "--quiet",
            "--lr-shifts", "20,12,12"]  # what --lr-shift 12 gives at 8 bits (the pixel layer +8), said per layer
    assert device_sequence.main(argv) == 0
    assert "device m of the metaplastic model" in capsys.readouterr().out
    for f in ("device_sequence.md", "device_sequence.json", "device_sequence.png"):
        assert (out / f).stat().st_size > 0
    res = json.loads((out / "device_sequence.json").read_text())
    assert res["task_names"] == ["pmnist1", "pmnist2", "pmnist3", "pmnist4"]
    for label in ("meta", "plain"):
        A = res["matrix"][label]
        assert len(A) == 3 and all(len(row) == 4 for row in A)  # start + after each device task, every task
        assert [c["step"] for c in res["curves"][label]] == [0, 100, 200, 300, 400]
        # a permuted task the model has not learned yet is near chance (10 classes); its own samples lift it
        assert A[0][2] < 0.3 and A[0][3] < 0.3 and A[1][3] < 0.3
        assert A[1][2] > A[0][2] + 0.1
        assert A[0][1] > 0.6  # the last task trained in PyTorch is known at the start
    g = res["goals"]
    assert [r["after"] for r in g["rows"]] == ["pmnist3", "pmnist4"]
    # the gap is the plain BNN's accuracy minus the metaplastic one on the new task, from the same matrix
    assert g["rows"][0]["gap"] == pytest.approx(res["matrix"]["plain"][1][2] - res["matrix"]["meta"][1][2])
    assert len(res["device_m"]) == 3 and res["lr_shifts"] == [20, 12, 12]
    # what the device can still move, per layer at every evaluation: the plain model's tables are all 1
    for label in ("meta", "plain"):
        st = res["states"][label]
        assert [s["step"] for s in st] == [0, 100, 200, 300, 400] and all(len(s["layers"]) == 3 for s in st)
        for s in st:
            for lay in s["layers"]:
                assert 0 <= lay["saturated"] <= 1 and 0 <= lay["plastic"] <= 1
    assert all(lay["plastic"] == 1.0 for s in res["states"]["plain"] for lay in s["layers"])
    assert any(lay["plastic"] < 1.0 for lay in res["states"]["meta"][0]["layers"])  # trained weights consolidated
    assert "saturated / plastic" in (out / "device_sequence.md").read_text()


def test_tiny_sequence_with_an_away_table(pmnist_pair, tmp_path):
    """--away: the metaplastic model learns with the away table (FORMAT.md 4.2.1); g = 0 past the first
    bucket (pow with a tiny K: g = 1 - (|h|/hmax)^K is 1 at |h| = 0 and rounds to 0 in Q15 everywhere else) keeps
    every synapse past it from growing, so none saturates that did not start saturated (with a huge K, g ~ 1
    below hmax, some do)."""
    out = tmp_path / "seq"
    argv = ["--meta-ckpt", str(pmnist_pair["meta"]), "--plain-ckpt", str(pmnist_pair["plain"]), "--out", str(out),
            "--device-tasks", "1", "--samples", "200", "--eval-every", "100", "--eval-size", "300",
            "--device-meta", "8", "--lr-shifts", "20,12,12", "--quiet"]
    assert device_sequence.main(argv + ["--away", "mirror"]) == 0
    res = json.loads((out / "device_sequence.json").read_text())
    assert res["away"] == ["mirror", 1.0]
    A = res["matrix"]["meta"]
    assert A[1][2] > A[0][2] + 0.1  # it learns the new task

    def saturation(away):
        d = tmp_path / away.replace(":", "_")
        assert device_sequence.main(argv + ["--away", away, "--out", str(d)]) == 0
        st = json.loads((d / "device_sequence.json").read_text())["states"]["meta"]
        return [(a["saturated"], b["saturated"]) for a, b in zip(st[0]["layers"], st[-1]["layers"])]

    assert any(end > start for start, end in saturation("pow:1000"))  # g ~ 1 below hmax: the range fills
    assert all(end <= start for start, end in saturation("pow:1e-9"))  # g = 0 past the first bucket: it cannot


def test_frozen_norm_freezes_both_models(pmnist_pair, tmp_path, monkeypatch):
    """--frozen-norm (a diagnostic): both models learn with adapt_shift 0 in every layer and adaptation off; without
    it the exported models adapt (the protocol)."""
    import metabnn.ondevice as ondevice

    seen, learn = [], ondevice.learn_stream

    def spy(model, *args, **kw):
        seen.append((kw["adapt"], [lay.adapt_shift for lay in model.layers]))
        return learn(model, *args, **kw)

    monkeypatch.setattr(ondevice, "learn_stream", spy)
    argv = ["--meta-ckpt", str(pmnist_pair["meta"]), "--plain-ckpt", str(pmnist_pair["plain"]),
            "--device-tasks", "1", "--samples", "50", "--eval-every", "50", "--eval-size", "100",
            "--device-meta", "8", "--quiet"]
    assert device_sequence.main(argv + ["--out", str(tmp_path / "a")]) == 0
    assert all(adapt and shifts[0] > 0 for adapt, shifts in seen) and len(seen) == 2
    seen.clear()
    assert device_sequence.main(argv + ["--frozen-norm", "--out", str(tmp_path / "f")]) == 0
    assert seen == [(False, [0, 0, 0])] * 2
    assert "normalization frozen" in (tmp_path / "f" / "device_sequence.md").read_text()


def test_sequence_needs_a_pmnist_checkpoint(trained_checkpoint, pmnist_pair, tmp_path, capsys):
    rc = device_sequence.main(["--meta-ckpt", str(trained_checkpoint), "--plain-ckpt", str(pmnist_pair["plain"]),
                               "--out", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "not trained on permuted MNIST" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command, extra, needle", [
    (device_sequence, ["--samples", "100", "--eval-every", "30"], "must divide"),
    (device_sequence, ["--device-tasks", "0"], "--device-tasks must be >= 1"),
    (device_sequence, ["--device-meta", "lots"], "auto or a number"),
    (device_sequence, ["--device-meta", "1,auto"], "auto stands alone"),
    (device_sequence, ["--quantile", "0"], "--quantile"),
    (device_sequence, ["--device-meta", "4", "--device-scale", "2"], "scales --device-meta auto"),
    (device_sequence, ["--device-scale", "-1"], "--device-scale"),
    (device_sequence, ["--lr-shifts", "20,x"], "--lr-shifts"),
    (device_sequence, ["--lr-shifts", "20,40,12"], "--lr-shifts"),
    (device_sequence, ["--away", "cosine"], "--away"),
    (device_sequence, ["--away", "pow"], "--away"),
    (device_sequence, ["--away", "ratio:-1"], "--away"),
    (device_sequence, ["--away", "mirror:x"], "--away"),
    (device_tradeoff, ["--ms", "0", "-1"], "--ms"),
    (device_tradeoff, ["--samples", "0"], "--samples"),
    (device_tradeoff, ["--lr-shift", "40"], "--lr-shift"),
])
def test_bad_options(tmp_path, capsys, command, extra, needle):
    ck = tmp_path / "x.pt"
    ck.write_bytes(b"")
    assert command.main(["--meta-ckpt", str(ck), "--plain-ckpt", str(ck), *extra]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1


def test_tradeoff_missing_checkpoint(tmp_path, capsys):
    assert device_tradeoff.main(["--meta-ckpt", str(tmp_path / "none.pt"), "--plain-ckpt", "x"]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
