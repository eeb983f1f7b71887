import torch

from metabnn.train import BinaryConv2d, BinaryLinear, SignActivation
from metabnn.train.layers import sign_pm1


def test_sign_maps_zero_to_plus_one():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-9, -1e-9])
    assert sign_pm1(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0]


def test_activation_forward_and_ste_window():
    x = torch.tensor([-1.5, -1.0, -0.3, 0.0, 0.7, 1.0, 1.0001, 3.0], requires_grad=True)
    y = SignActivation()(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1, 1]
    g = torch.arange(1.0, 9.0)
    y.backward(g)
    # gradient passes where |x| <= 1 (both ends included), zero elsewhere
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 0, 0]


def test_binary_linear_uses_sign_and_passes_gradient_straight_through():
    torch.manual_seed(0)
    lin = BinaryLinear(5, 3)
    with torch.no_grad():
        lin.weight[0, 0] = 0.0  # sign(0) = +1
    x = torch.randn(4, 5)
    out = lin(x)
    wb = torch.where(lin.weight >= 0, 1.0, -1.0)
    assert torch.allclose(out, x @ wb.T)
    g = torch.randn(4, 3)
    out.backward(g)
    assert torch.allclose(lin.weight.grad, g.T @ x)  # d/dW of x @ sign(W).T, sign's derivative taken as 1
    assert lin.bias is None
    assert lin.weight.abs().max() <= 0.05  # the paper's init U(-0.05, 0.05)


def test_binary_conv_uses_sign_and_straight_through():
    torch.manual_seed(1)
    conv = BinaryConv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 5, 5)
    out = conv(x)
    wb = torch.where(conv.weight >= 0, 1.0, -1.0)
    ref = torch.nn.functional.conv2d(x, wb, padding=1)
    assert torch.allclose(out, ref, atol=1e-5)
    out.sum().backward()
    w2 = wb.clone().requires_grad_(True)
    torch.nn.functional.conv2d(x, w2, padding=1).sum().backward()
    assert torch.allclose(conv.weight.grad, w2.grad, atol=1e-5)


def test_sign_kept_by_the_optimizer_is_used_only_while_the_weight_is_unchanged():
    from metabnn.train import MetaAdam
    from metabnn.train.layers import binary_weight, forget_sign

    torch.manual_seed(2)
    lin = BinaryLinear(20, 6)
    opt = MetaAdam([lin.weight], lr=0.05, meta=1.0)
    x = torch.randn(3, 20)
    for _ in range(3):  # real steps: the compiled step leaves sign(W) on the weight (eager: recomputed)
        lin(x).square().sum().backward()
        opt.step()
        assert torch.equal(lin(x), x @ torch.where(lin.weight >= 0, 1.0, -1.0).T)
    kept = binary_weight(lin.weight)
    from metabnn.train import optim
    if optim._compiled:  # the kept sign really is what the forward uses
        assert kept is lin.weight._metabnn_sign[1]
    with torch.no_grad():
        lin.weight.neg_()  # an in-place change through autograd's view: the kept sign is stale, and ignored
    assert torch.equal(binary_weight(lin.weight), -kept)
    lin.load_state_dict({"weight": torch.randn(6, 20)})
    assert torch.equal(lin(x), x @ torch.where(lin.weight >= 0, 1.0, -1.0).T)
    lin.weight.data.copy_(-lin.weight.data)  # through .data the version does not move: forget_sign is the way
    forget_sign(lin.weight)
    assert torch.equal(lin(x), x @ torch.where(lin.weight >= 0, 1.0, -1.0).T)
