"""`metabnn verify --learn N --freeze LAYERS`: the layers that do not learn (FORMAT.md 4.5 "Frozen layers"), the same
in every backend and in the golden steps they are compared with; nonsense is one line and exit 2."""

import pytest

from metabnn import backends, verify
from metabnn.cli import main
from metabnn.errors import UsageError
from metabnn.export import save
from metabnn.sim import random_conv_model, random_model

# 1x28x28 -> conv 4 (pool) -> conv 6 (pool) -> dense 12 -> 10: layers 0, 1 conv, 2, 3 dense
CONV = dict(image=(1, 28, 28), convs=((4, 3, 1, 1, 2), (6, 3, 1, 1, 2)), dense=(12, 10))


@pytest.fixture(scope="module")
def conv_model():
    return random_conv_model(**CONV, seed=4)


@pytest.mark.parametrize("spec,want", [("conv", (0, 1)), ("none", ()), ("2", (2,)), ("3, 0", (0, 3)),
                                       ("conv,3", (0, 1, 3)), (None, None)])
def test_parse_freeze(conv_model, spec, want):
    assert verify.parse_freeze(spec, conv_model) == want


@pytest.mark.parametrize("spec,needle", [("4", "layer 4 does not exist"), ("dense", "'dense' is not a layer number"),
                                         ("-1", "is not a layer number"), ("0,1,2,3", "freezes every layer"),
                                         ("conv,2,3", "freezes every layer")])
def test_parse_freeze_refuses_nonsense(conv_model, spec, needle):
    with pytest.raises(UsageError, match=needle):
        verify.parse_freeze(spec, conv_model)


def test_freeze_conv_needs_conv_layers():
    with pytest.raises(UsageError, match="no conv layers"):
        verify.parse_freeze("conv", random_model((784, 16, 10)))


def learning_rows(model, frozen, extra=()):
    x, y = _data(model, 4)
    be = [backends.get("golden"), backends.get("c"), *extra]
    verify.check_freeze(be, model, frozen)
    return verify.run_verify(model, x, y, be, learn_images=x, learn_labels=y, frozen=frozen)


def _data(model, n):
    import numpy as np

    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, model.input_size), dtype=np.uint8), rng.integers(0, model.n_classes, n)


@pytest.mark.parametrize("frozen", [(0,), (0, 1), (1, 3), ()])
def test_c_learns_with_the_layers_frozen(conv_model, frozen):
    ok, why = backends.get("c").available()
    if not ok:
        pytest.skip(why)
    rows = learning_rows(conv_model, frozen)
    assert rows[0].learn == "4 steps (reference)" + verify.frozen_note(frozen)
    assert not rows[1].failed and rows[1].learn == "4 steps equal" + verify.frozen_note(frozen), rows[1]


class _IgnoresFreeze:
    """A backend that says it freezes but learns every layer: verify must catch it."""
    name, integer, adapts, conv = "ignores", True, True, True

    def predict(self, model, images, bank=0, adapt=False):
        return backends.get("golden").predict(model, images, bank=bank, adapt=adapt)

    def learn(self, model, images, labels, bank=0, adapt=False, every=1, frozen=()):
        return backends.get("golden").learn(model, images, labels, bank=bank, adapt=adapt)


class _DenseOnly(_IgnoresFreeze):
    """The RTL's kind: learns a conv net's dense layers only and cannot freeze any other set."""
    name, conv_learn = "rtl-like", "dense"

    def learn(self, model, images, labels, bank=0, adapt=False, every=1):
        from metabnn.sim.learn import conv_layers

        return backends.get("golden").learn(model, images, labels, bank=bank, adapt=adapt,
                                            frozen=conv_layers(model))


def test_a_backend_that_ignores_the_freeze_is_a_mismatch(conv_model):
    x, y = _data(conv_model, 4)
    rows = verify.run_verify(conv_model, x, y, [backends.get("golden"), _IgnoresFreeze()], learn_images=x,
                             learn_labels=y, frozen=(0, 1))
    assert rows[1].failed and "layer 0" in rows[1].learn  # the first layer learnt where it should not have


def test_a_backend_with_a_fixed_frozen_set(conv_model):
    be = [backends.get("golden"), _DenseOnly()]
    verify.check_freeze(be, conv_model, (0, 1))  # its own set: accepted
    with pytest.raises(UsageError, match="rtl-like backend learns layers 0, 1 frozen"):
        verify.check_freeze(be, conv_model, (0,))
    with pytest.raises(UsageError, match="rtl-like backend learns layers 0, 1 frozen"):
        verify.check_freeze(be, conv_model, ())
    x, y = _data(conv_model, 3)
    rows = verify.run_verify(conv_model, x, y, be, learn_images=x, learn_labels=y, frozen=(0, 1))
    assert not rows[1].failed and rows[1].learn == "3 steps equal (layers 0, 1 frozen)"


@pytest.mark.parametrize("argv,needle", [(["--freeze", "conv"], "give --learn STEPS too"),
                                         (["--learn", "2", "--freeze", "9"], "layer 9 does not exist"),
                                         (["--learn", "2", "--freeze", "0,1,2,3"], "freezes every layer")])
def test_verify_cli_refuses_a_bad_freeze(tmp_path, capsys, conv_model, argv, needle):
    f = tmp_path / "c.mbnn"
    save(conv_model, f)
    rc = main(["verify", str(f), "--backends", "golden", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
