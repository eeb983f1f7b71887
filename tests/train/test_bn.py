import torch

from metabnn.train import bn
from metabnn.train.models import MLP


def test_stream_mean_matches_step_by_step_scan():
    torch.manual_seed(0)
    a = torch.randn(1000, 7) * 3 + 1
    m0 = torch.randn(7)
    for shift in (1, 4, 8):
        fast = bn.stream_mean(a, m0, shift, chunk=128)
        ref = bn.stream_mean_reference(a, m0, shift)
        assert torch.allclose(fast, ref, atol=1e-5), shift
    # the first sample is normalized with the initial mean, before any update
    assert torch.equal(bn.stream_mean(a, m0, 4)[0], m0)


def test_adaptive_with_huge_shift_is_frozen():
    torch.manual_seed(0)
    model = MLP([16])
    model.train()
    x = torch.randint(0, 256, (200, 784), dtype=torch.uint8)
    for _ in range(3):
        model(x.float() / 255)  # give BN some running statistics
    frozen = bn.logits(model, x, "frozen")
    adaptive = bn.logits(model, x, "adaptive", shift=60)  # 2^-60: the mean never moves
    assert torch.allclose(frozen, adaptive, atol=1e-4)


def test_protocols_restore_the_model_state():
    torch.manual_seed(0)
    model = MLP([16])
    x = torch.randint(0, 256, (300, 784), dtype=torch.uint8)
    model.train()
    model(x.float() / 255)
    before = bn.bank_state(model)
    other = bn.bank_state(model)
    other[0]["running_mean"] += 1.0
    for proto in ("batch", "task-aware", "task-aware-batch", "adaptive", "frozen"):
        bn.logits(model, x, proto, bank=other)
        after = bn.bank_state(model)
        for s, t in zip(before, after):
            for k in s:
                assert torch.equal(s[k], t[k]), (proto, k)
    assert model.training
