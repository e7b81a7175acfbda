"""AXI4-Stream wrapper around any unit, for vendor block-design flows (``--axis``).

The wrapper takes the inner unit's config and exposes the ports FPGA tools infer as AXI4-Stream
interfaces (``aclk``, ``aresetn`` active low and synchronous, ``s_axis_*`` in, ``m_axis_*``
out); ``tdata`` widths are whole bytes (the payload, zero-padded at the top)::

              ┌──────────── axis_<unit> ────────────────────────────┐
    s_axis ──►│ tdata[W-1:0] ──► i.payload   (MAC: tlast ──► `last`) │
              │ tvalid/tready ◄─► i.valid/ready ┌──────┐             │
              │                                  │ unit │──► o ──────►│──► m_axis
              │ tlast ──► FIFO (top-k: one bit per group in flight) ─►│    tdata, tlast
              └──────────────────────────────────────────────────────┘

``tlast``:

- top-k selector: one input beat is one group (``lanes`` groups), one output beat its result;
  ``tlast`` travels with the group (a small FIFO of one bit per group in flight, ``latency +
  1`` deep), so ``m_axis_tlast`` is set on the result of the group that had
  ``s_axis_tlast``: tokens or rows keep their boundaries through the selector;
- MAC units (sparse MAC, sparse linear engine, dense baseline): ``s_axis_tlast`` is the row's
  ``last`` field (the group that ends a row), so ``s_axis_tdata`` carries every input field but
  ``last``; each output beat is one row's K accumulators and has ``m_axis_tlast = 1`` (one
  packet per row).

The field offsets inside ``tdata`` are those of the inner payload (LSB first, DESIGN.md
section 3; for MAC inputs the fields above ``last`` move down one bit); the wrapper's own
sidecar (``axis_<module>.json``, :func:`axis_sidecar`) lists them with the inner sidecar.
Back-pressure is the inner unit's: ``s_axis_tready`` follows ``m_axis_tready`` through the
stall pipeline, and a full ``tlast`` FIFO also holds the input (never reached at full rate).

Trade-off: the FIFO costs a few registers instead of widening the inner unit's payload with a
``tlast`` bit, so the inner unit (and its proofs and tests) stay exactly as generated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from amaranth.hdl import Cat, ClockDomain, Const, Module, Shape
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from nmsparse.contract import VERSION

__all__ = ["AXIStreamUnit", "axis_name", "tdata_fields", "axis_sidecar", "emit_axis"]


def _bytes(width: int) -> int:
    return max(8, -(-width // 8) * 8)


def _struct(layout: data.Layout) -> data.StructLayout | None:
    return layout if isinstance(layout, data.StructLayout) else None


def _last_offset(config: Any) -> int | None:
    """Bit offset of the ``last`` field of the inner input payload (MAC units), or None."""
    s = _struct(config.input_layout())
    if s is None:
        return None
    for name, member in s:
        if name == "last":
            return member.offset
    return None


def axis_name(config: Any, name: str | None = None) -> str:
    """``axis_<inner module>``."""
    return f"axis_{name or config.name}"


def tdata_fields(config: Any) -> tuple[dict, dict]:
    """Sidecar-style fields of ``s_axis_tdata`` and ``m_axis_tdata`` (offsets, widths)."""
    from .config import payload_fields

    _, ifields = payload_fields(config.input_layout())
    _, ofields = payload_fields(config.output_layout())
    last = _last_offset(config)
    ins = {}
    for name, f in ifields.items():
        if name == "last":
            continue
        d = f.to_dict()
        if last is not None and f.offset > last:
            d["offset"] -= 1
        ins[name] = d
    return ins, {name: f.to_dict() for name, f in ofields.items()}


def _widths(config: Any) -> tuple[int, int, int | None]:
    """Payload bits carried by ``s_axis_tdata`` and ``m_axis_tdata``, and the ``last`` offset."""
    last = _last_offset(config)
    wi = Shape.cast(config.input_layout()).width - (last is not None)
    return wi, Shape.cast(config.output_layout()).width, last


class AXIStreamUnit(wiring.Component):
    """AXI4-Stream wrapper of the unit built from ``config`` (any design point of
    :mod:`gen.config`).

    Parameters
    ----------
    config
        The inner unit's validated config (``TopKConfig``, ``SparseMACConfig``, ...).

    Members
    -------
    aclk, aresetn : In(1)
        Clock; synchronous reset, active low.
    s_axis_tdata, s_axis_tvalid, s_axis_tlast : In; s_axis_tready : Out(1)
    m_axis_tdata, m_axis_tvalid, m_axis_tlast : Out; m_axis_tready : In(1)
    """

    def __init__(self, config: Any):
        if not hasattr(config, "input_layout") or not hasattr(config, "output_layout"):
            raise TypeError(f"AXIStreamUnit takes a design point of gen.config, not {config!r}")
        self._config = config
        wi, wo, self._last = _widths(config)
        self.s_width, self.m_width = _bytes(wi), _bytes(wo)
        self._wi, self._wo = wi, wo
        super().__init__({
            "aclk": In(1), "aresetn": In(1),
            "s_axis_tdata": In(self.s_width), "s_axis_tvalid": In(1),
            "s_axis_tready": Out(1), "s_axis_tlast": In(1),
            "m_axis_tdata": Out(self.m_width), "m_axis_tvalid": Out(1),
            "m_axis_tready": In(1), "m_axis_tlast": Out(1),
        })

    @property
    def config(self) -> Any:
        return self._config

    @property
    def latency(self) -> int:
        return self._config.latency

    def elaborate(self, platform: Any) -> Module:
        from .emit import build

        m = Module()
        # the inner unit's sync domain, driven by the AXI clock and its active-low reset
        m.domains.sync = cd = ClockDomain("sync", local=True)
        m.d.comb += [cd.clk.eq(self.aclk), cd.rst.eq(~self.aresetn)]
        m.submodules.unit = unit = build(self._config)
        ip = unit.i.payload.as_value()
        tdata = self.s_axis_tdata[: self._wi] if self._wi else Const(0, 0)
        if self._last is not None:
            off = self._last
            m.d.comb += ip.eq(Cat(tdata[:off], self.s_axis_tlast, tdata[off:]))
        else:
            m.d.comb += ip.eq(tdata)
        m.d.comb += [
            self.m_axis_tdata.eq(unit.o.payload.as_value()),  # zero-extended to bytes
            self.m_axis_tvalid.eq(unit.o.valid),
            unit.o.ready.eq(self.m_axis_tready),
        ]
        if self._last is not None:
            # MAC units: one output beat per row, each a packet of its own
            m.d.comb += [unit.i.valid.eq(self.s_axis_tvalid),
                         self.s_axis_tready.eq(unit.i.ready), self.m_axis_tlast.eq(1)]
        elif self._config.latency == 0:
            # combinational unit: the group's tlast is on the bus in the same cycle
            m.d.comb += [unit.i.valid.eq(self.s_axis_tvalid),
                         self.s_axis_tready.eq(unit.i.ready),
                         self.m_axis_tlast.eq(self.s_axis_tlast)]
        else:
            m.submodules.tlast = fifo = SyncFIFO(width=1, depth=self._config.latency + 1)
            m.d.comb += [
                unit.i.valid.eq(self.s_axis_tvalid & fifo.w_rdy),
                self.s_axis_tready.eq(unit.i.ready & fifo.w_rdy),
                fifo.w_data.eq(self.s_axis_tlast),
                fifo.w_en.eq(self.s_axis_tvalid & self.s_axis_tready),
                self.m_axis_tlast.eq(fifo.r_data),
                fifo.r_en.eq(unit.o.valid & self.m_axis_tready),
            ]
        return m


def axis_sidecar(config: Any, name: str | None = None) -> dict:
    """The wrapper's sidecar document: its ports (``tdata`` fields), the ``tlast`` rule, the
    reset, and the inner unit's own sidecar under ``wraps``."""
    inner = config.sidecar(name)
    top = axis_name(config, name)
    wi, wo, last = _widths(config)
    sf, mf = tdata_fields(config)
    mac = last is not None
    ports = {
        "aclk": {"dir": "in", "width": 1},
        "aresetn": {"dir": "in", "width": 1},
        "s_axis_tdata": {"dir": "in", "width": _bytes(wi), "fields": sf,
                         "payload_bits": wi},
        "s_axis_tvalid": {"dir": "in", "width": 1},
        "s_axis_tready": {"dir": "out", "width": 1},
        "s_axis_tlast": {"dir": "in", "width": 1},
        "m_axis_tdata": {"dir": "out", "width": _bytes(wo), "fields": mf,
                         "payload_bits": wo},
        "m_axis_tvalid": {"dir": "out", "width": 1},
        "m_axis_tready": {"dir": "in", "width": 1},
        "m_axis_tlast": {"dir": "out", "width": 1},
    }
    tlast = ("s_axis_tlast is the row's `last` field (the group that ends a row); every output "
             "beat is one row (m_axis_tlast = 1)" if mac else
             "m_axis_tlast is the s_axis_tlast of the same group (boundaries kept)")
    return {"generator": {"name": "nmsparse", "version": VERSION}, "module": top,
            "interface": "axi4-stream", "unit": config.unit, "latency": config.latency,
            "reset": {"port": "aresetn", "active": "low", "synchronous": True},
            "clock": "aclk", "tlast": tlast, "tlast_mode": "row" if mac else "passthrough",
            "ports": ports, "wraps": inner.to_dict()}


def emit_axis(config: Any, directory: str | Path, *, name: str | None = None) -> list[Path]:
    """Write ``axis_<module>.v`` (wrapper and inner unit) and ``axis_<module>.json`` into
    ``directory``; return the paths."""
    from .emit import convert

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    top = axis_name(config, name)
    files = {
        out / f"{top}.v": convert(AXIStreamUnit(config), top),
        out / f"{top}.json": json.dumps(axis_sidecar(config, name), indent=2,
                                        sort_keys=True) + "\n",
    }
    for path, text in files.items():
        with open(path, "w", newline="\n") as f:
            f.write(text)
    return list(files)
