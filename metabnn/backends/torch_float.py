"""The float PyTorch model in eval mode: expected to differ from the integer backends only at thresholds
(FORMAT.md 3.2), so verify reports it and never fails on it."""

from __future__ import annotations

import numpy as np


class TorchBackend:
    name, integer, adapts = "torch", False, False
    conv = True  # the checkpoint's own network, whatever its layers

    def __init__(self, checkpoint: str | None = None):
        self.checkpoint = checkpoint

    def available(self):
        if self.checkpoint is None:
            return False, "needs --checkpoint model.pt (the float model is not in the .mbnn file)"
        try:
            import torch  # noqa: F401
        except ImportError:
            return False, "torch is not installed (pip install 'torch>=2.4')"
        return True, ""

    def predict(self, model, images, bank: int = 0, adapt: bool = False):
        import torch

        from metabnn.train.checkpoint import load_model
        net = load_model(self.checkpoint, bank=bank)
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(images), dtype=torch.float32) / 255.0
            return net(x).argmax(1).numpy()
