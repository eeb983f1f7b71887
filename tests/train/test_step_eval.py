"""The adaptive evaluation's compiled normalize + sign (train/bn.py, _normalize) gives the bits of the eager passes."""

import pytest
import torch

from metabnn.train import bn
from metabnn.train.models import MLP


def _model(hidden, affine, seed=0):
    torch.manual_seed(seed)
    model = MLP(hidden, affine=affine)
    for b in model.blocks:  # statistics and affine parameters away from their initial 0 / 1
        b.bn.running_mean.normal_(0, 3)
        b.bn.running_var.uniform_(2, 40)
        if affine:
            b.bn.weight.data.uniform_(0.5, 1.5)
            b.bn.bias.data.normal_(0, 0.5)
    return model.eval()


def _eager(monkeypatch):
    monkeypatch.setattr(bn, "_compiled_norm", False)


@pytest.mark.parametrize("affine", [True, False])
def test_compiled_normalize_equals_the_eager_passes_bit_for_bit(affine, monkeypatch):
    if not bn._normalize_compiled():
        pytest.skip("torch.compile is off or unavailable here: the evaluation runs the eager passes")
    model = _model([40, 24], affine)
    x = torch.randint(0, 256, (700, 784), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    x[:5] = 0  # rows whose first layer sums are 0: ties of the sign at z = 0 are likely below
    monkeypatch.setattr(bn, "EVAL_BLOCK", 256)  # 3 blocks, the last one partial (a second shape)
    fast = bn.logits(model, x, "adaptive", shift=5)
    with monkeypatch.context() as m:
        _eager(m)
        slow = bn.logits(model, x, "adaptive", shift=5)
    assert torch.equal(fast, slow)
    # every layer's output, signs included, not only the logits
    a = torch.randn(300, 24) * 4
    mean, inv_std = torch.randn(300, 24), torch.rand(24) * 5 + 0.5
    a[:10] = mean[:10]  # a - mean = 0 exactly: z = beta, or 0 without affine (sign(0) = +1)
    g, b = (model.blocks[1].bn.weight, model.blocks[1].bn.bias) if affine else (None, None)
    for sign in (True, False):
        z = (a - mean).div_(inv_std)
        if affine:
            z = z.mul_(g).add_(b)
        want = torch.where(z >= 0, 1.0, -1.0) if sign else z
        assert torch.equal(bn._compiled_norm(a, mean, inv_std, g, b, sign), want)


def test_a_failed_compile_of_the_normalize_falls_back_to_the_eager_passes(monkeypatch):
    model = _model([16], True)
    x = torch.randint(0, 256, (90, 784), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    with monkeypatch.context() as m:
        _eager(m)
        want = bn.logits(model, x, "adaptive")

    def broken(*args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(bn, "_compiled_norm", broken)
    assert torch.equal(bn.logits(model, x, "adaptive"), want)
    assert bn._compiled_norm is False  # off for the rest of the process


def test_pixels_are_the_bits_of_float_over_255():
    x = torch.arange(256, dtype=torch.uint8).repeat(3)
    got = bn._pixels(x)
    assert got.dtype == torch.float32 and torch.equal(got, x.float() / 255)
