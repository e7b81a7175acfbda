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

from typing import Any

from amaranth.hdl import Cat, Const, Module, Value

from .base import Architecture, Step, key_sign
from .parts import (
    THRESHOLD_BITS,
    below,
    build_compaction,
    carry_save,
    carry_save_levels,
    compaction_layers,
    wire,
)

__all__ = ["RankArch", "THRESHOLD_BITS", "DELAY_NS", "carry_save_levels"]

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


class RankArch(Architecture):
    """Comparison matrix: beats[i][j] = key_i >= key_j for i < j (lower index wins ties)."""

    name = "rank"
    DELAY_NS = DELAY_NS
    SCALE_PER_LOG2M = _SCALE_PER_LOG2M

    # -------------------------------------------------------------------- the layer chain
    def _pop_levels(self) -> int:
        return carry_save_levels(self.config.m - 1)

    def layer_kinds(self) -> list[tuple[str, str]]:
        cfg = self.config
        from nmsparse.contract.formats import get_format

        out = [("keys", "key_int" if get_format(cfg.fmt).is_int else "key_float"),
               ("comparators", "cmp32" if cfg.m >= 32 else "cmp16")]
        out += [(f"popcount{k}", "pop_first" if k == 0 else "pop")
                for k in range(self._pop_levels())]
        out.append(("keep", "keep"))
        return out + compaction_layers(cfg.m)

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
        n, size = cfg.n, cfg.m
        raw = [Value.cast(x) for x in data]
        defer = getattr(step, "defer", None)
        token = defer(raw) if defer is not None else None

        # keys
        keys = [wire(m, key_sign(cfg, x)[0], f"{name}_key{j}", cfg.key_width)
                for j, x in enumerate(raw)]
        lines = None if token is not None else raw
        (keys, lines), side = step(((keys, lines), side))

        # beats[i][j] (i < j) = element i outranks element j = key_i >= key_j
        upper = [keys[i] >= keys[j] for i in range(size) for j in range(i + 1, size)]
        beats = wire(m, Cat(*upper), f"{name}_beats") if upper else Const(0, 1)
        (beats, lines), side = step(((beats, lines), side))

        def outranks(i: int, j: int) -> Value:
            return beats[_tri(i, j, size)] if i < j else ~beats[_tri(j, i, size)]

        # rank of j = elements that outrank j: carry-save levels, then one truth table
        state = [[[outranks(i, j) for i in range(size) if i != j]] for j in range(size)]
        for lvl in range(self._pop_levels()):
            state = [carry_save(m, cols, f"{name}_cs{lvl}_{j}") for j, cols in enumerate(state)]
            (state, lines), side = step(((state, lines), side))
        keep = wire(m, Cat(*[below(cols, n) for cols in state]), f"{name}_keep", size)
        (keep, lines), side = step(((keep, lines), side))
        return build_compaction(cfg, m, step, keep, lines, token, side, name)
