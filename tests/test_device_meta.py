"""The device-m rule (export/device_meta.py): the walk to zero, the survival test and the pick."""

import numpy as np
import pytest

from metabnn.errors import UsageError
from metabnn.export import device_meta as rule
from metabnn.export.quantize import quantize_hidden
from metabnn.sim.metaplastic import f_meta_table

BITS, TB = 8, 7
STATS = rule.UpdateStats(rate=0.3, sizes=(1, 2, 4), probs=(0.5, 0.3, 0.2))


def synthetic(n=20000, spread=0.2, seed=0):
    """|W| of a trained layer: most small, a tail of large ones (half-normal)."""
    return np.abs(np.random.default_rng(seed).normal(0.0, spread, n))


def test_stats_from_counts():
    counts = np.zeros(10, dtype=np.int64)
    counts[[0, 1, 3]] = [70, 20, 10]  # counts[0] (no update) is ignored: rate comes from the total
    st = rule.UpdateStats.from_counts(counts, 100)
    assert st.rate == pytest.approx(0.3)
    assert st.sizes == (1, 3) and st.probs == pytest.approx((2 / 3, 1 / 3))
    assert st.mean_size == pytest.approx(5 / 3)
    assert rule.UpdateStats.from_counts(np.zeros(4), 10).rate == 0.0


def test_walk_without_consolidation_is_h_over_the_mean_step():
    ones = np.full(1 << TB, 32768, dtype=np.uint16)
    T = rule.pushes_to_zero(ones, BITS, TB, rule.UpdateStats(1.0, (2,), (1.0,)))
    assert T[0] == 0 and T[10] == pytest.approx(5.0) and T[127] == pytest.approx(63.5)


def test_deterministic_rounding_freezes_what_stochastic_only_slows():
    # F = 1/4: a push of 1 LSB rounds to 0 (frozen), stochastically it moves 1/4 LSB on average
    quarter = np.full(1 << TB, 8192, dtype=np.uint16)
    one = rule.UpdateStats(1.0, (1,), (1.0,))
    assert np.isinf(rule.pushes_to_zero(quarter, BITS, TB, one)[1])
    assert rule.pushes_to_zero(quarter, BITS, TB, one, stochastic=True)[8] == pytest.approx(32.0)


def test_walk_grows_with_m():
    w = synthetic()
    walks = []
    for m in (0.5, 2, 8, 32):
        h, scale = quantize_hidden(np.array([np.median(w), w.max()]), m, BITS)
        T = rule.pushes_to_zero(f_meta_table(m, scale, BITS, TB), BITS, TB, STATS)
        walks.append(T[abs(int(h[0]))])
    # non-decreasing (rounding to nearest leaves a push of 1 LSB whole while f_meta > 1/2), and growing overall
    assert all(a <= b for a, b in zip(walks, walks[1:])) and walks[0] < walks[2] < walks[3], walks


def test_pick_is_deterministic_and_the_quantile_survives():
    w = synthetic()
    m, ok = rule.pick(w, BITS, TB, STATS, horizon=3000, quantile=0.5)
    assert ok and m > 0
    assert rule.pick(w.copy(), BITS, TB, STATS, horizon=3000, quantile=0.5) == (m, ok)
    kept = rule.survivors(m, w, BITS, TB, STATS, 3000)
    assert 0.45 <= kept <= 0.6  # the upper half consolidated, the lower half left plastic
    assert rule.survivors(m * 0.8, w, BITS, TB, STATS, 3000) < 0.5  # the smallest m that does it


