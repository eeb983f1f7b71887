"""The golden model itself as a backend: the reference every other backend is compared with."""

from __future__ import annotations

from metabnn.sim.forward import predict as golden_predict
from metabnn.sim.learn import learn_step
from metabnn.sim.model import Model


class GoldenBackend:
    name, integer, adapts = "golden", True, True
    conv = True  # the golden model defines the conv ops (sim/ops)

    def available(self):
        return True, ""

    def predict(self, model: Model, images, bank: int = 0, adapt: bool = False):
        # on a copy: adaptation moves M, and the caller's model is not ours to change
        return golden_predict(model.copy(), images, bank=bank, adapt=adapt)

    def learn(self, model: Model, images, labels, bank: int = 0, adapt: bool = False, every: int = 1,
              frozen=()):
        """frozen: layers that do not learn (learn_step's, FORMAT.md 4.5 "Frozen layers")."""
        n = len(labels)
        for step, (x, y) in enumerate(zip(images, labels), start=1):
            model, _ = learn_step(model, x, int(y), bank=bank, adapt=adapt, frozen=frozen)  # a new Model each step
            if step % every == 0 or step == n:
                yield step, model
