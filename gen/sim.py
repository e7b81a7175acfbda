"""Stream helpers for the Amaranth simulator, beside the stream components they drive.

Payloads are plain integers; :func:`pack` and :func:`unpack` go through the unit's own payload
layout (``Layout.const`` / ``Layout.from_bits``), so a test checks exactly the bit layout the
sidecar documents. :func:`run_stream` drives a unit's ``i`` stream and collects ``o`` under
random valid/ready patterns, recording the cycle of every transfer.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from amaranth.hdl import ClockDomain, Module, Value
from amaranth.lib import data
from amaranth.sim import Simulator

__all__ = [
    "pack",
    "unpack",
    "stream_put",
    "stream_get",
    "StreamRun",
    "run_stream",
    "run_testbench",
    "combinational_map",
]


def pack(layout: data.Layout, values: Mapping[str, Sequence[int]]) -> int:
    """Payload integer of ``{field: [elements]}`` (ints, any sign) in ``layout``."""
    return layout.const({k: list(v) for k, v in values.items()}).as_bits()


def unpack(layout: data.Layout, payload: int) -> dict[str, list[int]]:
    """Inverse of :func:`pack`: ``{field: [elements]}``, signed fields sign-extended."""
    view = layout.from_bits(payload)
    return {name: [int(view[name][e]) for e in range(member.shape.length)]
            for name, member in layout}


async def stream_put(ctx, stream, payload: int) -> None:
    """Offer ``payload`` on ``stream`` until it is accepted (one transfer)."""
    ctx.set(stream.valid, 1)
    ctx.set(Value.cast(stream.payload), payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream) -> int:
    """Wait for one transfer on ``stream`` and return its payload as an integer."""
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(Value.cast(stream.payload)).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


@dataclass
class StreamRun:
    """What :func:`run_stream` observed: payloads and the cycle (edge number) of each transfer."""

    outputs: list[int] = field(default_factory=list)
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)


def run_stream(
    dut,
    inputs: Sequence[int],
    expected_outputs: int,
    *,
    seed: int = 0,
    p_valid: float = 1.0,
    p_ready: float = 1.0,
    max_cycles: int | None = None,
) -> StreamRun:
    """Drive ``inputs`` into ``dut.i`` and collect ``expected_outputs`` transfers from ``dut.o``.

    Each cycle ``i.valid`` is offered with probability ``p_valid`` and ``o.ready`` raised with
    probability ``p_ready`` (random patterns from ``seed``). Once offered, an input stays valid
    and unchanged until accepted, as the stream rules require. Transfers are recorded at the
    rising edge where valid and ready are both high.
    """
    rng = random.Random(seed)
    run = StreamRun()
    limit = max_cycles or 50 * (len(inputs) + expected_outputs) + 100
    ipay = Value.cast(dut.i.payload)
    opay = Value.cast(dut.o.payload)

    async def bench(ctx):
        k = 0
        offered = False
        for cycle in range(limit):
            if k < len(inputs) and (offered or rng.random() < p_valid):
                ctx.set(dut.i.valid, 1)
                ctx.set(ipay, inputs[k])
                offered = True
            else:
                ctx.set(dut.i.valid, 0)
            ctx.set(dut.o.ready, 1 if rng.random() < p_ready else 0)
            i_fire = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            o_fire = ctx.get(dut.o.valid) and ctx.get(dut.o.ready)
            if o_fire:
                run.outputs.append(ctx.get(opay))
                run.out_cycles.append(cycle)
            await ctx.tick()
            if i_fire:
                run.in_cycles.append(cycle)
                k += 1
                offered = False
            if len(run.outputs) >= expected_outputs and k >= len(inputs):
                return
        raise AssertionError(
            f"timeout after {limit} cycles: {k}/{len(inputs)} inputs accepted, "
            f"{len(run.outputs)}/{expected_outputs} outputs"
        )

    run_testbench(dut, bench)
    return run


def run_testbench(dut, bench) -> None:
    """Run the async testbench ``bench(ctx)`` on ``dut`` under a clock of its own (so that
    combinational units, pipeline=0, run too)."""
    top = Module()
    top.submodules.dut = dut
    top.domains.sync = ClockDomain()
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def combinational_map(dut, inputs: Sequence[int]) -> list[int]:
    """Outputs of a combinational (``pipeline=0``) unit for each input payload, no clock."""
    ipay = Value.cast(dut.i.payload)
    opay = Value.cast(dut.o.payload)
    out: list[int] = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 1)
        for x in inputs:
            ctx.set(ipay, x)
            out.append(ctx.get(opay))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return out
