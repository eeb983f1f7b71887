"""RTL co-simulation speed, cocotb and native side by side in one run, and the engine's cycles next to the formula.

    python benchmarks/rtl_cycles.py [--model MODEL.mbnn | --sizes 784,512,512,10] [--settings 32x8]
        [--images 10000] [--cocotb-images 20] [--learn-steps 1000] [--cocotb-learn-steps 3] [--repeats 3]
        [--mhz 100]

Per SIMDxPE setting:
  engine   latency (cycles from an image's first beat to its result, one image in flight) next to
           formula = sum over layers of ceil(K/SIMD) * ceil(N/PE) + 3 L + 1, the steady-state interval
           between results when images stream back to back, and images/s at an assumed clock;
  infer    both paths (cocotb: hw/tb/mbnn_top/engine_top_driver.py; native: hw/native/infer_main.cpp) on the same
           images: host seconds, simulated cycles per host second, images per host second;
  learn    both paths on the same learning steps (forward in RTL, golden deltas, update in RTL, every memory
           read back): host seconds and steps per host second, and the native path's cycles per host second;
           the native time includes comparing every step's memories with metabnn.sim, as `verify --learn` does,
           and the harness's own CPU time is printed apart.
Times are medians over --repeats runs with builds cached (each build is made first and timed apart); the load
average is printed before and after, since the machine may be shared. Every result is checked against
metabnn.sim (inference: classes and scores; learning: every memory after every step); a difference exits 1.
Images: MNIST test images when the data set is installed and the input is 784, else uniform random pixels.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np

from metabnn.backends.rtl import RTLBackend, RTLLearner, cycles_formula
from metabnn.backends.rtl_native import NativeRTL, NativeRTLLearner
from metabnn.errors import MetabnnError
from metabnn.sim import forward, learn_step, random_model


def load_images(n, k):
    """(images, labels, what): MNIST test images when there are enough and the input is 784, else random."""
    if k == 784:
        try:
            from metabnn.train.data import load

            ds = load("mnist", None)
            x = np.asarray(ds.test_x[:n]).reshape(-1, 784).astype(np.uint8)
            if len(x) == n:
                return x, np.asarray(ds.test_y[:n]).astype(np.int64), "MNIST test"
        except MetabnnError:
            pass
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, k)).astype(np.uint8), rng.integers(0, 10, n), "random"


def median_time(fn, repeats):
    """(median seconds, last result) of `repeats` calls."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def load_text():
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def fail(msg) -> int:
    print(f"rtl_cycles: {msg}", file=sys.stderr)
    return 1


def check_infer(res, gold):
    n = len(res["classes"])
    return np.array_equal(res["classes"], gold.argmax(1)[:n]) and np.array_equal(res["scores"], gold.max(1)[:n])


def golden_states(model, x, y):
    m = model.copy()
    for i in range(len(y)):
        m, _ = learn_step(m, x[i], int(y[i]))
        yield [(lay.hidden, lay.signs, lay.M) for lay in m.layers]


def native_learn(model, x, y, simd, pe):
    """Steps through the native learner, each state compared with golden on the fly (never all in memory)."""
    learner = NativeRTLLearner(simd, pe)
    cpu0 = child_cpu()
    n = 0
    for got, want in zip(learner.states(model, x, y), golden_states(model, x, y)):
        for (h, w, m), (gh, gw, gm) in zip(got, want):
            if not (np.array_equal(h, gh) and np.array_equal(w, gw) and np.array_equal(m, gm)):
                raise MetabnnError(f"native learning differs from metabnn.sim at step {n + 1}")
        n += 1
    if n != len(y):
        raise MetabnnError(f"native learning returned {n} of {len(y)} steps")
    return learner.cycles, child_cpu() - cpu0


