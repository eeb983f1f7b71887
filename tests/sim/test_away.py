"""The prototype second table g of the metaplastic rule (Layer.away, docs/ONDEVICE.md): pushes away from zero
scaled by g(|h|) with the rule's rounding; g = 1 everywhere is the rule without it; the container's field."""

import zlib

import numpy as np
import pytest

from metabnn.export.errors import FormatError
from metabnn.export.mbnn import to_bytes
from metabnn.sim import learn_step, random_model
from metabnn.sim.metaplastic import apply_gradient


def _step(h, grad, away, lr_shift=2, f5=20000, draws=None):
    table = np.full(16, 32768, np.uint16)
    table[5] = f5
    out = apply_gradient(np.array([[h]]), np.array([[grad]]), lr_shift=lr_shift, table=table, bits=8,
                         table_bits=4, away=away, draws=draws)
    return int(out[0, 0])


def test_away_table_scales_pushes_away_only():
    g = np.full(16, 32768, np.uint16)
    g[5] = 10000  # idx(45) = 45 >> 3 = 5
    assert _step(45, -3, g) == 45  # FORMAT.md 4.3's worked example: u = 1 -> (10000 + 16384) >> 15 = 0
    assert _step(45, -12, g) == 45 + ((3 * 10000 + 16384) >> 15)  # away: u = 3 -> 1
    assert _step(-45, 12, g) == -45 - 1
    assert _step(45, 48, g) == 45 - ((12 * 20000 + 16384) >> 15)  # toward: f_meta, g not read
    assert _step(0, -12, g) == 3  # h = 0: idx 0, g[0] = 1
    g0 = g.copy()
    g0[5] = 0
    assert _step(45, -400, g0) == 45  # g = 0: the synapse cannot grow


@pytest.mark.parametrize("stochastic", [False, True])
def test_unit_away_table_is_the_rule_without_it(stochastic):
    m = random_model([30, 20, 10], bits=6, table_bits=3, seed=3, rounding=int(stochastic))
    m2 = m.copy()
    for lay in m2.layers:
        lay.away = np.full(lay.table.shape, 32768, np.uint16)
    rng = np.random.default_rng(1)
    for _ in range(20):
        x, y = rng.integers(0, 256, 30).astype(np.uint8), int(rng.integers(0, 10))
        m, _ = learn_step(m, x, y)
        m2, _ = learn_step(m2, x, y)
    for a, b in zip(m.layers, m2.layers):
        assert np.array_equal(a.hidden, b.hidden)
    assert any(not np.array_equal(a.hidden, b.hidden) for a, b in zip(m.layers, random_model(
        [30, 20, 10], bits=6, table_bits=3, seed=3, rounding=int(stochastic)).layers))  # it learned something


def test_zero_away_table_never_grows_a_synapse():
    m = random_model([30, 20, 10], bits=6, table_bits=3, seed=4)
    for lay in m.layers:
        lay.away = np.zeros(lay.table.shape, np.uint16)
        lay.away[0] = 32768
    rng = np.random.default_rng(2)
    moved = 0
    for _ in range(20):
        new, _ = learn_step(m, rng.integers(0, 256, 30).astype(np.uint8), int(rng.integers(0, 10)))
        for a, b in zip(m.layers, new.layers):
            h0, h1 = a.hidden.astype(int), b.hidden.astype(int)
            out = np.abs(h0) >= (1 << a.tshift)  # g = 0 there: a step can only move it toward zero
            assert np.all(np.sign(h0[out]) * (h1[out] - h0[out]) <= 0)
            moved += int(np.count_nonzero(h1[out] != h0[out]))
        m = new
    assert moved > 0


