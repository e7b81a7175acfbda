"""N:M top-k selectors: keep the N largest-magnitude of every M inputs, one group per clock.

Both architectures implement the same contract (DESIGN.md sections 1 and 3): key = |x| for
integers, the sign-cleared bit pattern for floats; rank(j) = #{i : key_i > key_j} +
#{i < j : key_i == key_j}; keep iff rank(j) < N. The output carries the keep ``mask``, and
the kept ``values`` and their ``index`` in ascending index order.

``rank`` – comparison matrix::

    data ─► keys ─► M(M-1)/2 comparators ─► popcount per column ─► keep = rank < N
                                                                       │
            data ─────────────────────────────► prefix counts ─► AND-OR compaction ─► o

  One comparator layer (shallow, wide), but M(M-1)/2 comparators and M popcounts: area grows
  with M²; logic depth grows with log M.

``network`` – selection network on (key, index) pairs::

    data ─► (key, sign, index) per line ─► selection network ─► N survivors (unordered)
                                                                   │
                               sorting network on the index ◄──────┘ ─► values, index, mask

  A comparator compares ``(key, ~index)``, so equal keys resolve to the lower index and the
  kept set is exact under ties. Best-known networks take 4/14/44/126 comparators for
  2:4/4:8/8:16/16:32 (against 6/28/120/496 for the matrix), at a depth of 2/4/11/15 layers
  plus the index sort (1/3/6/10): less area, more layers, which the ``pipeline`` registers cut.

``pipeline`` = P register stages spread evenly over the layers (the last one at the output),
so ``latency = P`` cycles; P = 0 gives a combinational unit. ``lanes`` = L copies side by side
share one stream: L groups per transfer.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ARCHS, TopKConfig
from .pipeline import (
    cuts,
    lt_const,
    payload_layout,
    popcount_bits,
    prefix_counts,
    register,
    tree_or,
    valid_chain,
)

__all__ = ["NMTopK", "RankTopK", "NetworkTopK", "build_selector", "selector_layers"]


class _Stepper:
    """Walks the layers of a datapath and inserts the scheduled register stages."""

    def __init__(self, m: Module, advance: Value, layers: int, stages: int, name: str):
        self.m, self.advance, self.name = m, advance, name
        self.cuts = cuts(layers, stages)
        self.layer = 0

    def __call__(self, tree: Any) -> Any:
        count = self.cuts[self.layer]
        self.layer += 1
        if count:
            tree = register(self.m, self.advance, tree, f"{self.name}_l{self.layer}", count)
        return tree


def selector_layers(cfg: TopKConfig) -> int:
    """Number of layers between which the selector's register stages are placed."""
    if cfg.arch == "rank":
        return 5  # keys, comparators, popcount, prefix counts, compaction
    return 2 + cfg.network.depth + cfg.sorter.depth  # keys, selection, index sort, output


def _key_sign(cfg: TopKConfig, x: Value) -> tuple[Value, Value]:
    """Key (unsigned, ``key_width`` bits) and sign bit of one raw element."""
    x = Value.cast(x)
    w = cfg.width
    if cfg.is_int:
        return abs(x.as_signed()), x[w - 1]
    return x[: w - 1], x[w - 1]


def _from_key_sign(cfg: TopKConfig, key: Value, sign: Value) -> Value:
    """Raw bit pattern back from key and sign (integers: -|x| if negative)."""
    if cfg.is_int:
        return Mux(sign, -key, key)[: cfg.width]
    return Cat(key, sign)


def _mask_from_index(cfg: TopKConfig, index: list[Value]) -> Value:
    """Mask bit j = some slot holds index j (slot s can only hold s..s+M-N)."""
    n, m = cfg.n, cfg.m
    bits = []
    for j in range(m):
        hits = [index[s] == j for s in range(max(0, j - (m - n)), min(j, n - 1) + 1)]
        bits.append(tree_or(hits))
    return Cat(*bits)


def _network_lane(cfg: TopKConfig, m: Module, step: _Stepper, data: list[Value], side: Any,
                  name: str) -> tuple[Value, list[Value], list[Value], Any]:
    iw, kw = cfg.index_width, cfg.key_width
    net, sorter = cfg.network, cfg.sorter

    # layer 1: (key, sign, index) per line; the index starts as a constant
    lines: list[Any] = []
    for j, x in enumerate(data):
        key, sign = _key_sign(cfg, x)
        k = Signal(kw, name=f"{name}_key{j}")
        m.d.comb += k.eq(key)
        lines.append((k, sign, Const(j, iw)))
    lines, side = step((lines, side))

    def mux(sel: Value, a: tuple, b: tuple, tag: str) -> tuple:
        """sel ? a : b, as one signal (kept as constants when both indices are constants)."""
        v = Signal(kw + 1 + iw, name=tag)
        m.d.comb += v.eq(Mux(sel, Cat(*a), Cat(*b)))
        return (v[:kw], v[kw], v[kw + 1 :])

    # selection network: max to hi, min to lo; a comparator with one unused output builds one
    # multiplexer set; lines that are no longer needed are dropped from the registers
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

    values = [_from_key_sign(cfg, key, sign) for key, sign, _ in surv]
    index = [Value.cast(idx) for _, _, idx in surv]
    mask = _mask_from_index(cfg, index)
    (mask, values, index), side = step(((mask, values, index), side))
    return mask, values, index, side


