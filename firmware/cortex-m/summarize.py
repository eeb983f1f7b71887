#!/usr/bin/env python3
"""Summarize the board program's output: instructions per inference and per learning step, RAM.

    make -s -C firmware cortex-m-run [CM_MODEL=...] | python3 firmware/cortex-m/summarize.py

Instructions = SysTick ticks x (instructions per tick), the ratio taken from the program's own
calibration loop (200,000 instructions of known count), which is exact only under QEMU's
-icount shift=0 (1 instruction per ns, 25 MHz core clock: 40 per tick; the run target sets it).
Resolution: one tick. RAM = what the library asks for (workspace size query, sizeof(mbnn_model))
+ the measured stack high-water mark of the phase (+ the writable image copy for learning).
"""

from __future__ import annotations

import statistics
import sys


def main() -> int:
    lines = [ln.split() for ln in sys.stdin.read().splitlines() if ln.strip()]
    by = {}
    for f in lines:
        by.setdefault(f[0], []).append(f)
    if "done" not in by or "calib" not in by:
        errors = [" ".join(f) for f in by.get("error", [])] or ["no 'done' line"]
        print(f"summarize: the board run did not complete: {errors[0]}", file=sys.stderr)
        return 1
    insns, ticks = int(by["calib"][0][2]), int(by["calib"][0][4])
    per_tick = insns / ticks
    ram = dict(zip(by["ram"][0][1::2], map(int, by["ram"][0][2::2])))
    image = int(by["model"][0][2])
    infer = [int(f[5]) * per_tick for f in by["infer"]]
    learn = [int(f[9]) * per_tick for f in by.get("learn", [])]
    stack_infer, stack_learn = int(by["stack_infer"][0][1]), int(by["stack_learn"][0][1])

    def stats(xs):
        return (f"mean {statistics.mean(xs):,.0f}, min {min(xs):,.0f}, max {max(xs):,.0f} "
                f"(+-{per_tick:.0f}) over {len(xs)}")

    print(f"instructions per tick (calibration): {per_tick:g}")
    print(f"instructions per inference:     {stats(infer)}")
    if learn:
        print(f"instructions per learning step: {stats(learn)}")
    print(f"model image: {image:,} bytes (flash for inference; copied to RAM for learning)")
    print(f"RAM, inference only: {ram['ws_infer'] + ram['struct'] + stack_infer:,} bytes "
          f"= workspace {ram['ws_infer']:,} + mbnn_model {ram['struct']:,} + stack high-water {stack_infer:,}")
    print(f"RAM, learning:       {image + ram['ws_learn'] + ram['struct'] + stack_learn:,} bytes "
          f"= image {image:,} + workspace {ram['ws_learn']:,} + mbnn_model {ram['struct']:,} "
          f"+ stack high-water {stack_learn:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
