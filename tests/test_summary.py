"""`metabnn summary`: per-layer counts of a checkpoint (1-bit, float, bytes at 1 bit and at b bits), checked
against counts made by hand from the network's shapes; the flatten row; bad input as one line, exit 2."""

import json

import pytest
import torch

from metabnn.summary import rows, summarize, totals
from metabnn.train import checkpoint as ckpt_mod
from metabnn.train.models import POOL, build


def _save(tmp_path, model_kind, hidden, channels=None, affine=True):
    torch.manual_seed(0)
    net = build(model_kind, hidden, channels, affine)
    cfg = {"model": model_kind, "hidden": hidden, "channels": channels, "bn_affine": affine, "meta": 1.35,
           "tasks": "fmnist"}
    path = tmp_path / "model.pt"
    ckpt_mod.save(path, {"format": ckpt_mod.FORMAT, "version": ckpt_mod.VERSION, "config": cfg,
                         "model": net.state_dict(), "banks": [], "progress": {"task": 1, "epoch": 0}})
    return path


def test_conv_net_counts_by_hand(tmp_path):
    path = _save(tmp_path, "conv", [20], [3, POOL, 5, 5, POOL])
    s = summarize(path, hidden_bits=6)
    layers = {r["name"]: r for r in s["layers"]}
    convs = [(1, 3), (3, 5), (5, 5)]  # (in, out) channels of the 3x3 convs
    dense = [(5 * 7 * 7, 20), (20, 10)]
    one_bit = [ci * co * 9 for ci, co in convs] + [k * n for k, n in dense]
    bn = [co for _, co in convs] + [n for _, n in dense]  # gamma, beta, mean, var per channel / neuron
    t = s["totals"]
    assert t["one_bit"] == sum(one_bit)
    assert t["floats"] == 4 * sum(bn)
    assert t["infer_bytes"] == sum((b + 7) // 8 for b in one_bit) + 16 * sum(bn)
    assert t["learn_bytes"] == sum((b * 6 + 7) // 8 for b in one_bit) + 16 * sum(bn)
    assert t["float32_bytes"] == 4 * (sum(one_bit) + 4 * sum(bn))
    ops = [r["op"] for r in s["layers"]]
    assert ops.count("max-pool 2x2") == 2 and ops.count("sign") == 4 and ops.count("batch norm") == 5
    i = ops.index("flatten (NCHW)")
    assert s["layers"][i - 1]["op"] == "max-pool 2x2" and s["layers"][i]["shape"] == [5 * 7 * 7]
    assert layers["features.3"]["shape"] == [3, 14, 14]  # the pool after the first conv's sign
    assert s["layers"][-1]["shape"] == [10]


def test_mlp_has_no_flatten_and_hidden_bits_change_only_learning(tmp_path):
    path = _save(tmp_path, "bnn", [16], affine=False)
    a, b = summarize(path, 2), summarize(path, 16)
    assert "flatten (NCHW)" not in [r["op"] for r in a["layers"]]
    assert a["totals"]["one_bit"] == 784 * 16 + 16 * 10
    assert a["totals"]["floats"] == 2 * (16 + 10)  # no affine: running mean and variance only
    assert a["totals"]["infer_bytes"] == b["totals"]["infer_bytes"]
    assert b["totals"]["learn_bytes"] - a["totals"]["learn_bytes"] == (784 * 16 * 14) // 8 + (160 * 14) // 8


def test_full_precision_weights_count_as_floats():
    net = build("fp", [8])
    t = totals(rows(net, 8))
    assert t["one_bit"] == 0 and t["floats"] == 784 * 8 + 8 * 10 + 4 * (8 + 10)


def test_cli_table_and_json(tmp_path, capsys):
    from metabnn.cli import main

    path = _save(tmp_path, "conv", [8], [4, POOL])
    assert main(["summary", str(path)]) == 0
    text = capsys.readouterr().out
    assert "binary conv 3x3 s1 p1" in text and "flatten (NCHW)" in text and "learning bytes (b=8)" in text
    assert main(["summary", str(path), "--json", "--hidden-bits", "4"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["hidden_bits"] == 4 and s["totals"]["one_bit"] == 4 * 9 + 4 * 14 * 14 * 8 + 8 * 10


@pytest.mark.parametrize("args, needle", [
    (["--hidden-bits", "1"], "--hidden-bits 1: must be 2..16"),
    (["--hidden-bits", "x"], "not a whole number"),
    (["--missing"], "unrecognized arguments"),
])
def test_bad_options_one_line_exit_2(tmp_path, capsys, args, needle):
    from metabnn.cli import main

    path = _save(tmp_path, "bnn", [4])
    try:
        rc = main(["summary", str(path), *args])
    except SystemExit as e:  # argparse's own errors exit through the parser
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err


@pytest.mark.parametrize("content", [None, b"not a torch file", "wrong-marker"], ids=["missing", "garbage", "marker"])
def test_bad_checkpoints_one_line_exit_2(tmp_path, capsys, content):
    from metabnn.cli import main

    path = tmp_path / "x.pt"
    if content == "wrong-marker":
        torch.save({"format": "something else"}, path)
    elif content is not None:
        path.write_bytes(content)
    assert main(["summary", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and "Traceback" not in err[0], err