def _live_after_layers(net) -> list[set[int]]:
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


def _rank_lane(cfg: TopKConfig, m: Module, step: _Stepper, data: list[Value], side: Any,
               name: str) -> tuple[Value, list[Value], list[Value], Any]:
    n, mm, iw = cfg.n, cfg.m, cfg.index_width
    raw = [Value.cast(x) for x in data]

    # layer 1: keys
    keys = []
    for j, x in enumerate(raw):
        k = Signal(cfg.key_width, name=f"{name}_key{j}")
        m.d.comb += k.eq(_key_sign(cfg, x)[0])
        keys.append(k)
    (keys, raw), side = step(((keys, raw), side))

    # layer 2: beats[i][j] (i < j) = element i outranks element j = key_i >= key_j
    upper = []
    for i in range(mm):
        for j in range(i + 1, mm):
            upper.append(keys[i] >= keys[j])
    beats_bits = Signal(len(upper), name=f"{name}_beats")
    m.d.comb += beats_bits.eq(Cat(*upper))
    (beats_bits, raw), side = step(((beats_bits, raw), side))

    def beats(i: int, j: int) -> Value:
        if i < j:
            return beats_bits[_tri(i, j, mm)]
        return ~beats_bits[_tri(j, i, mm)]

    # layer 3: rank by popcount (compressor tree of plain logic), keep iff rank < N
    keep = []
    for j in range(mm):
        rank = popcount_bits(m, [beats(i, j) for i in range(mm) if i != j], f"{name}_pop{j}")
        keep.append(lt_const(rank, n))
    keep_bits = Signal(mm, name=f"{name}_keep")
    m.d.comb += keep_bits.eq(Cat(*keep))
    (keep_bits, raw), side = step(((keep_bits, raw), side))

    # layer 4: exclusive prefix counts of the kept elements
    cw = max(1, mm.bit_length())
    pre = prefix_counts(m, [keep_bits[j] for j in range(mm)], cw, f"{name}_pre")
    pre_sigs = []
    for j, p in enumerate(pre):
        s = Signal(cw, name=f"{name}_pre{j}")
        m.d.comb += s.eq(Cat(*p))
        pre_sigs.append(s)
    (keep_bits, pre_sigs, raw), side = step(((keep_bits, pre_sigs, raw), side))

    # layer 5: slot s takes the kept j with s kept elements before it (j in s..s+M-N)
    values, index = [], []
    for s in range(n):
        cands = range(s, s + mm - n + 1)
        sel = [keep_bits[j] & (pre_sigs[j] == s) for j in cands]
        values.append(tree_or([raw[j] & sel_j.replicate(cfg.width)
                               for j, sel_j in zip(cands, sel, strict=True)]))
        index.append(tree_or([Const(j, iw) & sel_j.replicate(iw)
                              for j, sel_j in zip(cands, sel, strict=True)]))
    (mask, values, index), side = step(((keep_bits, values, index), side))
    return mask, values, index, side


def _tri(i: int, j: int, m: int) -> int:
    """Position of pair (i, j), i < j, in row-major upper-triangle order."""
    return i * m - i * (i + 1) // 2 + (j - i - 1)


def build_selector(cfg: TopKConfig, m: Module, advance: Value, data: list[Value], side: Any,
                   name: str = "sel") -> tuple[Value, list[Value], list[Value], Any]:
    """Build one lane of the selector into module ``m``.

    Parameters
    ----------
    cfg : TopKConfig
        Design point (``pipeline`` register stages are inserted, loading on ``advance``).
    data : list of Value
        The M raw elements of the group.
    side : tree of Value
        Sideband that travels through the same registers (e.g. weights of a linear engine).

    Returns
    -------
    mask, values, index, side
        ``mask`` (M bits), ``values`` (N raw elements) and ``index`` (N indices) ascending,
        and the delayed sideband, all ``cfg.pipeline`` cycles after ``data``.
    """
    step = _Stepper(m, advance, selector_layers(cfg), cfg.pipeline, name)
    build = _rank_lane if cfg.arch == "rank" else _network_lane
    out = build(cfg, m, step, data, side, name)
    assert step.layer == len(step.cuts)
    return out


