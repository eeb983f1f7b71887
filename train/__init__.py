"""metabnn.train: metaplastic binarized neural networks (Laborieux et al., Nat. Commun. 2021) in PyTorch.

The public pieces: BinaryLinear / BinaryConv2d / SignActivation (layers), MetaAdam
(the metaplastic optimizer), the task-sequence runner behind `metabnn train`, and
checkpoint.load_floatnet / load_model, the exporter's view of a trained network.
"""

import os

# On a shared CPU, OpenMP's default spin-waiting turns 2 threads into a 10-50x
# slowdown as soon as other processes compete for the cores (measured: 2 s/step
# instead of 36 ms). Passive waiting costs nothing measurable when the machine
# is idle. Only effective if torch is not imported yet; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .layers import BinaryConv2d, BinaryLinear, SignActivation
from .optim import MetaAdam

__all__ = ["BinaryLinear", "BinaryConv2d", "SignActivation", "MetaAdam"]
