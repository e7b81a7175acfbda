"""``network``: a selection network on (key, index) pairs, then an index sort.

::

    data ─► (key, sign, index) per line ─► selection network ─► N survivors (unordered)
                                                                   │
                               sorting network on the index ◄──────┘ ─► values, index, mask

A comparator compares ``(key, ~index)``, so equal keys resolve to the lower index and the kept
set is exact under ties. Best-known networks take 4/14/44/126 comparators for
2:4/4:8/8:16/16:32 (against 6/28/120/496 for the matrix), at a depth of 2/4/11/15 layers plus
the index sort (1/3/6/10): less area, more layers, which the register stages cut.
"""

from __future__ import annotations

import math
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from nmsparse.contract import networks

from .base import Architecture, Step, from_key_sign, key_sign, mask_from_index

__all__ = ["NetworkArch"]


def _live_after_layers(net: networks.Network) -> list[set[int]]:
    """Lines whose value is still needed after each layer of ``net``."""
    layers = net.layers()
    live = set(net.outputs)
    out: list[set[int]] = [set() for _ in layers]
    for depth in range(len(layers) - 1, -1, -1):
        out[depth] = set(live)
        for pos in layers[depth]:
            lo, hi = net.comparators[pos]
            if lo in live or hi in live:
                live |= {lo, hi}
    return out


class NetworkArch(Architecture):
    """Best-known selection network on (key, ~index), survivors sorted by index."""

    name = "network"

    @property
    def network(self) -> networks.Network:
        """The selection network."""
        return networks.selection_network(self.config.n, self.config.m)

    @property
    def sorter(self) -> networks.Network:
        """The network sorting the N survivors by index."""
        return networks.sorting_network(self.config.n)

    def layer_kinds(self) -> list[tuple[str, str]]:
        return ([("keys", "keys")]
                + [(f"select{d + 1}", "select") for d in range(self.network.depth)]
                + [(f"sort{d + 1}", "sort") for d in range(self.sorter.depth)]
                + [("output", "output")])

    def comparators(self) -> int:
        return self.network.size

    def network_depth(self) -> int:
        return self.network.depth

    def default_pipeline(self) -> int:
        """About one stage per six comparator layers (selection plus index sort)."""
        return max(1, math.ceil((self.network.depth + self.sorter.depth) / 6))

    def metrics(self) -> dict[str, int]:
        return {"compaction_comparators": self.sorter.size,
                "compaction_depth": self.sorter.depth}

    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:
        cfg = self.config
        iw, kw = cfg.index_width, cfg.key_width
        net, sorter = self.network, self.sorter

        # (key, sign, index) per line; the index starts as a constant
        lines: list[Any] = []
        for j, x in enumerate(data):
            key, sign = key_sign(cfg, x)
            k = Signal(kw, name=f"{name}_key{j}")
            m.d.comb += k.eq(key)
            lines.append((k, sign, Const(j, iw)))
        lines, side = step((lines, side))

        def mux(sel: Value, a: tuple, b: tuple, tag: str) -> tuple:
            """sel ? a : b, as one signal."""
            v = Signal(kw + 1 + iw, name=tag)
            m.d.comb += v.eq(Mux(sel, Cat(*a), Cat(*b)))
            return (v[:kw], v[kw], v[kw + 1 :])

        # selection network: max to hi, min to lo; a comparator with one unused output builds
        # one multiplexer set; lines that are no longer needed are dropped from the registers
        needed = net.needed
        live_after = _live_after_layers(net)
        for depth, layer in enumerate(net.layers()):
            for pos in layer:
                lo, hi = net.comparators[pos]
                a, b = lines[lo], lines[hi]
                a_wins = Signal(name=f"{name}_c{pos}")  # a is the larger (key, ~index)
                m.d.comb += a_wins.eq(Cat(~a[2], a[0]) > Cat(~b[2], b[0]))
                need_lo, need_hi = needed[pos]
                lines[hi] = mux(a_wins, a, b, f"{name}_c{pos}_max") if need_hi else None
                lines[lo] = mux(a_wins, b, a, f"{name}_c{pos}_min") if need_lo else None
            lines = [ln if j in live_after[depth] else None for j, ln in enumerate(lines)]
            lines, side = step((lines, side))

        # index sort of the survivors (ascending), values travelling along
        surv = [lines[o] for o in net.outputs]
        for layer in sorter.layers():
            for pos in layer:
                lo, hi = sorter.comparators[pos]
                a, b = surv[lo], surv[hi]
                swap = Signal(name=f"{name}_s{pos}")
                m.d.comb += swap.eq(a[2] > b[2])
                surv[lo] = mux(swap, b, a, f"{name}_s{pos}_lo")
                surv[hi] = mux(swap, a, b, f"{name}_s{pos}_hi")
            surv, side = step((surv, side))
        surv = [surv[o] for o in sorter.outputs]

        values = [from_key_sign(cfg, key, sign) for key, sign, _ in surv]
        index = [Value.cast(idx) for _, _, idx in surv]
        mask = mask_from_index(cfg, index)
        (mask, values, index), side = step(((mask, values, index), side))
        return mask, values, index, side
