"""The N:M sparse linear engine: top-k selector and sparse MAC in one pipeline.

::

    data[M], weights, last ─► selector (pipeline P) ─► values[N], index[N] ─► sparse MAC ─► acc[K]
              └──── weights, last travel alongside through the same P stages ──┘

The weights and ``last`` ride through the selector's register stages as sideband, so each
group meets its own weights at the multipliers. ``latency = P + 2`` cycles (selector stages,
product register, accumulator/output register), counted from the transfer of the ``last``
group. One group per clock while the consumer is ready; a stalled output freezes every stage.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Signal, Value

from .config import LinearConfig
from .mac import accumulate, sparse_products
from .pipeline import register, valid_chain
from .topk import build_selector
from .unit import StreamUnit

__all__ = ["NMLinear"]


class NMLinear(StreamUnit):
    """Sparse linear engine ``nm_linear_<N>_<M>_<fmt>_k<K>``.

    Parameters
    ----------
    config : LinearConfig
        The validated design point (pattern, format, selector architecture and register
        stages, weight and accumulator widths, K).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.LinearConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (M elements), ``weights`` (K*M signed; element
        ``k*M + j`` is output k's weight of group position j), ``last`` (1 bit).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = LinearConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        m.d.comb += self.i.ready.eq(advance)
        p = self.i.payload
        data = [Value.cast(p.data[j]) for j in range(cfg.m)]
        side = (Value.cast(p.weights), Value.cast(p.last)[0])
        _, values, index, (weights, last) = build_selector(cfg.selector, m, advance, data, side)
        valid = valid_chain(m, advance, self.i.valid, cfg.pipeline)
        prods = sparse_products(m, values, index, cfg.weights_layout()(weights), m_=cfg.m,
                                outputs=cfg.outputs, weight_width=cfg.weight_width)
        prods, last = register(m, advance, (prods, last), "prod")
        valid = valid_chain(m, advance, valid, 1, "prod_valid")
        outs, out_valid = accumulate(m, advance, valid, last, prods, cfg.acc_width)
        m.d.comb += self.o.valid.eq(out_valid)
        for k, out in enumerate(outs):
            m.d.comb += self.o.payload.acc[k].eq(out)
        return m
