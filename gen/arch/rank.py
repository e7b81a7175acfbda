"""``rank``: the comparison-matrix top-k selector.

::

    data ─► keys ─► M(M-1)/2 comparators ─► popcount per column ─► keep = rank < N
                                                                       │
            data ─────────────────────────────► prefix counts ─► AND-OR compaction ─► o

One comparator layer (shallow, wide), but M(M-1)/2 comparators and M popcounts: area grows
with M²; logic depth grows with log M.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Module, Signal, Value

from ..pipeline import lt_const, popcount_bits, prefix_counts, tree_or
from .base import Architecture, Layer, Step, key_sign

__all__ = ["RankArch"]


def _tri(i: int, j: int, m: int) -> int:
    """Position of pair (i, j), i < j, in row-major upper-triangle order."""
    return i * m - i * (i + 1) // 2 + (j - i - 1)


class RankArch(Architecture):
    """Comparison matrix: beats[i][j] = key_i >= key_j for i < j (lower index wins ties)."""

    name = "rank"

    def layers(self) -> list[Layer]:
        return [Layer(n) for n in ("keys", "comparators", "popcount", "prefix", "compaction")]

    def comparators(self) -> int:
        m = self.config.m
        return m * (m - 1) // 2

    def default_pipeline(self) -> int:
        """One stage at M = 4, two up to M = 16, four above."""
        m = self.config.m
        return 1 if m <= 4 else 2 if m <= 16 else 4

    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:
        cfg = self.config
        n, size, iw = cfg.n, cfg.m, cfg.index_width
        raw = [Value.cast(x) for x in data]

        # keys
        keys = []
        for j, x in enumerate(raw):
            k = Signal(cfg.key_width, name=f"{name}_key{j}")
            m.d.comb += k.eq(key_sign(cfg, x)[0])
            keys.append(k)
        (keys, raw), side = step(((keys, raw), side))

        # beats[i][j] (i < j) = element i outranks element j = key_i >= key_j
        upper = [keys[i] >= keys[j] for i in range(size) for j in range(i + 1, size)]
        beats_bits = Signal(len(upper), name=f"{name}_beats")
        m.d.comb += beats_bits.eq(Cat(*upper))
        (beats_bits, raw), side = step(((beats_bits, raw), side))

        def beats(i: int, j: int) -> Value:
            if i < j:
                return beats_bits[_tri(i, j, size)]
            return ~beats_bits[_tri(j, i, size)]

        # rank by popcount (compressor tree of plain logic), keep iff rank < N
        keep = []
        for j in range(size):
            rank = popcount_bits(m, [beats(i, j) for i in range(size) if i != j],
                                 f"{name}_pop{j}")
            keep.append(lt_const(rank, n))
        keep_bits = Signal(size, name=f"{name}_keep")
        m.d.comb += keep_bits.eq(Cat(*keep))
        (keep_bits, raw), side = step(((keep_bits, raw), side))

        # exclusive prefix counts of the kept elements
        cw = max(1, size.bit_length())
        pre = prefix_counts(m, [keep_bits[j] for j in range(size)], cw, f"{name}_pre")
        pre_sigs = []
        for j, p in enumerate(pre):
            s = Signal(cw, name=f"{name}_pre{j}")
            m.d.comb += s.eq(Cat(*p))
            pre_sigs.append(s)
        (keep_bits, pre_sigs, raw), side = step(((keep_bits, pre_sigs, raw), side))

        # slot s takes the kept j with s kept elements before it (j in s..s+M-N)
        values, index = [], []
        for s in range(n):
            cands = range(s, s + size - n + 1)
            sel = [keep_bits[j] & (pre_sigs[j] == s) for j in cands]
            values.append(tree_or([raw[j] & sel_j.replicate(cfg.width)
                                   for j, sel_j in zip(cands, sel, strict=True)]))
            index.append(tree_or([Const(j, iw) & sel_j.replicate(iw)
                                  for j, sel_j in zip(cands, sel, strict=True)]))
        (mask, values, index), side = step(((keep_bits, values, index), side))
        return mask, values, index, side
