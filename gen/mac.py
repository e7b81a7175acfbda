"""Multiply-accumulate units: the N:M sparse MAC and the dense baseline.

Both compute K dot products over a row of groups (DESIGN.md section 2) and emit the K
accumulators after the group that carries ``last``::

    values[N], index[N] ─► per output k and slot s: w = weights[k*M + index[s]]
                           ((M-N+1):1 mux: ascending indices put slot s in s..s+M-N)
                           product = values[s] * w            (N multipliers per output)
                       ──► [reg] ─► adder tree ─► acc[k] += sum ─► on last: o.acc[k] = acc[k],
                                                                             acc[k] = 0

The dense baseline multiplies all M elements (M multipliers per output, no multiplexers).
Products are signed, sums exact; the accumulator wraps modulo ``2**acc_width`` (two's
complement). Two register stages (products, accumulator/output): ``latency = 2`` cycles from
the transfer of the ``last`` group to the earliest output transfer. One group per clock while
the consumer is ready; a stalled output freezes the whole unit. ``rst`` clears the
accumulators: a row in progress is dropped.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal, Value, signed

from .config import DenseMACConfig, SparseMACConfig
from .pipeline import register, tree_sum, valid_chain
from .unit import StreamUnit

__all__ = ["NMSparseMAC", "DenseMAC", "sparse_products", "dense_products", "accumulate"]


def sparse_products(m: Module, values: list[Value], index: list[Value], weights, *,
                    m_: int, outputs: int, weight_width: int, name: str = "mul") -> list[list]:
    """``products[k][s] = values[s] * weights[k*M + index[s]]`` (signed, exact width).

    ``weights`` is a view of the weight field (``ArrayLayout`` of K*M signed elements).
    The indices are strictly ascending (the compressed form), so slot s holds an index in
    ``s .. s + M - N``: each weight multiplexer has M - N + 1 inputs, not M.
    """
    ww, n = weight_width, len(values)
    span = m_ - n + 1
    sel_width = max(1, (span - 1).bit_length())
    offsets = []
    for s, idx in enumerate(index):
        off = Signal(sel_width, name=f"{name}_off{s}")
        m.d.comb += off.eq(Value.cast(idx) - s)  # index relative to the slot's first candidate
        offsets.append(off)
    out = []
    for k in range(outputs):
        prods = []
        for s, v in enumerate(values):
            cands = [Value.cast(weights[k * m_ + s + c]) for c in range(span)]
            w = Signal(signed(ww), name=f"{name}_w{k}_{s}")
            m.d.comb += w.eq(_mux_tree(cands, offsets[s]))
            prods.append(Value.cast(v).as_signed() * w)
        out.append(prods)
    return out


def _mux_tree(words: list[Value], sel: Value) -> Value:
    """``words[sel]`` as a binary tree of 2:1 multiplexers, one level per ``sel`` bit
    (``len(words) - 1`` multiplexers per bit; ``sel`` beyond the list is don't-care).

    Not ``word_select``: that emits a barrel shifter over all words, several times the
    logic before optimisation, which slows synthesis of the wide weight selection.
    """
    level = 0
    while len(words) > 1:
        nxt = [Mux(sel[level], words[i + 1], words[i]) for i in range(0, len(words) - 1, 2)]
        if len(words) % 2:
            nxt.append(words[-1])
        words, level = nxt, level + 1
    return words[0]


def dense_products(values: list[Value], weights, *, m_: int, outputs: int) -> list[list]:
    """``products[k][j] = values[j] * weights[k*M + j]`` (signed, exact width); ``weights``
    is a view of the weight field."""
    return [[Value.cast(v).as_signed() * weights[k * m_ + j] for j, v in enumerate(values)]
            for k in range(outputs)]


def accumulate(m: Module, advance: Value, valid: Value, last: Value, products: list[list],
               acc_width: int, name: str = "acc") -> tuple[list[Value], Value]:
    """Adder tree per output, accumulation until ``last``, and the output register.

    Returns the K output registers and their valid bit (both loaded on ``advance``).
    """
    outs = []
    out_valid = Signal(name=f"{name}_out_valid")
    with m.If(advance):
        m.d.sync += out_valid.eq(valid & last)
    for k, prods in enumerate(products):
        acc = Signal(signed(acc_width), name=f"{name}{k}")
        out = Signal(signed(acc_width), name=f"{name}{k}_out", reset_less=True)
        total = Signal(signed(acc_width), name=f"{name}{k}_next")
        m.d.comb += total.eq(acc + tree_sum(prods, m, f"{name}{k}_sum"))  # wraps to acc_width
        with m.If(advance & valid):
            with m.If(last):
                m.d.sync += [out.eq(total), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(total)
        outs.append(out)
    return outs, out_valid


class _MACBase(StreamUnit):
    """Shared shell: global stall, product and output stages."""

    def _products(self, m: Module) -> list[list]:  # pragma: no cover - abstract
        raise NotImplementedError

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(advance)
        prods = self._products(m)
        last = Value.cast(self.i.payload.last)[0]
        prods, last = register(m, advance, (prods, last), "prod")
        valid = valid_chain(m, advance, self.i.valid, 1, "prod_valid")
        outs, out_valid = accumulate(m, advance, valid, last, prods, self._config.acc_width)
        m.d.comb += self.o.valid.eq(out_valid)
        for k, out in enumerate(outs):
            m.d.comb += self.o.payload.acc[k].eq(out)
        return m


class NMSparseMAC(_MACBase):
    """N:M sparse MAC ``nm_spmac_<N>_<M>_<fmt>_k<K>``.

    Parameters
    ----------
    config : SparseMACConfig
        The validated design point (pattern, format, weight and accumulator widths, K).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.SparseMACConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``values`` (N signed elements), ``index`` (N strictly
        ascending indices in [0, M), as the selector emits them), ``weights`` (K*M signed;
        element ``k*M + j`` is output k's weight of group position j), ``last`` (1 bit:
        this group ends the row).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = SparseMACConfig

    def _products(self, m: Module) -> list[list]:
        cfg = self._config
        p = self.i.payload
        values = [Value.cast(p.values[s]) for s in range(cfg.n)]
        index = [Value.cast(p.index[s]) for s in range(cfg.n)]
        return sparse_products(m, values, index, p.weights, m_=cfg.m,
                               outputs=cfg.outputs, weight_width=cfg.weight_width)


class DenseMAC(_MACBase):
    """Dense baseline MAC ``dense_mac_<M>_<fmt>_k<K>``: the same dot product, all M kept.

    Parameters
    ----------
    config : DenseMACConfig
        The validated design point (group size, format, widths, K).

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (M signed elements), ``weights`` (K*M), ``last``.
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = DenseMACConfig

    def _products(self, m: Module) -> list[list]:
        cfg = self._config
        p = self.i.payload
        values = [Value.cast(p.data[j]) for j in range(cfg.m)]
        return dense_products(values, p.weights, m_=cfg.m, outputs=cfg.outputs)
