"""The ONNX backend: the exported graph run by onnxruntime on the CPU.

The graph is built in memory with `metabnn.export.onnx_export.to_onnx` (the same function
`metabnn export --onnx` writes files with), so what is verified is what is shipped.
Normalization is the frozen state of the chosen bank (the graph has no stream adaptation).
"""

from __future__ import annotations

import numpy as np

from metabnn.sim.model import Model


class OnnxBackend:
    name, integer, adapts = "onnx", True, False
    conv = True  # ConvInteger, MaxPool and Flatten (docs/ONNX.md)

    def available(self):
        """(True, "") when onnx and onnxruntime import, else (False, what is missing)."""
        try:
            import onnx  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError as e:
            return False, f"{e.name or e} is not installed (pip install 'metabnn[onnx]')"
        return True, ""

    def session(self, model: Model, bank: int = 0):
        """An onnxruntime CPU session of the model's graph with `bank` selected."""
        import onnxruntime as ort

        from metabnn.export.onnx_export import to_onnx

        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # errors only: a verify table, not runtime chatter
        return ort.InferenceSession(to_onnx(model, bank).SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])

    def run(self, model: Model, images: np.ndarray, bank: int = 0):
        """(labels int64 [n], scores int64 [n, classes]) for uint8 images [n, K0]."""
        x = np.asarray(images)
        if x.ndim != 2 or x.shape[1] != model.input_size:
            raise ValueError(f"expected images of shape [n, {model.input_size}], got {x.shape}")
        if x.dtype != np.uint8:
            raise ValueError(f"expected uint8 images, got {x.dtype}")
        labels, scores = self.session(model, bank).run(None, {"images": np.ascontiguousarray(x)})
        return labels, scores

    def predict(self, model: Model, images: np.ndarray, bank: int = 0, adapt: bool = False) -> np.ndarray:
        if adapt:
            raise ValueError("the ONNX graph runs frozen normalization only")
        return self.run(model, images, bank)[0]
