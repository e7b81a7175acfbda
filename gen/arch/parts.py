"""Structures more than one architecture builds: counts as carry-save levels, and the
compaction of a keep mask into the ordered output.

Both are written as explicit AND/OR/XOR logic, so that synthesis maps them to LUTs (no carry
chains), and split into *layers* the register scheduler may cut after.

::

    keep (M bits) ─► prefix counts (Sklansky) ─► one-hot selects ─► AND-OR ─► AND-OR ─► o
                                                  ▲  keep_j & (kept before j == s)
    raw elements (from the LUT-RAM delay) ────────┘

Slot ``s`` can only take an element ``j`` in ``s .. s + M - N`` (ascending order): each output
is an AND-OR over ``M - N + 1`` candidates, so the compaction's area grows with N (M - N + 1).
"""

from __future__ import annotations

import math
from typing import Any

from amaranth.hdl import Cat, Const, Module, Signal, Value

from ..pipeline import add_bits, tree_or

__all__ = ["THRESHOLD_BITS", "wire", "carry_save_levels", "carry_save", "below",
           "reduce_count", "prefix_levels", "compaction_layers", "build_compaction"]

#: Weighted bits of a count left for a threshold truth table (4: one LUT4).
THRESHOLD_BITS = 4


def wire(m: Module, v: Value, name: str, width: int | None = None) -> Signal:
    """``v`` as a named signal (keeps shared subexpressions shared in every backend)."""
    v = Value.cast(v)
    s = Signal(width if width is not None else len(v), name=name)
    m.d.comb += s.eq(v)
    return s


def _fa(m: Module, a: Value, b: Value, c: Value, name: str) -> tuple[Value, Value]:
    return (wire(m, a ^ b ^ c, f"{name}s", 1),
            wire(m, (a & b) | (a & c) | (b & c), f"{name}c", 1))


def carry_save_levels(bits: int, stop: int = THRESHOLD_BITS) -> int:
    """Full-adder levels that bring ``bits`` unit-weight bits to at most ``stop`` weighted
    bits (or to where no column has three bits left)."""
    cols = [bits]
    levels = 0
    while sum(cols) > stop and any(c >= 3 for c in cols):
        new = [0] * (len(cols) + 1)
        for k, c in enumerate(cols):
            q, r = divmod(c, 3)
            new[k] += q + r
            new[k + 1] += q
        while new and not new[-1]:
            new.pop()
        cols, levels = new, levels + 1
    return levels


def carry_save(m: Module, cols: list[list[Value]], name: str) -> list[list[Value]]:
    """One level: every column compresses its bits three at a time (full adders); a count
    already at :data:`THRESHOLD_BITS` bits or fewer passes unchanged."""
    if sum(map(len, cols)) <= THRESHOLD_BITS or not any(len(c) >= 3 for c in cols):
        return cols
    out: list[list[Value]] = [[] for _ in range(len(cols) + 1)]
    for k, col in enumerate(cols):
        col = list(col)
        t = 0
        while len(col) >= 3:
            s, c = _fa(m, col.pop(0), col.pop(0), col.pop(0), f"{name}_{k}_{t}")
            out[k].append(s)
            out[k + 1].append(c)
            t += 1
        out[k].extend(col)
    while out and not out[-1]:
        out.pop()
    return out


def below(cols: list[list[Value]], n: int) -> Value:
    """``sum of the weighted bits < n`` as one truth table (a LUT for <= 4 bits)."""
    bits = [(b, 1 << k) for k, col in enumerate(cols) for b in col]
    if not bits:
        return Const(int(n > 0), 1)
    table = 0
    for v in range(1 << len(bits)):
        if sum(w for t, (_, w) in enumerate(bits) if (v >> t) & 1) < n:
            table |= 1 << v
    return Const(table, 1 << len(bits)).bit_select(Cat(*[b for b, _ in bits]), 1)


def reduce_count(m: Module, bits: list[Value], name: str) -> list[list[Value]]:
    """The count of ``bits`` as weighted columns, all levels at once (no register between)."""
    cols = [list(bits)]
    for lvl in range(carry_save_levels(len(bits))):
        cols = carry_save(m, cols, f"{name}_{lvl}")
    return cols


