"""The away table (FORMAT.md 4.2.1) in the C firmware: learning steps equal the golden model's state for state
(dense and conv, nearest and stochastic rounding), the loader's checks, and a model without the table keeps its
old bytes."""

from __future__ import annotations

import numpy as np
import pytest
from firmware_cases import CONFIGS, make_case
from test_firmware_conv import CASES, build, learn_and_compare, stochastic
from test_golden import first_difference
from test_loader import edit

from metabnn.export.mbnn import DESC, HEADER, from_bytes, to_bytes
from metabnn.sim import learn_step


def with_away(model, seed):
    """Every layer a random away table: entries anywhere in 0..32768, the two ends included."""
    rng = np.random.default_rng(seed)
    for lay in model.layers:
        g = rng.integers(0, 32769, size=1 << lay.table_bits).astype(np.uint16)
        g[rng.integers(0, g.size)] = 0
        g[rng.integers(0, g.size)] = 32768
        lay.away = g
    return model


@pytest.mark.parametrize("case", range(len(CONFIGS)))
@pytest.mark.parametrize("rounding", [0, 1])
def test_learning_with_an_away_table_equals_golden(cbackend, case, rounding):
    model, images, labels, bank = make_case(case, rounding=rounding)
    golden = with_away(model, case)
    changed, adapt = False, bool(case % 2)  # half the cases with stream-adaptive normalization (FORMAT.md 3.1)
    with cbackend.open(to_bytes(golden), bank=bank, adapt=adapt) as s:
        for t in range(12):
            before = golden
            golden, info = learn_step(golden, images[t], int(labels[t]), bank=bank, adapt=adapt)
            changed |= any(not np.array_equal(a.hidden, b.hidden) for a, b in zip(before.layers, golden.layers))
            predicted, flips = s.learn_step(images[t], int(labels[t]))
            got = s.image()
            assert got == to_bytes(golden), f"step {t}: {first_difference(golden, got)}"
            assert (predicted, flips) == (info.predicted, sum(info.flips))
    assert changed or CONFIGS[case][6] >= 25  # it learned (the case with lr_shift 25 may round every step to 0)


@pytest.mark.parametrize("ci", range(len(CASES)))
@pytest.mark.parametrize("rounding", [0, 1])
def test_conv_learning_with_an_away_table_equals_golden(cbackend, ci, rounding):
    model = build(CASES[ci], seed=ci)
    if rounding:
        stochastic(model)
    learn_and_compare(cbackend, with_away(model, 50 + ci), 6)


def test_the_away_table_changes_the_step(cbackend):
    """Not vacuous: the same model and stream with and without a table of zeros end in other states, in C too."""
    model, images, labels, bank = make_case(0)
    zero = model.copy()
    for lay in zero.layers:
        lay.away = np.zeros(1 << lay.table_bits, np.uint16)
    a = cbackend.learn(to_bytes(model), images, labels, 8, bank=bank)[-1]
    b = cbackend.learn(to_bytes(zero), images, labels, 8, bank=bank)[-1]
    assert [x.hidden.tolist() for x in from_bytes(a).layers] != [x.hidden.tolist() for x in from_bytes(b).layers]


def test_loader_checks_the_away_field(cbackend):
    model, *_ = make_case(0)
    plain = to_bytes(model)
    assert cbackend.load_status(plain) == 0 and plain[HEADER.size + 42] == 0
    with_away(model, 1)
    data = to_bytes(model)
    assert cbackend.load_status(data) == 0
    d0 = HEADER.size
    assert cbackend.status_str(cbackend.load_status(edit(data, "<B", d0 + 42, 2))) == \
        cbackend.status_str(cbackend.load_status(edit(plain, "<B", d0 + 40, 2)))  # a field out of range
    assert cbackend.load_status(edit(data, "<B", d0 + 43, 1)) != 0  # still reserved
    g_at = int.from_bytes(data[d0 + 32:d0 + 36], "little") + (2 << model.layers[0].table_bits)
    assert cbackend.status_str(cbackend.load_status(edit(data, "<H", g_at, 32769))) == \
        cbackend.status_str(cbackend.load_status(edit(plain, "<H", int.from_bytes(plain[d0 + 32:d0 + 36], "little"),
                                                      32769)))  # a table entry above 32768
    assert cbackend.load_status(edit(data, "<H", g_at, 32768)) == 0
    # the flag without the room for G: the section overruns into the next one
    assert cbackend.load_status(edit(plain, "<B", d0 + 42, 1)) != 0