def child_cpu() -> float:
    """CPU seconds of the finished child processes (the harness), to tell its share from Python's."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an exported .mbnn (default: a random model of --sizes)")
    ap.add_argument("--sizes", default="784,512,512,10")
    ap.add_argument("--settings", default="32x8")
    ap.add_argument("--images", type=int, default=10_000, help="images through the native path")
    ap.add_argument("--cocotb-images", type=int, default=20, help="images through the cocotb path")
    ap.add_argument("--learn-steps", type=int, default=1000, help="native learning steps (0: no learning)")
    ap.add_argument("--cocotb-learn-steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mhz", type=float, default=100.0, help="assumed clock for images/s (default 100 MHz)")
    args = ap.parse_args(argv)
    try:
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
        if args.model:
            from metabnn.export import load

            model, what_model = load(args.model), f"exported {args.model}"
        else:
            model, what_model = random_model(tuple(int(s) for s in args.sizes.split(",")), seed=0), "random weights"
    except ValueError:
        print("rtl_cycles: bad --sizes or --settings", file=sys.stderr)
        return 2
    except MetabnnError as e:
        print(f"rtl_cycles: {e}", file=sys.stderr)
        return 2
    if min(args.images, args.cocotb_images) < 2 or args.repeats < 1 or args.learn_steps < 0:
        print("rtl_cycles: need --images, --cocotb-images >= 2 and --repeats >= 1", file=sys.stderr)
        return 2
    sizes = [model.input_size] + [lay.N for lay in model.layers]
    n_all = max(args.images, args.cocotb_images, args.learn_steps, args.cocotb_learn_steps)
    x, y, what = load_images(n_all, model.input_size)
    gold = forward(model.copy(), x[:max(args.images, args.cocotb_images)])
    print(f"model {'-'.join(map(str, sizes))} ({what_model}), {what} images, clock {args.mhz:g} MHz, "
          f"medians of {args.repeats} runs")
    print(f"load average (1, 5, 15 min) before: {load_text()}")
    for simd, pe in settings:
        native, cocotb = NativeRTL(simd, pe), RTLBackend(simd=simd, pe=pe)
        for be in (native, cocotb):
            ok, why = be.available()
            if not ok:
                return fail(f"{type(be).__name__} not available: {why}")
        t0 = time.perf_counter()
        native.build(model)
        nb = time.perf_counter() - t0
        t0 = time.perf_counter()
        cocotb.prepare(model)
        cb = time.perf_counter() - t0
        lat = native.run_case(model, x[:3], serial=True)["latency"]
        print(f"\nSIMD {simd} PE {pe}: latency {int(lat[0])} cycles (formula {cycles_formula(model, simd, pe)}); "
              f"builds: native {nb:.0f} s, cocotb {cb:.0f} s (0: cached)")
        print(f"  {'inference':<10}{'path':<8}{'images':>8}{'cycles':>12}{'host s':>9}{'cycles/s':>12}"
              f"{'images/s':>10}{'speed-up':>10}")
        rows = {}
        for path, be, n in (("cocotb", cocotb, args.cocotb_images), ("native", native, args.images)):
            sec, res = median_time(lambda: be.run_case(model, x[:n]), args.repeats)
            if not check_infer(res, gold):
                return fail(f"SIMD={simd} PE={pe}: the {path} RTL differs from metabnn.sim")
            rows[path] = (n, int(res["cycles"]), sec)
            if path == "native":
                interval = (int(res["cycles"]) - int(res["latency"][0])) / (n - 1)
        base = rows["cocotb"][1] / rows["cocotb"][2]
        for path, (n, cyc, sec) in rows.items():
            print(f"  {'':<10}{path:<8}{n:>8}{cyc:>12,}{sec:>9.2f}{cyc / sec:>12,.0f}{n / sec:>10.1f}"
                  f"{cyc / sec / base:>10.0f}x")
        print(f"  streaming interval {interval:.1f} cycles/image: {args.mhz * 1e6 / interval:,.0f} images/s at "
              f"{args.mhz:g} MHz")
        if args.learn_steps:
            learner = RTLLearner(simd, pe)
            t0 = time.perf_counter()
            NativeRTLLearner(simd, pe).build(model)
            nb = time.perf_counter() - t0
            t0 = time.perf_counter()
            learner.prepare(model)
            print(f"  learning builds: native {nb:.0f} s, cocotb {time.perf_counter() - t0:.0f} s")
            sec_c, res = median_time(lambda: learner.run_steps(model, x[:args.cocotb_learn_steps],
                                                               y[:args.cocotb_learn_steps]), args.repeats)
            if res["mismatches"]:
                return fail(f"cocotb learning differs from metabnn.sim: {res['mismatches'][0]}")
            try:
                sec_n, (cyc, cpu) = median_time(lambda: native_learn(model, x[:args.learn_steps], y[:args.learn_steps],
                                                              simd, pe), args.repeats)
            except MetabnnError as e:
                return fail(str(e))
            print(f"  {'learning':<10}{'path':<8}{'steps':>8}{'cycles':>12}{'host s':>9}{'cycles/s':>12}"
                  f"{'steps/s':>10}{'speed-up':>10}")
            sc = args.cocotb_learn_steps / sec_c
            print(f"  {'':<10}{'cocotb':<8}{args.cocotb_learn_steps:>8}{'':>12}{sec_c:>9.2f}{'':>12}{sc:>10.2f}"
                  f"{1:>10}x")
            print(f"  {'':<10}{'native':<8}{args.learn_steps:>8}{cyc:>12,}{sec_n:>9.2f}{cyc / sec_n:>12,.0f}"
                  f"{args.learn_steps / sec_n:>10.2f}{args.learn_steps / sec_n / sc:>10.0f}x")
            print(f"  native harness CPU {cpu:.1f} s of the last run ({1000 * cpu / args.learn_steps:.1f} ms a "
                  "step); the rest is Python: golden deltas, the comparison")
    print(f"\nload average (1, 5, 15 min) after: {load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
