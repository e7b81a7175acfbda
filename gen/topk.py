"""N:M top-k selector: keep the N largest-magnitude of every M inputs, one group per clock.

The component is the same for every architecture (DESIGN.md sections 1 and 3): key = |x| for
integers, the sign-cleared bit pattern for floats; rank(j) = #{i : key_i > key_j} +
#{i < j : key_i == key_j}; keep iff rank(j) < N. The output carries the keep ``mask``, and the
kept ``values`` and their ``index`` in ascending index order. How one lane is built is the
architecture's business (:mod:`gen.arch`); where its register stages go is the schedule's
(:func:`gen.pipeline.cuts`): ``pipeline`` = P stages, so ``latency = P`` cycles; P = 0 gives a
combinational unit. ``lanes`` = L copies side by side share one stream: L groups per transfer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from amaranth.hdl import Module, Value

from .config import TopKConfig
from .pipeline import Stepper, stall_enables
from .unit import StreamUnit

__all__ = ["NMTopK", "build_selector"]


def build_selector(cfg: TopKConfig, m: Module, advance: Value, data: list[Value], side: Any,
                   name: str = "sel", enable: Callable[[], Value] | None = None
                   ) -> tuple[Value, list[Value], list[Value], Any]:
    """Build one lane of the selector into module ``m``.

    Parameters
    ----------
    cfg : TopKConfig
        Design point (its register stages are inserted, loading on ``advance``).
    data : list of Value
        The M raw elements of the group.
    side : tree of Value
        Sideband that travels through the same registers (e.g. weights of a linear engine;
        not in LUT RAM: the ASIC proxy maps a 16-deep RAM to 16 words of flip-flops, more than
        the stages it replaces).
    enable : callable, optional
        Copies of ``advance`` for the register stages (:func:`gen.pipeline.stall_enables`).

    Returns
    -------
    mask, values, index, side
        ``mask`` (M bits), ``values`` (N raw elements) and ``index`` (N indices) ascending,
        and the delayed sideband, all ``cfg.pipeline`` cycles after ``data``.
    """
    arch = cfg.architecture
    step = Stepper(m, advance, cfg.cuts, name, enable=enable)
    out = arch.build(m, step, data, side, name)
    step.finish()
    return out


class NMTopK(StreamUnit):
    """N:M top-k selector (DESIGN.md sections 1 and 3).

    Parameters
    ----------
    config : TopKConfig
        The validated design point (pattern, format, architecture, register stages, lanes).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.TopKConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload field ``data``: M elements of ``width`` bits (raw bit patterns).
    o : ``Out(stream.Signature(...))``
        Payload fields ``mask`` (M x 1 bit), ``values`` (N x ``width``), ``index``
        (N x ``index_width``), LSB first; with ``lanes > 1`` an array of such structs.
    """

    config_class = TopKConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        advance, enable = stall_enables(m, self.i, self.o, cfg.pipeline)
        for lane in range(cfg.lanes):
            ip = self.i.payload if cfg.lanes == 1 else self.i.payload[lane]
            op = self.o.payload if cfg.lanes == 1 else self.o.payload[lane]
            data = [Value.cast(ip.data[j]) for j in range(cfg.m)]
            name = "sel" if cfg.lanes == 1 else f"sel{lane}"
            mask, values, index, _ = build_selector(cfg, m, advance, data, None, name, enable)
            m.d.comb += op.mask.as_value().eq(mask)
            for s in range(cfg.n):
                m.d.comb += op.values[s].eq(values[s])
                m.d.comb += op.index[s].eq(index[s])
        return m
