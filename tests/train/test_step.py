"""The fused training step (train/step.py) against the autograd path it replaces: same state up to float rounding."""

import copy

import pytest
import torch
import torch.nn.functional as F

from metabnn.train import step as step_mod
from metabnn.train.models import build
from metabnn.train.optim import MetaAdam, param_groups


def autograd_step(model, opt, x_u8, y):
    """What experiment.py does without the fused step."""
    loss = F.cross_entropy(model(x_u8.float().div_(255)), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def pair(hidden, meta, affine=True, seed=0):
    torch.manual_seed(seed)
    a = build("bnn", hidden, affine=affine)
    b = copy.deepcopy(a)
    opts = [MetaAdam(param_groups(m, meta), lr=0.005, weight_decay=1e-3) for m in (a, b)]
    return a, b, opts


def data(n=400, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 784), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)


def assert_same_state(a, b, oa, ob, w_atol):
    """Parameters within w_atol (a step is lr = 5e-3: Adam divides a gradient by its own size, so a float
    rounding of a gradient near 0 moves that weight by a few 1e-6), statistics to float rounding, the moments
    to 1e-3 of their largest value, the step counts equal."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    params = {k for k, _ in a.named_parameters()}
    for k in sa:
        if k in params:
            torch.testing.assert_close(sa[k], sb[k], atol=w_atol, rtol=0)
        elif sa[k].is_floating_point():  # running mean and variance
            torch.testing.assert_close(sa[k], sb[k], atol=1e-5, rtol=1e-5)
        else:
            assert torch.equal(sa[k], sb[k]), k
    for pa, pb in zip(a.parameters(), b.parameters()):
        qa, qb = oa.state[pa], ob.state[pb]
        assert qa["step"] == qb["step"]
        for m in ("exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(qa[m], qb[m], atol=1e-3 * float(qa[m].abs().max()), rtol=0)


def run_fused(fn, model, opt, x, y, idx):
    fused = step_mod.FusedStep(model, opt)
    with torch.no_grad():
        loss, signs = fn(x, y, idx, *fused.inputs())
    for b, s in zip(model.blocks, signs):
        assert torch.equal(s, torch.where(b.lin.weight >= 0, 1.0, -1.0))  # the sign of the updated weight
        step_mod.remember_sign(b.lin.weight, s)
    return loss


def follow(a, oa, b, ob):
    """The autograd copy takes the fused one's state before each step: every step is compared from the same
    state (a weight within float rounding of 0 would otherwise flip its sign in one run only and the runs part),
    while the fused model runs on uninterrupted, with the sign of W_h that its own last step left."""
    a.load_state_dict(b.state_dict())
    oa.load_state_dict(copy.deepcopy(ob.state_dict()))  # (its tensors would be shared, not copied)


@pytest.mark.parametrize("meta,affine,hidden", [(1.35, True, [64, 48]), (0.0, True, [32]), (20.0, False, [40, 40, 24])])
def test_eager_train_step_equals_autograd(meta, affine, hidden):
    # the restated arithmetic, run op by op: the definition the compiled step is compiled from
    a, b, (oa, ob) = pair(hidden, meta, affine)
    x, y = data()
    for s in range(4):
        idx = torch.arange(s * 100, s * 100 + 100) if s < 3 else torch.arange(300, 337)  # a short last batch
        follow(a, oa, b, ob)
        la = autograd_step(a, oa, x[idx], y[idx])
        lb = run_fused(step_mod.train_step, b, ob, x, y, idx)
        torch.testing.assert_close(lb, la, atol=1e-5, rtol=1e-5)
        assert_same_state(a, b, oa, ob, w_atol=2e-5)


def test_compiled_step_equals_autograd_over_a_real_run(mnist):
    if not step_mod._compiled_step():
        pytest.skip("torch.compile is off or unavailable here: the trainer takes the autograd path")
    a, b, (oa, ob) = pair([128, 64], [1.35, 3.0, 0.5])
    x, y = mnist.train_x[:3000], mnist.train_y[:3000]
    assert step_mod.FusedStep.applies(b, ob)
    fused = step_mod.FusedStep(b, ob)
    perm = torch.randperm(3000, generator=torch.Generator().manual_seed(3))
    for s in range(0, 3000, 100):  # 30 steps of a real run (moments, statistics, the kept sign(W_h) carried)
        idx = perm[s : s + 100]
        follow(a, oa, b, ob)
        la = autograd_step(a, oa, x[idx], y[idx])
        lb = fused(x, y, idx)
        torch.testing.assert_close(lb, la, atol=1e-5, rtol=1e-5)
        assert_same_state(a, b, oa, ob, w_atol=1e-5)
        assert all(torch.equal(torch.sign(p), torch.sign(q)) for p, q in zip(a.parameters(), b.parameters()))


def test_applies_only_where_it_restates_the_autograd_path():
    torch.manual_seed(0)
    mlp = build("bnn", [16])
    opt = MetaAdam(param_groups(mlp, 1.0))
    if not step_mod._compiled_step():
        assert not step_mod.FusedStep.applies(mlp, opt)
        return
    assert step_mod.FusedStep.applies(mlp, opt)
    fp = build("fp", [16])
    assert not step_mod.FusedStep.applies(fp, MetaAdam(param_groups(fp, 0.0)))
    mlp.blocks[0].bn.eval()  # frozen BatchNorm (frozen-after-1)
    assert not step_mod.FusedStep.applies(mlp, opt)
    mlp.train()
    mlp.blocks[1].bn.weight.requires_grad_(False)
    assert not step_mod.FusedStep.applies(mlp, opt)


def test_a_short_run_of_the_trainer_gives_the_same_results_either_way(tmp_path, mnist, monkeypatch):
    # the whole trainer (epochs, evaluation, checkpoints) with the compiled step and with the autograd path
    if not step_mod._compiled_step():
        pytest.skip("torch.compile is off or unavailable here: the trainer takes the autograd path")
    from metabnn.train.experiment import Experiment
    from metabnn.train.presets import DEFAULTS

    # one epoch of 20 steps: over more, a weight within float rounding of 0 takes the other sign in one run and
    # the runs part (40 steps of this run: 1,322 signs apart, measured); test_compiled_step_... goes on longer
    cfg = dict(DEFAULTS, tasks="pmnist:1", hidden=[128, 64], epochs=1, train_subset=2000, test_subset=1000,
               device="cpu", compare_shifts=[8], verbose=False)
    fast = Experiment(cfg, tmp_path / "fused", progress=False)
    assert fast.fused_step(0) is not None
    r_fast = fast.run()
    monkeypatch.setattr(Experiment, "fused_step", lambda self, i: None)
    plain = Experiment(cfg, tmp_path / "autograd", progress=False)
    r_plain = plain.run()
    assert r_fast["curves"]["loss"] == pytest.approx(r_plain["curves"]["loss"], abs=1e-5)
    assert r_fast["acc"][0] == pytest.approx(r_plain["acc"][0], abs=1e-3)  # at most one test image in 1000
    assert_same_state(plain.model, fast.model, plain.opt, fast.opt, w_atol=1e-5)
