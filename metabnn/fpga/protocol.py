"""The host's side of hw/fpga/mbnn_uart_top.sv's UART protocol: the bytes of each command and the length of
its reply. Request/response: send one command, read its reply, then the next (the wrapper has no FIFO).

    port.write(protocol.image(pixels, bank=0)); cls = port.read(1)[0]         # e.g. pyserial at 115200 8N1
    port.write(protocol.mem_write(layer, sel, addr, data)); assert port.read(1) == protocol.ACK

A learning step (a bitstream built with --learn), deltas from the host's golden model (metabnn.sim.learn_step,
FORMAT.md 4.3): image(...) -> class, then delta(layer, j, d) for every neuron, then UPDATE -> ACK. Before the
first step the host loads each layer's hidden weights (hidden(...)), f_meta table (table(...)), away table where
the model has one (table(..., away=True)) and lr_shift, and for a model that rounds stochastically each layer's
rounding state from the file (sr_state(...), FORMAT.md 4.4); sr_step_read(...) and hidden_read(...) read back
what the chip learned, to save it.
"""

from __future__ import annotations

import struct

import numpy as np

ACK, UNKNOWN = b"k", b"?"
SCORE = b"S"        # reply: 8 bytes, the last image's winning score (int64, little-endian)
UPDATE = b"U"       # reply: ACK once every layer's update pass is done


def image(pixels, bank: int = 0, adapt: bool = False) -> bytes:
    """'I' bank adapt pixels: one image (uint8 pixels, K0 of them); reply: the class, one byte."""
    px = np.asarray(pixels)
    if px.ndim != 1 or px.min(initial=0) < 0 or px.max(initial=0) > 255:
        raise ValueError("pixels must be one image of uint8 values")
    return b"I" + bytes([bank & 0xFF, int(bool(adapt))]) + px.astype(np.uint8).tobytes()


def sign_mask_problem(mask: int) -> str | None:
    """Why `mask` cannot go to a sign-word write (sel 0), or None: the engine writes sign words in whole bytes
    (mbnn_layer.sv, docs/HARDWARE.md "Memory port"), so every byte of the mask is 0x00 or 0xFF."""
    m = int(mask)
    if not 0 <= m <= 0xFFFFFFFF:
        return f"sign-word mask {m:#x} is not a 32-bit value"
    bad = [k for k in range(4) if (m >> 8 * k) & 0xFF not in (0, 0xFF)]
    if bad:
        return (f"sign-word mask {m:#010x} splits byte {bad[0]}: the engine writes sign words in whole bytes "
                "(every mask byte 0x00 or 0xFF; write the byte's other bits with their current values)")
    return None


def mem_write(layer: int, sel: int, addr: int, data: int, mask: int = 0xFFFFFFFF) -> bytes:
    """'W': the engine's memory port (docs/HARDWARE.md: sel 0 sign word, 1 M, 2 C, 3 f, 4 g, 5/6 b halves).
    A sign word's mask is in whole bytes (ValueError otherwise: sign_mask_problem)."""
    if sel == 0 and (why := sign_mask_problem(mask)):
        raise ValueError(why)
    return b"W" + struct.pack("<BBIII", layer, sel, addr & 0xFFFFFFFF, data & 0xFFFFFFFF, mask & 0xFFFFFFFF)


def lr_shift(layer: int, shift: int) -> bytes:
    return b"R" + bytes([layer, shift & 0x1F])


AWAY_INDEX = 1 << 12  # 'T' index bit 12: the entry is the away table G's (the board top's tbl_away)


def table(layer: int, index: int, q15: int, away: bool = False) -> bytes:
    """'T': entry `index` of the layer's f_meta table F, or with `away` of its away table G (FORMAT.md 4.2.1; a
    bitstream whose unit for the layer has G: metabnn fpga --learn builds it for every layer with a table, a unit
    without G ignores the write); reply ACK."""
    if not 0 <= index < AWAY_INDEX:
        raise ValueError(f"table index {index} is not below {AWAY_INDEX} (k <= 12)")
    return b"T" + struct.pack("<BHH", layer, index | (AWAY_INDEX if away else 0), q15 & 0xFFFF)


def hidden(layer: int, addr: int, word: int, simd: int, hb: int) -> bytes:
    """'H': hidden weight word `addr` (chunk layout of docs/HARDWARE_UPDATE.md: SIMD lanes of HB bits)."""
    n = (simd * hb + 7) // 8
    return b"H" + struct.pack("<BI", layer, addr) + int(word).to_bytes(n, "little")


def delta(layer: int, neuron: int, value: int) -> bytes:
    return b"D" + struct.pack("<BHh", layer, neuron, int(value))


def counters(layer: int) -> bytes:
    """'C': reply n_changed, n_flipped of the layer's last update pass (two uint32, little-endian)."""
    return b"C" + bytes([layer])


def sr_state(layer: int, rounding: int, seed: int, step: int) -> bytes:
    """'G': the layer's stochastic rounding state (FORMAT.md 4.4: rounding bit, sr_seed, sr_step); reply ACK."""
    return b"G" + struct.pack("<BBII", layer, rounding & 1, seed & 0xFFFFFFFF, step & 0xFFFFFFFF)


def sr_step_read(layer: int) -> bytes:
    """'Q': reply the layer's sr_step now (uint32, little-endian): every pass of a stochastic layer counts one."""
    return b"Q" + bytes([layer])


def hidden_read(layer: int, addr: int) -> bytes:
    """'Y': reply hidden weight word `addr` of the layer, (SIMD * HB + 7) // 8 bytes, little-endian."""
    return b"Y" + struct.pack("<BI", layer, addr)
