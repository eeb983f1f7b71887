"""The command line: one clear line and exit code 2 for bad input, 1 for a backend mismatch."""

import numpy as np
import pytest

from metabnn.cli import main
from metabnn.export import load, save, to_bytes
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


# --------------------------------------------------------------------------- verify knows the data (issue 11)

@pytest.fixture(scope="module")
def pmnist_run(tmp_path_factory, mnist):
    """A tiny `metabnn train` on the default kind of task sequence (pmnist:2), exported."""
    out = tmp_path_factory.mktemp("pmnist")
    assert main(["train", "--tasks", "pmnist:2", "--hidden", "64", "64", "--epochs", "1", "--train-subset", "2000",
                 "--test-subset", "500", "--seed", "0", "--quiet", "--out", str(out), "--overwrite"]) == 0
    assert main(["export", str(out / "model.pt"), "--out", str(out / "m.mbnn")]) == 0
    return out


def one_error_line(err: str) -> bool:
    """The error is one line (progress lines such as "checking backends" may precede it), no traceback."""
    return "Traceback" not in err and len([l for l in err.splitlines() if "error:" in l]) == 1


def accuracy(text: str, backend: str) -> float:
    line = next(l for l in text.splitlines() if l.split() and l.split()[0] == backend)
    return float(next(w for w in line.split() if w.endswith("%") and not w.startswith("(")).rstrip("%"))


def test_verify_uses_the_task_the_model_was_trained_on(pmnist_run, capsys):
    m = pmnist_run / "m.mbnn"
    rc, text, _ = run(["verify", str(m), "--backends", "golden,onnx", "--limit", "500"], capsys)
    assert rc == 0, text
    first = text.splitlines()[0]
    assert "pmnist task 2 of 2 (seed 0) test set" in first and "500 images" in first and "bank 0" in first
    assert accuracy(text, "golden") > 50 and accuracy(text, "onnx") == accuracy(text, "golden")
    rc, text, _ = run(["verify", str(m), "--backends", "golden", "--limit", "500", "--task", "pmnist1"], capsys)
    assert rc == 0 and "pmnist task 1 of 2 (seed 0)" in text.splitlines()[0] and accuracy(text, "golden") > 25
    # the same model in a file without metadata: verify falls back to plain MNIST and says so; the score shows why
    # recording the data matters (the 8 %)
    model = load(m)
    model.meta = None
    save(model, pmnist_run / "old.mbnn")
    rc, text, _ = run(["verify", str(pmnist_run / "old.mbnn"), "--backends", "golden", "--limit", "500"], capsys)
    assert rc == 0 and "assumed MNIST" in text.splitlines()[0] and accuracy(text, "golden") < 30


def test_verify_learning_steps_come_from_the_task(pmnist_run, capsys):
    rc, text, _ = run(["verify", str(pmnist_run / "m.mbnn"), "--backends", "golden,c", "--limit", "50",
                       "--learn", "2"], capsys)
    assert rc == 0, text
    assert "and 2 learning steps" in text.splitlines()[0] and "2 steps equal" in text


@pytest.mark.parametrize("argv,needle", [
    (["--task", "pmnist3"], "--task 'pmnist3': the model was trained on pmnist1, pmnist2"),
    (["--limit", "20000"], "--limit 20000: the pmnist task 2 of 2 (seed 0) test set has 10000 images"),
    (["--learn", "70000"], "--learn 70000"),
    (["--bank", "1"], "--bank 1: the model has 1 bank(s)"),
])
def test_verify_task_options_are_checked(pmnist_run, capsys, argv, needle):
    rc, _, err = run(["verify", str(pmnist_run / "m.mbnn"), "--backends", "golden"] + argv, capsys)
    assert rc == 2 and needle in err and one_error_line(err), err


def test_task_on_a_file_without_metadata(tmp_path, capsys, mnist):
    f = tmp_path / "m.mbnn"
    save(random_model((784, 16, 10)), f)
    rc, _, err = run(["verify", str(f), "--backends", "golden", "--task", "pmnist1"], capsys)
    assert rc == 2 and "records no tasks" in err and one_error_line(err)


