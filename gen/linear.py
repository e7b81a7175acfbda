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
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .config import LinearConfig
from .mac import _validated, accumulate, sparse_products
from .pipeline import payload_layout, register, valid_chain
from .topk import build_selector

__all__ = ["NMLinear"]


class NMLinear(wiring.Component):
    """Sparse linear engine ``nm_linear_<N>_<M>_<fmt>_k<K>``.

    Parameters
    ----------
    n, m : int
        Keep ``n`` of every ``m`` activations (``0 < n < m``).
    fmt : str
        Integer activation format: ``int4``, ``int8`` (default) or ``int16``.
    arch : str
        Selector architecture, ``"network"`` (default) or ``"rank"``.
    pipeline : int or None
        Selector register stages (``None``: the selector's default for the point).
    weight_width, acc_width, outputs : int
        As for :class:`gen.mac.NMSparseMAC` (defaults 8, 32, 4).

    Raises
    ------
    TypeError, ValueError
        For invalid parameters; the message names the value.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (M elements), ``weights`` (K*M signed; element
        ``k*M + j`` is output k's weight of group position j), ``last`` (1 bit).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    def __init__(self, *, n: int, m: int, fmt: str = "int8", arch: str = "network",
                 pipeline: int | None = None, weight_width: int = 8, acc_width: int = 32,
                 outputs: int = 4):
        self._config = _validated(self, LinearConfig, n=n, m=m, fmt=fmt, arch=arch,
                                  pipeline=pipeline, weight_width=weight_width,
                                  acc_width=acc_width, outputs=outputs)
        super().__init__({
            "i": In(stream.Signature(payload_layout(self._config.input_fields()))),
            "o": Out(stream.Signature(payload_layout(self._config.output_fields()))),
        })

    @property
    def config(self) -> LinearConfig:
        """The validated design point."""
        return self._config

    @property
    def latency(self) -> int:
        """Cycles from the transfer of a row's ``last`` group to the earliest output."""
        return self._config.latency

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
        prods = sparse_products(m, values, index, weights, m_=cfg.m, outputs=cfg.outputs,
                                weight_width=cfg.weight_width)
        prods, last = register(m, advance, (prods, last), "prod")
        valid = valid_chain(m, advance, valid, 1, "prod_valid")
        outs, out_valid = accumulate(m, advance, valid, last, prods, cfg.acc_width)
        m.d.comb += self.o.valid.eq(out_valid)
        for k, out in enumerate(outs):
            m.d.comb += self.o.payload.acc[k].eq(out)
        return m
