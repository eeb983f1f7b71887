"""C firmware benchmarks, every ratio measured side by side in one run.

    python benchmarks/firmware_bench.py [--sizes 784,512,512,10] [--model M.mbnn] [--quick]

1. inference latency per image (batch 1): the C library vs onnxruntime on the float32
   version of the same network (Linear + BatchNorm + sign), both single-threaded; C timed
   inside C and through ctypes (Python calling both, like for like)      target >= 5x
2. binary ops/s of a 4096 x 4096 binary layer vs the core's popcount peak   target >= 50 %
3. learning samples/s vs a PyTorch training step at batch 1 on the same net  target >= 10x
4. static memory for inference only and for learning (model bytes + workspace)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from metabnn.export.mbnn import to_bytes
from metabnn.sim import random_model
from metabnn.backends.c import FIRMWARE, CFirmware, build_firmware

BENCH = FIRMWARE / "build" / "bench"


def run_bench(*args) -> float:
    out = subprocess.run([str(BENCH), *map(str, args)], capture_output=True, text=True, check=True).stdout
    return float(out.split()[-1])


def float_net(sizes):
    import torch

    class Sign(torch.nn.Module):
        def forward(self, x):  # straight-through sign, as the float trainer's activation
            return x + (torch.where(x >= 0, 1.0, -1.0) - x).detach()

    layers = []
    for i, (k, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += [torch.nn.Linear(k, n, bias=False), torch.nn.BatchNorm1d(n)]
        if i < len(sizes) - 2:
            layers.append(Sign())
    return torch.nn.Sequential(*layers).eval()


def best_time(fn, n, repeats=5) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def memory(model_bytes: bytes, backend: CFirmware) -> dict:
    """Bytes by section kind, from the image's own descriptors, and the workspaces."""
    import struct
    L = struct.unpack_from("<H", model_bytes, 6)[0]
    B = struct.unpack_from("<H", model_bytes, 8)[0]
    header = 24 + 64 * L + 512 + 4  # header, descriptors, exp table, CRC
    signs = hidden = tables = norm = 0
    for l in range(L):
        K, N, _, out, bits, tb = struct.unpack_from("<IIBBBB", model_bytes, 24 + 64 * l)
        signs += 4 * N * ((K + 31) // 32)
        hidden += N * K * (1 if bits <= 8 else 2)
        tables += 2 << tb
        norm += B * N * (20 if out == 0 else 16)
    with backend.open(model_bytes, writable=False) as s_inf, backend.open(model_bytes) as s_learn:
        ws_inf, ws_learn = s_inf.ws_size, s_learn.ws_size
    return {"image": len(model_bytes), "infer_model": header + signs + norm, "infer_ws": ws_inf,
            "learn_model": len(model_bytes), "learn_ws": ws_learn, "hidden": hidden}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="784,512,512,10", help="layer sizes of the demo network")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    args = ap.parse_args(argv)
    try:
        sizes = tuple(int(v) for v in args.sizes.split(","))
        assert len(sizes) >= 3 and all(v > 0 for v in sizes)
    except (ValueError, AssertionError):
        print(f"firmware_bench: --sizes must be >= 3 positive integers, got {args.sizes!r}", file=sys.stderr)
        return 2
    ok, msg = build_firmware("all")
    ok = ok and build_firmware("bench")[0]
    if not ok:
        print(f"firmware_bench: {msg}", file=sys.stderr)
        return 1
    import onnxruntime as ort
    import torch
    torch.set_num_threads(1)
    n_img = 200 if args.quick else 1000
    model = random_model(sizes, bits=8, table_bits=6, meta=1.3, lr_shift=4, seed=0)
    data = to_bytes(model)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n_img, sizes[0]), dtype=np.uint8)
    y = rng.integers(0, sizes[-1], size=n_img).astype("<u4")
    backend = CFirmware()
    print(f"network {'-'.join(map(str, sizes))}, {n_img} images, single thread, host {os.uname().machine}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "m.mbnn").write_bytes(data)
        (tmp / "x.u8").write_bytes(x.tobytes())
        (tmp / "y.u32").write_bytes(y.tobytes())
        # 1. inference
        net = float_net(sizes)
        xf = (x.astype(np.float32) / 255.0)
        torch.onnx.export(net, torch.from_numpy(xf[:1]), str(tmp / "f.onnx"), dynamo=False,
                          input_names=["x"], output_names=["y"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(tmp / "f.onnx"), so, providers=["CPUExecutionProvider"])
        t_ort = best_time(lambda i: sess.run(None, {"x": xf[i:i + 1]}), n_img)
        t_c = run_bench("infer", tmp / "m.mbnn", tmp / "x.u8", n_img, 5) * 1e-9
        with backend.open(data, writable=False) as s:
            t_c_py = best_time(lambda i: s.predict(x[i:i + 1]), n_img)
        print("\n1. inference latency per image, batch 1")
        print(f"   onnxruntime float32 (Python call)   {t_ort * 1e6:9.2f} us")
        print(f"   C library (timed in C)               {t_c * 1e6:9.2f} us   ratio {t_ort / t_c:6.1f}x  (target >= 5x)")
        print(f"   C library (Python call via ctypes)   {t_c_py * 1e6:9.2f} us   ratio {t_ort / t_c_py:6.1f}x")
        # 2. binary ops
        peak = run_bench("peak", 20 if args.quick else 200)
        bops = run_bench("binary", 4096, 4096, 10 if args.quick else 50)
        bops_rows = run_bench("binary_rows", 4096, 4096, 10 if args.quick else 50)
        print("\n2. binary layer 4096 x 4096 (one XNOR-popcount per synapse = one binary op)")
        print(f"   popcount peak (L1-resident, same 64-bit popcount, 4 sums)  {peak:.3g} binops/s")
        print(f"   mbnn_dense_bits                                            {bops:.3g} binops/s"
              f"   {100 * bops / peak:5.1f} % of peak  (target >= 50 %)")
        print(f"   plain form (mbnn_xor_popcount per row)                     {bops_rows:.3g} binops/s"
              f"   {100 * bops_rows / peak:5.1f} % of peak")
        # 3. learning
        n_learn = 100 if args.quick else 500
        t_cl = run_bench("learn", tmp / "m.mbnn", tmp / "x.u8", tmp / "y.u32", n_learn) * 1e-9
        tnet = float_net(sizes)
        opt = torch.optim.Adam(tnet.parameters(), lr=1e-3)
        xt, yt = torch.from_numpy(xf), torch.from_numpy(y.astype(np.int64))

        def torch_step(i):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(tnet(xt[i:i + 1]), yt[i:i + 1])
            loss.backward()
            opt.step()
        t_torch = best_time(torch_step, n_learn, repeats=3)
        print("\n3. learning, one sample per step")
        print(f"   PyTorch step (Adam, batch 1, BN frozen)  {1 / t_torch:10.0f} samples/s")
        print(f"   C mbnn_learn_step                        {1 / t_cl:10.0f} samples/s   ratio {t_torch / t_cl:6.1f}x"
              "  (target >= 10x)")
    # 4. memory
    mem = memory(data, backend)
    print("\n4. static memory (bytes)")
    print(f"   inference only: model read {mem['infer_model']:,} (signs, norm, header; of a {mem['image']:,}-byte "
          f"image that may stay in flash) + workspace RAM {mem['infer_ws']:,}")
    print(f"   learning:       writable image RAM {mem['learn_model']:,} (hidden weights {mem['hidden']:,}) "
          f"+ workspace RAM {mem['learn_ws']:,} = {mem['learn_model'] + mem['learn_ws']:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
