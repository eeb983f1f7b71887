"""Reading the tools' results: Yosys' cell counts, nextpnr's utilisation and Fmax; and the throughput
figures of the report (cycles from the RTL's exact formulas, metabnn.backends.rtl, at the measured Fmax).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from metabnn.backends.rtl import cycles_formula, update_cycles_formula
from metabnn.sim.model import Model

# "Info:          TRELLIS_COMB:  1234/ 24288     5%" in nextpnr's log, after packing
_UTIL = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)\s*/\s*(\d+)\s+\d+%\s*$")
# "Info: Max frequency for clock 'clk$glb_clk': 27.40 MHz (PASS at 25.00 MHz)"
_FMAX = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz")

# the update units of the board top's learning build (hw/fpga/mbnn_uart_top.sv's ULANES, UPIPE, TF_STAGE and
# HREG defaults; hw/tb/mbnn_update_top checks they agree): one lane per layer, pipelined, Threefry 2 rounds a
# stage, the hidden read registered twice
UART_UPDATE = {"ulanes": 1, "pipe": 1, "tf_stage": 2, "hreg": 1}

# nextpnr's names for the resources of the report, per family
BELS = {
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "brams": "DP16KD", "dsps": "MULT18X18D"},
    "ice40": {"luts": "ICESTORM_LC", "brams": "ICESTORM_RAM", "dsps": "ICESTORM_DSP", "sprams": "ICESTORM_SPRAM"},
}


def yosys_cells(stat_json: Path) -> dict:
    """Cell type -> count of the top design, from `stat -json`."""
    data = json.loads(stat_json.read_text())
    design = data.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:  # older layouts: per module only
        cells = {}
        for mod in (data.get("modules") or {}).values():
            for k, v in (mod.get("num_cells_by_type") or {}).items():
                cells[k] = cells.get(k, 0) + v
    return {k: int(v) for k, v in cells.items()}


def synth_counts(cells: dict, family: str) -> dict:
    """LUT4s, flip-flops, block RAMs and DSPs (and on iCE40 the UltraPlus SPRAMs) as Yosys mapped them (before
    placement)."""
    ffs = sum(v for k, v in cells.items() if k.startswith("SB_DFF") or k == "TRELLIS_FF")
    if family == "ecp5":
        # a CCU2C carry cell occupies two LUT4 sites, a 16x4 distributed RAM (TRELLIS_DPR16X4) a slice's two
        return {"luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) + 2 * cells.get("TRELLIS_DPR16X4", 0),
                "ffs": ffs, "brams": cells.get("DP16KD", 0), "dsps": cells.get("MULT18X18D", 0)}
    return {"luts": cells.get("SB_LUT4", 0), "ffs": ffs, "brams": cells.get("SB_RAM40_4K", 0),
            "dsps": cells.get("SB_MAC16", 0), "sprams": cells.get("SB_SPRAM256KA", 0)}


def utilisation(log_text: str) -> dict:
    """nextpnr's "Device utilisation" table: bel type -> (used, available)."""
    table = {}
    for line in log_text.splitlines():
        m = _UTIL.match(line.strip())
        if m:
            table[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return table


def fmax_mhz(report: dict | None, log_text: str) -> float | None:
    """The achieved Fmax of the design's clock: nextpnr's JSON report, else the last figure in its log
    (nextpnr prints one per timing analysis; the last one is after routing). The slowest clock if several."""
    if report and report.get("fmax"):
        # nextpnr also times its own constant net ("$PACKER_GND_NET..."): not a clock of the design
        vals = [v.get("achieved") for k, v in report["fmax"].items()
                if v.get("achieved") is not None and not k.startswith("$PACKER")]
        if vals:
            return float(min(vals))
    last = {}
    for m in _FMAX.finditer(log_text):
        if not m.group(1).startswith("$PACKER"):
            last[m.group(1)] = float(m.group(2))
    return min(last.values()) if last else None


def critical_path(report: dict | None) -> dict | None:
    """Where the slowest register-to-register path of the clock starts and ends, and its delay (ns)."""
    for cp in (report or {}).get("critical_paths") or []:
        path = cp.get("path") or []
        if path and "<async>" not in (cp.get("from", "") + cp.get("to", "")):
            return {"from": path[0]["from"]["cell"], "to": path[-1]["to"]["cell"],
                    "delay_ns": round(sum(p.get("delay", 0.0) for p in path), 3), "steps": len(path)}
    return None


def first_error(log_text: str) -> str | None:
    """The first error line of a tool's log ("src/x.sv:12: ERROR: ..." from Yosys, "ERROR: ..." from nextpnr)."""
    for line in log_text.splitlines():
        if "ERROR:" in line:
            return line.strip()
    return None


def overflows(used: dict, capacity: dict) -> list:
    """["LUT4 30123/24288", ...] for every resource used beyond the part's capacity."""
    return [f"{k} {used[k]:,}/{capacity[k]:,}" for k in used if k in capacity and used[k] > capacity[k]]


def throughput(model: Model, simd: int, pe: int, learn: bool, fmax: float | None) -> dict:
    """Cycles per image (first beat to result, docs/HARDWARE.md) and per learning step (forward, one delta
    write per neuron through the host port, the update passes of all layers at once; docs/HARDWARE_UPDATE.md),
    and how many of each per second at `fmax` MHz."""
    cyc = cycles_formula(model, simd, pe)
    out = {"cycles_per_image": cyc, "images_per_s": round(fmax * 1e6 / cyc, 1) if fmax else None}
    if learn:
        step = cyc + sum(lay.N for lay in model.layers) + update_cycles_formula(model, simd, **UART_UPDATE)
        out["cycles_per_learning_step"] = step
        out["learning_steps_per_s"] = round(fmax * 1e6 / step, 1) if fmax else None
    return out
