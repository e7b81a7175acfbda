"""``radix``: radix select, an MSB-first search for the N-th largest key, then compaction.

::

    data ─► keys ─► bit planes (MSB first; each waits in LUT RAM until its step)
                        │
    step per digit: s_d,j = A_j | (C_j & digit_j >= d)   d = 1 .. 2^k - 1  (k bits a step)
    (k key bits,    g_d = count_j(s_d,j) >= N            (2^k - 1 counts side by side:
     then the             │                               full adders, then carry-chain
     inverted index)      │                               adder trees)
                    D = the largest d with g_d (0 if none): the threshold's next digit
                    A_j <= A_j | (C_j & digit_j > D);  C_j <= C_j & (digit_j == D)
                        ▼
                    keep = A | C ─► prefix counts ─► one-hot selects ─► AND-OR ─► o
      └──── LUT-RAM delay of the raw elements ───────────────────────┘

The search keeps two bits per element: ``A_j`` (element j is known to be among the N
largest) and ``C_j`` (element j still ties with the threshold found so far). Each step fixes
one digit of the threshold: the largest ``D`` such that the elements already above plus the
candidates whose digit is at least ``D`` reach N. The key is extended by the inverted index
bits, so all extended keys differ and, after the last step, exactly one candidate is left:
the N-th; ``keep = A | C`` follows the rule of DESIGN.md section 1 exactly, ties included.

Area grows with M x (key bits + index bits) (2^k - 1 M-input counts per k bits) instead of
M², and every step reads its bit planes only, so the placement stays local; the price is
depth: one count per step, which the register scheduler (:mod:`gen.schedule`) cuts into
stages. Two bits a step (:attr:`RadixArch.DIGIT`) halve the steps for 1.5x the counts: the
live state between stages is the 2M bits of ``A`` and ``C`` and the narrow partial counts,
and the bit planes and raw elements do not ride through the stages in flip-flops.
"""

from __future__ import annotations

import math
from typing import Any

from amaranth.hdl import Cat, Const, Module, Signal, Value

from nmsparse.contract.formats import get_format

from .base import Architecture, Step, key_sign
from .parts import build_compaction, compaction_layers, wire

__all__ = ["RadixArch", "DELAY_NS"]

#: Delay model of the layers (ns, logic and routing on ECP5 in the project's flow), fitted on
#: the near-critical register segments of placed radix selectors (`bench/calibrate_delays.py
#: --arch radix`; data and fit in bench/data/qor/radix_*); every figure grows by 20 % per
#: doubling of M beyond 16.
DELAY_NS = {
    "key_int": 3.65,  # |x|: a negation chain and a select
    "key_float": 0.0,  # the sign-cleared bit pattern: wires
    "term": 1.3,  # s_d = A | (C & digit >= d): one LUT per element and d
    "fa3": 1.3,  # full adders over groups of three terms
    "add": 1.7,  # one level of the carry-chain adder trees
    "upd": 1.8,  # D from the counts, the new A and C (the digit read again from LUT RAM)
    "pre": 2.01,  # one Sklansky level of the compaction's prefix count
    "sel": 2.17,  # keep & (pre == s), and the LUT-RAM read beside it
    "out1": 2.21,  # AND-OR of groups of three candidates
    "out2": 1.86,  # OR of the groups
}


def _is_const(v: Value) -> bool:
    return isinstance(v, Const)


def _const(v: Value) -> int:
    return v.value & 1  # type: ignore[attr-defined]


def _and(a: Value, b: Value) -> Value:
    if _is_const(a):
        return b if _const(a) else Const(0, 1)
    if _is_const(b):
        return a if _const(b) else Const(0, 1)
    return a & b


def _or(a: Value, b: Value) -> Value:
    if _is_const(a):
        return Const(1, 1) if _const(a) else b
    if _is_const(b):
        return Const(1, 1) if _const(b) else a
    return a | b


def _not(a: Value) -> Value:
    return Const(1 - _const(a), 1) if _is_const(a) else ~a


def _or_all(values: list[Value]) -> Value:
    out: Value = Const(0, 1)
    for v in values:
        out = _or(out, v)
    return out


