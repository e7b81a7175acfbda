"""``radix``: radix select, an MSB-first search for the N-th largest key, then compaction.

::

    data ─► key bit planes (MSB first; each waits in LUT RAM until its step)
                        │
     step per bit:  u_j = A_j | (C_j & bit_j)  ─► count (full-adder levels) ─► t = count >= N
                    A_j <= A_j | (C_j & bit_j & ~t);  C_j <= C_j & (bit_j == t)
                        │   (the key bits, then the inverted index bits: the lower index wins)
                        ▼
                    keep = A | C ─► prefix counts ─► one-hot selects ─► AND-OR ─► o
      └──── LUT-RAM delay of the raw elements ───────────────────────┘

The search keeps two bits per element: ``A_j`` (element j is known to be among the N
largest) and ``C_j`` (element j still ties with the threshold found so far). Each step fixes
one bit of the threshold: ``t = 1`` when the elements already above plus the candidates with
that bit set reach N. The key is extended by the inverted index bits, so all extended keys
differ and, after the last step, exactly one candidate is left: the N-th; ``keep = A | C``
follows the rule of DESIGN.md section 1 exactly, ties included. Between steps an element
carries ``u`` (the bit it adds to the count) and ``v = C``: two bits, from which the next
``A``, ``C`` and ``u`` follow in one LUT.

Area grows with M x (key bits + index bits) (one M-input count per bit) instead of M², and
every step reads one bit plane, so the placement stays local; the price is depth: one count
per bit, which the register scheduler (:mod:`gen.schedule`) cuts into stages, each holding
the 2M state bits and a narrow partial count. The bit planes and the raw elements wait in
LUT RAM instead of riding through the stages. (Measured alternatives, `bench/data/qor/`:
two bits per step, with three counts side by side, was larger and slower at 16:32; counts on
carry-chain adder trees or (6;3) counters (LUT6 each) were no faster than full-adder levels
at 16:32; the state in LUT RAM during
a count saved flip-flops but cost more logic cells than it saved and put a RAM read on every
update.)
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Module, Value

from nmsparse.contract.formats import get_format

from .base import Architecture, Step, key_bits
from .parts import (
    below,
    build_compaction,
    carry_save,
    carry_save_levels,
    compaction_layers,
    wire,
)

__all__ = ["RadixArch", "DELAY_NS"]

#: Delay model of the layers (ns, logic and routing on ECP5 in the project's flow), fitted on
#: the near-critical register segments of placed radix selectors (`bench/calibrate_delays.py
#: --arch radix`; data and fit in bench/data/qor/radix_*: mean |error| of the predicted Fmax
#: 9 %, worst 12 %, on 6 designs); every figure grows by 30 % per doubling of M beyond 16.
DELAY_NS = {
    "key_int": 2.64,  # bit b of |x| = x_b ^ (sign & any lower bit): an OR tree and an XOR
    "key_float": 0.0,  # the sign-cleared bit pattern: wires
    "upd": 1.57,  # the previous threshold bit applied and the next bit plane read: one LUT
    "pop": 1.17,  # one full-adder level of the count
    "thr": 0.77,  # count >= N: one truth table, fanning out to every element's update
    "pre": 1.92,  # one Sklansky level of the compaction's prefix count
    "sel": 2.10,  # keep & (pre == s), and the LUT-RAM read beside it
    "out1": 3.41,  # AND-OR of groups of three candidates
    "out2": 0.95,  # OR of the groups
}


def _is_const(v: Value) -> bool:
    return isinstance(v, Const)


def _const(v: Value) -> int:
    return v.value & 1  # type: ignore[attr-defined]


def _update(m: Module, u: list[Value], v: list[Value], t: Value, bit: list[Value],
            name: str) -> tuple[list[Value], list[Value]]:
    """The threshold bit ``t`` of the step just counted applied, the next bit counted:
    ``A' = u & ~(v & t)`` (above the threshold), ``C' = v & (u == t)`` (still tying), and
    the new ``(u, v) = (A' | (C' & bit), C')``, one LUT each per element."""
    nu, nv = [], []
    for j, (x, y, b) in enumerate(zip(u, v, bit, strict=True)):
        tie = y & ~(x ^ t)
        above = x & ~(y & t)
        nu.append(wire(m, above | (tie & b), f"{name}_u{j}", 1))
        nv.append(wire(m, tie, f"{name}_v{j}", 1))
    return nu, nv


