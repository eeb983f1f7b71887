"""Model construction: the BatchNorm gamma init option (1, or U[0, 1) as the authors' code under PyTorch <= 1.1)."""

import pytest
import torch

from metabnn.train.models import build, bn_modules


@pytest.mark.parametrize("model, hidden", [("bnn", [32, 16]), ("fp", [8]), ("conv", [16])])
def test_uniform_gamma_init_leaves_the_hidden_weights_alone(model, hidden):
    torch.manual_seed(3)
    one = build(model, hidden, [4, 4] if model == "conv" else None, gamma_init="one")
    torch.manual_seed(3)
    uni = build(model, hidden, [4, 4] if model == "conv" else None, gamma_init="uniform")
    for (name, p), (_, q) in zip(one.named_parameters(), uni.named_parameters()):
        if p.dim() >= 2:
            assert torch.equal(p, q), name  # same seed, same hidden weights: a controlled comparison
    for a, b in zip(bn_modules(one), bn_modules(uni)):
        assert torch.equal(a.weight, torch.ones_like(a.weight))
        assert (b.weight >= 0).all() and (b.weight < 1).all() and b.weight.std() > 0.1
        assert torch.equal(b.bias, torch.zeros_like(b.bias))


def test_no_affine_ignores_gamma_init_and_bad_names_fail():
    net = build("bnn", [8], affine=False, gamma_init="uniform")
    assert all(m.weight is None for m in bn_modules(net))
    with pytest.raises(ValueError, match="gamma_init"):
        build("bnn", [8], gamma_init="zero")
