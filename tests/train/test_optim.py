"""MetaAdam against a hand-written NumPy transcription of the authors' Adam_meta."""

import numpy as np
import pytest
import torch

from metabnn.train import MetaAdam
from metabnn.train.optim import param_groups
from metabnn.train.models import MLP


def numpy_meta_adam(ws, grads_seq, lr, b1, b2, eps, wd, metas):
    ws = [w.astype(np.float64).copy() for w in ws]
    m = [np.zeros_like(w) for w in ws]
    v = [np.zeros_like(w) for w in ws]
    for t, grads in enumerate(grads_seq, start=1):
        for k, (w, g, meta) in enumerate(zip(ws, grads, metas)):
            g = g + wd * w
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            step = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
            used = m[k]
            if w.ndim >= 2:
                sgn = np.where(w >= 0, 1.0, -1.0)
                f = 1 - np.tanh(meta * np.abs(w)) ** 2
                used = np.where(sgn * m[k] > 0, f * m[k], m[k])
            ws[k] = w - step * used / (np.sqrt(v[k]) + eps)
    return ws


@pytest.mark.parametrize("wd", [0.0, 1e-2])
def test_meta_adam_matches_numpy_over_steps(wd):
    rng = np.random.default_rng(0)
    shapes = [(6, 4), (3, 6), (6,)]  # two weight layers, one 1-D (BatchNorm-like) tensor
    metas = [1.35, 3.0, 0.0]
    w0 = [rng.uniform(-1.5, 1.5, s) for s in shapes]
    grads_seq = [[rng.normal(size=s) for s in shapes] for _ in range(7)]
    params = [torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for w in w0]
    opt = MetaAdam([{"params": [params[0]], "meta": metas[0]}, {"params": [params[1]], "meta": metas[1]},
                    {"params": [params[2]], "meta": 5.0}],  # 1-D: meta must be ignored
                   lr=0.01, weight_decay=wd)
    for grads in grads_seq:
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        opt.step()
    ref = numpy_meta_adam(w0, grads_seq, 0.01, 0.9, 0.999, 1e-8, wd, metas)
    for p, r in zip(params, ref):
        np.testing.assert_allclose(p.detach().numpy(), r, rtol=1e-10, atol=1e-12)


def test_both_branches_are_exercised_and_differ_from_adam():
    # toward zero: attenuated; away from zero: plain Adam step
    w = torch.nn.Parameter(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    opt = MetaAdam([w], lr=0.1, meta=2.0)
    w.grad = torch.tensor([[1.0, -1.0]], dtype=torch.float64)  # first: toward zero; second: away
    opt.step()
    d = (w.detach() - 1.0)[0]
    f = 1 - np.tanh(2.0) ** 2
    assert d[1].item() == pytest.approx(0.1, rel=1e-6)  # plain Adam's first step is lr * sign(g)
    assert d[0].item() == pytest.approx(-0.1 * f, rel=1e-6)


def test_stored_moment_unchanged_and_reset():
    w = torch.nn.Parameter(torch.tensor([[2.0, -2.0]]))
    opt = MetaAdam([w], lr=0.1, meta=1.0)
    w.grad = torch.tensor([[1.0, -1.0]])
    opt.step()
    assert torch.allclose(opt.state[w]["exp_avg"], torch.tensor([[0.1, -0.1]]))
    opt.reset_state()
    assert len(opt.state) == 0


def test_meta_zero_is_plain_adam():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4, 3))
    b = torch.nn.Parameter(a.detach().clone())
    o1, o2 = MetaAdam([a], lr=0.01, meta=0.0), torch.optim.Adam([b], lr=0.01)
    for _ in range(5):
        g = torch.randn(4, 3)
        a.grad, b.grad = g.clone(), g.clone()
        o1.step(); o2.step()
    assert torch.allclose(a, b, atol=1e-7)


def test_per_layer_meta_groups():
    model = MLP([8, 8], affine=True)
    groups = param_groups(model, [0.5, 1.0, 2.0])
    assert [g["meta"] for g in groups[:3]] == [0.5, 1.0, 2.0]
    assert all(p.dim() == 1 for p in groups[3]["params"])
    with pytest.raises(ValueError):
        param_groups(model, [1.0, 2.0])


