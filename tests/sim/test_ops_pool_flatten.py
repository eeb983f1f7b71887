"""2x2 max-pool on sign bits and flatten (sim/ops/maxpool.py, flatten.py): forward and the learning step's routing
against their plain references and against torch's max_pool2d gradient on +-1 values (ties included)."""

import numpy as np
import pytest

from metabnn.sim.ops import Flatten, MaxPool2


def _maps(seed, shape, p=0.5):
    return np.where(np.random.default_rng(seed).random(shape) < p, 1, -1).astype(np.int8)


@pytest.mark.parametrize("shape", [(3, 4, 4), (2, 5, 7), (1, 2, 2), (4, 9, 8)])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_pool_forward_and_backward_equal_references(shape, p):
    pool = MaxPool2()
    x = _maps(shape[1] * 10 + int(10 * p), shape, p)
    out = pool.forward(x[None])[0]
    assert np.array_equal(out, pool.execute(x))
    back = np.random.default_rng(1).integers(-1000, 1000, out.shape)
    assert np.array_equal(pool.backward(back, x), pool.execute_backward(back, x))


def test_pool_gradient_routes_as_torch():
    torch = pytest.importorskip("torch")
    pool = MaxPool2()
    for seed, p in [(0, 0.5), (1, 0.1), (2, 0.9), (3, 0.0), (4, 1.0)]:
        x = _maps(seed, (3, 6, 7), p)
        back = np.random.default_rng(seed).integers(-50, 50, (3, 3, 3))
        t = torch.tensor(x[None], dtype=torch.float64, requires_grad=True)
        y = torch.nn.functional.max_pool2d(t, 2)
        assert np.array_equal(y.detach().numpy()[0], pool.forward(x[None])[0])
        y.backward(torch.tensor(back[None], dtype=torch.float64))
        assert np.array_equal(t.grad.numpy()[0].astype(np.int64), pool.backward(back, x))


def test_flatten_is_torch_nchw_order():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    f = Flatten()
    flat = f.forward(x)
    assert flat[1, 1 * 20 + 2 * 5 + 3] == x[1, 1, 2, 3]
    assert np.array_equal(f.execute(x[1]), flat[1])
    assert np.array_equal(f.backward(flat[1], x[1]), x[1])
