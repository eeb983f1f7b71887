"""The configurable binary conv net: the channels spec (convs and pools), its layer order (conv -> BN -> sign ->
pool, FINN's and the golden model's), the NCHW flatten into the dense head, and the legacy two-conv form."""

import pytest
import torch

from metabnn.train.layers import BinaryConv2d, SignActivation
from metabnn.train.models import POOL, ConvNet, build, conv_plan, n_convs


def test_spec_without_pools_is_the_legacy_form_every_conv_then_a_pool():
    assert conv_plan([32, 64]) == [32, POOL, 64, POOL]
    assert conv_plan([8, 8, POOL, 16]) == [8, 8, POOL, 16]
    assert n_convs([8, 8, POOL, 16, 16, POOL]) == 4
    torch.manual_seed(5)
    legacy = build("conv", [16], [4, 8])
    torch.manual_seed(5)
    explicit = build("conv", [16], [4, POOL, 8, POOL])
    a, b = legacy.state_dict(), explicit.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # old checkpoints load and agree


@pytest.mark.parametrize("spec, needle", [
    ([POOL, 8], "start with a conv"),
    ([], "start with a conv"),
    ([8, 0], "neither"),
    ([8, "q"], "neither"),
    ([4] + [POOL] * 5, "at least 2x2"),  # 28 -> 14 -> 7 -> 3 -> 1, then no 2x2 window is left
])
def test_bad_specs_are_refused(spec, needle):
    with pytest.raises(ValueError, match=needle):
        conv_plan(spec)


def test_layer_order_and_shapes():
    net = ConvNet([4, 4, POOL, 8, POOL, POOL], [16])  # the last pool takes 7x7 to 3x3 (floor, as the golden model)
    kinds = [type(m).__name__ for m in net.features]
    assert kinds == ["BinaryConv2d", "BatchNorm2d", "SignActivation"] * 2 + ["MaxPool2d"] + \
        ["BinaryConv2d", "BatchNorm2d", "SignActivation", "MaxPool2d", "MaxPool2d"]
    assert net.feature_shape == (8, 3, 3)
    assert net.head.blocks[0].lin.in_features == 8 * 3 * 3
    assert all(m.padding == (1, 1) and m.kernel_size == (3, 3) and m.bias is None
               for m in net.features if isinstance(m, BinaryConv2d))
    x = torch.rand(5, 784)
    assert net(x).shape == (5, 10)


def test_pooled_maps_are_signs_and_the_head_reads_them_in_nchw_order():
    torch.manual_seed(0)
    net = ConvNet([4, POOL, 6, POOL], [12]).eval()
    x = torch.rand(3, 784)
    with torch.no_grad():
        feats = net.features(x.view(-1, 1, 28, 28))
        assert feats.shape == (3, 6, 7, 7)
        assert set(feats.unique().tolist()) <= {-1.0, 1.0}  # pool of signs: +1 iff a +1 in the window (OR)
        # the head's first binary weight column c*49 + y*7 + x multiplies channel c at (y, x): torch's flatten
        lin = net.head.blocks[0].lin
        wb = torch.where(lin.weight >= 0, 1.0, -1.0)
        by_hand = torch.einsum("nchw,jchw->nj", feats, wb.view(12, 6, 7, 7))
        assert torch.allclose(lin(feats.flatten(1)), by_hand, atol=1e-4)
        assert torch.allclose(net(x), net.head(feats.flatten(1)))


def test_pool_comes_after_the_sign():
    net = ConvNet([4, POOL], [])
    mods = list(net.features)
    i = next(k for k, m in enumerate(mods) if isinstance(m, torch.nn.MaxPool2d))
    assert isinstance(mods[i - 1], SignActivation)
    assert net.head.blocks[0].lin.out_features == 10  # no hidden layer: the head is the output layer
