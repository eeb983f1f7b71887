"""The worked examples of docs/FORMAT.md, and the metaplastic rule's branches, by hand."""

import numpy as np

from metabnn.sim import metaplastic_update
from metabnn.sim.bits import pack_bits, popcount32, unpack_bits
from metabnn.sim.fixedpoint import rsr
from metabnn.sim.learn import output_error
from metabnn.sim.model import default_exp_table


def test_rsr_examples():
    assert [int(rsr(v, s)) for v, s in [(5, 1), (4, 1), (-5, 1), (3, 2), (-2, 2), (1, 2), (7, 0)]] == \
        [3, 2, -3, 1, -1, 0, 7]


def test_packing_example_and_padding():
    w = pack_bits(np.array([0, 1, 1, 0, 1], bool))
    a = pack_bits(np.array([1, 1, 0, 1, 0], bool))
    assert w[0] == 0x16 and a[0] == 0x0B
    assert 5 - 2 * int(popcount32(a ^ w).sum()) == -3
    bits = np.random.default_rng(0).random((3, 70)) < 0.5
    words = pack_bits(bits)
    assert words.shape == (3, 3) and np.all(words[:, 2] >> 6 == 0)  # padding zero
    assert np.array_equal(unpack_bits(words, 70), bits)
    assert (int(pack_bits(np.eye(40, dtype=bool)[33])[1]) == 1 << 1)  # element 33 -> word 1, bit 1


def _update(h, delta, x, lr_shift=2, bits=8, table_bits=4, f5=20000):
    table = np.full(16, 32768, np.uint16)
    table[5] = f5
    out = metaplastic_update(np.array([[h]]), np.array([x]), np.array([delta]), lr_shift=lr_shift,
                             table=table, bits=bits, table_bits=table_bits)
    return int(out[0, 0])


def test_worked_example_of_format_md():
    assert _update(45, -3, 1) == 46  # away from zero: no table
    assert _update(45, 48, 1) == 38  # toward zero: |u| = (12*20000+16384) >> 15 = 7


def test_rule_branches_and_saturation():
    assert _update(-45, -48, 1) == -38  # negative h, positive u: toward zero, attenuated
    assert _update(-45, 48, 1) == -57  # away from zero: full step
    assert _update(0, 48, 1) == -12  # h = 0 (+1): not "toward zero", full step, flips sign
    assert _update(127, -400, 1) == 127  # saturates at 2^(b-1)-1
    assert _update(-128, 400, 1) == -128  # and at -2^(b-1)
    assert _update(100, 1, 1) == 100  # rsr(1, 2) = 0: too small to move


def test_pixel_gradient_exact():
    # grad = 3 * 200 = 600, u = -rsr(600, 4) = -38, h = -20 moves away from zero: full step
    assert _update(-20, 3, 200, lr_shift=4) == -58


def test_output_error_softmax_table():
    E = default_exp_table()
    assert E[0] == 32768 and E[16] == round(32768 * np.exp(-1))
    s = np.array([0, 0, 0], np.int64)
    e = output_error(s, 1, 20, E)
    assert list(e) == [10922, 10922 - 32768, 10922]
    # a score gap far beyond the table: p = (1, 0, ...), error only on the true class
    e = output_error(np.array([1 << 40, 0], np.int64), 1, 20, E)
    assert list(e) == [32768, -32768]
