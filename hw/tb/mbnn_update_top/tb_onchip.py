"""cocotb: complete on-chip learning steps on hw/rtl/mbnn_update_top.sv.

Per step: the image goes through the RTL engines (forward in RTL; class and score checked against
metabnn.sim), the testbench computes the deltas with the golden model (the host/firmware role),
writes them, pulses upd_start; the update units use the layer inputs they captured from the RTL
forward and write new signs into the engines' weight memories. After every step each layer's
hidden memory, its engine's weight words and its flip counter must equal metabnn.sim.learn_step's.
The case is a pickle named by $UPD_CASE: model (the one the hex files were written from), simd,
hb, tk, steps, seed, images (optional uint8 [steps, K0]), labels (optional), bank, adapt,
strict (assert at the first difference; else record it in the npz and stop), out (npz written:
flips, changed [steps, L], cycles [steps], classes [steps], mismatches [str], sr_steps [steps, L]; with
states=True also the RTL's own memories after every step: hidden<l>, signs<l>, M<l> [steps, ...], read from
the chip). Layers rounding stochastically (FORMAT.md 4.4; the build's SR bit mask has them) get their rounding
bit, sr_seed and sr_step through the sr_* host port, and the chip's sr_step is checked after every step.
Layers with an away table G (FORMAT.md 4.2.1; the build's AWAY bit mask has them) get it through the table port
with tbl_away high (load_tables).
"""

from __future__ import annotations

import os
import pickle

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from metabnn.backends.rtl import update_cycles_formula
from metabnn.sim import forward, learn_step
from update.chunks import chunks_to_hidden, hidden_to_chunks, n_chunks, x_to_chunks


def val(sig) -> int:
    v = sig.value
    return int(v.to_unsigned()) if hasattr(v, "to_unsigned") else int(v)


async def edge(dut, n=1):
    for _ in range(n):
        await FallingEdge(dut.clk)


def idle(dut):
    for name in ("in_valid", "in_data", "in_bank", "in_adapt", "mem_we", "mem_layer", "mem_sel", "mem_addr",
                 "mem_wdata", "mem_wmask", "upd_sel", "lr_we", "lr_data", "tbl_we", "tbl_away", "tbl_addr", "tbl_data",
                 "d_we", "d_addr", "d_data", "h_we", "h_re", "h_addr", "h_wdata", "upd_start", "sr_we", "sr_rnd",
                 "sr_seed", "sr_step"):
        getattr(dut, name).value = 0
    dut.out_ready.value = 1


async def load_tables(dut, lay, l):
    """Layer l's f_meta table F and, where it has one, its away table G (tbl_away high) through the table port."""
    await host_write(dut, "tbl_we", "tbl_addr", "tbl_data", enumerate(int(f) for f in lay.table), l)
    if lay.away is not None:
        dut.tbl_away.value = 1
        await host_write(dut, "tbl_we", "tbl_addr", "tbl_data", enumerate(int(g) for g in lay.away), l)
        dut.tbl_away.value = 0


async def host_write(dut, we, addr, data, items, sel):
    dut.upd_sel.value = sel
    for a, v in items:
        getattr(dut, we).value = 1
        if addr:
            getattr(dut, addr).value = a
        getattr(dut, data).value = v
        await edge(dut)
    getattr(dut, we).value = 0


async def read_hidden(dut, l, lay, simd, hb, hreg=0):
    """Layer l's hidden memory through the host port, pipelined: the data 1 + HREG cycles after h_re."""
    dut.upd_sel.value = l
    words, n, lat = [], lay.N * n_chunks(lay.K, simd), 1 + hreg
    for c in range(n + lat - 1):
        dut.h_re.value = int(c < n)
        dut.h_addr.value = min(c, n - 1)
        await edge(dut)
        assert val(dut.h_rvalid) == int(c >= lat - 1), f"h_rvalid must follow h_re by exactly {lat} cycle(s)"
        if c >= lat - 1:
            words.append(val(dut.h_rdata))
    dut.h_re.value = 0
    return chunks_to_hidden(words, lay.N, lay.K, hb, simd)


