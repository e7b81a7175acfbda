"""``rank``: the comparison-matrix top-k selector.

::

    data ─► keys ─► M(M-1)/2 comparators ─► carry-save levels ─► keep = rank < N (one LUT)
      │                                                               │
      │                                   prefix counts (Sklansky levels) ─► one-hot selects
      └──── LUT-RAM delay ───────────────────────────────────────────┴─► AND-OR (two levels) ─► o

One comparator layer (shallow, wide), but M(M-1)/2 comparators and M popcounts: area grows
with M²; logic depth grows with log M. Every arrow is a layer the register scheduler
(:mod:`gen.schedule`) may cut after, so a target clock gets registers where the live data is
narrowest: the carry-save bits of the popcount, the keep and prefix bits, the one-hot selects.
The raw elements do not ride through those stages in flip-flops: they wait in a 16-deep LUT
RAM (:meth:`gen.pipeline.Stepper.defer`) and are read back for the compaction.

The rank of element j is the count of elements that outrank it; its M-1 beat bits are reduced
by full-adder levels (carry-save: no carry ripples) until at most :data:`THRESHOLD_BITS`
weighted bits are left, and one truth table on those bits decides ``rank < N``.
"""

from __future__ import annotations

import math
from typing import Any

from amaranth.hdl import Cat, Const, Module, Signal, Value

from ..pipeline import add_bits, tree_or
from .base import Architecture, Layer, Step, key_sign

__all__ = ["RankArch", "THRESHOLD_BITS", "DELAY_NS"]

#: Weighted bits of a rank left for the threshold truth table (4: one LUT4).
THRESHOLD_BITS = 4

#: Delay model of the layers (ns, logic and routing), fitted by least squares on the
#: near-critical segments of 13 placed rank designs (ECP5 LFE5U-85F, nextpnr seed 1; 2:4 to
#: 16:32, int8 and bf16, 5 to 8 register stages): mean |error| of the predicted Fmax 5 %,
#: worst 11 % in sample (`bench/bench_qor.py` checks it on the shipped points). Every figure
#: is scaled by ``1 + 0.2 (log2 M - 4)``: nets get longer as the matrix grows.
DELAY_NS = {
    "key_int": 3.65,  # |x|: a negation chain and a select, feeding M-1 comparators
    "key_float": 0.0,  # the sign-cleared bit pattern: wires
    "cmp16": 4.18,  # carry-chain compare, with the key fan-out routing (M <= 16)
    "cmp32": 5.08,  # the same at M = 32 (fan-out 31 over a larger placement)
    "pop_first": 2.61,  # first full-adder level (inputs from across the matrix)
    "pop": 1.23,  # later full-adder levels
    "keep": 0.30,  # the threshold truth table
    "pre": 1.44,  # one Sklansky level of the prefix count
    "sel": 2.33,  # keep & (pre == s), and the LUT-RAM read beside it
    "out1": 1.93,  # AND-OR of groups of three candidates
    "out2": 1.58,  # OR of the groups
}
_SCALE_PER_LOG2M = 0.2


def _tri(i: int, j: int, m: int) -> int:
    """Position of pair (i, j), i < j, in row-major upper-triangle order."""
    return i * m - i * (i + 1) // 2 + (j - i - 1)


def _wire(m: Module, v: Value, name: str, width: int | None = None) -> Signal:
    v = Value.cast(v)
    s = Signal(width if width is not None else len(v), name=name)
    m.d.comb += s.eq(v)
    return s


def _fa(m: Module, a: Value, b: Value, c: Value, name: str) -> tuple[Value, Value]:
    return (_wire(m, a ^ b ^ c, f"{name}s", 1),
            _wire(m, (a & b) | (a & c) | (b & c), f"{name}c", 1))


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


def _carry_save(m: Module, cols: list[list[Value]], name: str) -> list[list[Value]]:
    """One level: every column compresses its bits three at a time (full adders)."""
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


def _below(cols: list[list[Value]], n: int) -> Value:
    """``sum of the weighted bits < n`` as one truth table (a LUT for <= 4 bits)."""
    bits = [(b, 1 << k) for k, col in enumerate(cols) for b in col]
    table = 0
    for v in range(1 << len(bits)):
        if sum(w for t, (_, w) in enumerate(bits) if (v >> t) & 1) < n:
            table |= 1 << v
    return Const(table, 1 << len(bits)).bit_select(Cat(*[b for b, _ in bits]), 1)


