"""The FPGA parts `metabnn fpga` targets: family, package, nextpnr arguments, capacities, and the board whose
pin constraint file (hw/fpga/) the bitstream is made for.

Capacities are the vendors' data-sheet figures (Lattice ECP5 family data sheet FPGA-DS-02012, iCE40 UltraPlus
FPGA-DS-02008, iCE40 LP/HX FPGA-DS-02029); nextpnr's "Design utilisation" table, which the flow reads after
packing, is the authority on what fits, these are what the report divides by when nextpnr stops early.
"""

from __future__ import annotations

from dataclasses import dataclass

from metabnn.errors import UsageError


@dataclass(frozen=True)
class Device:
    name: str            # the --device value
    family: str          # "ecp5" or "ice40": picks synth_<family>, nextpnr-<family>, the packer
    part: str            # the vendor's name, for the report
    nextpnr_args: tuple  # the part and package for nextpnr
    luts: int            # LUT4s
    ffs: int             # flip-flops
    brams: int           # block RAMs: ECP5 DP16KD (18 kbit), iCE40 SB_RAM40_4K (4 kbit)
    dsps: int            # ECP5 MULT18X18D, iCE40 SB_MAC16
    board: str           # the board of the pin constraint file
    constraints: str     # file name in hw/fpga/
    clock_mhz: float     # the board's oscillator: the wrapper's UART divider and the default --freq
    led_low: bool        # the board's LED is lit by a low pin

    @property
    def bram_kind(self) -> str:
        return "DP16KD" if self.family == "ecp5" else "SB_RAM40_4K"

    @property
    def dsp_kind(self) -> str:
        return "MULT18X18D" if self.family == "ecp5" else "SB_MAC16"


def _ecp5(size: str, luts: int, brams: int, dsps: int) -> Device:
    # the ULX3S is made with every one of these parts, in the same CABGA381 package and pinout
    return Device(name=f"ecp5-{size}", family="ecp5", part=f"LFE5U-{size[:-1].upper()}F-6BG381C",
                  nextpnr_args=(f"--{size}", "--package", "CABGA381", "--speed", "6"),
                  luts=luts, ffs=luts, brams=brams, dsps=dsps, board="ULX3S", constraints="ulx3s.lpf",
                  clock_mhz=25.0, led_low=False)


DEVICES = {d.name: d for d in (
    _ecp5("25k", 24_288, 56, 28),
    _ecp5("45k", 43_848, 108, 72),
    _ecp5("85k", 83_640, 208, 156),
    Device(name="ice40-up5k", family="ice40", part="iCE40UP5K-SG48", nextpnr_args=("--up5k", "--package", "sg48"),
           luts=5_280, ffs=5_280, brams=30, dsps=8, board="iCEBreaker", constraints="icebreaker.pcf",
           clock_mhz=12.0, led_low=True),
    Device(name="ice40-hx8k", family="ice40", part="iCE40HX8K-CT256", nextpnr_args=("--hx8k", "--package", "ct256"),
           luts=7_680, ffs=7_680, brams=32, dsps=0, board="iCE40-HX8K Breakout Board",
           constraints="ice40hx8k_breakout.pcf", clock_mhz=12.0, led_low=False),
)}


def device(name: str) -> Device:
    try:
        return DEVICES[name]
    except KeyError:
        raise UsageError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}") from None