def _adder_levels(bits: int) -> int:
    """Layers of :func:`_at_least`: one of full adders, then the adder tree's levels."""
    return 1 + math.ceil(math.log2(math.ceil(bits / 3) + 1))


def _at_least(m: Module, step: Step, counted: list[list[Value]], need: int, name: str,
              state: Any, side: Any) -> tuple[list[Value], Any, Any]:
    """``count(bits) >= need`` for every list of ``counted`` (all of one length), side by
    side: full adders over groups of three (one layer), then balanced trees of two-operand
    adders (one layer per level, each sum a kept signal: its own carry chain) with the
    constant ``2**w - need`` as one more leaf, so that the sum's bit ``w`` is the answer and
    no comparator follows the tree."""
    size = len(counted[0])
    w = max(1, size).bit_length()
    trees = []
    for c, bits in enumerate(counted):
        vals: list[Value] = []
        for g in range(0, size, 3):
            grp = bits[g:g + 3]
            if len(grp) == 3:
                a, b, x = grp
                v = Cat(a ^ b ^ x, (a & b) | (a & x) | (b & x))
            elif len(grp) == 2:
                v = Cat(grp[0] ^ grp[1], grp[0] & grp[1])
            else:
                v = grp[0]
            vals.append(wire(m, v, f"{name}_{c}f{g}"))
        vals.append(Const((1 << w) - min(max(need, 0), 1 << w), w + 1))
        trees.append(vals)
    (trees, state), side = step(((trees, state), side))
    for lvl in range(_adder_levels(size) - 1):
        nxt_trees = []
        for c, vals in enumerate(trees):
            nxt = []
            for k in range(0, len(vals) - 1, 2):
                total = vals[k] + vals[k + 1]
                sig = Signal(total.shape(), name=f"{name}_{c}a{lvl}_{k}", attrs={"keep": 1})
                m.d.comb += sig.eq(total)
                nxt.append(sig)
            if len(vals) % 2:
                nxt.append(vals[-1])
            nxt_trees.append(nxt)
        trees = nxt_trees
        (trees, state), side = step(((trees, state), side))
    return [Value.cast(vals[0])[w] for vals in trees], state, side