class RadixArch(Architecture):
    """Radix select over (key, ~index), MSB first, one bit per step."""

    name = "radix"
    DELAY_NS = DELAY_NS
    SCALE_PER_LOG2M = 0.3
    #: The model was 7.7-12.4 % optimistic on every radix design it scheduled itself
    #: (bench/data/qor/radix_calibration.json: p33, p42, p48, p64); scheduled for 200 MHz,
    #: the 16:32 int8 unit ran at 179.2 and 178.8 MHz (seeds 1, 2) where it ran at 167.2 when
    #: scheduled for 175 (bench/data/qor/explore/radix_margin.md; the margin costs 8:16
    #: bf16, not shipped, 24 MHz).
    SCHEDULE_MARGIN = 0.124

    @property
    def _steps(self) -> int:
        """The key bits, then the index bits."""
        return self.config.key_width + self.config.index_width

    def layer_kinds(self) -> list[tuple[str, str]]:
        cfg = self.config
        out = [("keys", "key_int" if get_format(cfg.fmt).is_int else "key_float")]
        for e in range(self._steps):
            if e:
                out.append((f"b{e}_update", "upd"))
            out += [(f"b{e}_count{k}", "pop") for k in range(carry_save_levels(cfg.m))]
            out.append((f"b{e}_threshold", "thr"))
        return out + [("keep", "upd")] + compaction_layers(cfg.m)

    def comparators(self) -> int:
        return 0

    def network_depth(self) -> int:
        return self._steps

    def default_pipeline(self) -> int:
        """Two stages per step (used only when neither stages nor a clock are given)."""
        return 2 * self._steps

    def metrics(self) -> dict[str, int]:
        return {"radix_steps": self._steps}

    # ------------------------------------------------------------------------------ build
    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:
        cfg = self.config
        n, size, kw, iw = cfg.n, cfg.m, cfg.key_width, cfg.index_width
        raw = [Value.cast(x) for x in data]
        defer = getattr(step, "defer", None)
        token = defer(raw) if defer is not None else None
        lines = None if token is not None else raw

        # key bit planes, MSB first: the first is counted at once; the others wait in LUT
        # RAM from here (the RAM's write is their register), or ride along without one
        keys = [key_bits(cfg, x) for x in raw]
        planes = [wire(m, Cat(*[k[b] for k in keys]), f"{name}_plane{b}", size)
                  for b in range(kw - 1, -1, -1)]
        waiting: list[Any] = [None] + [defer(p, min_bits=0) if defer is not None else p
                                       for p in planes[1:]]
        held: list[Any] = [] if defer is not None else planes[1:]
        u = [planes[0][j] for j in range(size)]
        v: list[Value] = [Const(1, 1)] * size
        (u, lines, held), side = step(((u, lines, held), side))

        # per element u = A | (C & bit) (counted) and v = C, where A = known to be kept and
        # C = ties with the threshold so far (A and C never both hold)
        t: Value = Const(0, 1)
        for e in range(self._steps):
            if e:
                if e < kw:
                    if defer is not None:
                        plane = step.fetch(waiting[e])  # type: ignore[attr-defined]
                    else:
                        plane, held = held[0], held[1:]
                    bit = [Value.cast(plane)[j] for j in range(size)]
                else:  # the inverted index: the lower index wins a tie
                    b = iw - 1 - (e - kw)
                    bit = [Const(1 - ((j >> b) & 1), 1) for j in range(size)]
                u, v = _update(m, u, v, t, bit, f"{name}_s{e}")
                (u, v, lines, held), side = step(((u, v, lines, held), side))
            cols = [[x for x in u if not _is_const(x)]]
            ones = sum(_const(x) for x in u if _is_const(x))
            for k in range(carry_save_levels(size)):
                cols = carry_save(m, cols, f"{name}_cs{e}_{k}")
                (cols, u, v, lines, held), side = step(((cols, u, v, lines, held), side))
            t = wire(m, ~below(cols, n - ones), f"{name}_thr{e}", 1)
            (t, u, v, lines, held), side = step(((t, u, v, lines, held), side))

        # after the last step exactly N elements are above or at the threshold
        keep: Any = wire(m, Cat(*[(x & ~(y & t)) | (y & ~(x ^ t))
                                  for x, y in zip(u, v, strict=True)]), f"{name}_keep", size)
        (keep, lines), side = step(((keep, lines), side))
        return build_compaction(cfg, m, step, keep, lines, token, side, name)

