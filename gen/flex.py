"""Runtime-flexible N:M selector: one unit for 2:4 ... 16:32, the pattern chosen per transfer.

DESIGN.md section 5. W lanes per transfer; the payload carries the pattern (``m_log2``,
``n``) beside the elements, so it may change on any clock. The W lanes are W/M aligned groups
of M = 2**m_log2; each follows DESIGN.md section 1. The ``rank`` architecture::

    data[W] ─► keys ─► W(W-1)/2 comparators ─► per lane: popcount of the beats *inside the
               (m_log2, n) ─► decode: err, group enables ─┘     runtime group, rank < n ─► keep
                                                                                          │
    kept lanes ─► d_j = non-kept lanes before j (prefix count) ─► log2 W shift stages ─► slots

Group membership costs almost nothing: lanes i and j share a group of M = 2**m_log2 iff the
highest bit in which i and j differ is below m_log2, so the comparison bits of lane j fall
into log2 W blocks by that bit, and the blocks above the group are switched off by one
enable each (one more input on the first compressor level). The comparison matrix is the
fixed 32-lane one; only the compare against a runtime n and the compaction differ.

Compaction moves kept lane j left by d_j, one stage per bit of d_j, least significant bit
first: stage k shifts by 2**k. Two kept lanes a < b never collide (after any prefix of the
stages their distance is at least the number of kept lanes between them plus one), so each
stage is one 2:1 multiplexer per position and bit: W log W multiplexers in place of the
rank selector's S x (W - S + 1) AND-OR candidates, and it serves every pattern. Slots beyond
``count`` (and every slot of a transfer flagged ``err``) hold value 0 and index 0.

Trade-off: the W-lane comparison matrix is quadratic (496 comparators at W = 32); what the
flexibility adds over a fixed 16:32 rank selector is the runtime threshold and decode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value

from nmsparse.contract import flex as contract

from .arch.base import Layer, key_sign
from .config import FlexTopKConfig
from .pipeline import Stepper, add_bits, popcount_bits, probe_live_bits, stall_enables
from .unit import StreamUnit

__all__ = ["FLEX_ARCHITECTURES", "FlexRankArch", "NMTopKFlex", "build_flex_selector",
           "decode_pattern"]


def decode_pattern(cfg: Any, m_log2: Value, n: Value) -> dict[str, Value]:
    """Hardware form of :func:`nmsparse.contract.flex.serves`, one lookup per M.

    Returns ``ok`` (served), ``en[h]`` for every comparison block h (lanes whose indices
    first differ in bit h share a group iff h < m_log2) and ``count`` (N x W/M, or 0).
    """
    lw = cfg.lanes_log2
    hits, counts = [], []
    for ml in range(contract.MIN_M_LOG2, lw + 1):
        m = 1 << ml
        hi = min(m - 1, cfg.max_kept // (cfg.w >> ml))  # largest N served at this M
        if hi < 1:
            continue
        is_ml = m_log2 == ml
        hit = is_ml & (n != 0) & (n <= hi)
        hits.append(hit)
        counts.append(Mux(hit, (n << (lw - ml))[: cfg.count_width], 0))
    ok = Cat(*hits).any() if hits else Const(0, 1)
    count = counts[0]
    for c in counts[1:]:
        count = count | c
    en = [Const(1, 1) if h < contract.MIN_M_LOG2 else (m_log2 > h) for h in range(lw)]
    return {"ok": ok, "en": en, "count": count[: cfg.count_width]}


def _rest(d: Value | None) -> Value | None:
    """The shift bits after the one this stage uses (None when none are left)."""
    d = Value.cast(d)
    return d[1:] if len(d) > 1 else None


class FlexRankArch:
    """W-lane comparison matrix with group enables, runtime threshold, shift compaction.

    Parameters
    ----------
    config : FlexTopKConfig
        The validated design point.
    """

    name = "rank"

    def __init__(self, config: FlexTopKConfig) -> None:
        self.config = config

    def layers(self) -> list[Layer]:
        """The layers :meth:`build` passes, with the delay model of each (ns on ECP5,
        logic and routing; fitted on place-and-route runs of W = 32 int8, seed 1): the
        comparators' delay grows with the key fanout (W - 1 comparators per key), the
        rank's and the prefix's with log2 W."""
        cfg = self.config
        lw, kw = cfg.lanes_log2, cfg.key_width
        out = [Layer("keys", 1.0 + 0.15 * kw),
               Layer("comparators", 1.0 + 0.12 * cfg.w + 0.1 * kw),
               Layer("rank", 1.0 + 1.2 * lw),
               Layer("keep", 3.0),  # compare with the runtime n; the keep bits fan out
               Layer("prefix_lo", 1.5 + 1.3 * ((lw + 1) // 2)),
               Layer("prefix_hi", 1.5 + 1.3 * (lw // 2))]
        out += [Layer(f"shift{k}", 1.6) for k in range(lw)]
        out.append(Layer("output", 1.0))
        return out

    def live_bits(self) -> list[int]:
        """Bits a register after each layer would hold (a dry-run build, as
        :meth:`gen.arch.base.Architecture.live_bits`)."""
        cfg = self.config
        data = [Signal(cfg.width, name=f"probe_x{j}") for j in range(cfg.w)]
        ml, n = Signal(cfg.m_log2_width), Signal(cfg.n_width)
        return probe_live_bits(len(self.layers()),
                               lambda m, step: self.build(m, step, data, ml, n, None, "probe"))

    def comparators(self) -> int:
        w = self.config.w
        return w * (w - 1) // 2

    def default_pipeline(self) -> int:
        """Register stages when the configuration gives neither stages nor a clock: one
        per 11 ns of the delay model (about 90 MHz), at least one."""
        return max(1, round(sum(la.delay_ns for la in self.layers()) / 11.0))

    def metrics(self) -> dict[str, int]:
        lw = self.config.lanes_log2
        return {"comparators": self.comparators(), "compaction_stages": lw,
                "compaction_positions": self._shift_positions()}

    def _needed(self) -> list[set[int]]:
        """Positions still needed after each shift stage (the last: the S slots)."""
        cfg = self.config
        lw, w = cfg.lanes_log2, cfg.w
        need = [set() for _ in range(lw)]
        cur = set(range(cfg.max_kept))
        for k in range(lw - 1, -1, -1):
            need[k] = cur
            cur = cur | {p + (1 << k) for p in cur if p + (1 << k) < w}
        return need

    def _shift_positions(self) -> int:
        return sum(len(s) for s in self._needed())

    def build(self, m: Module, step: Stepper, data: list[Value], m_log2: Value, n: Value,
              side: Any, name: str,
              carry: list[Value] | None = None) -> tuple[dict[str, Any], Any]:
        """Build the datapath; ``step`` after each layer of :meth:`layers`.

        ``carry[j]`` (optional) are bits of lane j that travel through the compaction with
        its value (a linear engine's weights): they come out per slot as ``carry``, not
        zeroed in unused slots.

        Returns the output fields (``mask``, ``values``, ``index``, ``count``, ``m_log2``,
        ``n``, ``err``, and ``carry`` if given) and the delayed sideband.
        """
        cfg = self.config
        w, lw, s_slots = cfg.w, cfg.lanes_log2, cfg.max_kept
        raw = [Value.cast(x) for x in data]
        if carry is not None:
            raw = [Cat(x, c) for x, c in zip(raw, carry, strict=True)]

        # keys and the pattern decode
        keys = []
        for j, x in enumerate(raw):
            k = Signal(cfg.key_width, name=f"{name}_key{j}")
            m.d.comb += k.eq(key_sign(cfg, x[: cfg.width])[0])
            keys.append(k)
        dec = decode_pattern(cfg, m_log2, n)
        pat = {"ok": dec["ok"], "en": dec["en"], "count": dec["count"],
               "m_log2": m_log2, "n": n}
        (keys, raw, pat), side = step(((keys, raw, pat), side))

        # beats(i, j), i < j: element i outranks element j (lower index wins ties)
        pairs = [(i, j) for i in range(w) for j in range(i + 1, w)]
        beats_bits = Signal(len(pairs), name=f"{name}_beats")
        m.d.comb += beats_bits.eq(Cat(*[keys[i] >= keys[j] for i, j in pairs]))
        pos = {p: t for t, p in enumerate(pairs)}
        (beats_bits, raw, pat), side = step(((beats_bits, raw, pat), side))

        def beats(i: int, j: int) -> Value:
            return beats_bits[pos[(i, j)]] if i < j else ~beats_bits[pos[(j, i)]]

        # rank inside the runtime group. The comparison bits of lane j fall into blocks by
        # the highest index bit h in which i and j differ (2**h lanes each); block h lies
        # inside the group iff h < m_log2, so its bits are ANDed with one enable (blocks 0
        # and 1 always count: M >= 4). One compressor tree per lane; the bits of a block sit
        # side by side, so each first-level full adder sees a single enable (4 inputs: one
        # LUT4). (Per-block popcounts with an enabled sum cost ~10% more LUT4 once a
        # register stage separates the two.)
        en = [pat["en"][h] for h in range(lw)]
        ranks = []
        for j in range(w):
            bits = []
            for h in range(lw):
                blk = [i for i in range(w) if i != j and (i ^ j).bit_length() - 1 == h]
                gate = en[h] if h >= contract.MIN_M_LOG2 else None
                bits += [beats(i, j) if gate is None else beats(i, j) & gate for i in blk]
            r = Signal(lw, name=f"{name}_rank{j}")
            m.d.comb += r.eq(Cat(*popcount_bits(m, bits, f"{name}_pop{j}")))
            ranks.append(r)
        (ranks, raw, pat), side = step(((ranks, raw, pat), side))

        keep = Signal(w, name=f"{name}_keep")
        m.d.comb += keep.eq(Cat(*[(r < pat["n"]) & pat["ok"] for r in ranks]))
        (keep, raw, pat), side = step(((keep, raw, pat), side))

        # d_j: lanes not kept before lane j = how far kept lane j moves left. Inclusive
        # counts of the lanes not kept, Sklansky (log2 W levels); a layer boundary after
        # half of the levels, where a register stage may go
        inc: list[list[Value]] = [[~keep[j]] for j in range(w)]
        levels = lw
        for lv in range(levels):
            d = 1 << lv
            nxt = list(inc)
            for i in range(w):
                if i & d:
                    src = (i & ~(d - 1)) - 1  # last lane of the block below
                    nxt[i] = add_bits(m, inc[i], inc[src], lv + 2, f"{name}_pre{lv}_{i}")
            inc = nxt
            if lv == (levels - 1) // 2:
                sigs = []
                for i, bits in enumerate(inc):
                    c = Signal(len(bits), name=f"{name}_cnt{i}")
                    m.d.comb += c.eq(Cat(*bits))
                    sigs.append(c)
                (keep, sigs, raw, pat), side = step(((keep, sigs, raw, pat), side))
                inc = [[sg[b] for b in range(len(sg))] for sg in sigs]
        dist = [Const(0, lw)]
        for j in range(1, w):
            d = Signal(lw, name=f"{name}_d{j}")
            m.d.comb += d.eq(Cat(*inc[j - 1]))
            dist.append(d)
        (keep, dist, raw, pat), side = step(((keep, dist, raw, pat), side))

        # shift compaction, least significant bit of d first. An element is (valid, value,
        # index, rest): ``rest`` holds the bits of d not used yet, its bit 0 selects this stage
        elems: list[Any] = [(keep[j], raw[j], Const(j, lw), dist[j]) for j in range(w)]
        need = self._needed()
        for k in range(lw):
            nxt: list[Any] = [None] * w
            for p in sorted(need[k]):
                here, src = elems[p], p + (1 << k)
                up = elems[src] if src < w else None
                stay = (here[0] & ~here[3][0], here[1], here[2], _rest(here[3]))
                if up is None:
                    nxt[p] = stay
                    continue
                arrive = Signal(name=f"{name}_sh{k}_{p}")
                m.d.comb += arrive.eq(up[0] & up[3][0])
                moved = (arrive, up[1], up[2], _rest(up[3]))
                v = Signal(name=f"{name}_sh{k}_{p}_v")
                m.d.comb += v.eq(arrive | stay[0])
                fields = []
                for t, (a, b) in enumerate(zip(moved[1:], stay[1:], strict=True)):
                    if a is None:
                        fields.append(None)
                        continue
                    a, b = Value.cast(a), Value.cast(b)
                    f = Signal(len(a), name=f"{name}_sh{k}_{p}_f{t}")
                    m.d.comb += f.eq(Mux(arrive, a, b))
                    fields.append(f)
                nxt[p] = (v, *fields)
            (elems, keep, pat), side = step(((nxt, keep, pat), side))

        values, index, carried = [], [], []
        for s in range(s_slots):
            valid, value, idx, _ = elems[s]
            values.append(value[: cfg.width] & valid.replicate(cfg.width))
            index.append(idx & valid.replicate(lw))
            carried.append(value[cfg.width :])
        out = {"mask": keep, "values": values, "index": index, "count": pat["count"],
               "m_log2": pat["m_log2"], "n": pat["n"], "err": ~pat["ok"]}
        if carry is not None:
            out["carry"] = carried
        return step((out, side))


#: name -> flexible selector architecture.
FLEX_ARCHITECTURES: dict[str, type[FlexRankArch]] = {FlexRankArch.name: FlexRankArch}


def build_flex_selector(cfg: FlexTopKConfig, m: Module, advance: Value, data: list[Value],
                        m_log2: Value, n: Value, side: Any, name: str = "fsel",
                        carry: list[Value] | None = None,
                        enable: Callable[[], Value] | None = None
                        ) -> tuple[dict[str, Any], Any]:
    """Build the flexible selector datapath into ``m`` (register stages on ``advance``).

    ``carry[j]``: optional bits of lane j compacted with its value (see
    :meth:`FlexRankArch.build`). Returns the output fields and ``side`` delayed alike,
    ``cfg.pipeline`` cycles later. ``enable``: copies of ``advance`` for the register stages
    (:func:`gen.pipeline.stall_enables`).
    """
    arch = cfg.architecture
    step = Stepper(m, advance, cfg.cuts, name, enable=enable)
    out, side = arch.build(m, step, data, m_log2, n, side, name, carry)
    step.finish()
    return out, side


class NMTopKFlex(StreamUnit):
    """Runtime-flexible N:M selector (DESIGN.md section 5).

    Parameters
    ----------
    config : FlexTopKConfig
        The validated design point (W, format, architecture, slots, register stages).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.FlexTopKConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (W elements), ``m_log2`` (M = 2**m_log2),
        ``n``.
    o : ``Out(stream.Signature(...))``
        Payload fields, LSB first: ``mask`` (W bits), ``values`` (S elements), ``index``
        (S lane indices), ``count``, ``m_log2`` and ``n`` (echoed), ``err``.
    """

    config_class = FlexTopKConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        advance, enable = stall_enables(m, self.i, self.o, cfg.pipeline)
        p = self.i.payload
        data = [Value.cast(p.data[j]) for j in range(cfg.w)]
        out, _ = build_flex_selector(cfg, m, advance, data, Value.cast(p.m_log2),
                                     Value.cast(p.n), None, enable=enable)
        o = self.o.payload
        m.d.comb += o.mask.as_value().eq(out["mask"])
        for s in range(cfg.max_kept):
            m.d.comb += [o.values[s].eq(out["values"][s]), o.index[s].eq(out["index"][s])]
        m.d.comb += [o.count.as_value().eq(out["count"]), o.m_log2.as_value().eq(out["m_log2"]),
                     o.n.as_value().eq(out["n"]), o.err.as_value().eq(out["err"])]
        return m
