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
# With passive waiting every parallel region wakes a sleeping thread (a futex and, in a VM, an idle vCPU: tens of
# microseconds each way) and every barrier in it puts one back to sleep. Inductor runs a C++ loop on all threads
# once it has 512 elements per thread, so at 2 threads each BatchNorm loop of a 100-row batch (51,200 values, a
# few microseconds of work) paid that wake-up, 6 regions a 512-512 training step; from 65,536 elements a thread
# only the MetaAdam pass over the hidden weights (and the evaluation's 4096-row loops) stays parallel: measured
# 0.56 ms less per 512-512 step at 2 threads, load ~7 (docs/TRAINING.md, Speed). One thread: the same code. Bounded
# spinning (GOMP_SPINCOUNT) instead was 1.5-6x slower per small parallel op on the busy 2 cores (measured), so
# it is not set. optim.compile_or_off passes the value to every compile, so it holds even where torch's
# inductor was imported first; a user's setting wins.
os.environ.setdefault("TORCHINDUCTOR_CPP_MIN_CHUNK_SIZE", "65536")

from .layers import BinaryConv2d, BinaryLinear, SignActivation
from .optim import MetaAdam

__all__ = ["BinaryLinear", "BinaryConv2d", "SignActivation", "MetaAdam"]