class NMTopK(wiring.Component):
    """N:M top-k selector (DESIGN.md sections 1 and 3).

    ``NMTopK(arch=...)`` returns the matching architecture (:class:`RankTopK` or
    :class:`NetworkTopK`); both have the same ports and behaviour.

    Parameters
    ----------
    n, m : int
        Keep ``n`` of every ``m`` consecutive elements (``0 < n < m``, ``m >= 2``).
    fmt : str
        Element format: ``int4``, ``int8``, ``int16``, ``fp16``, ``bf16``, ``fp32``.
    arch : str
        ``"network"`` (default) or ``"rank"``.
    pipeline : int or None
        Register stages, equal to the latency in cycles (0: combinational). ``None`` picks
        a default for the design point (see :func:`gen.config.default_topk_pipeline`).
    lanes : int
        Groups per transfer (each lane an independent group), default 1.

    Raises
    ------
    TypeError, ValueError
        For invalid parameters; the message names the value.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload field ``data``: M elements of ``width`` bits (raw bit patterns).
    o : ``Out(stream.Signature(...))``
        Payload fields ``mask`` (M x 1 bit), ``values`` (N x ``width``), ``index``
        (N x ``index_width``), LSB first; with ``lanes > 1`` an array of such structs.
    """

    arch: str = ""

    def __new__(cls, *args: Any, arch: str | None = None, **kwargs: Any):
        if cls is NMTopK:
            if arch is None:
                arch = "network"
            if arch not in _ARCH_CLASSES:
                raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {arch!r}")
            cls = _ARCH_CLASSES[arch]
        return super().__new__(cls)

    def __init__(self, *, n: int, m: int, fmt: str = "int8", arch: str | None = None,
                 pipeline: int | None = None, lanes: int = 1):
        if arch is not None and arch != self.arch:
            self._MustUse__silence = True
            raise ValueError(f"{type(self).__name__} has arch {self.arch!r}, not {arch!r}")
        try:
            self._config = TopKConfig(n=n, m=m, fmt=fmt, arch=self.arch, pipeline=pipeline,
                                      lanes=lanes)
        except (TypeError, ValueError):
            self._MustUse__silence = True  # no UnusedElaboratable warning after the error
            raise
        super().__init__({
            "i": In(stream.Signature(self.input_layout(self._config))),
            "o": Out(stream.Signature(self.output_layout(self._config))),
        })

    @staticmethod
    def input_layout(cfg: TopKConfig):
        """Payload layout of ``i``."""
        return payload_layout(cfg.input_fields(), cfg.lanes)

    @staticmethod
    def output_layout(cfg: TopKConfig):
        """Payload layout of ``o``."""
        return payload_layout(cfg.output_fields(), cfg.lanes)

    @property
    def config(self) -> TopKConfig:
        """The validated design point."""
        return self._config

    @property
    def n(self) -> int:
        return self._config.n

    @property
    def m(self) -> int:
        return self._config.m

    @property
    def fmt(self) -> str:
        return self._config.fmt

    @property
    def pipeline(self) -> int:
        return self._config.pipeline  # type: ignore[return-value]

    @property
    def lanes(self) -> int:
        return self._config.lanes

    @property
    def latency(self) -> int:
        """Cycles from an accepted input to the earliest output transfer."""
        return self._config.latency

    @property
    def comparators(self) -> int:
        """Key comparators per lane (see :attr:`TopKConfig.comparators`)."""
        return self._config.comparators

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        advance = Signal()
        if cfg.pipeline == 0:
            m.d.comb += self.i.ready.eq(self.o.ready)
            m.d.comb += self.o.valid.eq(self.i.valid)
        else:
            m.d.comb += advance.eq(~self.o.valid | self.o.ready)
            m.d.comb += self.i.ready.eq(advance)
            m.d.comb += self.o.valid.eq(valid_chain(m, advance, self.i.valid, cfg.pipeline))
        for lane in range(cfg.lanes):
            ip = self.i.payload if cfg.lanes == 1 else self.i.payload[lane]
            op = self.o.payload if cfg.lanes == 1 else self.o.payload[lane]
            data = [Value.cast(ip.data[j]) for j in range(cfg.m)]
            name = "sel" if cfg.lanes == 1 else f"sel{lane}"
            mask, values, index, _ = build_selector(cfg, m, advance, data, None, name)
            m.d.comb += op.mask.as_value().eq(mask)
            for s in range(cfg.n):
                m.d.comb += op.values[s].eq(values[s])
                m.d.comb += op.index[s].eq(index[s])
        return m


class RankTopK(NMTopK):
    """:class:`NMTopK` with the comparison-matrix architecture (``arch="rank"``)."""

    arch = "rank"


class NetworkTopK(NMTopK):
    """:class:`NMTopK` with the selection-network architecture (``arch="network"``)."""

    arch = "network"


_ARCH_CLASSES: dict[str, type[NMTopK]] = {"rank": RankTopK, "network": NetworkTopK}
