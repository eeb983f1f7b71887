"""C conv inference on a trained convolutional net against onnxruntime, side by side in one run.

    python benchmarks/conv_bench.py [--checkpoint runs/conv/fmnist-conv/model.pt] [--runs 11] [--images 500]
                                    [--learn-steps 20] [--quick]

The checkpoint is exported as `metabnn export CHECKPOINT --out fc.mbnn --onnx fc.onnx` does (the same
command, run by this script into a temporary directory). Three implementations of that one net run on the first
Fashion-MNIST test images (MNIST for a checkpoint trained on MNIST), batch 1, single thread:

  - the C library (firmware/build/bench infer: mbnn_predict in a loop, timed in C), on the .mbnn file;
  - onnxruntime on a float32 network with the trained weights: per conv layer Conv2d(sign(W)) + BatchNorm2d +
    sign + MaxPool2d, then Flatten and Linear(sign(W)) + BatchNorm1d (+ sign), what a float deployment of the
    trained model runs (exported with torch.onnx; input pixels / 255);
  - onnxruntime on the integer ONNX graph that export/onnx_export.py writes (ConvInteger, MatMulInteger, int64
    thresholds: the exported model itself, bit-exact with the golden model).
onnxruntime: one intra-op and one inter-op thread, sequential execution, ORT_ENABLE_ALL. Before timing, the
labels are checked: C and the integer ONNX equal the golden model (metabnn.sim) on every image, and the float
network's agreement with them is printed. Each run times every implementation once, a few milliseconds apart
(each timing the best of 3 passes over the images), so the ratios come from neighbouring timings on a shared
machine. Printed: median and range (min-max) over the runs, the load average before and after, the C learning
step (mbnn_learn_step) beside, and last `conv_inference_ratio_vs_onnxruntime=R`, the median per-run ratio
against the float32 network.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from firmware_bench import PASSES, best_time, load, spread  # the same timing and printing as the dense benchmark

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CKPT = REPO / "runs" / "conv" / "fmnist-conv" / "model.pt"


def float_net(net):
    """The FloatNet's inference form in float32 torch: binary weights sign(W) (sign(0) = +1), eval BatchNorm of
    bank 0, sign between layers, max-pool after a pooled conv's sign."""
    import torch

    class Sign(torch.nn.Module):
        def forward(self, x):
            return torch.where(x >= 0, 1.0, -1.0)

    def bn(mod, st):
        mod.weight.data = torch.tensor(st.gamma, dtype=torch.float32)
        mod.bias.data = torch.tensor(st.beta, dtype=torch.float32)
        mod.running_mean.data = torch.tensor(st.mean, dtype=torch.float32)
        mod.running_var.data = torch.tensor(st.var, dtype=torch.float32)
        mod.eps = float(st.eps)
        return mod

    layers, flat = [], False
    for i, fl in enumerate(net.layers):
        w = torch.tensor(np.where(fl.weight >= 0, 1.0, -1.0), dtype=torch.float32)
        last = i == len(net.layers) - 1
        if fl.conv is not None:
            g = fl.conv
            conv = torch.nn.Conv2d(g.in_c, w.shape[0], g.kernel, stride=g.stride, padding=g.pad, bias=False)
            conv.weight.data = w
            layers += [conv, bn(torch.nn.BatchNorm2d(w.shape[0]), fl.bn[0]), Sign()]
            if g.pool:
                layers.append(torch.nn.MaxPool2d(2))
        else:
            if not flat:
                layers.append(torch.nn.Flatten())
                flat = True
            lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
            lin.weight.data = w
            layers += [lin, bn(torch.nn.BatchNorm1d(w.shape[0]), fl.bn[0])] + ([] if last else [Sign()])
    return torch.nn.Sequential(*layers).eval()


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=str(DEFAULT_CKPT), help="a conv checkpoint (default: %(default)s)")
    ap.add_argument("--runs", type=int, default=11, help="runs (median and range; default 11, at least 10 for a "
                                                         "figure)")
    ap.add_argument("--images", type=int, default=500, help="test images per pass (default 500)")
    ap.add_argument("--learn-steps", type=int, default=20, help="C learning steps timed per run (default 20; 0: none)")
    ap.add_argument("--task", choices=("fmnist", "mnist"), help="the test images (default: the checkpoint's first "
                                                                "task, else fmnist)")
    ap.add_argument("--compare", metavar="BENCH", help="another build of the timing harness (e.g. of an earlier "
                                                      "commit, docs/FIRMWARE.md) timed beside, on the same file")
    ap.add_argument("--quick", action="store_true", help="3 runs of 100 images (a smoke run, not a figure)")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.images < 1 or args.learn_steps < 0:
        ap.exit(2, "conv_bench: --runs and --images must be >= 1, --learn-steps >= 0\n")
    if not Path(args.checkpoint).is_file():
        ap.exit(2, f"conv_bench: {args.checkpoint}: no such checkpoint file (train it: metabnn train --preset "
                   "fmnist-conv --out runs/conv/fmnist-conv, docs/TRAINING.md)\n")
    if args.compare and not os.access(args.compare, os.X_OK):
        ap.exit(2, f"conv_bench: --compare {args.compare}: not an executable\n")
    if args.quick:
        args.runs, args.images, args.learn_steps = 3, 100, min(args.learn_steps, 5)
    return args


