"""metabnn.sim: the integer NumPy golden model of docs/FORMAT.md.

predict()        vectorised inference on packed weights (forward.py)
learn_step()     the on-device learning step, batch 1 (learn.py)
metaplastic_update()  the metaplastic rule itself, in one place (metaplastic.py)
f_meta_table()   the rule's Q15 table (metaplastic.py)
threefry2x32_20()  the generator of stochastic rounding, FORMAT.md 4.4 (threefry.py)
random_model(), random_conv_model()   random but valid models, for the tests of every backend
ops              the operations a model runs as (dense, conv2d, max-pool, flatten), one module each

Only the golden model lives here: the backends that run it elsewhere are in metabnn.backends, the slow scalar
reference the fast path is tested against in tests/sim/scalar_reference.py.
"""

from metabnn.sim.forward import forward, predict
from metabnn.sim.learn import StepInfo, learn_step, output_error
from metabnn.sim.metaplastic import f_meta_table, metaplastic_update
from metabnn.sim.model import BITS, PIXELS, SCORES, SIGN, ConvGeom, Layer, Model
from metabnn.sim.random_model import random_conv_model, random_model
from metabnn.sim.threefry import threefry2x32_20

__all__ = ["forward", "predict", "learn_step", "output_error", "StepInfo", "metaplastic_update",
           "Layer", "Model", "ConvGeom", "PIXELS", "BITS", "SIGN", "SCORES", "random_model", "random_conv_model", "f_meta_table",
           "threefry2x32_20"]