def hidden_memory(dut, l, lay, simd, hb) -> np.ndarray:
    """Layer l's hidden memory read through the simulator (no clock; the host port is what
    tb_unit.py exercises, and this is ~K/SIMD times faster for large layers)."""
    mem = dut.u_bank.g_layer[l].g_learn.u_update.hmem
    words = [val(mem[a]) for a in range(lay.N * n_chunks(lay.K, simd))]
    return chunks_to_hidden(words, lay.N, lay.K, hb, simd)


def engine_weights(dut, l, lay) -> np.ndarray:
    """The engine's packed weight memory of layer l, read through the simulator (no clock), in FORMAT order: the
    engine keeps wide words, wmem[g*W + w] = word w of neurons g*PE + p at bits [32p +: 32] (mbnn_layer.sv)."""
    mem = dut.u_chain.g_layer[l].u_layer.wmem
    pe = len(mem[0].value) // 32
    words = [(val(mem[(j // pe) * lay.W + i]) >> (32 * (j % pe))) & 0xFFFFFFFF
             for j in range(lay.N) for i in range(lay.W)]
    return np.array(words, dtype=np.uint64).astype(np.uint32).reshape(lay.N, lay.W)


def engine_m(dut, l, lay, banks) -> np.ndarray:
    """The engine's M memory of layer l ([banks, N] int32, bank-major), read through the simulator."""
    mem = dut.u_chain.g_layer[l].u_layer.mmem
    return np.array([mem[i].value.to_signed() for i in range(banks * lay.N)], dtype=np.int64).reshape(banks, lay.N)


async def stream_image(dut, beats, rng=None, limit=100_000, what="the engine"):
    """One image's input beats into a learning top's stream, then its result beat: (class, score). With rng
    the input has random gaps (valid in about 4 cycles of 5); out_ready is held at 1 (idle())."""
    i = 0
    while i < len(beats):  # drive at the falling edge; the beat goes in at the next rising edge if ready
        go = rng is None or rng.random() < 0.8
        dut.in_valid.value = int(go)
        dut.in_data.value = int(beats[i])
        if go and val(dut.in_ready):
            i += 1
        await edge(dut)
    dut.in_valid.value = 0
    for _ in range(limit):
        if val(dut.out_valid):
            cls, score = val(dut.out_class), dut.out_score.value.to_signed()
            await edge(dut)  # out_ready is 1: taken
            return cls, score
        await edge(dut)
    raise AssertionError(f"no output from {what}")


async def update_pass(dut, expect_cycles: int) -> int:
    """Pulse upd_start and wait for upd_busy to fall: the cycles it took (every unit at once)."""
    dut.upd_start.value = 1
    await edge(dut)
    dut.upd_start.value = 0
    cycles = 0
    while True:
        await edge(dut)
        cycles += 1
        if not val(dut.upd_busy):
            return cycles
        assert cycles < 10 * expect_cycles, "the update does not finish"


async def infer(dut, image, simd):
    return await stream_image(dut, x_to_chunks(image, True, simd))


@cocotb.test()
async def onchip_learning(dut):
    with open(os.environ["UPD_CASE"], "rb") as f:
        case = pickle.load(f)
    model, simd, hb, tk = case["model"], int(case["simd"]), int(case["hb"]), int(case["tk"])
    steps = int(case["steps"])
    rng = np.random.default_rng(int(case.get("seed", 0)))
    images = case.get("images")
    labels = case.get("labels")
    bank, adapt = int(case.get("bank", 0)), bool(case.get("adapt", False))
    strict = bool(case.get("strict", True))
    for lay in model.layers:
        assert (lay.bits, lay.table_bits) == (hb, tk), "the build's HB/TK must match every layer"
    mismatches: list[str] = []

    def differ(msg: str) -> None:
        if strict:
            raise AssertionError(msg)
        mismatches.append(msg)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    idle(dut)
    dut.rst.value = 1
    await edge(dut, 3)
    dut.rst.value = 0
    await edge(dut)
    for l, lay in enumerate(model.layers):
        await host_write(dut, "h_we", "h_addr", "h_wdata", enumerate(hidden_to_chunks(lay.hidden, hb, simd)), l)
        await load_tables(dut, lay, l)
        await host_write(dut, "lr_we", None, "lr_data", [(0, lay.lr_shift)], l)
        dut.sr_rnd.value, dut.sr_seed.value = lay.rounding, lay.sr_seed
        await host_write(dut, "sr_we", None, "sr_step", [(0, lay.sr_step)], l)

    # case["update"]: the build's update units if not the defaults (update_cycles_formula's ulanes, pipe, tf_stage)
    expect_cycles = update_cycles_formula(model, simd, **case.get("update", {}))
    flips = np.zeros((steps, len(model.layers)), dtype=np.int64)
    changed = np.zeros_like(flips)
    sr_steps = np.zeros_like(flips)
    cycles_seen, classes = [], []
    keep_states = bool(case.get("states", False))
    states = {f"{what}{l}": [] for l in range(len(model.layers)) for what in ("hidden", "signs", "M")}
    dut.in_bank.value = bank
    dut.in_adapt.value = int(adapt)
    for step in range(steps):
        if mismatches:
            break
        image = images[step] if images is not None else rng.integers(0, 256, model.input_size).astype(np.uint8)
        label = int(labels[step]) if labels is not None else int(rng.integers(0, model.n_classes))
        # 1. forward in RTL, against the golden model with the same (current) state
        scores = forward(model, image[None], bank=bank)[0]  # frozen M: the outputs adaptation would give too
        cls, score = await infer(dut, image, simd)
        classes.append(cls)
        if (cls, score) != (int(np.argmax(scores)), int(scores.max())):
            differ(f"step {step}: RTL forward ({cls}, {score}) != golden ({int(np.argmax(scores))}, "
                   f"{int(scores.max())})")
            break
        # 2. the error and the deltas from the golden model (the firmware's job)
        model, info = learn_step(model, image, label, bank=bank, adapt=adapt)
        for l, d in enumerate(info.deltas):
            await host_write(dut, "d_we", "d_addr", "d_data", ((j, int(v) & 0xFFFF) for j, v in enumerate(d)), l)
        # 3. the update in RTL, all layers at once
        cycles = await update_pass(dut, expect_cycles)
        if cycles != expect_cycles:
            differ(f"update took {cycles} cycles, update_cycles_formula = {expect_cycles}")
        cycles_seen.append(cycles)
        # 4. every memory equals the golden state after the step
        for l, lay in enumerate(model.layers):
            # through the host port on the first and last step (the port works in this top), else directly
            if step in (0, steps - 1):
                got = await read_hidden(dut, l, lay, simd, hb, case.get("update", {}).get("hreg", 0))
            else:
                got = hidden_memory(dut, l, lay, simd, hb)
            if not np.array_equal(got, lay.hidden.astype(np.int64)):
                n = int(np.count_nonzero(got != lay.hidden))
                differ(f"step {step} layer {l}: {n} hidden weights differ")
            w = engine_weights(dut, l, lay)
            if keep_states:
                states[f"hidden{l}"].append(got)
                states[f"signs{l}"].append(w)
                states[f"M{l}"].append(engine_m(dut, l, lay, model.n_banks))
            if not np.array_equal(w, lay.signs):
                differ(f"step {step} layer {l}: engine weight memory differs")
            dut.upd_sel.value = l
            await edge(dut)
            changed[step, l], flips[step, l] = val(dut.n_changed), val(dut.n_flipped)
            sr_steps[step, l] = val(dut.sr_step_q)
            if flips[step, l] != info.flips[l]:
                differ(f"step {step} layer {l}: n_flipped {flips[step, l]} != {info.flips[l]}")
            if sr_steps[step, l] != lay.sr_step:
                differ(f"step {step} layer {l}: sr_step {sr_steps[step, l]} != {lay.sr_step}")
    done = len(cycles_seen)
    dut._log.info("on-chip learning: %d/%d steps, %d mismatches; update cycles per step %s; flips per layer %s",
                  done, steps, len(mismatches), sorted(set(cycles_seen)), flips.sum(axis=0).tolist())
    if case.get("out"):
        np.savez(case["out"], flips=flips[:done], changed=changed[:done], cycles=np.array(cycles_seen),
                 classes=np.array(classes), mismatches=np.array(mismatches, dtype=str), sr_steps=sr_steps[:done],
                 **({k: np.array(v) for k, v in states.items()} if keep_states else {}))