def main(argv=None) -> int:
    args = parse(argv)
    from metabnn.backends.c import FIRMWARE, CFirmware, build_firmware
    from metabnn.errors import MetabnnError
    from metabnn.export.mbnn import load as load_mbnn
    from metabnn.sim.forward import forward
    from metabnn.train.checkpoint import load_floatnet
    from metabnn.train.data import load as load_data

    for target in ("all", "bench"):
        ok, msg = build_firmware(target)
        if not ok:
            print(f"conv_bench: {msg}", file=sys.stderr)
            return 1
    try:
        net = load_floatnet(args.checkpoint)
    except (MetabnnError, OSError, KeyError, ValueError) as e:
        print(f"conv_bench: {args.checkpoint}: not a checkpoint metabnn can read ({e})", file=sys.stderr)
        return 2
    if net.layers[0].conv is None:
        print(f"conv_bench: {args.checkpoint} is not a conv net (its first layer is dense: use "
              "benchmarks/firmware_bench.py)", file=sys.stderr)
        return 2
    task = args.task or str((net.info or {}).get("tasks", "fmnist")).split(",")[0]  # the first task trained on
    if task not in ("mnist", "fmnist"):
        task = "fmnist"
    try:
        data = load_data(task)
    except (MetabnnError, OSError, ImportError) as e:
        print(f"conv_bench: the {task} test images are unavailable ({e})", file=sys.stderr)
        return 2
    g0 = net.layers[0].conv
    n_px = g0.in_c * g0.in_h * g0.in_w
    x = data.test_x.numpy().reshape(len(data.test_x), -1)[:args.images].astype(np.uint8)
    y = np.asarray(data.test_y.numpy()[:args.images], dtype="<u4")
    if x.shape[1] != n_px:
        print(f"conv_bench: the {task} images have {x.shape[1]} pixels, the net reads {n_px}", file=sys.stderr)
        return 2

    import onnxruntime as ort
    import torch
    torch.set_num_threads(1)
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    bench = FIRMWARE / "build" / "bench"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mbnn, onnx_int = tmp / "fc.mbnn", tmp / "fc.onnx"
        cmd = [sys.executable, "-m", "metabnn", "export", str(args.checkpoint), "--out", str(mbnn), "--onnx",
               str(onnx_int)]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if done.returncode != 0:
            print(f"conv_bench: metabnn export failed:\n{done.stderr.strip()}", file=sys.stderr)
            return 1
        model = load_mbnn(mbnn)
        (tmp / "x.u8").write_bytes(x.tobytes())
        (tmp / "y.u32").write_bytes(y.tobytes())
        xf = (x.astype(np.float32) / 255.0).reshape(-1, g0.in_c, g0.in_h, g0.in_w)
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # torch.onnx's legacy exporter, as in
        torch.onnx.export(float_net(net), torch.from_numpy(xf[:1]), str(tmp / "float.onnx"), dynamo=False,  # firmware_bench
                          input_names=["x"], output_names=["y"])
        s_float = ort.InferenceSession(str(tmp / "float.onnx"), so, providers=["CPUExecutionProvider"])
        s_int = ort.InferenceSession(str(onnx_int), so, providers=["CPUExecutionProvider"])
        in_int = s_int.get_inputs()[0].name

        # the labels first: every integer implementation equals the golden model
        golden = np.argmax(forward(model, x), axis=1)
        c = CFirmware(lib_path=FIRMWARE / "build" / "libmetabnn.so")
        c_labels = c.predict(mbnn.read_bytes(), x)
        int_labels = np.array([int(np.asarray(s_int.run(None, {in_int: x[i:i + 1]})[0]).ravel()[0])
                               for i in range(len(x))])
        float_labels = np.array([int(np.argmax(s_float.run(None, {"x": xf[i:i + 1]})[0])) for i in range(len(x))])
        if not (np.array_equal(c_labels, golden) and np.array_equal(int_labels, golden)):
            print(f"conv_bench: labels differ from the golden model's: C {int(np.sum(c_labels != golden))}, "
                  f"integer ONNX {int(np.sum(int_labels != golden))} of {len(x)}", file=sys.stderr)
            return 1
        c.lib.mbnn_conv2d_fast_kernel.restype = ctypes.c_char_p
        c.lib.mbnn_dense_pixels_kernel.restype = ctypes.c_char_p
        sizes = "-".join([f"{g0.in_c}x{g0.in_h}x{g0.in_w}"] + [
            (f"conv{fl.weight.shape[0]}k{fl.conv.kernel}{'p' if fl.conv.pool else ''}" if fl.conv else
             str(fl.weight.shape[0])) for fl in net.layers])
        load_before = load()
        print(f"net {sizes} from {args.checkpoint} ({mbnn.stat().st_size:,}-byte .mbnn), {len(x)} {task} test "
              f"images, batch 1, single thread, host {os.uname().machine}; C conv kernel "
              f"{c.lib.mbnn_conv2d_fast_kernel().decode()}; {args.runs} runs, each timing the best of {PASSES} "
              "passes")
        print(f"labels: C = integer ONNX = golden on {len(x)}/{len(x)}; float32 network agrees on "
              f"{int(np.sum(float_labels == golden))}/{len(x)}; accuracy {100 * np.mean(golden == y):.2f} %")
        print(f"onnxruntime {ort.__version__}: 1 intra-op / 1 inter-op thread, sequential, ORT_ENABLE_ALL")
        print(f"load average before (1, 5, 15 min): {load_before}")
        t = {k: [] for k in ("float", "int", "c", "learn", "cmp")}
        for _ in range(args.runs):
            t["float"].append(best_time(lambda i: s_float.run(None, {"x": xf[i:i + 1]}), len(x)))
            out = subprocess.run([str(bench), "infer", str(mbnn), str(tmp / "x.u8"), str(len(x)), str(PASSES)],
                                 capture_output=True, text=True, check=True).stdout.split()
            t["c"].append(float(out[-1]) * 1e-9)
            if args.compare:
                out = subprocess.run([args.compare, "infer", str(mbnn), str(tmp / "x.u8"), str(len(x)), str(PASSES)],
                                     capture_output=True, text=True, check=True).stdout.split()
                t["cmp"].append(float(out[-1]) * 1e-9)
            t["int"].append(best_time(lambda i: s_int.run(None, {in_int: x[i:i + 1]}), len(x)))
            if args.learn_steps:
                out = subprocess.run([str(bench), "learn", str(mbnn), str(tmp / "x.u8"), str(tmp / "y.u32"),
                                      str(min(args.learn_steps, len(x)))], capture_output=True, text=True,
                                     check=True).stdout.split()
                t["learn"].append(float(out[-1]) * 1e-9)

    def ratio(a, b):
        return [p / q for p, q in zip(t[a], t[b])]

    print("\ninference latency per image, batch 1 (us; median (min-max) over the runs)")
    print(f"   onnxruntime, float32 network (Python call)      {spread(t['float'], '{:.2f}', 1e6)}")
    print(f"   onnxruntime, integer ONNX of export (Python)    {spread(t['int'], '{:.2f}', 1e6)}")
    print(f"   C library (timed in C)                          {spread(t['c'], '{:.2f}', 1e6)}")
    if t["cmp"]:
        print(f"   C library of --compare (timed in C)             {spread(t['cmp'], '{:.2f}', 1e6)}   ratio "
              f"onnxruntime float32 / it {spread(ratio('float', 'cmp'), '{:.1f}')}x, it / C "
              f"{spread(ratio('cmp', 'c'), '{:.1f}')}x")
    print(f"   ratio onnxruntime float32 / C                   {spread(ratio('float', 'c'), '{:.1f}')}x  "
          "(target >= 5x)")
    print(f"   ratio onnxruntime integer / C                   {spread(ratio('int', 'c'), '{:.1f}')}x")
    if t["learn"]:
        print(f"C learning step (mbnn_learn_step, first {min(args.learn_steps, len(x))} images, ms) "
              f"{spread(t['learn'], '{:.2f}', 1e3)}")
    print(f"\nload average before: {load_before}; after: {load()}")
    print(f"conv_inference_ratio_vs_onnxruntime_integer={statistics.median(ratio('int', 'c')):.2f}")
    print(f"conv_inference_ratio_vs_onnxruntime={statistics.median(ratio('float', 'c')):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