class RankArch(Architecture):
    """Comparison matrix: beats[i][j] = key_i >= key_j for i < j (lower index wins ties)."""

    name = "rank"

    # -------------------------------------------------------------------- the layer chain
    def _pop_levels(self) -> int:
        return carry_save_levels(self.config.m - 1)

    def _prefix_levels(self) -> int:
        k = self.config.m - 1  # the count before element j covers keep_0 .. keep_{j-1}
        return math.ceil(math.log2(k)) if k > 1 else 0

    def _layer_types(self) -> list[tuple[str, str]]:
        cfg = self.config
        from nmsparse.contract.formats import get_format

        out = [("keys", "key_int" if get_format(cfg.fmt).is_int else "key_float"),
               ("comparators", "cmp32" if cfg.m >= 32 else "cmp16")]
        out += [(f"popcount{k}", "pop_first" if k == 0 else "pop")
                for k in range(self._pop_levels())]
        out.append(("keep", "keep"))
        out += [(f"prefix{k}", "pre") for k in range(self._prefix_levels())]
        out += [("select", "sel"), ("compaction1", "out1"), ("compaction2", "out2")]
        return out

    def layers(self) -> list[Layer]:
        scale = 1.0 + _SCALE_PER_LOG2M * (math.log2(self.config.m) - 4)
        return [Layer(name, round(DELAY_NS[kind] * scale, 3))
                for name, kind in self._layer_types()]

    def comparators(self) -> int:
        m = self.config.m
        return m * (m - 1) // 2

    def default_pipeline(self) -> int:
        """One stage at M = 4, two up to M = 16, four above (used only when neither stages
        nor a clock are given)."""
        m = self.config.m
        return 1 if m <= 4 else 2 if m <= 16 else 4

    # ------------------------------------------------------------------------------ build
    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:
        cfg = self.config
        n, size, iw, width = cfg.n, cfg.m, cfg.index_width, cfg.width
        raw = [Value.cast(x) for x in data]
        defer = getattr(step, "defer", None)
        token = defer(raw) if defer is not None else None

        # keys
        keys = [_wire(m, key_sign(cfg, x)[0], f"{name}_key{j}", cfg.key_width)
                for j, x in enumerate(raw)]
        lines = None if token is not None else raw
        (keys, lines), side = step(((keys, lines), side))

        # beats[i][j] (i < j) = element i outranks element j = key_i >= key_j
        upper = [keys[i] >= keys[j] for i in range(size) for j in range(i + 1, size)]
        beats = _wire(m, Cat(*upper), f"{name}_beats") if upper else Const(0, 1)
        (beats, lines), side = step(((beats, lines), side))

        def outranks(i: int, j: int) -> Value:
            return beats[_tri(i, j, size)] if i < j else ~beats[_tri(j, i, size)]

        # rank of j = elements that outrank j: carry-save levels, then one truth table
        state = [[[outranks(i, j) for i in range(size) if i != j]] for j in range(size)]
        for lvl in range(self._pop_levels()):
            state = [_carry_save(m, cols, f"{name}_cs{lvl}_{j}")
                     if sum(map(len, cols)) > THRESHOLD_BITS and any(len(c) >= 3 for c in cols)
                     else cols
                     for j, cols in enumerate(state)]
            (state, lines), side = step(((state, lines), side))
        keep = _wire(m, Cat(*[_below(cols, n) for cols in state]), f"{name}_keep", size)
        (keep, lines), side = step(((keep, lines), side))

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
                    nxt[i] = _wire(m, Cat(*add_bits(m, a, b, wdt, f"{name}_p{lvl}_{i}")),
                                   f"{name}_pre{lvl}_{i}", wdt)
            inc, d, lvl = nxt, d << 1, lvl + 1
            (keep, inc, lines), side = step(((keep, inc, lines), side))
        pre = [Const(0, cw)] + [Value.cast(v) for v in inc]  # pre_j: kept before j

        # the raw elements come back from the LUT RAM beside the select layer
        if token is not None:
            lines = step.fetch(token)  # type: ignore[attr-defined]
        # one-hot selects: slot s takes the kept j with s kept elements before it
        span = size - n + 1
        sels = []
        for s in range(n):
            row = [keep[j] & (pre[j] == s) if j else keep[0] for j in range(s, s + span)]
            sels.append(_wire(m, Cat(*row), f"{name}_sel{s}", span))
        (keep, sels, lines), side = step(((keep, sels, lines), side))

        # compaction: AND-OR over the span, in groups of three, then the OR of the groups
        parts, index = [], []
        for s in range(n):
            cands = list(range(s, s + span))
            groups = [_wire(m, tree_or([lines[j] & sels[s][t].replicate(width)
                                        for t, j in list(enumerate(cands))[g:g + 3]]),
                            f"{name}_or{s}_{g}", width)
                      for g in range(0, span, 3)]
            parts.append(groups)
            ib = []
            for bit in range(iw):
                terms = [sels[s][t] for t, j in enumerate(cands) if (j >> bit) & 1]
                ib.append(tree_or(terms) if terms else Const(0, 1))
            index.append(_wire(m, Cat(*ib), f"{name}_idx{s}", iw))
        (keep, parts, index), side = step(((keep, parts, index), side))
        values = [_wire(m, tree_or(groups), f"{name}_val{s}", width)
                  for s, groups in enumerate(parts)]
        (mask, values, index), side = step(((keep, values, index), side))
        return mask, values, index, side
