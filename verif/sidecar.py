"""Read a module's sidecar JSON and pack / unpack its stream payloads.

Everything a testbench needs to know about an emitted module comes from ``<module>.json``
next to ``<module>.v`` (DESIGN.md section 3): the ports, each payload field's bit offset,
element width and count, the number of lanes and the latency. Nothing here imports the
generator, so the same code checks third-party Verilog that ships such a sidecar.

Packing is LSB first: element ``e`` of lane ``l`` of a field sits at bit
``offset + l * lane_stride + e * elem_width``. Payloads are plain Python ints (arbitrary
width); this module is pure Python so it also runs inside the simulator process.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Field",
    "Port",
    "Sidecar",
    "load_sidecar",
    "find_module",
    "list_modules",
    "format_element",
]

UNITS = ("topk", "spmac", "linear", "dense_mac")


def _req(d: Mapping, key: str, where: str):
    if not isinstance(d, Mapping) or key not in d:
        raise ValueError(f"{where}: missing key {key!r}")
    return d[key]


def _int(v: object, where: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{where}: expected a non-negative integer, not {v!r}")
    return v


@dataclass(frozen=True)
class Field:
    """One field of a payload: ``count`` elements of ``elem_width`` bits per lane.

    ``offset`` is the bit position of element 0 of lane 0; lane ``l`` starts ``l * lane_stride``
    bits higher.
    """

    name: str
    offset: int
    width: int
    elem_width: int
    count: int
    lanes: int = 1
    lane_stride: int = 0

    @property
    def elem_mask(self) -> int:
        return (1 << self.elem_width) - 1

    def pack_lane(self, elements: Sequence[int], lane: int = 0) -> int:
        """Bits of ``elements`` (unsigned patterns, ``count`` of them) placed at their offsets."""
        if len(elements) != self.count:
            raise ValueError(f"field {self.name!r} has {self.count} elements, got {len(elements)}")
        base = self.offset + lane * self.lane_stride
        m = self.elem_mask
        v = 0
        for e, x in enumerate(elements):
            v |= (int(x) & m) << (base + e * self.elem_width)
        return v

    def unpack_lane(self, payload: int, lane: int = 0) -> list[int]:
        """Unsigned element patterns of lane ``lane`` of this field in ``payload``."""
        base = self.offset + lane * self.lane_stride
        m, w = self.elem_mask, self.elem_width
        return [(payload >> (base + e * w)) & m for e in range(self.count)]

    def lane_bits(self, payload: int, lane: int = 0) -> int:
        """The whole field of one lane as one unsigned int (element 0 at the LSB)."""
        base = self.offset + lane * self.lane_stride
        return (payload >> base) & ((1 << (self.elem_width * self.count)) - 1)


@dataclass(frozen=True)
class Port:
    """A top-level port: direction ``"in"``/``"out"``, width, and payload fields if any."""

    name: str
    dir: str
    width: int
    fields: dict[str, Field] = field(default_factory=dict)

    def pack(self, values: Mapping[str, Sequence[int]], lane: int = 0) -> int:
        """Payload bits of one lane from ``{field: [elements]}``; missing fields are zero."""
        unknown = set(values) - set(self.fields)
        if unknown:
            raise ValueError(f"port {self.name!r} has no field(s) {sorted(unknown)}")
        v = 0
        for name, elements in values.items():
            v |= self.fields[name].pack_lane(elements, lane)
        return v

    def unpack(self, payload: int, lane: int = 0) -> dict[str, list[int]]:
        """``{field: [unsigned elements]}`` of one lane of ``payload``."""
        return {name: f.unpack_lane(payload, lane) for name, f in self.fields.items()}


@dataclass(frozen=True)
class Sidecar:
    """The parsed sidecar of one module.

    Members
    -------
    module : str
        Verilog module name (the top level to simulate).
    unit : str
        ``"topk"``, ``"spmac"``, ``"linear"`` or ``"dense_mac"``.
    params : dict
        Design parameters (``n``, ``m``, ``fmt``, ``width``, ``index_width``, ``arch``,
        ``lanes``, and for MAC units ``weight_width``, ``acc_width``, ``outputs``).
    latency : int
        Cycles from an input transfer to the earliest output transfer (DESIGN.md).
    ports : dict[str, Port]
    path : Path
        The JSON file; the Verilog is ``verilog`` (same stem, ``.v``).
    """

    module: str
    unit: str
    params: dict
    latency: int
    ports: dict[str, Port]
    path: Path
    raw: dict

    @property
    def verilog(self) -> Path:
        return self.path.with_suffix(".v")

    @property
    def n(self) -> int | None:
        return self.params.get("n")

    @property
    def m(self) -> int:
        return int(self.params["m"])

    @property
    def fmt(self) -> str:
        return str(self.params["fmt"])

    @property
    def arch(self) -> str:
        return str(self.params.get("arch", ""))

    @property
    def lanes(self) -> int:
        return int(self.params.get("lanes", 1) or 1)

    @property
    def pattern(self) -> str:
        return f"{self.n}:{self.m}" if self.n is not None else f"dense:{self.m}"

    @property
    def i(self) -> Port:
        return self.ports["i__payload"]

    @property
    def o(self) -> Port:
        return self.ports["o__payload"]

    def describe(self) -> str:
        extra = f" x{self.lanes} lanes" if self.lanes > 1 else ""
        return (f"{self.module} ({self.unit} {self.pattern} {self.fmt} {self.arch}{extra}, "
                f"latency {self.latency})")


def _parse_port(name: str, d: Mapping, where: str) -> Port:
    direction = _req(d, "dir", f"{where}: port {name}")
    if direction not in ("in", "out"):
        raise ValueError(f"{where}: port {name} has dir {direction!r}, expected 'in' or 'out'")
    width = _int(_req(d, "width", f"{where}: port {name}"), f"{where}: port {name} width")
    fields: dict[str, Field] = {}
    for fname, fd in (d.get("fields") or {}).items():
        w = f"{where}: field {name}.{fname}"
        f = Field(
            name=fname,
            offset=_int(_req(fd, "offset", w), w + " offset"),
            width=_int(_req(fd, "width", w), w + " width"),
            elem_width=_int(_req(fd, "elem_width", w), w + " elem_width"),
            count=_int(_req(fd, "count", w), w + " count"),
            lanes=_int(fd.get("lanes", 1), w + " lanes"),
            lane_stride=_int(fd.get("lane_stride", 0), w + " lane_stride"),
        )
        top = f.offset + (f.lanes - 1) * f.lane_stride + f.elem_width * f.count
        if f.elem_width == 0 or f.count == 0 or top > width:
            raise ValueError(f"{w} (offset {f.offset}, {f.count} x {f.elem_width} bits, "
                             f"{f.lanes} lanes) does not fit in the {width}-bit port")
        fields[fname] = f
    return Port(name=name, dir=direction, width=width, fields=fields)


_REQUIRED_PORTS = ("clk", "rst", "i__payload", "i__valid", "i__ready",
                   "o__payload", "o__valid", "o__ready")
_REQUIRED_FIELDS = {
    "topk": (("data",), ("mask", "values", "index")),
    "spmac": (("values", "index", "weights", "last"), ("acc",)),
    "linear": (("data", "weights", "last"), ("acc",)),
    "dense_mac": (("data", "weights", "last"), ("acc",)),
}


def load_sidecar(path: str | Path) -> Sidecar:
    """Parse and validate ``<module>.json``.

    Raises
    ------
    FileNotFoundError
        The JSON or the Verilog next to it does not exist.
    ValueError
        The JSON is malformed or misses something the testbench needs; the message names it.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sidecar {p} does not exist")
    try:
        raw = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read sidecar {p}: {exc}") from None
    where = str(p)
    module = _req(raw, "module", where)
    unit = _req(raw, "unit", where)
    if unit not in UNITS:
        raise ValueError(f"{where}: unit {unit!r} is not one of {', '.join(UNITS)}")
    params = dict(_req(raw, "params", where))
    for k in ("m", "fmt"):
        _req(params, k, f"{where}: params")
    latency = _int(_req(raw, "latency", where), f"{where}: latency")
    ports = {n: _parse_port(n, d, where) for n, d in _req(raw, "ports", where).items()}
    for name in _REQUIRED_PORTS:
        if name not in ports:
            raise ValueError(f"{where}: missing port {name!r}")
    need_in, need_out = _REQUIRED_FIELDS[unit]
    for port, need in (("i__payload", need_in), ("o__payload", need_out)):
        for f in need:
            if f not in ports[port].fields:
                raise ValueError(f"{where}: port {port} has no field {f!r}")
    sc = Sidecar(module=module, unit=unit, params=params, latency=latency, ports=ports,
                 path=p.resolve(), raw=raw)
    if not sc.verilog.is_file():
        raise FileNotFoundError(f"{sc.verilog} (the Verilog of {module}) does not exist")
    return sc