def test_rejects_negative_meta():
    with pytest.raises(ValueError):
        MetaAdam([torch.nn.Parameter(torch.zeros(2, 2))], meta=-1.0)


# ---- the fused step against the plain one (tests/train/reference_optim.py) ----------------------------------

def _short_run(opt_cls, meta, steps=25, monkeypatch=None):
    """A few real training steps of a small BNN on random data: the weights after them."""
    import torch.nn.functional as F

    torch.manual_seed(3)
    model = MLP([48, 32])
    opt = opt_cls(param_groups(model, meta), lr=0.01, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(4)
    for _ in range(steps):
        x = torch.rand(64, 784, generator=gen)
        y = torch.randint(0, 10, (64,), generator=gen)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()], opt


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "eager"])
@pytest.mark.parametrize("meta", [0.0, 1.35, [0.5, 3.0, 1.0]], ids=["m0", "m1.35", "per-layer"])
def test_fused_step_equals_plain_step(compiled, meta, monkeypatch):
    from metabnn.train import optim
    from reference_optim import ReferenceMetaAdam

    monkeypatch.setattr(optim, "_compiled", None if compiled else False)
    torch._dynamo.reset()  # a fresh compile cache: what earlier tests compiled must not decide this one
    fast, opt = _short_run(MetaAdam, meta)
    assert bool(optim._compiled) == compiled  # the path under test really ran (compiling did not fail)
    ref, ref_opt = _short_run(ReferenceMetaAdam, meta)
    moved = 0
    for a, b, p0 in zip(fast, ref, _short_run(MetaAdam, meta, steps=0)[0]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
        moved += int((a != p0).sum())
    assert moved > 0.9 * sum(p.numel() for p in fast)  # the run really changed (nearly) every weight
    for p, q in zip(opt.state, ref_opt.state):  # same moments and step counts, so resumes agree too
        assert opt.state[p]["step"] == ref_opt.state[q]["step"] == 25
        torch.testing.assert_close(opt.state[p]["exp_avg"], ref_opt.state[q]["exp_avg"], rtol=1e-4, atol=1e-7)


def test_fused_step_attenuates_like_the_rule_at_large_weights(monkeypatch):
    # |W| up to 4 (f_meta down to ~1e-5): the sigmoid form of 1 - tanh^2 must keep its precision there
    # (float64, so that the update, not W's own rounding, is what is compared)
    from metabnn.train import optim
    from reference_optim import ReferenceMetaAdam

    for compiled in (None, False):
        monkeypatch.setattr(optim, "_compiled", compiled)
        torch.manual_seed(0)
        w0 = torch.rand(64, 80, dtype=torch.float64) * 8 - 4
        grads = [torch.randn(64, 80, dtype=torch.float64) for _ in range(5)]
        out = []
        for cls in (MetaAdam, ReferenceMetaAdam):
            w = torch.nn.Parameter(w0.clone())
            opt = cls([w], lr=0.1, meta=1.35, weight_decay=1e-2)
            for g in grads:
                w.grad = g.clone()
                opt.step()
            out.append(w.detach() - w0)
        torch.testing.assert_close(out[0], out[1], rtol=1e-9, atol=1e-15)


def test_a_failed_compile_falls_back_to_the_eager_step(monkeypatch, capsys):
    from metabnn.train import optim

    def broken(*args):
        raise RuntimeError("no C++ compiler\nsecond line")

    monkeypatch.setattr(optim, "_compiled", False)
    eager, eager_opt = _short_run(MetaAdam, 1.35, steps=3)
    monkeypatch.setattr(optim, "_compiled", broken)
    after, opt = _short_run(MetaAdam, 1.35, steps=3)
    assert optim._compiled is False  # compiling is not tried again in this process
    err = capsys.readouterr().err
    assert err.count("note: MetaAdam runs without torch.compile (RuntimeError: no C++ compiler)") == 1
    for a, b in zip(after, eager):
        assert torch.equal(a, b)  # the failed call changed nothing: the same steps as eager from the start
    assert all(opt.state[p]["step"] == 3 for p in opt.state)