def test_container_round_trips_an_away_table():
    """FORMAT.md 4.2.1 / 6: descriptor byte 42 says the table section holds F then G; a model without it keeps its
    old bytes (the byte was reserved, 0); the loader checks the flag and G's entries."""
    from metabnn.export.mbnn import DESC, HEADER, from_bytes

    m = random_model([30, 20, 20, 10], bits=6, table_bits=3, seed=3)
    plain = to_bytes(m)
    assert all(plain[HEADER.size + DESC.size * l + 42] == 0 for l in range(3))
    m.layers[1].away = np.arange(8, dtype=np.uint16) * 4000
    data = to_bytes(m)
    o_table = int.from_bytes(data[HEADER.size + DESC.size + 32:HEADER.size + DESC.size + 36], "little")
    assert np.array_equal(np.frombuffer(data[o_table:o_table + 32], "<u2"),  # layer 1's section: F, then G
                          np.concatenate([m.layers[1].table, m.layers[1].away]))
    back = from_bytes(data)
    assert back.layers[0].away is None and back.layers[2].away is None
    assert np.array_equal(back.layers[1].away, m.layers[1].away) and to_bytes(back) == data

    def patched(at, value, width=1):
        b = bytearray(data)
        b[at:at + width] = value.to_bytes(width, "little")
        return bytes(b[:-4]) + zlib.crc32(bytes(b[:-4])).to_bytes(4, "little")

    d1 = HEADER.size + DESC.size
    with pytest.raises(FormatError, match="away 2 must be 0"):
        from_bytes(patched(d1 + 42, 2))
    with pytest.raises(FormatError, match="reserved descriptor bytes"):
        from_bytes(patched(d1 + 43, 1))
    g_at = int.from_bytes(data[d1 + 32:d1 + 36], "little") + 2 * 8  # G follows F's 8 entries
    with pytest.raises(FormatError, match="away table entry"):
        from_bytes(patched(g_at + 2, 32769, 2))
    assert from_bytes(patched(g_at + 2, 32768, 2)).layers[1].away[1] == 32768


def test_metaplastic_update_passes_the_away_table():
    """metaplastic_update (what the RTL and firmware tests call) runs the same rule as apply_gradient."""
    from metabnn.sim import metaplastic_update

    table = np.full(16, 32768, np.uint16)
    g = np.full(16, 32768, np.uint16)
    g[5] = 10000
    out = metaplastic_update(np.array([[45]]), np.array([4]), np.array([-3]), lr_shift=2, table=table, bits=8,
                             table_bits=4, away=g)
    assert int(out[0, 0]) == _step(45, -12, g) == 46


def test_away_table_shapes():
    """export.device_meta.away_table: mirror is the f_meta table itself (P = 1), ratio caps f / R at 1, pow is 1 at
    |h| = 0 and 1 - (i 2^t / hmax)^K at entry i; none is no table."""
    from metabnn.export.device_meta import away_table, parse_away

    f = np.array([32768, 30000, 16384, 8192, 4096, 1000, 10, 0], np.uint16)
    assert away_table("none", None, f, 6, 3) is None
    assert np.array_equal(away_table(*parse_away("mirror"), f, 6, 3), f)
    assert np.array_equal(away_table("mirror", 2.0, f, 6, 3)[:3], [32768, 27466, 8192])
    assert np.array_equal(away_table("ratio", 0.5, f, 6, 3)[:5], [32768, 32768, 32768, 16384, 8192])
    g = away_table("pow", 1.0, f, 6, 3)  # hmax 31, entry i at |h| = 4 i
    assert np.array_equal(g, np.floor(32768 * (1 - np.arange(8) * 4 / 31) + 0.5).astype(np.uint16))


def test_rtl_learning_builds_the_away_tables_of_the_model():
    """The RTL learners build G's hardware in exactly the layers that have a table (the AWAY bit mask); a model
    without one keeps the parameters, so the build keys, it had before the away table existed."""
    from metabnn.backends.rtl import away_mask
    from metabnn.backends.rtl_native import NativeRTLLearner

    m = random_model([30, 20, 10], bits=6, table_bits=3, seed=3)
    assert away_mask(m) == 0 and "AWAY" not in NativeRTLLearner(simd=8, pe=4).params(m)
    m.layers[1].away = np.full(8, 32768, np.uint16)
    assert away_mask(m) == 0b10 and NativeRTLLearner(simd=8, pe=4).params(m)["AWAY"] == 0b10