def prefix_levels(size: int) -> int:
    """Sklansky levels of the prefix count over ``keep_0 .. keep_{size-2}``."""
    k = size - 1
    return math.ceil(math.log2(k)) if k > 1 else 0


def compaction_layers(size: int) -> list[tuple[str, str]]:
    """(layer name, delay kind) of :func:`build_compaction`, in order."""
    return ([(f"prefix{k}", "pre") for k in range(prefix_levels(size))]
            + [("select", "sel"), ("compaction1", "out1"), ("compaction2", "out2")])


def build_compaction(cfg: Any, m: Module, step: Any, keep: Value, lines: Any, token: Any,
                     side: Any, name: str, *, late_fetch: bool = False
                     ) -> tuple[Value, list[Value], list[Value], Any]:
    """The keep mask (M bits, registered or not) to ``(mask, values, index, side)``.

    ``lines`` are the raw elements travelling through the stage registers, or None when they
    wait in the LUT-RAM delay ``token`` (:meth:`gen.pipeline.Stepper.defer`); they are
    fetched beside the select layer, or with ``late_fetch`` after it (they then skip the
    select stage's registers and the RAM read adds to the first AND-OR layer). Calls
    ``step`` once per layer of :func:`compaction_layers`.
    """
    n, size, iw, width = cfg.n, cfg.m, cfg.index_width, cfg.width

    # inclusive prefix counts of keep_0 .. keep_{M-2} (Sklansky), one layer per level
    cw = max(1, (size - 1).bit_length())
    k = size - 1
    inc: list[Value] = [keep[j] for j in range(k)]
    d, lvl = 1, 0
    while d < k:
        nxt = list(inc)
        for i in range(k):
            if i & d:
                src = (i & ~(d - 1)) - 1
                wdt = min(cw, (i + 1).bit_length())
                a = [Value.cast(inc[i])[t] for t in range(len(Value.cast(inc[i])))]
                b = [Value.cast(inc[src])[t] for t in range(len(Value.cast(inc[src])))]
                nxt[i] = wire(m, Cat(*add_bits(m, a, b, wdt, f"{name}_p{lvl}_{i}")),
                              f"{name}_pre{lvl}_{i}", wdt)
        inc, d, lvl = nxt, d << 1, lvl + 1
        (keep, inc, lines), side = step(((keep, inc, lines), side))
    pre = [Const(0, cw)] + [Value.cast(v) for v in inc]  # pre_j: kept before j

    # the raw elements come back from the LUT RAM beside the select layer (or after it)
    if token is not None and not late_fetch:
        lines, token = step.fetch(token), None
    # one-hot selects: slot s takes the kept j with s kept elements before it
    span = size - n + 1
    sels = []
    for s in range(n):
        row = [keep[j] & (pre[j] == s) if j else keep[0] for j in range(s, s + span)]
        sels.append(wire(m, Cat(*row), f"{name}_sel{s}", span))
    (keep, sels, lines), side = step(((keep, sels, lines), side))
    if token is not None:
        lines = step.fetch(token)

    # compaction: AND-OR over the span, in groups of three, then the OR of the groups
    parts, index = [], []
    for s in range(n):
        cands = list(range(s, s + span))
        groups = [wire(m, tree_or([lines[j] & sels[s][t].replicate(width)
                                   for t, j in list(enumerate(cands))[g:g + 3]]),
                       f"{name}_or{s}_{g}", width)
                  for g in range(0, span, 3)]
        parts.append(groups)
        ib = []
        for bit in range(iw):
            terms = [sels[s][t] for t, j in enumerate(cands) if (j >> bit) & 1]
            ib.append(tree_or(terms) if terms else Const(0, 1))
        index.append(wire(m, Cat(*ib), f"{name}_idx{s}", iw))
    (keep, parts, index), side = step(((keep, parts, index), side))
    values = [wire(m, tree_or(groups), f"{name}_val{s}", width)
              for s, groups in enumerate(parts)]
    (mask, values, index), side = step(((keep, values, index), side))
    return mask, values, index, side
