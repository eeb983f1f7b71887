import torch

from metabnn.train import bn
from metabnn.train.models import MLP


def test_stream_mean_matches_step_by_step_scan():
    torch.manual_seed(0)
    a = torch.randn(1000, 7) * 3 + 1
    m0 = torch.randn(7)
    for shift in (1, 4, 8, 60):
        ref = bn.stream_mean_reference(a, m0, shift)
        # chunk and block boundaries anywhere, including a block that is one sample and one that is a chunk
        for chunk, block in ((32, 4096), (7, 100), (128, 1), (16, 16), (5, 333)):
            fast = bn.stream_mean(a, m0, shift, chunk=chunk, block=block)
            assert torch.allclose(fast, ref, atol=1e-5), (shift, chunk, block)
    d = torch.randn(1000, 7, dtype=torch.float64)
    ref = bn.stream_mean_reference(d, m0.double(), 6)
    means, after = bn.stream_mean_block(d, m0.double(), 6, chunk=32)
    assert torch.allclose(means, ref, rtol=0, atol=1e-12)
    assert torch.allclose(after, ref[-1] + (d[-1] - ref[-1]) * 2.0**-6, rtol=0, atol=1e-12)
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


def test_adaptive_logits_in_blocks_equal_one_stream(monkeypatch):
    """Evaluating the stream in blocks (each layer's mean carried across) gives the logits of one pass."""
    torch.manual_seed(1)
    model = MLP([24, 12])
    model.train()
    x = torch.randint(0, 256, (500, 784), dtype=torch.uint8)
    model(x.float() / 255)
    model.eval()
    with torch.no_grad():  # the definition: the whole stream at once, step-by-step means per layer
        h = x.float() / 255
        for b in model.blocks:
            a = b.lin(h)
            mean = bn.stream_mean_reference(a, b.bn.running_mean, 5)
            z = (a - mean) / torch.sqrt(b.bn.running_var + b.bn.eps) * b.bn.weight + b.bn.bias
            h = b.act(z) if b.act is not None else z
    monkeypatch.setattr(bn, "EVAL_BLOCK", 64)  # 8 blocks, the last one partial
    torch.testing.assert_close(bn.logits(model, x, "adaptive", shift=5), h, rtol=1e-5, atol=1e-4)
