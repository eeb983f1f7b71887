"""RTL co-simulation speed, cocotb and native side by side in one run, and the engine's cycles next to the formula.

    python benchmarks/rtl_cycles.py [--model MODEL.mbnn | --sizes 784,512,512,10 | --conv] [--settings 32x8]
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

A conv model (`--model` of a FORMAT.md version 2 file, or `--conv`: metabnn.sim.random_conv_model of the shape of
the preset fmnist-conv-aug, 1x28x28 pixels, conv 3x3 pad 1 32 + pool, 64 + pool, dense 512, 10, seed 0) runs the
native path only (hw/rtl/mbnn_conv_top.sv, hw/rtl/mbnn_conv_update_top.sv; --cocotb-* and --repeats do not apply;
defaults --images 3, --learn-steps 3):
  infer    --images images one at a time: each one's latency (cycles from its first pixel beat to its result) next
           to metabnn.backends.rtl.conv_cycles_formula, then the same images streamed (the interval between results);
  learn    the dense layers learn, the conv layers frozen (each step's memories compared with metabnn.sim's
           learn_step(frozen=conv_layers)): cycles per step = (total cycles of a --learn-steps run - those of a
           1-step run) / (--learn-steps - 1), so the loading of the memories cancels, next to forward
           (conv_cycles_formula) + delta writes (the dense layers' N) + update (rtl_native.conv_update_cycles) + 2;
           and every step's update cycles next to conv_update_cycles.
A measured figure that differs from its formula exits 1 too (after the report). --images 0 or --learn-steps 0
leaves that part out.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np

from metabnn.backends.rtl import RTLBackend, RTLLearner, conv_cycles_formula, cycles_formula
from metabnn.backends.rtl_native import NativeRTL, NativeRTLLearner, conv_update_cycles, first_dense
from metabnn.errors import MetabnnError
from metabnn.sim import forward, learn_step, random_conv_model, random_model
from metabnn.sim.learn import conv_layers

# the preset fmnist-conv-aug's net (train/presets.py; train/models.py: 3x3 convs, padding 1, each pooled)
CONV_SHAPE = dict(image=(1, 28, 28), convs=((32, 3, 1, 1, 2), (64, 3, 1, 1, 2)), dense=(512, 10))


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


def golden_states(model, x, y, frozen=()):
    m = model.copy()
    for i in range(len(y)):
        m, _ = learn_step(m, x[i], int(y[i]), frozen=frozen)
        yield [(lay.hidden, lay.signs, lay.M) for lay in m.layers]


def native_learn(model, x, y, simd, pe, frozen=()):
    """Steps through the native learner, each state compared with golden on the fly (never all in memory).
    (total cycles of the run, the harness's CPU seconds, every step's update cycles)."""
    learner = NativeRTLLearner(simd, pe)
    cpu0 = child_cpu()
    updates = []
    for step, want in zip(learner.steps(model, x, y), golden_states(model, x, y, frozen)):
        for (h, w, m), (gh, gw, gm) in zip(step.state, want):
            if not (np.array_equal(h, gh) and np.array_equal(w, gw) and np.array_equal(m, gm)):
                raise MetabnnError(f"native learning differs from metabnn.sim at step {len(updates) + 1}")
        updates.append(step.cycles)
    if len(updates) != len(y):
        raise MetabnnError(f"native learning returned {len(updates)} of {len(y)} steps")
    return learner.cycles, child_cpu() - cpu0, updates


def child_cpu() -> float:
    """CPU seconds of the finished child processes (the harness), to tell its share from Python's."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="an exported .mbnn, dense or conv (default: a random model of --sizes)")
    ap.add_argument("--sizes", default="784,512,512,10")
    ap.add_argument("--conv", action="store_true",
                    help="a random conv model of the preset fmnist-conv-aug's shape (28x28x1, 32,p,64,p, 512, 10)")
    ap.add_argument("--settings", default="32x8")
    ap.add_argument("--images", type=int, help="images through the native path (default 10000; conv: 3)")
    ap.add_argument("--cocotb-images", type=int, default=20, help="images through the cocotb path")
    ap.add_argument("--learn-steps", type=int,
                    help="native learning steps (0: no learning; default 1000; conv: 3, at least 2)")
    ap.add_argument("--cocotb-learn-steps", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mhz", type=float, default=100.0, help="assumed clock for images/s (default 100 MHz)")
    args = ap.parse_args(argv)
    if args.conv and args.model:
        print("rtl_cycles: give --model or --conv, not both", file=sys.stderr)
        return 2
    try:
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
        if args.model:
            from metabnn.export import load

            model, what_model = load(args.model), f"exported {args.model}"
        elif args.conv:
            model, what_model = random_conv_model(**CONV_SHAPE, seed=0), "random weights, fmnist-conv-aug's shape"
        else:
            model, what_model = random_model(tuple(int(s) for s in args.sizes.split(",")), seed=0), "random weights"
    except ValueError:
        print("rtl_cycles: bad --sizes or --settings", file=sys.stderr)
        return 2
    except MetabnnError as e:
        print(f"rtl_cycles: {e}", file=sys.stderr)
        return 2
    if model.has_conv:
        return conv_main(model, what_model, settings, args)
    args.images = 10_000 if args.images is None else args.images
    args.learn_steps = 1000 if args.learn_steps is None else args.learn_steps
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
                sec_n, (cyc, cpu, _) = median_time(lambda: native_learn(model, x[:args.learn_steps], y[:args.learn_steps],
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


def build_time(be, model) -> float:
    """Seconds to build the native harness for the model (0: cached); MetabnnError when it cannot run here."""
    ok, why = be.available()
    if not ok:
        raise MetabnnError(f"{type(be).__name__} not available: {why}")
    return median_time(lambda: be.build(model), 1)[0]


def conv_main(model, what_model, settings, args) -> int:
    """The conv report (the module's docstring): native path only, every result checked against metabnn.sim."""
    n = 3 if args.images is None else args.images
    steps = 3 if args.learn_steps is None else args.learn_steps
    if n < 0 or steps < 0 or steps == 1 or not n + steps:
        print("rtl_cycles: a conv model needs --images >= 0 and --learn-steps 0 or >= 2, not both 0",
              file=sys.stderr)
        return 2
    frozen = conv_layers(model)
    dense = model.layers[first_dense(model):]
    x, y, what = load_images(max(n, steps), model.input_size)
    gold = forward(model.copy(), x[:n]) if n else None
    geoms = ",".join(f"{lay.N}{'p' if lay.conv.pool else ''}" for lay in model.layers if lay.conv)
    g0 = model.layers[0].conv
    print(f"conv model {g0.in_c}x{g0.in_h}x{g0.in_w}, conv {geoms}, dense {'-'.join(str(lay.N) for lay in dense)} "
          f"({what_model}), {what} images, clock {args.mhz:g} MHz; native harness only")
    print(f"load average (1, 5, 15 min) before: {load_text()}")
    differs = []
    for simd, pe in settings:
        print(f"\nSIMD {simd} PE {pe}:")
        try:
            fwd = conv_cycles_formula(model, simd, pe)
        except ValueError as e:
            fwd = None
            print(f"  conv_cycles_formula does not apply: {e}")
        if n:
            native = NativeRTL(simd, pe)
            try:
                nb = build_time(native, model)
            except MetabnnError as e:
                return fail(str(e))
            sec, res = median_time(lambda: native.run_case(model, x[:n], serial=True), 1)
            if not check_infer(res, gold):
                return fail(f"SIMD={simd} PE={pe}: the native conv RTL (one image at a time) differs from metabnn.sim")
            lat = sorted({int(v) for v in res["latency"]})
            same = fwd is not None and lat == [fwd]
            print(f"  inference, one image in flight: {'/'.join(f'{v:,}' for v in lat)} cycles per image on {n} "
                  f"images (conv_cycles_formula {'-' if fwd is None else f'{fwd:,}'}: "
                  f"{'equal' if same else 'DIFFERENT'}); build {nb:.0f} s (0: cached), run {sec:.2f} host s")
            if not same:
                differs.append(f"SIMD {simd} PE {pe}: latency {lat}, formula {fwd}")
            if n >= 2:
                sec, res = median_time(lambda: native.run_case(model, x[:n]), 1)
                if not check_infer(res, gold):
                    return fail(f"SIMD={simd} PE={pe}: the native conv RTL (streamed) differs from metabnn.sim")
                interval = (int(res["cycles"]) - int(res["latency"][0])) / (n - 1)
                print(f"  streamed: {n} images, {int(res['cycles']):,} cycles, interval {interval:,.1f} cycles/image "
                      f"({args.mhz * 1e6 / interval:,.0f} images/s at {args.mhz:g} MHz), {sec:.2f} host s")
        if steps:
            try:
                nb = build_time(NativeRTLLearner(simd, pe), model)
                sec1, (one, _, _) = median_time(lambda: native_learn(model, x[:1], y[:1], simd, pe, frozen), 1)
                sec, (total, cpu, updates) = median_time(
                    lambda: native_learn(model, x[:steps], y[:steps], simd, pe, frozen), 1)
            except MetabnnError as e:
                return fail(f"SIMD={simd} PE={pe}: {e}")
            per_step = (total - one) / (steps - 1)
            upd, writes = conv_update_cycles(model, simd), sum(lay.N for lay in dense)
            formula = None if fwd is None else fwd + writes + upd + 2
            same = formula is not None and per_step == formula
            print(f"  learning (dense layers learn, conv layers frozen; {steps} steps equal metabnn.sim): "
                  f"{per_step:,.0f} cycles per step = ({total:,} cycles of {steps} steps - {one:,} of 1) / "
                  f"{steps - 1}")
            print(f"    formula: forward {'-' if fwd is None else f'{fwd:,}'} + {writes:,} delta writes + update "
                  f"{upd:,} (conv_update_cycles) + 2 = {'-' if formula is None else f'{formula:,}'}: "
                  f"{'equal' if same else 'DIFFERENT'}; {args.mhz * 1e6 / per_step:,.0f} steps/s at "
                  f"{args.mhz:g} MHz")
            ups = sorted(set(updates))
            print(f"    update cycles per step: {'/'.join(f'{v:,}' for v in ups)} (conv_update_cycles {upd:,}: "
                  f"{'equal' if ups == [upd] else 'DIFFERENT'}); build {nb:.0f} s (0: cached), "
                  f"1 step {sec1:.2f} host s, {steps} steps {sec:.2f} host s (harness CPU {cpu:.1f} s)")
            if not same:
                differs.append(f"SIMD {simd} PE {pe}: {per_step} cycles per learning step, formula {formula}")
            if ups != [upd]:
                differs.append(f"SIMD {simd} PE {pe}: update cycles {ups}, conv_update_cycles {upd}")
    print(f"\nload average (1, 5, 15 min) after: {load_text()}")
    if differs:
        return fail("measured cycles differ from the formula: " + "; ".join(differs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
