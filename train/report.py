"""Tables for docs/TRAINING.md from finished runs: mean over seeds of every BN protocol.

    python -m metabnn.train.report runs/pmnist2_s*_m*

Groups runs by m (and training BN protocol), and for each test-time protocol in
results.json "acc_by_bn" prints task 1 and task 2 accuracy after the last task,
averaged over the runs (seeds) of the group, as a Markdown table.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from metabnn.errors import UsageError


def load(paths: list[str]) -> list[dict]:
    """results.json of each run folder (or a .json file given directly); anything else a glob caught
    (a run's .log beside its folder) is skipped."""
    out = []
    for p in paths:
        f = Path(p) / "results.json" if Path(p).is_dir() else Path(p)
        if f.is_file() and f.suffix == ".json":
            try:
                out.append(json.loads(f.read_text()))
            except (OSError, ValueError) as e:
                raise UsageError(f"{f}: not a readable results.json ({e})") from None
    return out


def table(runs: list[dict]) -> str:
    groups = defaultdict(list)
    for r in runs:
        c = r["config"]
        groups[(c["meta"], c["bn"], c.get("bn_affine", True), c.get("bn_gamma_init", "one"))].append(r)
    lines = ["| m | trained with | test-time BN | seeds | task 1 after task 2 | task 2 |",
             "|---|---|---|---|---|---|"]
    for (meta, bn, affine, gamma), rs in sorted(groups.items(), key=lambda kv: (kv[0][3], str(kv[0][0]), kv[0][1]),
                                                reverse=True):
        names = list(rs[0]["acc_by_bn"])
        if bn == "frozen-after-1":
            names = ["frozen"]
        for name in names:
            t1 = [r["acc_by_bn"][name][-1][0] for r in rs]
            t2 = [r["acc_by_bn"][name][-1][-1] for r in rs]
            sd = f" ± {statistics.stdev(t1) * 100:.1f}" if len(t1) > 1 else ""
            trained = ("BN frozen after task 1" if bn == "frozen-after-1" else "shared BN") + ("" if affine else ", no affine")
            trained += (", gamma0 U[0,1)" if gamma == "uniform" else ", gamma0 = 1") if affine else ""
            label = name if bn != "frozen-after-1" else "frozen-after-1"
            lines.append(f"| {meta} | {trained} | {label} | {','.join(str(r['seed']) for r in rs)} | "
                         f"{statistics.mean(t1) * 100:.1f}{sd} % | {statistics.mean(t2) * 100:.1f} % |")
    return "\n".join(lines)


def main(argv=None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    try:
        runs = load(paths)
    except UsageError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    if not runs:
        print("no results.json in the given folders", file=sys.stderr)
        return 2
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