def test_exported_metadata_says_what_training_used(pmnist_run, tmp_path, capsys):
    import torch

    meta = load(pmnist_run / "m.mbnn").meta
    assert meta["spec"] == "pmnist:2" and meta["seed"] == 0 and meta["fingerprint"].startswith("crc32:")
    assert [t["name"] for t in meta["tasks"]] == ["pmnist1", "pmnist2"]
    assert [s["bank"] for s in meta["test_sets"]] == [0, 0] and meta["training"]["hidden"] == [64, 64]
    ckpt = torch.load(pmnist_run / "model.pt", weights_only=True)
    assert ckpt["data"] == {k: v for k, v in meta.items() if k != "training"}
    # a checkpoint from before the trainer recorded it: the same names and banks, rebuilt from its config
    del ckpt["data"]
    torch.save(ckpt, tmp_path / "old.pt")
    rc, _, _ = run(["export", str(tmp_path / "old.pt"), "--out", str(tmp_path / "old.mbnn")], capsys)
    old = load(tmp_path / "old.mbnn").meta
    assert rc == 0 and "fingerprint" not in old and old == {k: v for k, v in meta.items() if k != "fingerprint"}


def test_verify_refuses_devices_and_huge_files_from_their_header(tmp_path, capsys):
    big = tmp_path / "big.mbnn"
    with open(big, "wb") as f:
        f.write(b"MBNN\x01\x00" + bytes(18))
        f.truncate(3 << 30)  # sparse: nothing but the header is on disk
    for path, needle in [("/dev/zero", "not a regular file"), (str(big), "exceeds the 2 GiB limit")]:
        rc, _, err = run(["verify", path, "--backends", "golden"], capsys)
        assert rc == 2 and needle in err and one_error_line(err), err


def test_verify_rtl_on_the_whole_test_set_and_1000_learning_steps(tmp_path, capsys, trained_checkpoint):
    """Issue 13's bar, in the default suite: the trained model's whole test set through the RTL (native
    Verilator harness) and 1,000 on-chip learning steps, every memory equal to the golden model after every step;
    --wave writes the FST of image 0 when all agree."""
    from metabnn import backends

    ok, why = backends.get("rtl").available()
    if not ok:
        pytest.skip(why)
    out = tmp_path / "m.mbnn"
    assert run(["export", str(trained_checkpoint), "--out", str(out)], capsys)[0] == 0
    rc, text, err = run(["verify", str(out), "--backends", "golden,rtl", "--limit", "0", "--learn", "1000",
                         "--wave", str(tmp_path / "wave")], capsys)
    assert rc == 0, text + err
    rtl = next(l for l in text.splitlines() if l.startswith("rtl "))
    assert "10000/10000 (100.00%)" in rtl and "1000 steps equal" in rtl
    assert (tmp_path / "wave" / "image0.fst").stat().st_size > 0 and "every image agreed; image 0" in text
    assert "every layer's output agrees with the golden model on this image" in text


def test_a_wrong_layer_output_is_named(tmp_path, trained_model):
    """The RTL trace build's layer taps equal the golden model's layer outputs, and a flipped bit in them is
    reported as that layer and neuron (what `verify --wave` prints for the first wrong image). The trained model
    at the RTL backend's default SIMD/PE: the trace build `verify --wave` made above serves it (a cold Verilator
    build is most of this test's time)."""
    from metabnn import backends
    from metabnn.verify_cli import first_layer_difference

    rtl = backends.get("rtl")
    ok, why = rtl.available()
    if not ok:
        pytest.skip(why)
    m = trained_model
    K, H1, H2 = m.layers[0].K, m.layers[0].N, m.layers[1].N
    x = np.random.default_rng(2).integers(0, 256, (1, K)).astype(np.uint8)
    res = rtl.run_case(m, x, trace_fst=tmp_path / "t.fst")
    assert sorted(res["taps"]) == [1, 2] and res["taps"][1].shape == (1, H1) and res["taps"][2].shape == (1, H2)
    assert first_layer_difference(m, x[0], 0, False, res) == "every layer's output agrees with the golden model on this image"
    res["taps"][2][0, 11] ^= 1
    assert first_layer_difference(m, x[0], 0, False, res).startswith("layer 1 output differs first at neuron 11")
    res["taps"][1][0, 4] ^= 1
    assert first_layer_difference(m, x[0], 0, False, res).startswith("layer 0 output differs first at neuron 4")


