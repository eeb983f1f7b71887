"""cocotb stream drivers shared by the conv blocks' tests (mbnn_swg, mbnn_pool): a valid/ready input fed with random
idle cycles, a valid/ready output taken with random stalls, checking that an offered beat does not change until
it is taken."""

from __future__ import annotations

from cocotb.triggers import FallingEdge, ReadOnly


async def drive(dut, rng, beats: list[int], stop_after: int | None = None, p_idle: float = 0.3):
    """Offer `beats` on in_valid/in_data with random idle cycles; stop (in_valid low) after `stop_after` accepted."""
    i = 0
    while i < len(beats) and (stop_after is None or i < stop_after):
        if rng.random() < p_idle:
            dut.in_valid.value = 0
            await FallingEdge(dut.clk)
            continue
        dut.in_valid.value = 1
        dut.in_data.value = beats[i]
        await ReadOnly()
        took = int(dut.in_ready.value)
        await FallingEdge(dut.clk)
        i += took
    dut.in_valid.value = 0


async def collect(dut, rng, n_beats: int, out: list, fields: tuple[str, ...], p_ready: float = 0.7,
                  max_cycles: int | None = None):
    """Append n_beats output beats (a tuple of the `fields` signals each) to `out`, out_ready low at random; fails
    after `max_cycles` (default 200 per beat) without them all (a stalled stream)."""
    offered = None
    limit = max_cycles if max_cycles is not None else 200 * n_beats + 1000
    cycles = 0
    while len(out) < n_beats:
        cycles += 1
        assert cycles <= limit, f"{len(out)} of {n_beats} output beats after {limit} cycles: the stream stalled"
        ready = rng.random() < p_ready
        dut.out_ready.value = int(ready)
        await ReadOnly()
        if int(dut.out_valid.value):
            beat = tuple(int(getattr(dut, f).value) for f in fields)
            assert offered is None or beat == offered, f"an offered beat changed before it was taken: {offered} -> {beat}"
            if ready:
                out.append(beat)
                offered = None
            else:
                offered = beat
        await FallingEdge(dut.clk)
    dut.out_ready.value = 0


async def reset_mid_image(dut, rng, part: list[int], min_cycles: int) -> None:
    """Stream half of `part` (one image's beats) while taking outputs with random stalls for at least `min_cycles`,
    then reset: out_valid must be low right after, and the block ready for a fresh image."""
    import cocotb

    feeder = cocotb.start_soon(drive(dut, rng, part, stop_after=len(part) // 2 + 1))
    cycles = 0
    while cycles < min_cycles or not feeder.done():  # outputs taken meanwhile, or the input stalls on a full buffer
        dut.out_ready.value = int(rng.random() < 0.5)
        await FallingEdge(dut.clk)
        cycles += 1
        assert cycles < 100_000, "the half image was not taken"
    dut.out_ready.value = 0
    dut.rst.value = 1
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ReadOnly()
    assert int(dut.out_valid.value) == 0, "out_valid after reset"
    await FallingEdge(dut.clk)
