"""cocotb driver for hw/rtl/mbnn_top.sv: streams images in, collects (class, score) out.

A pure driver, so the checks live in the pytest functions (tests/hw/test_engine_top.py) and the same
module serves metabnn.backends.rtl. The case comes as a pickle named by $MBNN_TB_CASE:
    simd, images uint8[n, K0], banks int[n], adapt int[n],
    gap_p (probability of an idle input cycle), stall_p (probability out_ready is low),
    serial (one image in flight: for latency), reset_at (cycle to pulse reset mid-stream, or None),
    writes [(layer, sel, addr, data, mask)] applied through the memory port before streaming,
    seed, out (path of the .npz written: classes, scores, latency, cycles).
Drive on the falling edge, the handshake happens at the next rising edge when valid & ready.
It also checks the stream rule: once out_valid is high it stays high with the same data until taken.
"""

from __future__ import annotations

import os
import pickle

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


def image_beats(image: np.ndarray, simd: int, pad_rng=None) -> list[int]:
    """uint8[K0] -> ceil(K0/SIMD) ints, pixel i of a beat at bits [8i, 8i+8). Padding pixels are
    random garbage when pad_rng is given (the engine must ignore them), else 0."""
    k = image.shape[0]
    ch = -(-k // simd)
    buf = np.zeros(ch * simd, dtype=np.uint8)
    if pad_rng is not None:
        buf[k:] = pad_rng.integers(0, 256, ch * simd - k)
    buf[:k] = image
    return [int.from_bytes(buf[i * simd:(i + 1) * simd].tobytes(), "little") for i in range(ch)]


async def pulse_reset(dut, cycles: int = 2):
    dut.rst.value = 1
    dut.in_valid.value = 0
    for _ in range(cycles):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


async def write_mem(dut, writes):
    from metabnn.fpga.protocol import sign_mask_problem

    for layer, sel, addr, data, mask in writes:
        if int(sel) == 0 and (why := sign_mask_problem(int(mask) & 0xFFFFFFFF)):
            raise ValueError(f"memory write to layer {layer} word {addr}: {why}")
        dut.mem_we.value = 1
        dut.mem_layer.value = int(layer)
        dut.mem_sel.value = int(sel)
        dut.mem_addr.value = int(addr)
        dut.mem_wdata.value = int(data) & 0xFFFFFFFF
        dut.mem_wmask.value = int(mask) & 0xFFFFFFFF
        await FallingEdge(dut.clk)
    dut.mem_we.value = 0


@cocotb.test()
async def run_case(dut):
    with open(os.environ["MBNN_TB_CASE"], "rb") as f:
        case = pickle.load(f)
    simd = int(case["simd"])
    images = np.asarray(case["images"], dtype=np.uint8)
    n = images.shape[0]
    banks = np.asarray(case.get("banks", np.zeros(n)), dtype=np.int64)
    adapt = np.asarray(case.get("adapt", np.zeros(n)), dtype=np.int64)
    rng = np.random.default_rng(case.get("seed", 0))
    gap_p, stall_p = float(case.get("gap_p", 0.0)), float(case.get("stall_p", 0.0))
    serial = bool(case.get("serial", False))
    reset_at = case.get("reset_at")
    pad_rng = rng if case.get("pad_garbage", False) else None
    beats = [image_beats(images[i], simd, pad_rng) for i in range(n)]

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.in_valid.value = 0
    dut.in_data.value = 0
    dut.in_bank.value = 0
    dut.in_adapt.value = 0
    dut.out_ready.value = 0
    dut.mem_we.value = 0
    dut.mem_layer.value = 0
    dut.mem_sel.value = 0
    dut.mem_addr.value = 0
    dut.mem_wdata.value = 0
    dut.mem_wmask.value = 0
    dut.rst.value = 1
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    await write_mem(dut, case.get("writes", []))

    classes, scores, start, latency = [], [], {}, []
    img = beat = 0
    holding = False           # a beat is offered and not yet taken: it must stay (stream rule)
    pending_out = None        # (class, score) seen valid but not taken
    cycle = 0
    limit = int(case.get("max_cycles", 50_000_000))
    while len(classes) < n:
        await FallingEdge(dut.clk)
        cycle += 1
        if cycle > limit:
            raise AssertionError(f"no result after {limit} cycles ({len(classes)}/{n} images done)")
        if reset_at is not None and cycle == reset_at:
            await pulse_reset(dut)
            reset_at = None
            classes, scores, start, latency = [], [], {}, []
            img = beat = 0
            holding, pending_out = False, None
            continue
        in_flight = img - len(classes)
        may_send = img < n and (not serial or in_flight == 0 or beat > 0)
        if holding or (may_send and rng.random() >= gap_p):
            holding = True
            dut.in_valid.value = 1
            dut.in_data.value = beats[img][beat]
            dut.in_bank.value = int(banks[img])
            dut.in_adapt.value = int(adapt[img])
        else:
            dut.in_valid.value = 0
        ready = rng.random() >= stall_p
        dut.out_ready.value = int(ready)

        if holding and int(dut.in_ready.value):
            if beat == 0:
                start[img] = cycle
            holding = False
            beat += 1
            if beat == len(beats[img]):
                img, beat = img + 1, 0
        if int(dut.out_valid.value):
            now = (int(dut.out_class.value), dut.out_score.value.to_signed())
            if pending_out is not None:
                assert now == pending_out, f"output changed while waiting for ready: {pending_out} -> {now}"
            else:
                latency.append(cycle - start[len(classes)])
            if ready:
                classes.append(now[0])
                scores.append(now[1])
                pending_out = None
            else:
                pending_out = now
        else:
            assert pending_out is None, "out_valid dropped before the result was taken"
    np.savez(case["out"], classes=np.array(classes, dtype=np.int64), scores=np.array(scores, dtype=np.int64),
             latency=np.array(latency, dtype=np.int64), cycles=np.int64(cycle))
