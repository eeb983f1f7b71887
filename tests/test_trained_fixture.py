"""The shared trained model is a real one: it classifies MNIST far above chance in every form."""

import numpy as np

from metabnn.sim import predict


def test_trained_model_is_accurate_and_matches_torch(trained_model, trained_checkpoint, mnist):
    import torch

    from metabnn.train.checkpoint import load_model

    x, y = mnist.test_x[:2000].numpy(), mnist.test_y[:2000].numpy()
    p = predict(trained_model, x)
    assert (p == y).mean() > 0.85
    with torch.no_grad():
        pt = load_model(trained_checkpoint)(torch.as_tensor(x, dtype=torch.float32) / 255).argmax(1).numpy()
    # the float model differs from the integer one only at thresholds (docs/FORMAT.md 3.2): rarely
    assert (p == pt).mean() >= 0.995