@pytest.mark.parametrize("what", ["horizon", "rate", "size", "quantile"])
def test_pick_is_monotone(what):
    w = synthetic()
    # short horizons: with rounding to nearest a long one freezes the quantile outright (no push of these sizes
    # moves it any more), and from there on the pick stays at that m (weakly monotone; the next test)
    base = dict(horizon=400, quantile=0.5)
    ms = []
    for k in (1, 2, 4):
        kw, st = dict(base), STATS
        if what == "horizon":
            kw["horizon"] = 100 * k
        elif what == "rate":
            st = rule.UpdateStats(STATS.rate * k / 4, STATS.sizes, STATS.probs)
        elif what == "size":
            kw["horizon"] = 100
            st = rule.UpdateStats(STATS.rate, tuple(s * k for s in STATS.sizes), STATS.probs)
        else:
            kw["quantile"] = {1: 0.3, 2: 0.5, 4: 0.8}[k]
        ms.append(rule.pick(w, BITS, TB, st, **kw)[0])
    if what == "quantile":  # consolidating only larger weights needs a smaller m
        assert ms[0] > ms[1] > ms[2], ms
    else:  # a longer task, more or bigger updates: more consolidation
        assert ms[0] < ms[1] < ms[2], ms


def test_long_horizons_reach_the_freeze_point():
    w = synthetic()
    ms = [rule.pick(w, BITS, TB, STATS, h)[0] for h in (300, 1000, 3000, 30000)]
    assert all(a <= b for a, b in zip(ms, ms[1:])) and ms[-1] == ms[-2], ms
    # frozen: at the picked m the median's walk to zero is infinite under rounding to nearest
    h, scale = quantize_hidden(np.array([np.median(w), w.max()]), ms[-1], BITS)
    T = rule.pushes_to_zero(f_meta_table(ms[-1], scale, BITS, TB), BITS, TB, STATS)
    assert np.isinf(T[abs(int(h[0]))])


def test_pick_scales_inversely_with_the_weights():
    # f_meta depends on m |W| and the hidden range on m max|W|: twice the weights, half the m
    w = synthetic()
    m1, _ = rule.pick(w, BITS, TB, STATS, 3000)
    m2, _ = rule.pick(2 * w, BITS, TB, STATS, 3000)
    assert m2 == pytest.approx(m1 / 2, rel=0.01)


def test_nothing_moves_no_consolidation_and_unreachable_flagged():
    w = synthetic()
    assert rule.pick(w, BITS, TB, rule.UpdateStats(0.0, (), ()), 3000) == (0.0, True)
    # stochastic rounding, steps of 64 LSBs on an 8-bit weight: no table keeps the median for 10^6 samples
    # (rounding to nearest always can: it freezes a synapse once 64 f_meta < 1/2)
    huge = rule.UpdateStats(1.0, (64,), (1.0,))
    m, ok = rule.pick(w, BITS, TB, huge, 10 ** 6, stochastic=True)
    assert not ok and m == pytest.approx(rule.ACOSH_256 / np.median(w), rel=1e-3)


@pytest.mark.parametrize("kw", [dict(quantile=0.0), dict(quantile=1.0), dict(horizon=0)])
def test_bad_rule_options(kw):
    with pytest.raises(UsageError):
        rule.pick(synthetic(), BITS, TB, STATS, **{"horizon": 3000, **kw})


def test_empty_or_nonfinite_weights():
    for w in (np.array([]), np.array([0.1, np.nan])):
        with pytest.raises(UsageError):
            rule.pick(w, BITS, TB, STATS, 3000)


def test_tanh_table_is_format_4_2():
    for m, scale, b, k in ((16.0, 0.39 / 7, 4, 3), (1.35, 0.01, 8, 7), (3.0, 0.001, 12, 8)):
        assert np.array_equal(rule.device_table(m, scale, b, k, "tanh"), f_meta_table(m, scale, b, k))


