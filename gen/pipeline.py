"""The stall pipeline shared by every unit, and small structural building blocks.

Every unit is a chain of combinational layers with register stages between some of them.
All stages move together (a global stall)::

    advance = ~o.valid | o.ready          (P >= 1; with P = 0: i.ready = o.ready)
    i.ready = advance
    on advance: stage[k] <= stage[k-1], valid[k] <= valid[k-1]

so a group is accepted on every clock while the consumer is ready (full throughput), and a
stalled consumer freezes every stage: nothing is lost, duplicated or reordered. ``o.valid``
comes straight from a register, so it never depends on ``o.ready``. Data registers have no
reset; the valid bits (and the accumulators of the MAC units) are cleared by ``rst``.

Datapath values travel as *trees*: nested lists, tuples and dicts of Amaranth values (``None``
for an unused slot); :func:`register` clocks a whole tree at once and passes constants through.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from typing import Any

from amaranth.hdl import Const, Module, Signal, Value

__all__ = [
    "cuts",
    "register",
    "valid_chain",
    "tree_reduce",
    "tree_sum",
    "tree_or",
    "prefix_sums",
    "payload_layout",
]


def cuts(layers: int, stages: int) -> list[int]:
    """Register stages to insert after each of ``layers`` layers, ``stages`` in total.

    Stage k (1-based) goes after layer ``ceil(k * layers / stages)``: evenly spread, the last
    one always after the final layer (registered outputs). With more stages than layers the
    extra ones stack up as plain delays.
    """
    out = [0] * layers
    for k in range(1, stages + 1):
        out[max(1, math.ceil(k * layers / stages)) - 1] += 1
    return out


def _map(fn: Callable[[Value], Any], tree: Any) -> Any:
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_map(fn, v) for v in tree)
    return fn(tree)


def register(m: Module, advance: Value, tree: Any, name: str, count: int = 1) -> Any:
    """``count`` register stages for every value in ``tree``, loading when ``advance`` is high.

    Constants pass through unregistered. Returns a tree of the same structure.
    """
    for stage in range(count):
        loads = []

        def reg(v: Value, stage: int = stage) -> Value:
            v = Value.cast(v)
            if isinstance(v, Const):
                return v
            r = Signal(v.shape(), name=f"{name}_s{stage}", reset_less=True)
            loads.append(r.eq(v))
            return r

        tree = _map(reg, tree)
        if loads:
            with m.If(advance):
                m.d.sync += loads
    return tree


def valid_chain(m: Module, advance: Value, valid: Value, count: int, name: str = "valid") -> Value:
    """``valid`` delayed by ``count`` stages (cleared by reset), loading on ``advance``."""
    for stage in range(count):
        r = Signal(name=f"{name}_s{stage}")
        with m.If(advance):
            m.d.sync += r.eq(valid)
        valid = r
    return valid


def tree_reduce(op: Callable[[Value, Value], Value], values: Sequence[Value]) -> Value:
    """Balanced binary tree of ``op`` over ``values`` (depth ceil(log2 len))."""
    vals = list(values)
    if not vals:
        raise ValueError("tree_reduce needs at least one value")
    while len(vals) > 1:
        nxt = [op(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_sum(values: Sequence[Value]) -> Value:
    """Balanced adder tree; every level widens by one bit, so the sum never overflows."""
    return tree_reduce(operator.add, values)


def tree_or(values: Sequence[Value]) -> Value:
    """Balanced OR tree."""
    return tree_reduce(operator.or_, values)


def prefix_sums(bits: Sequence[Value], width: int) -> list[Value]:
    """Exclusive prefix counts ``p[j] = bits[0] + ... + bits[j-1]`` (Sklansky, log depth).

    Each count is ``width`` bits (enough for ``len(bits)``).
    """
    inc: list[Value] = [Value.cast(b) for b in bits]
    k = len(inc)
    d = 1
    while d < k:
        nxt = list(inc)
        for i in range(k):
            if i & d:
                src = (i & ~(d - 1)) - 1  # last index of the previous block of size d
                nxt[i] = (inc[i] + inc[src])[:width]
        inc = nxt
        d <<= 1
    return [Const(0, width)] + inc[:-1]


def payload_layout(fields: Sequence, lanes: int = 1):
    """Amaranth layout of a payload from :class:`gen.config.Field` s (first field at the LSB).

    Every field is an ``ArrayLayout`` of its elements (signed where the field is signed);
    with ``lanes > 1`` the payload is an array of ``lanes`` such structs, lane 0 at the LSB.
    """
    from amaranth.hdl import signed, unsigned
    from amaranth.lib import data

    members = {}
    for f in fields:
        shape = signed(f.elem_width) if f.signed else unsigned(f.elem_width)
        members[f.name] = data.ArrayLayout(shape, f.count)
    layout = data.StructLayout(members)
    return layout if lanes == 1 else data.ArrayLayout(layout, lanes)
