"""On-device continual learning with the C firmware: metaplastic (m > 0) vs plain BNN (m = 0).

    python benchmarks/firmware_continual_demo.py --model runs/RUN/model.pt [--samples 10000]
        [--every 500] [--test 2000] [--seed 0] [--out runs/firmware_demo]

Exports the checkpoint (trained on the host on task A = MNIST) with the integer exporter,
then runs firmware/build/mbnn_demo twice from the same starting point: once with the
model's own f_meta tables (m > 0) and once with all-ones tables (m = 0, every update passes
unscaled: a plain BNN). Each run learns task B (MNIST under a fixed random pixel permutation)
one sample at a time on the device and prints the accuracy on A and B every N samples.
Writes demo_m.csv, demo_m0.csv and demo.png to --out and prints the final accuracies.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

from metabnn.errors import MetabnnError
from metabnn.export.mbnn import load as load_mbnn
from metabnn.export.mbnn import to_bytes
from metabnn.backends.c import FIRMWARE, build_firmware, write_mbds


def integer_model(path: Path):
    if path.suffix == ".mbnn":
        return load_mbnn(path)
    from metabnn.export.quantize import from_floatnet
    from metabnn.train.checkpoint import load_floatnet
    return from_floatnet(load_floatnet(path))


def plain_bnn(model):
    """The same weights and state with m = 0: every f_meta table entry 1.0 (32768)."""
    m0 = model.copy()
    for lay in m0.layers:
        lay.table = np.full_like(lay.table, 32768)
        lay.meta = 0.0
    return m0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, type=Path, help="trained checkpoint (model.pt) or .mbnn")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--test", type=int, default=2000, help="test images per task for each accuracy point")
    ap.add_argument("--seed", type=int, default=0, help="seed of task B's permutation")
    ap.add_argument("--out", type=Path, default=Path("runs/firmware_demo"))
    args = ap.parse_args(argv)
    try:
        if args.samples < 1 or args.every < 1 or args.test < 1:
            raise MetabnnError("--samples, --every and --test must be >= 1")
        if not args.model.exists():
            raise MetabnnError(f"{args.model}: no such file")
        from metabnn.train.data import load as load_data
        ds = load_data("mnist")
        model = integer_model(args.model)
    except MetabnnError as e:
        print(f"firmware_continual_demo: {e}", file=sys.stderr)
        return 2
    ok, msg = build_firmware("all")
    if not ok:
        print(f"firmware_continual_demo: {msg}", file=sys.stderr)
        return 1
    as_np = lambda t: np.asarray(t.numpy() if hasattr(t, "numpy") else t)  # noqa: E731
    tx, ty = as_np(ds.train_x).reshape(len(ds.train_x), -1), as_np(ds.train_y)
    vx, vy = as_np(ds.test_x).reshape(len(ds.test_x), -1), as_np(ds.test_y)
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(tx.shape[1])
    order = rng.permutation(len(tx))[: args.samples]
    args.out.mkdir(parents=True, exist_ok=True)
    write_mbds(args.out / "data.mbds", tx[order], ty[order], vx[: args.test], vy[: args.test], perm)
    curves = {}
    for tag, m in (("m", model), ("m0", plain_bnn(model))):
        (args.out / f"model_{tag}.mbnn").write_bytes(to_bytes(m))
        r = subprocess.run([str(FIRMWARE / "build" / "mbnn_demo"), str(args.out / f"model_{tag}.mbnn"),
                            str(args.out / "data.mbds"), "--every", str(args.every)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"firmware_continual_demo: mbnn_demo failed: {r.stderr.strip()}", file=sys.stderr)
            return 1
        (args.out / f"demo_{tag}.csv").write_text(r.stdout)
        curves[tag] = np.array([[float(v) for v in line.split(",")] for line in r.stdout.splitlines()[1:]])
        last = curves[tag][-1]
        print(f"{tag:>3} (m = {model.layers[0].meta if tag == 'm' else 0:g}): after {int(last[0])} samples of B: "
              f"task A {last[1]:.2f} %, task B {last[2]:.2f} %  (start: A {curves[tag][0][1]:.2f} %, B {curves[tag][0][2]:.2f} %)")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for tag, style in (("m", "-"), ("m0", "--")):
        c = curves[tag]
        lab = "m > 0" if tag == "m" else "m = 0"
        ax.plot(c[:, 0], c[:, 1], "C0" + style, label=f"task A, {lab}")
        ax.plot(c[:, 0], c[:, 2], "C1" + style, label=f"task B, {lab}")
    ax.set_xlabel("task B samples learned on the device")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out / "demo.png", dpi=120)
    print(f"wrote {args.out}/demo_m.csv, demo_m0.csv, demo.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