def test_edge_table_reads_f_meta_where_the_bucket_begins():
    m, scale = 16.0, 0.39 / 7  # 4 bits at the saturating m: f_meta = 1/2 near 1 LSB
    edge, tanh = rule.device_table(m, scale, 4, 3), f_meta_table(m, scale, 4, 3)
    assert edge[0] == tanh[0] == 32768
    # |h| = 1 holds |W| from 0.5 LSB: f_meta there, not at 1 LSB
    assert edge[1] == round(32768 * (1 - np.tanh(m * 0.5 * scale) ** 2))
    assert edge[1] / 32768 == pytest.approx(0.825, abs=0.001) and tanh[1] / 32768 == pytest.approx(0.493, abs=0.001)
    assert np.all(edge >= tanh) and np.all(np.diff(edge.astype(int)) <= 0)
    # table buckets of 2^t LSBs: the bucket's first |h| minus half an LSB
    e12 = rule.device_table(3.0, 0.001, 12, 8)
    assert e12[5] == round(32768 * (1 - np.tanh(3.0 * (5 * 8 - 0.5) * 0.001) ** 2))
    # at 8 bits half an LSB apart: at most half an LSB times f_meta's steepest slope, 4 a / (3 sqrt 3), apart
    a = 16.0 * 0.39 / 127
    e8, t8 = rule.device_table(16.0, 0.39 / 127, 8, 7), f_meta_table(16.0, 0.39 / 127, 8, 7)
    assert np.max(np.abs(e8.astype(int) - t8.astype(int))) <= 0.5 * 4 * a / (3 * np.sqrt(3)) * 32768 + 1
    assert np.all(rule.device_table(0.0, 0.1, 4, 3) == 32768)  # m = 0: a plain BNN either way


def test_set_tables_and_a_bad_kind(trained_model):
    model = trained_model.copy()
    rule.set_tables(model, "edge")
    for lay in model.layers:
        assert np.array_equal(lay.table, rule.device_table(lay.meta, lay.scale, lay.bits, lay.table_bits))
    with pytest.raises(UsageError):
        rule.device_table(1.0, 0.1, 8, 7, "cosine")


def test_the_rule_walks_the_table_it_is_given():
    # the edge table is more plastic, so keeping the median takes a larger m (at 4 bits the median's |h| moves
    # in whole LSBs, so the pick moves in steps: never smaller, larger at this horizon)
    w = synthetic()
    for horizon in (30, 100, 300, 3000):
        picks = [rule.pick(w, 4, 3, STATS, horizon, stochastic=True, table=t)[0] for t in ("tanh", "edge")]
        assert picks[1] >= picks[0] > 0, (horizon, picks)
    assert rule.pick(w, 4, 3, STATS, 100, stochastic=True, table="edge")[0] > \
        rule.pick(w, 4, 3, STATS, 100, stochastic=True, table="tanh")[0]


def test_fractional_counts():
    st = rule.UpdateStats.from_counts(np.array([5.0, 0.25, 0.75]), 4)
    assert st.rate == pytest.approx(0.25) and st.sizes == (1, 2) and st.probs == pytest.approx((0.25, 0.75))


def test_below_and_walk_tables():
    m, scale, b, k = 16.0, 0.39 / 7, 4, 3
    below, walk = rule.device_table(m, scale, b, k, "below"), rule.device_table(m, scale, b, k, "walk")
    f = lambda w: 1 - np.tanh(m * w) ** 2
    assert below[0] == below[1] == 32768 and below[3] == round(32768 * f(2 * scale))
    # walk: 1 / the mean of 1 / f_meta over the LSB a push crosses, here from 2 to 1 LSBs (numerically)
    w = np.linspace(1 * scale, 2 * scale, 200001)
    assert walk[2] == pytest.approx(32768 / np.mean(1 / f(w)), abs=1)
    assert walk[0] == 32768 and below[2] > walk[2] > f_meta_table(m, scale, b, k)[2]
    # buckets of several LSBs (12 bits, k = 8: 8 LSBs each): the bucket's 8 pushes, [39, 47] LSBs for i = 5
    w = np.linspace(39 * 0.001, 47 * 0.001, 200001)
    walk12 = rule.device_table(3.0, 0.001, 12, 8, "walk")
    assert walk12[5] == pytest.approx(32768 / np.mean(1 / (1 - np.tanh(3.0 * w) ** 2)), abs=1)
