"""metabnn.sim: the integer NumPy golden model of docs/FORMAT.md.

predict()        vectorised inference on packed weights (forward.py)
learn_step()     the on-device learning step, batch 1 (learn.py)
metaplastic_update()  the metaplastic rule itself, in one place (metaplastic.py)
reference        a slow scalar version of both, the reference the fast path is tested against
"""

from metabnn.sim.forward import forward, predict
from metabnn.sim.learn import StepInfo, learn_step, output_error
from metabnn.sim.metaplastic import metaplastic_update
from metabnn.sim.model import BITS, PIXELS, SCORES, SIGN, Layer, Model
from metabnn.sim.random_model import f_meta_table, random_model

__all__ = ["forward", "predict", "learn_step", "output_error", "StepInfo", "metaplastic_update",
           "Layer", "Model", "PIXELS", "BITS", "SIGN", "SCORES", "random_model", "f_meta_table"]
