"""The LUT-RAM delay line is the register chain it replaces, bit for bit, under any stall."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import ClockDomain, Fragment, Module, Signal
from amaranth.sim import Simulator

from gen.config import TopKConfig
from gen.pipeline import RAM_DELAY_DEPTH, RAM_DELAY_MIN_BITS, ram_delay, register


@pytest.mark.parametrize("count", [2, 3, 7, RAM_DELAY_DEPTH - 1, RAM_DELAY_DEPTH,
                                   RAM_DELAY_DEPTH + 1, 2 * RAM_DELAY_DEPTH + 3])
def test_ram_delay_equals_register_chain(count: int) -> None:
    m = Module()
    cd = ClockDomain("sync")
    m.domains += cd
    advance = Signal()
    a, b = Signal(200), Signal(7)  # 207 bits: a RAM for every count >= 2
    ram_a, ram_b = ram_delay(m, advance, (a, b), count, "dl")
    reg_a, reg_b = register(m, advance, (a, b), "rg", count)
    assert 207 * count >= RAM_DELAY_MIN_BITS
    rng = random.Random(count)
    checked = 0

    async def bench(ctx):
        nonlocal checked
        # the chain's first `count` outputs after reset are its init values; the RAM's are
        # whatever it holds: compare from the `count`-th advance on (as the valid bits do)
        advances = 0
        for cycle in range(300):
            if cycle == 150:  # reset mid-stream: both restart
                ctx.set(ctx_rst, 1)
                await ctx.tick()
                ctx.set(ctx_rst, 0)
                advances = 0
            adv = rng.random() < 0.7
            ctx.set(advance, adv)
            ctx.set(a, rng.getrandbits(200))
            ctx.set(b, rng.getrandbits(7))
            if advances >= count:
                assert ctx.get(ram_a) == ctx.get(reg_a), f"cycle {cycle}"
                assert ctx.get(ram_b) == ctx.get(reg_b), f"cycle {cycle}"
                checked += 1
            await ctx.tick()
            advances += adv

    ctx_rst = cd.rst
    sim = Simulator(m)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert checked > 100


def test_small_delay_lines_stay_in_flip_flops() -> None:
    m = Module()
    advance = Signal()
    x = Signal(8)
    out = ram_delay(m, advance, x, 3, "dl")  # 24 bit-stages: below RAM_DELAY_MIN_BITS
    assert not m._named_submodules and out.name.startswith("dl")
    Fragment.get(m, None)  # elaborate it: the module is used, no UnusedElaboratable warning


def test_rank_selector_keeps_raw_data_out_of_the_stage_registers() -> None:
    """From 8:16 on, the raw elements skip the stage registers: the live bits after the key
    layer are the keys alone."""
    cfg = TopKConfig(n=8, m=16, fmt="int8", arch="rank", pipeline="auto")
    live = cfg.architecture.live_bits()
    assert live[0] == 16 * 8
    assert cfg.pipeline >= 6 and cfg.predicted_fmax_mhz >= 190
