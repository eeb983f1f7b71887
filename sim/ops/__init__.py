"""The golden model's operations, one unit each (QONNX style): a model runs as a sequence of ops.

    DensePixels, DenseBits      dense.py     a dense layer on uint8 pixels / on +-1 bits
    Conv2dPixels, Conv2dBits    conv2d.py    binary conv2d on pixels (first layer) / on +-1 maps
    MaxPool2                    maxpool.py   2 x 2 max-pool on sign bits (the OR of the +1 bits)
    Flatten                     flatten.py   a conv map to the vector a dense layer reads (torch's NCHW order)

Every op has `forward` (vectorised, integer, exact) and a plain `execute` reference it is tested against; the
weighted ops (weighted.py: the folded BatchNorm of threshold.py, the update through sim/metaplastic.py) add the
learning step's pieces: `delta` (the error at its outputs through the sign's window), `back_input` (the error it
passes down) and `gradient` / `update` (per synapse). forward.py and learn.py only walk the sequence.

A model's op sequence follows from its layers (what the .mbnn file stores, docs/FORMAT.md 6): a conv layer with
pool = 2 is followed by MaxPool2, and the first dense layer after a conv by Flatten.
"""

from __future__ import annotations

from metabnn.sim.model import PIXELS, Model
from metabnn.sim.ops.conv2d import Conv2dBits, Conv2dPixels
from metabnn.sim.ops.dense import DenseBits, DensePixels
from metabnn.sim.ops.flatten import Flatten
from metabnn.sim.ops.maxpool import MaxPool2


def ops_of(model: Model) -> list:
    """The op sequence of `model`; weighted ops hold (and learning updates) the model's own Layer objects."""
    ops: list = []
    after_conv = False
    for lay in model.layers:
        pixels = lay.in_kind == PIXELS
        if lay.conv is None:
            if after_conv:
                ops.append(Flatten())
            ops.append(DensePixels(lay) if pixels else DenseBits(lay))
            after_conv = False
        else:
            ops.append(Conv2dPixels(lay) if pixels else Conv2dBits(lay))
            if lay.conv.pool:
                ops.append(MaxPool2())
            after_conv = True
    return ops


__all__ = ["ops_of", "DensePixels", "DenseBits", "Conv2dPixels", "Conv2dBits", "MaxPool2", "Flatten"]