def test_verify_wave_needs_the_rtl(tmp_path, capsys):
    f = tmp_path / "m.mbnn"
    save(random_model((784, 16, 10)), f)
    rc, _, err = run(["verify", str(f), "--backends", "golden", "--wave", str(tmp_path / "w")], capsys)
    assert rc == 2 and "add rtl to --backends" in err


def test_verify_offset_runs_a_chunk_of_the_test_set(tmp_path, capsys, mnist):
    """--offset N --limit K runs test images N .. N+K-1: two chunks add up to the run of both at once, and each
    chunk's counts are those of its own images."""
    from metabnn import backends
    from metabnn.train.task_data import for_model

    f = tmp_path / "m.mbnn"
    model = random_model((784, 16, 10), seed=3)
    save(model, f)
    data = for_model(model.meta, None, None)
    pred = backends.get("golden").predict(model, data.test_x[:90])
    counts = []
    for argv in (["--offset", "0", "--limit", "30"], ["--offset", "30", "--limit", "60"], ["--limit", "90"]):
        rc, text, _ = run(["verify", str(f), "--backends", "golden,c"] + argv, capsys)
        assert rc == 0, text
        counts.append(round(accuracy(text, "c") * int(argv[-1]) / 100))
    assert "(images 30 to 89)" in run(["verify", str(f), "--backends", "golden", "--offset", "30", "--limit",
                                       "60"], capsys)[1].splitlines()[0]
    assert counts[0] == int((pred[:30] == data.test_y[:30]).sum())
    assert counts[1] == int((pred[30:90] == data.test_y[30:90]).sum())
    assert counts[0] + counts[1] == counts[2]
    # --limit 0 with an offset: to the end of the set
    rc, text, _ = run(["verify", str(f), "--backends", "golden", "--offset", "9990", "--limit", "0"], capsys)
    assert rc == 0 and text.startswith("10 images of the") and "(images 9990 to 9999)" in text


@pytest.mark.parametrize("argv,needle", [
    (["--offset", "-1"], "--limit, --offset and --learn must be >= 0"),
    (["--offset", "10000"], "assumed MNIST) has 10000 images (0 .. 9999)"),
    (["--offset", "9990", "--limit", "20"], "assumed MNIST) has 10 images from image 9990 on"),
])
def test_verify_offset_is_checked(tmp_path, capsys, mnist, argv, needle):
    f = tmp_path / "m.mbnn"
    save(random_model((784, 16, 10)), f)
    rc, _, err = run(["verify", str(f), "--backends", "golden"] + argv, capsys)
    assert rc == 2 and needle in err and one_error_line(err), err


def test_verify_reports_mismatches_by_their_number_in_the_test_set():
    """With first = N (verify --offset N) a mismatch is named by its test-set number, not its place in the chunk."""
    from metabnn import backends, verify

    m = random_model((784, 16, 10), seed=1)
    x = np.random.default_rng(0).integers(0, 256, (20, 784)).astype(np.uint8)
    golden = backends.get("golden")

    class Wrong:
        name, integer, adapts = "c", True, True

        def predict(self, model, images, bank=0, adapt=False):
            p = golden.predict(model, images)
            p[3] = (p[3] + 1) % 10
            return p

    row = verify.run_verify(m, x, np.zeros(20, int), [golden, Wrong()], first=500)[1]
    ref = golden.predict(m, x)
    assert row.failed and row.first_mismatch == [503]
    assert row.detail == f"image 503: golden class {ref[3]}, c class {(ref[3] + 1) % 10}"
