"""cocotb: hw/fpga/mbnn_uart_top.sv driven through its UART pins only, as a board's host would, against
metabnn.sim. The case is a pickle named by $FPGA_UART_CASE: model, simd, cpb (clocks per bit), learn, images,
banks, adapts (inference), labels (learn), sign_writes (inference with sign words in SPRAM: the 'W' commands that
fill it, sent after one image on the empty memory), out (a JSON file of what was seen, for the pytest side).

Inference: every image's class byte and 'S' score equal the golden model's; a 'W' memory write (a sign word
of the output layer) changes the classes exactly as the same change to the golden model; an unknown
command answers '?'. Learning: hidden weights, f_meta tables (and away tables G where the model has them, 'T'
with index bit 12) and lr_shift loaded with 'H'/'T'/'R'; per step
'I' (class = golden), the golden deltas with 'D', 'U', then 'C' per layer (n_flipped = learn_step's flips);
a model's stochastic rounding state loaded with 'G', and after the steps every hidden word ('Y') and every
layer's sr_step ('Q') read back for comparison with the golden model's.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, with_timeout

from metabnn.backends.sources import source_root
from metabnn.fpga import protocol
from metabnn.sim import forward, learn_step

sys.path.insert(0, str(source_root("hw") / "tb"))
from update.chunks import hidden_to_chunks  # noqa: E402  (the update unit's hidden word layout)


class Host:
    """Bit-level UART on the top's pins, CPB clocks per bit, 8N1."""

    def __init__(self, dut, cpb: int):
        self.dut, self.cpb = dut, cpb

    async def _send(self, data: bytes) -> None:
        for b in data:
            for bit in [0] + [(b >> i) & 1 for i in range(8)] + [1]:
                self.dut.uart_rx.value = bit
                await ClockCycles(self.dut.clk, self.cpb)

    async def _recv(self, n: int) -> bytes:
        out = bytearray()
        for _ in range(n):
            await with_timeout(FallingEdge(self.dut.uart_tx), 200_000, "ns")
            await ClockCycles(self.dut.clk, self.cpb // 2)
            assert int(self.dut.uart_tx.value) == 0, "start bit not low in its middle"
            b = 0
            for i in range(8):
                await ClockCycles(self.dut.clk, self.cpb)
                b |= int(self.dut.uart_tx.value) << i
            await ClockCycles(self.dut.clk, self.cpb)
            assert int(self.dut.uart_tx.value) == 1, "no stop bit"
            out.append(b)
        return bytes(out)

    async def ask(self, data: bytes, reply: int) -> bytes:
        # the reply may start within the last byte's stop bit: listen before sending
        task = cocotb.start_soon(self._recv(reply))
        await self._send(data)
        return await task


@cocotb.test()
async def uart_top(dut):
    case = pickle.loads(Path(os.environ["FPGA_UART_CASE"]).read_bytes())
    model, simd, learn = case["model"], case["simd"], case["learn"]
    host = Host(dut, case["cpb"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.uart_rx.value = 1
    dut.rst_n.value = 1
    await ClockCycles(dut.clk, 40)  # the power-on reset runs out
    seen = {"classes": [], "golden": [], "scores": [], "golden_scores": [], "flips": [], "golden_flips": []}

    async def image(px, bank, adapt=False):
        cls = (await host.ask(protocol.image(px, bank=bank, adapt=adapt), 1))[0]
        score = int.from_bytes(await host.ask(protocol.SCORE, 8), "little", signed=True)
        ref = forward(model, px[None], bank=bank, adapt=adapt)[0]  # adapt: M moves here as on the chip
        seen["classes"].append(cls)
        seen["golden"].append(int(np.argmax(ref)))
        seen["scores"].append(score)
        seen["golden_scores"].append(int(ref.max()))

    if not learn:
        if case.get("sign_writes"):  # sign words in SPRAM (the UP5K build): empty until the host writes them
            px = case["images"][0]
            cls = (await host.ask(protocol.image(px, bank=0), 1))[0]
            score = int.from_bytes(await host.ask(protocol.SCORE, 8), "little", signed=True)
            ref = forward(model.copy(), px[None], bank=0)[0]  # what the file's signs would give
            seen["before_load"] = {"class": cls, "score": score, "golden_score": int(ref.max())}
            for cmd in case["sign_writes"]:
                assert await host.ask(cmd, 1) == protocol.ACK
        for px, bank, adapt in zip(case["images"], case["banks"], case["adapts"]):
            await image(px, int(bank), bool(adapt))
        # flip the output layer's weights of the class image 0 got: the memory port, through the UART
        last = len(model.layers) - 1
        lay = model.layers[last]
        j = seen["golden"][0]
        valid = (1 << min(lay.K, 32)) - 1
        word = int(lay.signs[j, 0]) ^ valid
        whole = (1 << 8 * -(-min(lay.K, 32) // 8)) - 1  # the bytes that hold the valid bits (whole bytes only)
        assert await host.ask(protocol.mem_write(last, 0, j * lay.W, word, whole), 1) == protocol.ACK
        lay.signs[j, 0] = word
        for px, bank, adapt in zip(case["images"], case["banks"], case["adapts"]):
            await image(px, int(bank), bool(adapt))
        seen["unknown"] = (await host.ask(b"Z", 1)).decode()
    else:
        hb, tk = model.layers[0].bits, model.layers[0].table_bits
        for l, lay in enumerate(model.layers):
            for a, w in enumerate(hidden_to_chunks(lay.hidden, hb, simd)):
                assert await host.ask(protocol.hidden(l, a, w, simd, hb), 1) == protocol.ACK
            for i, q in enumerate(lay.table):
                assert await host.ask(protocol.table(l, i, int(q)), 1) == protocol.ACK
            if lay.away is not None:  # the away table G (FORMAT.md 4.2.1): 'T' with index bit 12, the AWAY build
                for i, q in enumerate(lay.away):
                    assert await host.ask(protocol.table(l, i, int(q), away=True), 1) == protocol.ACK
            assert await host.ask(protocol.lr_shift(l, lay.lr_shift), 1) == protocol.ACK
            # the rounding state from the file (FORMAT.md 4.4): the chip continues the file's draw stream
            sr = protocol.sr_state(l, lay.rounding, lay.sr_seed, lay.sr_step)
            assert await host.ask(sr, 1) == protocol.ACK
        for px, label in zip(case["images"], case["labels"]):
            await image(px, 0)
            model, info = learn_step(model, px, int(label), bank=0)
            for l, d in enumerate(info.deltas):
                for j, v in enumerate(d):
                    assert await host.ask(protocol.delta(l, j, int(v)), 1) == protocol.ACK
            assert await host.ask(protocol.UPDATE, 1) == protocol.ACK
            for l in range(len(model.layers)):
                cnt = await host.ask(protocol.counters(l), 8)
                seen["flips"].append(int.from_bytes(cnt[4:], "little"))
                seen["golden_flips"].append(int(info.flips[l]))
        await image(case["images"][0], 0)  # after the last update: the learned model's class
        # the learned state read back over the UART, as a host saving the model would: every hidden word and
        # every layer's sr_step, against the golden model's after the same steps
        nbytes = (simd * hb + 7) // 8
        seen["hidden"], seen["golden_hidden"], seen["sr_steps"], seen["golden_sr_steps"] = [], [], [], []
        for l, lay in enumerate(model.layers):
            for a, w in enumerate(hidden_to_chunks(lay.hidden, hb, simd)):
                got = int.from_bytes(await host.ask(protocol.hidden_read(l, a), nbytes), "little")
                seen["hidden"].append(got)
                seen["golden_hidden"].append(w & ((1 << (simd * hb)) - 1))
            step = await host.ask(protocol.sr_step_read(l), 4)
            seen["sr_steps"].append(int.from_bytes(step, "little"))
            seen["golden_sr_steps"].append(int(lay.sr_step))
    Path(case["out"]).write_text(json.dumps(seen))
