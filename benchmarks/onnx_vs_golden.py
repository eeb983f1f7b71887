"""The shipped .onnx file against the golden model on MNIST test images, side by side in one run.

    metabnn export runs/NAME/model.pt --out model.mbnn --onnx model.onnx
    python benchmarks/onnx_vs_golden.py model.mbnn model.onnx            # all 10,000 test images

Runs onnxruntime (CPU) on the file as written, not on a graph rebuilt in memory, and
metabnn.sim.forward on the .mbnn; prints labels and int64 scores equal to the golden model
(count and %), accuracy and time per image of both, and whether the .onnx alone gives back the
.mbnn model (hidden weights, tables, every bank). Exit code 1 on any difference.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mbnn", help="the .mbnn model (the golden model runs it)")
    ap.add_argument("onnx", help="the .onnx written from it by `metabnn export --onnx`")
    ap.add_argument("--limit", type=int, default=0, help="number of MNIST test images (0 = all 10,000)")
    ap.add_argument("--data-dir", help="folder with MNIST IDX files (default: the installed data set)")
    args = ap.parse_args(argv)

    import onnxruntime as ort

    from metabnn.errors import MetabnnError
    from metabnn.export import load, to_bytes
    from metabnn.export.onnx_export import from_onnx
    from metabnn.sim import forward
    from metabnn.train.data import load as load_data

    try:
        model = load(args.mbnn)
        carried = from_onnx(args.onnx)
        ds = load_data("mnist", args.data_dir)
    except MetabnnError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    onnx_bytes = open(args.onnx, "rb").read()
    bank = int(next(p.value for p in __import__("onnx").load_from_string(onnx_bytes).metadata_props
                    if p.key == "metabnn.bank"))
    n = args.limit or len(ds.test_y)
    x, y = ds.test_x[:n].numpy(), ds.test_y[:n].numpy()

    t0 = time.perf_counter()
    gold_scores = forward(model, x, bank=bank)
    t_gold = time.perf_counter() - t0
    gold = np.argmax(gold_scores, axis=1)
    t0 = time.perf_counter()
    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    labels, scores = sess.run(None, {"images": x})
    t_onnx = time.perf_counter() - t0

    same_model = to_bytes(carried) == to_bytes(model)
    eq_labels = int((labels == gold).sum())
    eq_scores = int((scores == gold_scores).all(axis=1).sum())
    print(f"{n} MNIST test images, bank {bank}, onnxruntime {ort.__version__} on {args.onnx}")
    print(f"{'backend':<8} {'labels == golden':>22} {'scores == golden':>22} {'accuracy':>9} {'ms/image':>9}")
    print(f"{'golden':<8} {'(reference)':>22} {'(reference)':>22} {100 * (gold == y).mean():>8.2f}% "
          f"{1000 * t_gold / n:>9.4f}")
    print(f"{'onnx':<8} {f'{eq_labels}/{n} ({100 * eq_labels / n:.2f}%)':>22} "
          f"{f'{eq_scores}/{n} ({100 * eq_scores / n:.2f}%)':>22} {100 * (labels == y).mean():>8.2f}% "
          f"{1000 * t_onnx / n:>9.4f}")
    print(f".onnx alone gives back the .mbnn model (hidden weights, tables, {model.n_banks} bank(s)): "
          f"{'yes' if same_model else 'NO'}")
    return 0 if eq_labels == n and eq_scores == n and same_model else 1


if __name__ == "__main__":
    sys.exit(main())
