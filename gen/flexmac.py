"""Runtime-flexible sparse MAC and linear engine: S multipliers per output for any pattern.

DESIGN.md section 5. Both compute, per output k, the dot product of a row of W-lane
transfers with K x W weights (element ``k*W + j``: output k, lane j of the transfer), each
transfer under its own pattern, and emit the K accumulators after the transfer that carries
``last``::

    sparse MAC:   values[S], index[S] ─► per output k and slot s: w = weights[k*W + index[s]]
                                         ((W-s):1 multiplexer on index - s) ─► [reg]
                                         product = values[s] * w       (S multipliers per output)
    linear:       data[W], m_log2, n ─► flexible selector; lane j's K weights travel through
                                         its compaction with lane j's value: no multiplexer
                  ─► [reg] ─► adder tree, a [reg] every FLEX_TREE_LEVELS levels
                  ─► acc[k] += sum ─► on last: o.acc[k] = acc[k]

Unused slots carry value 0 (DESIGN.md section 5), so their products add 0 whatever weight
they meet; a transfer the selector flags ``err`` adds 0 and ``last`` still ends the row.
Every pattern that fills the S slots (density S/W: 2:4, 4:8, 8:16, 16:32 at the default
S = W/2) keeps all S x K multipliers busy on every clock.

Trade-off: the sparse MAC pays a (W-s):1 weight multiplexer per slot (wider than the fixed
engine's (M-N+1):1, because a slot may hold any later lane under some pattern); the linear
engine instead widens its compaction stages by the K weights of a lane, W log W
multiplexers of K x weight_width bits.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed

from .config import FLEX_TREE_LEVELS, FlexLinearConfig, FlexSparseMACConfig, flex_tree_stages
from .flex import build_flex_selector
from .mac import tree_level
from .pipeline import register, tree_sum, valid_chain
from .unit import StreamUnit

__all__ = ["NMSparseMACFlex", "NMLinearFlex", "flex_weights", "accumulate_rows"]


def _select(words: list[Value], sel: Value) -> Value:
    """``words[sel]`` as a tree of 2:1 multiplexers, one level per ``sel`` bit (``sel``
    beyond the list is don't-care)."""
    level = 0
    while len(words) > 1:
        nxt = [Mux(sel[level], words[i + 1], words[i]) for i in range(0, len(words) - 1, 2)]
        if len(words) % 2:
            nxt.append(words[-1])
        words, level = nxt, level + 1
    return words[0]


def flex_weights(m: Module, index: list[Value], weights: Any, *, w: int, outputs: int,
                 weight_width: int, name: str = "mul") -> list[list[Value]]:
    """``wts[k][s] = weights[k*W + index[s]]``: the weight of output k for slot s.

    Slot s of the flexible selector holds a lane in ``s .. W-1`` (the indices ascend), so
    the multiplexer of slot s has W - s inputs, selected by ``index[s] - s``.
    """
    lw = max(1, (w - 1).bit_length())
    offsets = []
    for s, idx in enumerate(index):
        off = Signal(lw, name=f"{name}_off{s}")
        m.d.comb += off.eq(Value.cast(idx) - s)
        offsets.append(off)
    out = []
    for k in range(outputs):
        row = []
        for s in range(len(index)):
            cands = [Value.cast(weights[k * w + j]) for j in range(s, w)]
            wt = Signal(signed(weight_width), name=f"{name}_w{k}_{s}")
            m.d.comb += wt.eq(_select(cands, offsets[s]))
            row.append(wt)
        out.append(row)
    return out


def accumulate_rows(m: Module, advance: Value, valid: Value, last: Value, products: list[list],
                    acc_width: int, name: str = "acc") -> tuple[list[Value], Value]:
    """Adder tree per output (kept two-operand adders), accumulation until ``last``, and the
    output register; the accumulators wrap modulo ``2**acc_width``.

    Returns the K output registers and their valid bit (both loaded on ``advance``). The
    flexible units keep their own copy so that they do not depend on how :mod:`gen.mac`
    schedules its stages.
    """
    outs = []
    out_valid = Signal(name=f"{name}_out_valid")
    with m.If(advance):
        m.d.sync += out_valid.eq(valid & last)
    for k, prods in enumerate(products):
        acc = Signal(signed(acc_width), name=f"{name}{k}")
        out = Signal(signed(acc_width), name=f"{name}{k}_out", reset_less=True)
        total = Signal(signed(acc_width), name=f"{name}{k}_next")
        m.d.comb += total.eq(acc + tree_sum(prods, m, f"{name}{k}_sum"))
        with m.If(advance & valid):
            with m.If(last):
                m.d.sync += [out.eq(total), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(total)
        outs.append(out)
    return outs, out_valid


def _shell(m: Module, unit: StreamUnit) -> Value:
    advance = Signal()
    m.d.comb += advance.eq(~unit.o.valid | unit.o.ready)
    m.d.comb += unit.i.ready.eq(advance)
    return advance


def _finish(m: Module, unit: StreamUnit, advance: Value, valid: Value, last: Value,
            prods: list[list], acc_width: int) -> None:
    """The products' register, the adder tree (:data:`gen.config.FLEX_TREE_LEVELS` levels
    per register stage) and the accumulator with the output register."""
    prods, last = register(m, advance, (prods, last), "prod")
    valid = valid_chain(m, advance, valid, 1, "prod_valid")
    for st in range(flex_tree_stages(len(prods[0]))):
        for lv in range(FLEX_TREE_LEVELS):
            prods = [tree_level(m, row, f"sum{st}_{lv}_k{k}") if len(row) > 1 else row
                     for k, row in enumerate(prods)]
        prods, last = register(m, advance, (prods, last), f"sum{st}")
        valid = valid_chain(m, advance, valid, 1, f"sum{st}_valid")
    outs, out_valid = accumulate_rows(m, advance, valid, last, prods, acc_width)
    m.d.comb += unit.o.valid.eq(out_valid)
    for k, out in enumerate(outs):
        m.d.comb += unit.o.payload.acc[k].eq(out)


class NMSparseMACFlex(StreamUnit):
    """Runtime-flexible sparse MAC ``nm_spmac_flex_<W>_<fmt>_k<K>`` (DESIGN.md section 5).

    Parameters
    ----------
    config : FlexSparseMACConfig
        The validated design point (W, slots, format, weight and accumulator widths, K).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.FlexSparseMACConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``values`` (S signed elements, 0 in unused slots),
        ``index`` (S lane indices, ascending over the used slots), ``weights`` (K*W signed;
        element ``k*W + j`` is output k's weight of lane j), ``last`` (1 bit).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = FlexSparseMACConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        advance = _shell(m, self)
        p = self.i.payload
        values = [Value.cast(p.values[s]) for s in range(cfg.max_kept)]
        index = [Value.cast(p.index[s]) for s in range(cfg.max_kept)]
        wts = flex_weights(m, index, p.weights, w=cfg.w, outputs=cfg.outputs,
                           weight_width=cfg.weight_width)
        # the selected weights and the values into registers: the multipliers' operands
        # (inside the DSP blocks, as MULT18X18D's input registers, it measured 90.3 against
        # 94.6 MHz: the multiplexers' routes then end at the DSP pins)
        values, wts, last = register(m, advance, (values, wts, Value.cast(p.last)[0]), "wsel")
        valid = valid_chain(m, advance, self.i.valid, 1, "wsel_valid")
        prods = [[Value.cast(v).as_signed() * wt for v, wt in zip(values, row, strict=True)]
                 for row in wts]
        _finish(m, self, advance, valid, last, prods, cfg.acc_width)
        return m


class NMLinearFlex(StreamUnit):
    """Runtime-flexible sparse linear engine ``nm_linear_flex_<W>_<fmt>_k<K>``.

    Parameters
    ----------
    config : FlexLinearConfig
        The validated design point (W, slots, format, selector stages, widths, K).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.FlexLinearConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (W elements), ``m_log2``, ``n`` (the pattern of
        this transfer), ``weights`` (K*W signed; element ``k*W + j`` is output k's weight of
        lane j), ``last`` (1 bit).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = FlexLinearConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        advance = _shell(m, self)
        p = self.i.payload
        wv = cfg.weights_layout()(Value.cast(p.weights))
        data = [Value.cast(p.data[j]) for j in range(cfg.w)]
        # lane j's K weights, output 0's at the LSB
        carry = [Cat(*[Value.cast(wv[k * cfg.w + j]) for k in range(cfg.outputs)])
                 for j in range(cfg.w)]
        out, last = build_flex_selector(cfg.selector, m, advance, data, Value.cast(p.m_log2),
                                        Value.cast(p.n), Value.cast(p.last)[0], carry=carry)
        valid = valid_chain(m, advance, self.i.valid, cfg.pipeline)
        ww = cfg.weight_width
        prods = [[Value.cast(v).as_signed() * c[k * ww : (k + 1) * ww].as_signed()
                  for v, c in zip(out["values"], out["carry"], strict=True)]
                 for k in range(cfg.outputs)]
        _finish(m, self, advance, valid, last, prods, cfg.acc_width)
        return m
