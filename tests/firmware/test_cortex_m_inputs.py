"""firmware/cortex-m/gen_inputs.py, the board program's generated headers: test images from a data set by name
(--task, CM_TASK=...), and one clear line for a name it does not know."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from metabnn.backends.c import FIRMWARE


def _gen():
    spec = importlib.util.spec_from_file_location("gen_inputs", FIRMWARE / "cortex-m" / "gen_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_task_gives_the_first_test_images_of_that_data_set(tmp_path, mnist):
    from metabnn.errors import DataMissingError
    from metabnn.train.data import load

    try:
        fm = load("fmnist")
    except DataMissingError as e:
        pytest.skip(str(e))
    assert _gen().main([str(tmp_path), "--task", "fmnist", "--count", "3", "--steps", "2"]) == 0
    text = (tmp_path / "board_cases.h").read_text()
    rows = re.findall(r"\{([0-9,]+)\},", text)
    assert len(rows) == 3 and "#define BOARD_LEARN_STEPS 2u" in text
    got = np.array([[int(v) for v in r.split(",")] for r in rows])
    assert (got == fm.test_x[:3].numpy()).all()
    assert not (got == mnist.test_x[:3].numpy()).all()


def test_unknown_task_is_one_line(tmp_path, capsys):
    assert _gen().main([str(tmp_path), "--task", "cifar"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gen_inputs: ") and "cifar" in err and len(err.strip().splitlines()) == 1
