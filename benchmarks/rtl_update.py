"""On-chip learning in RTL: update cycles measured next to the formula, cycles per learning step of a
large network from the formula, the flip counters over a short on-chip run, and (--synth) Yosys sizes.

    python benchmarks/rtl_update.py [--sizes 40,24,10] [--settings 8x4,32x8] [--steps 20]
                                    [--big 784,512,512,10] [--mhz 100] [--synth] [--device ecp5-85k]
                                    [--freq 50] [--model MODEL.mbnn]

1. For each SIMDxPE setting (LANES = SIMD), runs --steps learning steps of a random model of --sizes
   (or of --model, an exported .mbnn, on MNIST training images when installed) on hw/rtl/mbnn_update_top.sv (RTL forward, golden deltas, RTL update; every memory compared with
   metabnn.sim, a difference exits 1) and prints the measured update cycles next to
       update = max over layers of N * ceil(K / LANES) + 3     (all layers' units run at once).
2. Cycles per learning step of --big from the formulas: forward latency (the engine's formula,
   metabnn.backends.rtl.cycles_formula), the deltas written through the host port (one per cycle:
   sum of N), the update. The backward pass (deltas) is the firmware's and is not counted.
3. The flip counters (signs flipped per layer per step) of the first setting's run.
4. --synth: the engines alone and the learning top (engines + update units) of the model through
   `metabnn fpga` on --device (Yosys, nextpnr, the packer: docs/FPGA.md), per setting: LUT sites,
   flip-flops, block RAMs, DSPs and Fmax, or what overflowed; the difference is the cost of learning on chip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from metabnn.fpga.devices import DEVICES, device
from metabnn.sim import random_model
from metabnn.backends.rtl import RTLError, RTLLearner, cycles_formula, update_cycles_formula

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rtl_synth import HEADER, flow_rows  # noqa: E402  (the benchmarks' one metabnn fpga runner)

UPDATE_LATENCY = 3


def big_model_cycles(sizes, simd: int, pe: int):
    """(forward, delta writes, update, per-layer update) cycles of one learning step, from the formulas."""
    model = random_model(sizes, seed=0)  # only the shape matters
    fwd = cycles_formula(model, simd, pe)
    deltas = sum(lay.N for lay in model.layers)
    per_layer = [lay.N * -(-lay.K // simd) + UPDATE_LATENCY for lay in model.layers]
    return fwd, deltas, update_cycles_formula(model, simd), per_layer


def mnist_train(n: int, k: int):
    """The first n MNIST training images and labels, or (None, None) when the data set is not installed."""
    if k != 784:
        return None, None
    try:
        from metabnn.train.data import load

        ds = load("mnist")
    except Exception:  # noqa: BLE001  (no data set: fall back to random images, said in the output)
        return None, None
    return (np.asarray(ds.train_x[:n]).reshape(n, -1).astype(np.uint8),
            np.asarray(ds.train_y[:n]).astype(np.int64))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="40,24,10", help="model measured in simulation (K0,N0,N1,...)")
    ap.add_argument("--settings", default="8x4,32x8", help="SIMDxPE pairs; LANES = SIMD")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--big", default="784,512,512,10", help="network for the cycles-per-step figure")
    ap.add_argument("--mhz", type=float, default=100.0, help="assumed clock for steps per second")
    ap.add_argument("--synth", action="store_true",
                    help="also build both tops with metabnn fpga (a place and route each: many minutes)")
    ap.add_argument("--device", default="ecp5-85k", choices=list(DEVICES), help="the part for --synth")
    ap.add_argument("--freq", type=float, default=50.0, help="--synth: nextpnr's target, MHz (above the Fmax)")
    ap.add_argument("--model", default=None, help="an exported .mbnn to learn with instead of a random model")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        big = tuple(int(s) for s in args.big.split(","))
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
        if len(sizes) < 3 or len(big) < 3 or args.steps < 1 or not settings:
            raise ValueError
    except ValueError:
        print(f"rtl_update: bad --sizes/--big/--settings/--steps ({args.sizes!r}, {args.big!r}, "
              f"{args.settings!r}, {args.steps})", file=sys.stderr)
        return 2

    rng = np.random.default_rng(0)
    source = "random images"
    if args.model:
        from metabnn.export import FormatError, load

        try:
            model = load(args.model)
        except (OSError, FormatError) as e:
            print(f"rtl_update: cannot load {args.model}: {e}", file=sys.stderr)
            return 2
        sizes = (model.input_size,) + tuple(lay.N for lay in model.layers)
        images, labels = mnist_train(args.steps, model.input_size)
        if images is not None:
            source = "MNIST training images"
    else:
        model = random_model(sizes, seed=11)
        images = None
    if images is None:
        images = rng.integers(0, 256, (args.steps, sizes[0])).astype(np.uint8)
        labels = rng.integers(0, sizes[-1], args.steps)

    print(f"1. update cycles, model {'-'.join(map(str, sizes))}{' (' + args.model + ')' if args.model else ''}, "
          f"{args.steps} on-chip learning steps on {source} each (bit-exact with metabnn.sim, checked every step)")
    print(f"{'SIMD':>5}{'PE':>4}{'measured':>10}{'formula':>9}{'host s/step':>13}")
    runs = {}
    for simd, pe in settings:
        try:
            learner = RTLLearner(simd=simd, pe=pe)
            learner.prepare(model)  # build outside the timing
            t = time.time()
            res = learner.run_steps(model, images, labels)
            dt = time.time() - t
        except (RTLError, ValueError) as e:
            print(f"rtl_update: {e}", file=sys.stderr)
            return 1
        if res["mismatches"]:
            print(f"rtl_update: SIMD={simd} PE={pe}: RTL differs from metabnn.sim: {res['mismatches'][0]}",
                  file=sys.stderr)
            return 1
        measured = sorted(set(int(c) for c in res["cycles"]))
        print(f"{simd:>5}{pe:>4}{','.join(map(str, measured)):>10}{update_cycles_formula(model, simd):>9}"
              f"{dt / args.steps:>13.3f}")
        runs[(simd, pe)] = res

    print(f"\n2. cycles per learning step, {'-'.join(map(str, big))} (formulas; backward pass in firmware "
          "not counted)")
    print(f"{'SIMD':>5}{'PE':>4}{'forward':>9}{'deltas':>8}{'update':>8}{'total':>8}"
          f"{'steps/s @' + format(args.mhz, 'g') + 'MHz':>17}   update per layer")
    for simd, pe in settings:
        fwd, dl, upd, per = big_model_cycles(big, simd, pe)
        total = fwd + dl + upd
        print(f"{simd:>5}{pe:>4}{fwd:>9}{dl:>8}{upd:>8}{total:>8}{args.mhz * 1e6 / total:>17.0f}   {per}")

    simd, pe = settings[0]
    res = runs[(simd, pe)]
    print(f"\n3. flip counters (n_flipped per layer), SIMD={simd}, {args.steps} steps of the run above")
    print(f"{'step':>5}" + "".join(f"{'layer ' + str(l):>10}" for l in range(res['flips'].shape[1]))
          + f"{'changed':>10}")
    for s, (f, c) in enumerate(zip(res["flips"], res["changed"])):
        print(f"{s:>5}" + "".join(f"{int(v):>10}" for v in f) + f"{int(c.sum()):>10}")
    print(f"{'sum':>5}" + "".join(f"{int(v):>10}" for v in res["flips"].sum(axis=0))
          + f"{int(res['changed'].sum()):>10}")

    if args.synth:
        dev = device(args.device)
        print(f"\n4. metabnn fpga on {dev.name} ({dev.part}), target {args.freq:g} MHz: the engines alone and the "
              f"learning top, model {'-'.join(map(str, sizes))}")
        print(HEADER, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            rc = flow_rows(model, dev, settings, [False, True], args.freq, Path(tmp))
        if rc:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