def list_modules(hdl_dir: str | Path) -> list[Sidecar]:
    """All modules of ``hdl_dir``: those in ``manifest.json`` if present, else every sidecar.

    Raises
    ------
    FileNotFoundError
        ``hdl_dir`` is not a directory.
    """
    d = Path(hdl_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"HDL directory {d} does not exist")
    manifest = d / "manifest.json"
    if manifest.is_file():
        try:
            names = json.loads(manifest.read_text())["modules"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot read {manifest}: {exc}") from None
        return [load_sidecar(d / f"{name}.json") for name in names]
    out = []
    for js in sorted(d.glob("*.json")):
        if js.name == "manifest.json" or not js.with_suffix(".v").is_file():
            continue
        try:
            raw = json.loads(js.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(raw, dict) and "module" in raw and "ports" in raw:
            out.append(load_sidecar(js))
    return out


def find_module(hdl_dir: str | Path, name: str) -> Sidecar:
    """The sidecar of module ``name`` in ``hdl_dir`` (``FileNotFoundError`` naming both)."""
    p = Path(hdl_dir) / f"{name}.json"
    if not p.is_file():
        raise FileNotFoundError(f"module {name} not found in {hdl_dir} (no {p.name})")
    return load_sidecar(p)


def format_element(bits: int, fmt: str) -> str:
    """Human-readable value of one element's bit pattern in ``fmt`` (with the hex pattern)."""
    widths = {"int4": 4, "int8": 8, "int16": 16, "fp16": 16, "bf16": 16, "fp32": 32}
    w = widths.get(fmt)
    if w is None:
        return hex(bits)
    if fmt.startswith("int"):
        v = bits - (1 << w) if bits >> (w - 1) else bits
        return str(v)
    if fmt == "fp16":
        v = struct.unpack("<e", struct.pack("<H", bits))[0]
    elif fmt == "bf16":
        v = struct.unpack("<f", struct.pack("<I", bits << 16))[0]
    else:
        v = struct.unpack("<f", struct.pack("<I", bits))[0]
    digits = max(1, math.ceil(w / 4))
    if v != v:  # NaN: the payload matters
        return f"nan(0x{bits:0{digits}x})"
    return f"{v!r}(0x{bits:0{digits}x})"


def signed(bits: int, width: int) -> int:
    """Two's-complement value of an unsigned ``width``-bit pattern."""
    return bits - (1 << width) if bits >> (width - 1) & 1 else bits


def chunks(seq: Sequence, size: int) -> Iterable[Sequence]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]