class RadixArch(Architecture):
    """Radix select over (key, ~index), MSB first, :attr:`DIGIT` bits per step."""

    name = "radix"
    DELAY_NS = DELAY_NS
    SCALE_PER_LOG2M = 0.2
    #: Bits of the threshold decided per step (2^DIGIT - 1 counts side by side).
    DIGIT = 2

    def _bits(self) -> list[tuple[str, int]]:
        """The extended key, MSB first: ("key", bit) then ("index", bit)."""
        cfg = self.config
        return ([("key", b) for b in range(cfg.key_width - 1, -1, -1)]
                + [("index", b) for b in range(cfg.index_width - 1, -1, -1)])

    def _chunks(self) -> list[list[tuple[str, int]]]:
        bits = self._bits()
        return [bits[k:k + self.DIGIT] for k in range(0, len(bits), self.DIGIT)]

    def layer_kinds(self) -> list[tuple[str, str]]:
        cfg = self.config
        out = [("keys", "key_int" if get_format(cfg.fmt).is_int else "key_float")]
        levels = _adder_levels(cfg.m)
        for c, _ in enumerate(self._chunks()):
            out.append((f"s{c}_term", "term"))
            out += [(f"s{c}_count{k}", "fa3" if k == 0 else "add") for k in range(levels)]
            out.append((f"s{c}_update", "upd"))
        return out + compaction_layers(cfg.m)

    def comparators(self) -> int:
        return 0

    def network_depth(self) -> int:
        return len(self._chunks())

    def default_pipeline(self) -> int:
        """Two stages per step (used only when neither stages nor a clock are given)."""
        return 2 * len(self._chunks())

    def metrics(self) -> dict[str, int]:
        return {"radix_steps": len(self._chunks()),
                "radix_counts": sum((1 << len(c)) - 1 for c in self._chunks())}

    # ------------------------------------------------------------------------------ build
    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:
        cfg = self.config
        n, size, kw = cfg.n, cfg.m, cfg.key_width
        raw = [Value.cast(x) for x in data]
        defer = getattr(step, "defer", None)
        token = defer(raw) if defer is not None else None
        lines = None if token is not None else raw
        chunks = self._chunks()

        keys = [wire(m, key_sign(cfg, x)[0], f"{name}_key{j}", kw) for j, x in enumerate(raw)]
        planes = {b: wire(m, Cat(*[keys[j][b] for j in range(size)]), f"{name}_plane{b}", size)
                  for b in range(kw)}
        # every key plane is read twice: by its step's terms and by its step's update; it
        # waits in LUT RAM for both (the RAM's write is its register). The first step's
        # planes ride through the key stage for the terms.
        first = [b for kind, b in chunks[0] if kind == "key"]
        later: dict[int, Any] = {}
        again: dict[int, Any] = {}
        if defer is not None:
            later = {b: defer(planes[b], min_bits=0) for b in range(kw) if b not in first}
            again = {b: defer(planes[b], min_bits=0) for b in range(kw)}
            held: Any = None
        else:
            held = planes
        live = {b: planes[b] for b in first}
        (live, lines, held), side = step(((live, lines, held), side))

        def plane(b: int, tokens: dict[int, Any], ready: dict[int, Any]) -> Value:
            if b in ready:
                return ready[b]
            if held is not None:
                return held[b]
            return step.fetch(tokens[b])  # type: ignore[attr-defined]

        def digit_bits(chunk: list[tuple[str, int]], tokens: dict[int, Any],
                       ready: dict[int, Any]) -> list[Value]:
            """Per element the chunk's digit (a Value of len(chunk) bits, LSB first)."""
            cols = []
            for kind, b in chunk:
                if kind == "key":
                    p = Value.cast(plane(b, tokens, ready))
                    cols.append([p[j] for j in range(size)])
                else:  # the inverted index: the lower index wins a tie
                    cols.append([Const(1 - ((j >> b) & 1), 1) for j in range(size)])
            return [Cat(*[col[j] for col in reversed(cols)]) for j in range(size)]

        sel_a: list[Value] = [Const(0, 1)] * size  # known to be kept
        sel_c: list[Value] = [Const(1, 1)] * size  # ties with the threshold so far
        keep: Any = None
        for c, chunk in enumerate(chunks):
            k = len(chunk)
            top = (1 << k) - 1
            digits = digit_bits(chunk, later, live if c == 0 else {})
            terms = [[wire(m, _or(a, _and(x, d >= t)), f"{name}_s{c}_{t}_{j}", 1)
                      for j, (a, x, d) in enumerate(zip(sel_a, sel_c, digits, strict=True))]
                     for t in range(1, top + 1)]
            state = (sel_a, sel_c)
            (terms, state, lines), side = step(((terms, state, lines), side))
            g, (state, lines), side = _at_least(m, step, terms, n, f"{name}_n{c}",
                                                (state, lines), side)
            g = [wire(m, x, f"{name}_g{c}_{t + 1}", 1) for t, x in enumerate(g)]
            sel_a, sel_c = state
            digits = digit_bits(chunk, again, {})
            ge = [Const(1, 1)] + g + [Const(0, 1)]  # ge[d]: the threshold digit is >= d
            new_a, new_c = [], []
            for a, x, d in zip(sel_a, sel_c, digits, strict=True):
                above = _or_all([_and(d == t, _not(ge[t])) for t in range(1, top + 1)])
                tie = _or_all([_and(d == t, _and(ge[t], _not(ge[t + 1])))
                               for t in range(0, top + 1)])
                new_a.append(_or(a, _and(x, above)))
                new_c.append(_and(x, tie))
            if c == len(chunks) - 1:
                keep = wire(m, Cat(*[_or(a, x) for a, x in zip(new_a, new_c, strict=True)]),
                            f"{name}_keep", size)
                (keep, lines), side = step(((keep, lines), side))
            else:
                sel_a = [wire(m, v, f"{name}_a{c}_{j}", 1) for j, v in enumerate(new_a)]
                sel_c = [wire(m, v, f"{name}_c{c}_{j}", 1) for j, v in enumerate(new_c)]
                (sel_a, sel_c, lines), side = step(((sel_a, sel_c, lines), side))
        return build_compaction(cfg, m, step, keep, lines, token, side, name)
