"""Seconds per training step (batch of 100, forward + backward + MetaAdam, 1 thread) of binary conv nets, side by side.

    OMP_NUM_THREADS=1 .venv/bin/python docs/results/conv/step_time.py 32,p,64,p 64,64,p,128,128,p [--steps 8]

Each spec gets the head `--hidden 512`; the nets take turns step by step (so a change in the machine's load hits all
of them alike); prints the median, spread and the ratio to the first spec, then the load average (--profile: where
the first spec's step spends its time). This is the
autograd path `metabnn train --model conv` runs on a CPU (the compiled whole step applies to the MLP only).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("specs", nargs="+", help="channel specs, e.g. 32,p,64,p")
    ap.add_argument("--steps", type=int, default=8, help="timed steps per net, after 2 warm-up steps")
    ap.add_argument("--profile", action="store_true", help="then a torch.profiler table of 3 steps of the first spec")
    a = ap.parse_args(argv)
    import torch
    import torch.nn.functional as F

    from metabnn.train.models import build, conv_plan
    from metabnn.train.optim import MetaAdam, param_groups

    torch.set_num_threads(1)
    nets = []
    for spec in a.specs:
        try:
            plan = conv_plan([s if s == "p" else int(s) for s in spec.split(",")])
        except ValueError as e:
            print(f"step_time: {spec}: {e}", file=sys.stderr)
            return 2
        torch.manual_seed(0)
        net = build("conv", [512], plan)
        nets.append((spec, net, MetaAdam(param_groups(net, 1.35), lr=0.005), []))
    x, y = torch.rand(100, 784), torch.randint(0, 10, (100,))
    for i in range(a.steps + 2):
        for _, net, opt, ts in nets:
            t = time.perf_counter()
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 2:
                ts.append(time.perf_counter() - t)
    base = statistics.median(nets[0][3])
    for spec, _, _, ts in nets:
        med = statistics.median(ts)
        print(f"{spec:24s} median {med:.3f} s/step  [{min(ts):.3f} .. {max(ts):.3f}]  x{med / base:.2f}")
    print("load average", " ".join(f"{v:.1f}" for v in os.getloadavg()))
    if a.profile:
        from torch.profiler import profile

        _, net, opt, _ = nets[0]
        with profile() as prof:
            for _ in range(3):
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    return 0


if __name__ == "__main__":
    sys.exit(main())
