"""cocotb: on-chip learning of a conv net's dense layers on hw/rtl/mbnn_conv_update_top.sv (the conv layers frozen).

Per step: the image goes through the RTL, one pixel a beat in HWC order with random input gaps (class and score
checked against metabnn.sim); the testbench computes the deltas with the golden step that freezes the conv layers
(metabnn.sim.learn_step(frozen=conv_layers(model)), the host/firmware role), writes the dense layers' deltas and
pulses upd_start. After every step every dense layer's hidden memory (through the host port on the first and last
step), its engine's weight words, its flip and change counters, its sr_step and the update's cycles must equal the
golden step's, and every conv engine's weight words must still be the ones loaded (frozen).
Every memory is loaded through the ports (the engines' through mem_*, in the engine-row layout of
export/readmemh.rtl_layers; the hidden weights through h_*), so the build's own hex files do not matter.
The case is a pickle named by $CONV_UPD_CASE: model, simd, steps, images [steps, K0] (CHW), labels, bank, seed,
out (npz written: flips, changed [steps, L], cycles [steps], sr_steps [steps, L]).
"""

from __future__ import annotations

import os
import pickle
from types import SimpleNamespace

import cocotb
import numpy as np
from cocotb.clock import Clock

from mbnn_update_top.tb_onchip import (edge, engine_weights, host_write, idle, load_tables, read_hidden, stream_image,
                                      update_pass, val)
from metabnn.backends.rtl import conv_pixel_order
from metabnn.backends.rtl_native import conv_update_cycles, first_dense, format_columns, memory_writes, \
    stream_columns
from metabnn.export.readmemh import rtl_layers
from metabnn.sim import forward, learn_step
from metabnn.sim.bits import pack_bits, unpack_bits
from metabnn.sim.learn import conv_layers
from update.chunks import chunks_to_hidden, hidden_to_chunks, n_chunks


def hidden_memory(dut, l, lay, simd, hb) -> np.ndarray:
    """Dense layer l's hidden memory read through the simulator (no clock), in the unit's column order."""
    mem = dut.u_bank.g_layer[l].g_learn.u_update.hmem
    return chunks_to_hidden([val(mem[a]) for a in range(lay.N * n_chunks(lay.K, simd))], lay.N, lay.K, hb, simd)


async def infer(dut, pixels, rng):
    """One uint8 pixel a beat, with random input gaps."""
    return await stream_image(dut, pixels, rng, 1_000_000, "the conv learning top")


@cocotb.test()
async def conv_onchip_learning(dut):
    with open(os.environ["CONV_UPD_CASE"], "rb") as f:
        case = pickle.load(f)
    model, simd, steps = case["model"], int(case["simd"]), int(case["steps"])
    images, labels, bank = case["images"], case["labels"], int(case.get("bank", 0))
    rng = np.random.default_rng(int(case.get("seed", 0)))
    first, frozen = first_dense(model), conv_layers(model)
    hb = model.layers[first].bits
    rows = [SimpleNamespace(N=r.N, W=r.signs.shape[1], signs=r.signs) for r in rtl_layers(model)]  # engine rows

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    idle(dut)
    dut.rst.value = 1
    await edge(dut, 3)
    dut.rst.value = 0
    await edge(dut)
    for layer, sel, addr, data, mask in memory_writes(model).tolist():
        dut.mem_we.value, dut.mem_layer.value, dut.mem_sel.value = 1, layer, sel
        dut.mem_addr.value, dut.mem_wdata.value, dut.mem_wmask.value = addr, data, mask
        await edge(dut)
    dut.mem_we.value = 0
    for l in range(first, len(model.layers)):
        lay = model.layers[l]
        chunks = hidden_to_chunks(stream_columns(model, l, lay.hidden), hb, simd)
        await host_write(dut, "h_we", "h_addr", "h_wdata", enumerate(chunks), l)
        await load_tables(dut, lay, l)
        await host_write(dut, "lr_we", None, "lr_data", [(0, lay.lr_shift)], l)
        dut.sr_rnd.value, dut.sr_seed.value = lay.rounding, lay.sr_seed
        await host_write(dut, "sr_we", None, "sr_step", [(0, lay.sr_step)], l)
    conv_words = [engine_weights(dut, l, rows[l]) for l in frozen]
    for l in frozen:
        assert np.array_equal(conv_words[l], rows[l].signs), f"conv layer {l}: weights not loaded"

    expect_cycles = conv_update_cycles(model, simd)
    L = len(model.layers)
    flips, changed, sr_steps = (np.zeros((steps, L), np.int64) for _ in range(3))
    cycles_seen = []
    dut.in_bank.value = bank
    pix = conv_pixel_order(model, images)
    for step in range(steps):
        scores = forward(model, images[step][None], bank=bank)[0]
        got = await infer(dut, pix[step], rng)
        assert got == (int(np.argmax(scores)), int(scores.max())), f"step {step}: RTL forward {got}"
        model, info = learn_step(model, images[step], int(labels[step]), bank=bank, frozen=frozen)
        for l in range(first, L):
            await host_write(dut, "d_we", "d_addr", "d_data",
                             ((j, int(v) & 0xFFFF) for j, v in enumerate(info.deltas[l])), l)
        cycles = await update_pass(dut, expect_cycles)
        assert cycles == expect_cycles, f"step {step}: update took {cycles} cycles, formula {expect_cycles}"
        cycles_seen.append(cycles)
        for l in range(first, L):
            lay = model.layers[l]
            if step in (0, steps - 1):  # the host port, and the simulator's view of the memory between
                h = await read_hidden(dut, l, lay, simd, hb)
            else:
                h = hidden_memory(dut, l, lay, simd, hb)
            assert np.array_equal(format_columns(model, l, h), lay.hidden), f"step {step} layer {l}: hidden"
            w = format_columns(model, l, unpack_bits(engine_weights(dut, l, lay), lay.K))
            assert np.array_equal(pack_bits(w), lay.signs), f"step {step} layer {l}: engine weights"
            dut.upd_sel.value = l
            await edge(dut)
            changed[step, l], flips[step, l] = val(dut.n_changed), val(dut.n_flipped)
            sr_steps[step, l] = val(dut.sr_step_q)
            assert flips[step, l] == info.flips[l], f"step {step} layer {l}: n_flipped {flips[step, l]}"
            assert sr_steps[step, l] == (lay.sr_step if lay.rounding else 0), f"step {step} layer {l}: sr_step"
        for l in frozen:
            assert np.array_equal(engine_weights(dut, l, rows[l]), conv_words[l]), f"conv layer {l} changed"
    dut._log.info("conv on-chip learning: %d steps, update cycles %s, flips per layer %s", steps,
                  sorted(set(cycles_seen)), flips.sum(axis=0).tolist())
    np.savez(case["out"], flips=flips, changed=changed, cycles=np.array(cycles_seen), sr_steps=sr_steps)
