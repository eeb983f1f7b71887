"""metabnn.train.paper_report: the paper-scale table from results.json files, and its one-line errors."""

import json

from metabnn.train import paper_report


def _run(folder, meta, acc_free, acc_paper):
    folder.mkdir()
    res = {"config": {"meta": meta, "adapt_shift": 8}, "eval_names": ["t1", "t2"],
           "acc_by_bn": {"adaptive:8": [[0.9, 0.1], acc_free], "task-aware-batch": [[0.9, 0.1], acc_paper],
                         "frozen": [[0.5, 0.5], [0.5, 0.5]]}}
    (folder / "results.json").write_text(json.dumps(res))
    (folder / "curves.png").write_bytes(b"png")
    return folder


def test_table_reports_the_last_row_under_both_protocols(tmp_path, capsys):
    a = _run(tmp_path / "a", 1.35, [0.80, 0.96], [0.84, 0.97])
    b = _run(tmp_path / "b", 0.0, [0.20, 0.97], [0.30, 0.97])
    one = tmp_path / "one"
    one.mkdir()
    (one / "results.json").write_text(json.dumps({"config": {"meta": 0.0, "adapt_shift": 8}, "eval_names": ["t1"],
                                                  "acc_by_bn": {"task-aware-batch": [[0.9]]}}))
    assert paper_report.main([str(a), str(b), "--plot", str(tmp_path / "p.png"), "--copy", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "| a | 1.35 | adaptive:8 | 80.0 % | 96.0 % | 88.0 % |" in out
    assert "| b | 0.0 | task-aware-batch | 30.0 % | 97.0 % | 63.5 % |" in out
    assert "frozen" not in out
    assert out.count("| run |") == 1
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "c" / "a" / "results.json").read_text())["config"]["meta"] == 1.35
    # the curve: a stream or task sequence as a line, a one-task baseline as a level
    assert paper_report.main([str(a), str(one), "--curve", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_unfinished_run_is_one_line(tmp_path, capsys):
    (tmp_path / "r").mkdir()
    assert paper_report.main([str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume" in err
