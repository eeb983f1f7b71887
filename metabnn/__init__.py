"""metabnn: metaplastic binarized neural networks, from PyTorch training to
bit-exact integer hardware and firmware that keep learning on the device.

Data flows train -> export -> sim (golden model), hw (Verilog), firmware (C).
The contract between all of them is docs/FORMAT.md plus metabnn.sim.
"""

__version__ = "0.1.0"
