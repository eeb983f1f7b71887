"""Cycles per image of the RTL inference engine, measured in Verilator next to the formula.

    python benchmarks/rtl_cycles.py [--sizes 784,256,256,10] [--settings 32x8,16x4] [--images 50] [--mhz 100]

Per setting: latency (cycles from an image's first input beat to its result, one image in flight) next to
    formula = sum over layers of ceil(K/SIMD) * ceil(N/PE)  +  3 L + 1,
the steady-state interval between results when images stream back to back (layers overlap), images/s at
an assumed clock, and the Verilator + cocotb simulation speed in images per second of host time.
Every result is also checked bit-exact against metabnn.sim (a failure exits 1). Images: MNIST test images
when the data set is installed and the input is 784, else uniform random pixels.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from metabnn.sim import forward, random_model
from metabnn.backends.rtl import RTLBackend, cycles_formula


def load_images(n, k):
    if k == 784:
        try:
            from metabnn.train.data import load

            return load("mnist", None).test_x[:n].numpy().astype(np.uint8), "MNIST test"
        except Exception:
            pass
    return np.random.default_rng(0).integers(0, 256, (n, k)).astype(np.uint8), "random"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="784,256,256,10")
    ap.add_argument("--settings", default="32x8,16x4")
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--mhz", type=float, default=100.0, help="assumed clock for images/s (default 100 MHz)")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(s) for s in args.sizes.split(","))
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
    except ValueError:
        print(f"rtl_cycles: bad --sizes or --settings", file=sys.stderr)
        return 2
    if args.images < 2 or len(sizes) < 3:
        print("rtl_cycles: need --images >= 2 and at least 3 sizes (a hidden layer)", file=sys.stderr)
        return 2
    model = random_model(sizes, seed=0)
    x, what = load_images(args.images, sizes[0])
    gold = forward(model.copy(), x)
    print(f"model {'-'.join(map(str, sizes))} (random weights), {len(x)} {what} images, clock {args.mhz:g} MHz")
    print(f"{'SIMD':>5}{'PE':>4}{'latency':>9}{'formula':>9}{'interval':>9}{'img/s@clk':>11}"
          f"{'sim img/s':>10}{'build s':>9}")
    for simd, pe in settings:
        be = RTLBackend(simd=simd, pe=pe)
        ok, why = be.available()
        if not ok:
            print(f"rtl_cycles: RTL backend not available: {why}", file=sys.stderr)
            return 1
        t0 = time.time()
        be.prepare(model)
        build_s = time.time() - t0
        lat = be.run_case(model, x[:3], serial=True)["latency"]
        t0 = time.time()
        r = be.run_case(model, x)
        host_s = time.time() - t0
        if not (np.array_equal(r["classes"], gold.argmax(1)) and np.array_equal(r["scores"], gold.max(1))):
            print(f"rtl_cycles: SIMD={simd} PE={pe}: RTL differs from metabnn.sim", file=sys.stderr)
            return 1
        # interval: total streaming cycles minus the first image's latency, per further image
        interval = (int(r["cycles"]) - int(r["latency"][0])) / (len(x) - 1)
        print(f"{simd:>5}{pe:>4}{int(lat[0]):>9}{cycles_formula(model, simd, pe):>9}{interval:>9.1f}"
              f"{args.mhz * 1e6 / interval:>11,.0f}{len(x) / host_s:>10.1f}{build_s:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
