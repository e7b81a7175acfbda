"""``network``: a selection network on (key, index) records, then the keep mask and compaction.

::

    data ─► (key, index) per line ─► selection network ─► N survivors' indices (unordered)
      │                                                          │
      │                                       keep mask = OR of the decoded indices
      │                                                          ▼
      └──── LUT-RAM delay of the raw elements ───────► prefix counts ─► selects ─► AND-OR ─► o

A comparator compares ``(key, ~index)``, so equal keys resolve to the lower index and the kept
set is exact under ties. Best-known networks take 4/14/46/138 comparators in 2/4/7/10 layers
for 2:4/4:8/8:16/16:32 (the shallowest of data/selection_networks.json; against 6/28/120/496
for the matrix): less area, more layers, each one comparator deep, which the register
scheduler cuts. The records carry only key and index (the raw elements wait in LUT RAM and
the output comes from the rank unit's compaction, :mod:`gen.arch.parts`), and a line leaves
the registers as soon as no later comparator reads it.
"""

from __future__ import annotations

import math
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from nmsparse.contract import networks
from nmsparse.contract.formats import get_format

from ..pipeline import tree_or
from .base import Architecture, Step, key_sign
from .parts import build_compaction, compaction_layers

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
    """Shallowest best-known selection network on (key, ~index), then mask and compaction."""

    name = "network"
    #: Delay model of the layers (ns, logic and routing on ECP5 in the project's flow),
    #: fitted on 4 placed network selectors (`bench/calibrate_delays.py --arch network`; data
    #: and fit in bench/data/qor/network_*: mean |error| of the predicted Fmax 12 %, worst
    #: 18 %: Yosys folds some record multiplexers into the flip-flops' synchronous resets, a
    #: slower path the layer sums do not see). One comparator layer alone takes about
    #: 6.4 ns, so the network runs at one layer per stage and below 160 MHz.
    DELAY_NS = {
        "key_int": 3.65,  # |x|: a negation chain and a select
        "key_float": 0.0,  # the sign-cleared bit pattern: wires
        "ce": 5.52,  # one comparator layer: a carry-chain compare and the record multiplexers
        "mask": 2.63,  # the keep mask: every survivor's index decoded and ORed
        "pre": 2.81,  # one Sklansky level of the compaction's prefix count
        "sel": 2.10,  # keep & (pre == s), and the LUT-RAM read beside it
        "out1": 3.99,  # AND-OR of groups of three candidates
        "out2": 1.53,  # OR of the groups
    }
    SCALE_PER_LOG2M = 0.15

    @property
    def network(self) -> networks.Network:
        """The selection network (the shallowest best-known one)."""
        return networks.selection_network(self.config.n, self.config.m, prefer="depth")

    def layer_kinds(self) -> list[tuple[str, str]]:
        cfg = self.config
        return ([("keys", "key_int" if get_format(cfg.fmt).is_int else "key_float")]
                + [(f"select{d + 1}", "ce") for d in range(self.network.depth)]
                + [("mask", "mask")] + compaction_layers(cfg.m))

    def comparators(self) -> int:
        return self.network.size

    def network_depth(self) -> int:
        return self.network.depth

    def default_pipeline(self) -> int:
        """About one stage per three comparator layers, and the compaction's two."""
        return max(1, math.ceil(self.network.depth / 3)) + 2

    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:
        cfg = self.config
        iw, kw, size = cfg.index_width, cfg.key_width, cfg.m
        net = self.network
        raw = [Value.cast(x) for x in data]
        defer = getattr(step, "defer", None)
        token = defer(raw) if defer is not None else None
        held = None if token is not None else raw

        # (key, index) per line; the index starts as a constant
        lines: list[Any] = []
        for j, x in enumerate(raw):
            k = Signal(kw, name=f"{name}_key{j}")
            m.d.comb += k.eq(key_sign(cfg, x)[0])
            lines.append((k, Const(j, iw)))
        (lines, held), side = step(((lines, held), side))

        def mux(sel: Value, a: tuple, b: tuple, tag: str) -> tuple:
            """sel ? a : b, as one signal."""
            v = Signal(kw + iw, name=tag)
            m.d.comb += v.eq(Mux(sel, Cat(*a), Cat(*b)))
            return (v[:kw], v[kw:])

        # selection network: max to hi, min to lo; a comparator with one unused output builds
        # one multiplexer set; lines that are no longer needed leave the registers, and after
        # the last layer only the survivors' indices go on
        needed = net.needed
        live_after = _live_after_layers(net)
        layers = net.layers()
        for depth, layer in enumerate(layers):
            for pos in layer:
                lo, hi = net.comparators[pos]
                a, b = lines[lo], lines[hi]
                a_wins = Signal(name=f"{name}_c{pos}")  # a is the larger (key, ~index)
                m.d.comb += a_wins.eq(Cat(~a[1], a[0]) > Cat(~b[1], b[0]))
                need_lo, need_hi = needed[pos]
                lines[hi] = mux(a_wins, a, b, f"{name}_c{pos}_max") if need_hi else None
                lines[lo] = mux(a_wins, b, a, f"{name}_c{pos}_min") if need_lo else None
            live = live_after[depth]
            if depth == len(layers) - 1:
                lines = [(None, ln[1]) if j in live else None for j, ln in enumerate(lines)]
            else:
                lines = [ln if j in live else None for j, ln in enumerate(lines)]
            (lines, held), side = step(((lines, held), side))

        # the keep mask: bit j = some survivor holds index j
        index = [Value.cast(lines[o][1]) for o in net.outputs]
        keep = Signal(size, name=f"{name}_keep")
        m.d.comb += keep.eq(Cat(*[tree_or([ix == j for ix in index]) for j in range(size)]))
        (keep, held), side = step(((keep, held), side))
        return build_compaction(cfg, m, step, keep, held, token, side, name)
