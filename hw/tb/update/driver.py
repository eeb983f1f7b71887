"""cocotb driver of one mbnn_update instance: host writes, a pass with back-pressure, read-back.

All inputs change at the falling clock edge and are sampled by the next rising edge; all
outputs are read at the falling edge (mid-cycle, settled), so there is no race with
Verilator's scheduling.
"""

from __future__ import annotations

import random

from cocotb.triggers import FallingEdge

from update.chunks import chunks_to_hidden, hidden_to_chunks, n_chunks, x_to_chunks


class UpdateDriver:
    def __init__(self, dut, *, K: int, N: int, pixels: bool, hb: int, tk: int, lanes: int, prefix: str = "",
                 hreg: int = 0):
        self.dut, self.p = dut, prefix
        self.read_latency = 1 + hreg  # cycles from h_re to h_rdata / h_rvalid (mbnn_update.sv HREG)
        self.K, self.N, self.pixels, self.hb, self.tk, self.lanes = K, N, pixels, hb, tk, lanes
        self.G = n_chunks(K, lanes)
        self.clk = self.sig("clk")

    def sig(self, name):
        return getattr(self.dut, self.p + name)

    def set(self, name, value):
        self.sig(name).value = value

    def get(self, name) -> int:
        v = self.sig(name).value
        return int(v.to_unsigned()) if hasattr(v, "to_unsigned") else int(v)  # LogicArray or Logic

    async def edge(self, n: int = 1):
        for _ in range(n):
            await FallingEdge(self.clk)

    def idle_inputs(self):
        for name in ("tbl_we", "tbl_away", "x_we", "d_we", "h_we", "h_re", "start", "rst"):
            self.set(name, 0)
        self.set("sgn_ready", 1)

    async def reset(self, cycles: int = 2):
        self.idle_inputs()
        self.set("rst", 1)
        await self.edge(cycles)
        self.set("rst", 0)
        await self.edge()

    async def _write(self, we: str, addr: str, data: str, items):
        for a, v in items:
            self.set(we, 1)
            self.set(addr, a)
            self.set(data, v)
            await self.edge()
        self.set(we, 0)

    async def load_table(self, table, away: bool = False):
        """The f_meta table F, or with away the away table G (tbl_away high: FORMAT.md 4.2.1)."""
        self.set("tbl_away", int(away))
        await self._write("tbl_we", "tbl_addr", "tbl_data", enumerate(int(f) for f in table))
        self.set("tbl_away", 0)

    async def load_x(self, x):
        await self._write("x_we", "x_addr", "x_data", enumerate(x_to_chunks(x, self.pixels, self.lanes)))

    async def load_deltas(self, delta):
        await self._write("d_we", "d_addr", "d_data", ((j, int(d) & 0xFFFF) for j, d in enumerate(delta)))

    async def load_hidden(self, hidden):
        await self._write("h_we", "h_addr", "h_wdata", enumerate(hidden_to_chunks(hidden, self.hb, self.lanes)))

    async def read_hidden(self):
        """Hidden memory through the host read port (one chunk per cycle, pipelined)."""
        words, n, lat = [], self.N * self.G, self.read_latency
        for c in range(n + lat - 1):
            self.set("h_re", int(c < n))
            self.set("h_addr", min(c, n - 1))
            await self.edge()  # the rising edge in between read (or moved on) a word
            valid = self.get("h_rvalid")
            assert valid == int(c >= lat - 1), f"h_rvalid must follow h_re by exactly {lat} cycle(s)"
            if valid:
                words.append(self.get("h_rdata"))
        self.set("h_re", 0)
        return chunks_to_hidden(words, self.N, self.K, self.hb, self.lanes)

    async def run_pass(self, ready_prob: float = 1.0, rng: random.Random | None = None, timeout: int | None = None):
        """Pulse start, drive sgn_ready, collect the sign writes; returns (cycles, {addr: word})."""
        rng = rng or random.Random(0)
        timeout = timeout or 20 * (self.N * self.G + 16) + 100
        self.set("start", 1)
        await self.edge()  # the rising edge in between sampled start: cycle 0
        self.set("start", 0)
        writes: dict[int, int] = {}
        for cycle in range(1, timeout):
            ready = 1 if ready_prob >= 1.0 else int(rng.random() < ready_prob)
            self.set("sgn_ready", ready)
            # registered outputs seen now were set by the last rising edge; the write
            # fires at the next one if ready
            if self.get("sgn_we") and ready:
                a = self.get("sgn_addr")
                assert a not in writes, f"sign chunk {a} written twice in one pass"
                writes[a] = self.get("sgn_data")
                assert a == self.get("sgn_row") * self.G + self.get("sgn_chunk"), "sgn_row/sgn_chunk disagree with sgn_addr"
            await self.edge()
            if self.get("done"):
                self.set("sgn_ready", 1)
                assert self.get("busy") == 0, "busy must fall with done"
                return cycle, writes
        raise AssertionError(f"no done within {timeout} cycles")

    def counters(self) -> tuple[int, int]:
        return self.get("n_changed"), self.get("n_flipped")
