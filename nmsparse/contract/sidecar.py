"""The sidecar JSON of an emitted module (DESIGN.md section 3): one schema, one writer, one reader.

Every ``<module>.v`` comes with ``<module>.json``. The generator writes it
(:meth:`Sidecar.to_json`); testbenches, reports, benchmarks and tests read it with
:func:`load_sidecar`, which validates it and returns a typed :class:`Sidecar`. Nothing else
parses sidecars, so a third-party module with a hand-written sidecar is read exactly like a
generated one.

Document::

    {"generator": {"name": "nmsparse", "version": "0.2.0"},
     "module": "nm_topk_8_16_int8_rank", "unit": "topk",
     "params": {"n": 8, "m": 16, "fmt": "int8", "width": 8, "index_width": 4, ...},
     "latency": 2,
     "ports": {"clk": {"dir": "in", "width": 1}, ...,
               "i__payload": {"dir": "in", "width": 128,
                              "fields": {"data": {"offset": 0, "width": 128,
                                                  "elem_width": 8, "count": 16}}}, ...},
     "groups_per_cycle": 1, "comparators": 120, ...}

Packing is LSB first: element ``e`` of lane ``l`` of a field sits at bit
``offset + l * lane_stride + e * elem_width``. Payloads are plain Python ints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import flex
from .formats import FORMATS, Format, get_format
from .patterns import pattern_label
from .units import UNITS, Unit

__all__ = [
    "SidecarError",
    "Field",
    "Port",
    "Sidecar",
    "STREAM_PORTS",
    "load_sidecar",
    "parse_sidecar",
    "list_modules",
    "find_module",
    "read_manifest",
    "manifest_text",
]

#: Ports every module has, in order.
STREAM_PORTS = ("clk", "rst", "i__payload", "i__valid", "i__ready",
                "o__payload", "o__valid", "o__ready")
_DIRS = {"clk": "in", "rst": "in", "i__payload": "in", "i__valid": "in", "i__ready": "out",
         "o__payload": "out", "o__valid": "out", "o__ready": "in"}
# keys that are neither parameters nor ports: the rest of the document is metrics
_TOP_KEYS = ("generator", "module", "unit", "params", "latency", "ports")


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message names the file, the key and what is expected."""


def _int(v: object, where: str, *, minimum: int = 0) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise SidecarError(f"{where}: expected an integer >= {minimum}, not {v!r}")
    return v


def _req(d: object, key: str, where: str):
    if not isinstance(d, Mapping):
        raise SidecarError(f"{where}: expected an object, not {type(d).__name__}")
    if key not in d:
        raise SidecarError(f"{where}: missing key {key!r}")
    return d[key]


@dataclass(frozen=True)
class Field:
    """One payload field: ``count`` elements of ``elem_width`` bits per lane.

    ``offset`` is the bit position of element 0 of lane 0; lane ``l`` starts ``l * lane_stride``
    bits higher.
    """

    name: str
    offset: int
    elem_width: int
    count: int
    lanes: int = 1
    lane_stride: int = 0

    @property
    def width(self) -> int:
        """Bits of the field in one lane."""
        return self.elem_width * self.count

    @property
    def elem_mask(self) -> int:
        return (1 << self.elem_width) - 1

    def pack_lane(self, elements: Sequence[int], lane: int = 0) -> int:
        """Bits of ``elements`` (``count`` of them, any sign) placed at their offsets."""
        if len(elements) != self.count:
            raise ValueError(f"field {self.name!r} has {self.count} elements, got {len(elements)}")
        base = self.offset + lane * self.lane_stride
        mask = self.elem_mask
        v = 0
        for e, x in enumerate(elements):
            v |= (int(x) & mask) << (base + e * self.elem_width)
        return v

    def unpack_lane(self, payload: int, lane: int = 0) -> list[int]:
        """Unsigned element patterns of lane ``lane`` of this field in ``payload``."""
        base = self.offset + lane * self.lane_stride
        mask, w = self.elem_mask, self.elem_width
        return [(payload >> (base + e * w)) & mask for e in range(self.count)]

    def lane_bits(self, payload: int, lane: int = 0) -> int:
        """The whole field of one lane as one unsigned int (element 0 at the LSB)."""
        base = self.offset + lane * self.lane_stride
        return (payload >> base) & ((1 << self.width) - 1)

    def to_dict(self) -> dict:
        d = {"offset": self.offset, "width": self.width, "elem_width": self.elem_width,
             "count": self.count}
        if self.lanes > 1:
            d.update(lanes=self.lanes, lane_stride=self.lane_stride)
        return d


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

    def to_dict(self) -> dict:
        d: dict = {"dir": self.dir, "width": self.width}
        if self.fields:
            d["fields"] = {name: f.to_dict() for name, f in self.fields.items()}
        return d


@dataclass(frozen=True)
class Sidecar:
    """The validated sidecar of one module.

    Members
    -------
    module : str
        Verilog module name (the top level).
    unit : str
        One of :data:`nmsparse.contract.units.UNITS`.
    params : dict
        Design parameters; typed accessors below (``n``, ``m``, ``fmt``, ...).
    latency : int
        Cycles from an input transfer to the earliest output transfer.
    ports : dict[str, Port]
    metrics : dict
        Everything else the document holds (``groups_per_cycle``, ``comparators``, ...).
    generator : dict
        ``{"name": ..., "version": ...}`` of whatever wrote the file.
    path : Path or None
        The JSON file it was read from; the Verilog is :attr:`verilog` (same stem, ``.v``).
    """

    module: str
    unit: str
    params: dict
    latency: int
    ports: dict[str, Port]
    metrics: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)
    path: Path | None = None

    # ------------------------------------------------------------------ typed parameters
    @property
    def spec(self) -> Unit:
        return UNITS[self.unit]

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
    def format(self) -> Format:
        return get_format(self.fmt)

    @property
    def arch(self) -> str:
        return str(self.params.get("arch", ""))

    @property
    def lanes(self) -> int:
        return int(self.params.get("lanes", 1) or 1)

    @property
    def flexible(self) -> bool:
        """The pattern travels with each transfer (DESIGN.md section 5)."""
        return self.spec.flexible

    @property
    def w(self) -> int:
        """Lanes per transfer of a flexible unit."""
        return int(self.params["w"])

    @property
    def max_kept(self) -> int:
        """Output slots of a flexible unit."""
        return int(self.params["max_kept"])

    @property
    def outputs(self) -> int:
        """K (MAC units)."""
        return int(self.params["outputs"])

    @property
    def weight_width(self) -> int:
        return int(self.params["weight_width"])

    @property
    def acc_width(self) -> int:
        return int(self.params["acc_width"])

    @property
    def pattern(self) -> str:
        """``"8:16"``, ``"dense:16"``, or ``"flex:32"`` for a flexible unit of W = 32."""
        if self.flexible:
            return f"flex:{self.w}"
        return pattern_label(self.n, self.m)

    @property
    def verilog(self) -> Path:
        if self.path is None:
            raise ValueError(f"the sidecar of {self.module} was not read from a file")
        return self.path.with_suffix(".v")

    @property
    def i(self) -> Port:
        return self.ports["i__payload"]

    @property
    def o(self) -> Port:
        return self.ports["o__payload"]

    def describe(self) -> str:
        extra = f" x{self.lanes} lanes" if self.lanes > 1 else ""
        arch = f" {self.arch}" if self.arch else ""
        return (f"{self.module} ({self.unit} {self.pattern} {self.fmt}{arch}{extra}, "
                f"latency {self.latency})")

    # ------------------------------------------------------------------ writer
    def to_dict(self) -> dict:
        doc = {"generator": dict(self.generator), "module": self.module, "unit": self.unit,
               "params": dict(self.params), "latency": self.latency,
               "ports": {name: p.to_dict() for name, p in self.ports.items()}}
        doc.update(self.metrics)
        return doc

    def to_json(self) -> str:
        """The document as written to disk: sorted keys, two-space indent, final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------- reader

def _parse_port(name: str, d: object, where: str) -> Port:
    w = f"{where}: port {name!r}"
    direction = _req(d, "dir", w)
    if direction not in ("in", "out"):
        raise SidecarError(f"{w}: 'dir' must be 'in' or 'out', not {direction!r}")
    width = _int(_req(d, "width", w), f"{w}: 'width'", minimum=1)
    fields: dict[str, Field] = {}
    raw_fields = d.get("fields") or {}  # type: ignore[union-attr]
    if not isinstance(raw_fields, Mapping):
        raise SidecarError(f"{w}: 'fields' must be an object of field descriptions")
    for fname, fd in raw_fields.items():
        fw = f"{where}: field {name}.{fname}"
        f = Field(
            name=fname,
            offset=_int(_req(fd, "offset", fw), f"{fw} 'offset'"),
            elem_width=_int(_req(fd, "elem_width", fw), f"{fw} 'elem_width'", minimum=1),
            count=_int(_req(fd, "count", fw), f"{fw} 'count'", minimum=1),
            lanes=_int(fd.get("lanes", 1), f"{fw} 'lanes'", minimum=1),
            lane_stride=_int(fd.get("lane_stride", 0), f"{fw} 'lane_stride'"),
        )
        if "width" in fd and fd["width"] != f.width:
            raise SidecarError(f"{fw}: 'width' {fd['width']!r} is not elem_width x count = "
                               f"{f.width}")
        top = f.offset + (f.lanes - 1) * f.lane_stride + f.width
        if top > width:
            raise SidecarError(f"{fw} (offset {f.offset}, {f.count} x {f.elem_width} bits, "
                               f"{f.lanes} lanes) does not fit in the {width}-bit port")
        fields[fname] = f
    return Port(name=name, dir=direction, width=width, fields=fields)


def parse_sidecar(doc: object, where: str = "sidecar", path: Path | None = None) -> Sidecar:
    """Validate a sidecar document (already parsed JSON) and return it typed.

    Raises
    ------
    SidecarError
        Naming ``where``, the key and what is expected.
    """
    if not isinstance(doc, Mapping):
        raise SidecarError(f"{where}: expected a JSON object, not {type(doc).__name__}")
    module = _req(doc, "module", where)
    if not isinstance(module, str) or not module.isidentifier():
        raise SidecarError(f"{where}: 'module' must be a Verilog module name, not {module!r}")
    unit_name = _req(doc, "unit", where)
    if unit_name not in UNITS:
        raise SidecarError(f"{where}: 'unit' must be one of {', '.join(UNITS)}, "
                           f"not {unit_name!r}")
    spec = UNITS[unit_name]
    params = _req(doc, "params", where)
    if not isinstance(params, Mapping):
        raise SidecarError(f"{where}: 'params' must be an object")
    params = dict(params)
    for key in spec.params:
        _req(params, key, f"{where}: params")
    fmt = params["fmt"]
    if fmt not in FORMATS:
        raise SidecarError(f"{where}: params 'fmt' must be one of {', '.join(FORMATS)}, "
                           f"not {fmt!r}")
    for key in ("n", "m", "w", "max_kept", "width", "index_width", "lanes", "weight_width",
                "acc_width", "outputs", "pipeline"):
        if key in params:
            _int(params[key], f"{where}: params {key!r}", minimum=0 if key == "pipeline" else 1)
    if params["width"] != get_format(fmt).width:
        raise SidecarError(f"{where}: params 'width' {params['width']} does not match "
                           f"fmt {fmt!r} ({get_format(fmt).width} bits)")
    if spec.sparse and not 0 < params["n"] < params["m"]:
        raise SidecarError(f"{where}: params n = {params['n']}, m = {params['m']}: "
                           "need 0 < n < m")
    if spec.flexible:
        try:
            flex.check_lanes(params["w"])
        except ValueError as exc:
            raise SidecarError(f"{where}: params {exc}") from None
        if not 1 <= params["max_kept"] <= flex.max_slots(params["w"]):
            raise SidecarError(f"{where}: params max_kept must be in [1, "
                               f"{flex.max_slots(params['w'])}] for w = {params['w']}, not "
                               f"{params['max_kept']}")
    latency = _int(_req(doc, "latency", where), f"{where}: 'latency'")
    raw_ports = _req(doc, "ports", where)
    if not isinstance(raw_ports, Mapping):
        raise SidecarError(f"{where}: 'ports' must be an object")
    ports = {n: _parse_port(n, d, where) for n, d in raw_ports.items()}
    for name in STREAM_PORTS:
        if name not in ports:
            raise SidecarError(f"{where}: missing port {name!r} (every module has "
                               f"{', '.join(STREAM_PORTS)})")
        if ports[name].dir != _DIRS[name]:
            raise SidecarError(f"{where}: port {name!r} must have dir {_DIRS[name]!r}")
    for port, need in (("i__payload", spec.inputs), ("o__payload", spec.outputs)):
        for f in need:
            if f not in ports[port].fields:
                raise SidecarError(f"{where}: port {port} has no field {f!r} (a {unit_name} "
                                   f"unit's {port} carries {', '.join(need)})")
    generator = doc.get("generator") or {}
    if not isinstance(generator, Mapping):
        raise SidecarError(f"{where}: 'generator' must be an object")
    metrics = {k: v for k, v in doc.items() if k not in _TOP_KEYS}
    return Sidecar(module=module, unit=unit_name, params=params, latency=latency, ports=ports,
                   metrics=metrics, generator=dict(generator), path=path)


def load_sidecar(path: str | Path, *, need_verilog: bool = True) -> Sidecar:
    """Read and validate ``<module>.json``.

    Raises
    ------
    FileNotFoundError
        The JSON (or, with ``need_verilog``, the Verilog next to it) does not exist.
    SidecarError
        The JSON is malformed or misses something; the message names the file and the key.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sidecar {p} does not exist")
    try:
        doc = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SidecarError(f"{p}: not valid JSON: {exc}") from None
    sc = parse_sidecar(doc, str(p), p.resolve())
    if need_verilog and not sc.verilog.is_file():
        raise FileNotFoundError(f"{sc.verilog} (the Verilog of {sc.module}) does not exist")
    return sc


def read_manifest(hdl_dir: str | Path) -> list[str] | None:
    """Module names of ``<hdl_dir>/manifest.json`` in order; None when there is none."""
    manifest = Path(hdl_dir) / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        names = json.loads(manifest.read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SidecarError(f"{manifest}: needs {{\"modules\": [names]}}: {exc}") from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise SidecarError(f"{manifest}: 'modules' must be a list of module names")
    return names


def manifest_text(names: Sequence[str]) -> str:
    """``manifest.json`` text: ``{"modules": [...]}`` in the given order."""
    return json.dumps({"modules": list(names)}, indent=2) + "\n"


def list_modules(hdl_dir: str | Path, which: str = "auto") -> list[Sidecar]:
    """The modules of ``hdl_dir``.

    Parameters
    ----------
    which : {"auto", "shipped", "all"}
        ``shipped``: those in ``manifest.json`` (required); ``all``: every ``*.json`` but the
        manifest; ``auto``: the manifest if there is one, else all.

    Raises
    ------
    FileNotFoundError
        ``hdl_dir`` (or, for ``shipped``, its manifest) does not exist.
    SidecarError
        A sidecar does not validate: never skipped silently.
    """
    d = Path(hdl_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"HDL directory {d} does not exist")
    if which not in ("auto", "shipped", "all"):
        raise ValueError(f"which must be 'auto', 'shipped' or 'all', not {which!r}")
    names = read_manifest(d) if which != "all" else None
    if which == "shipped" and names is None:
        raise FileNotFoundError(f"{d / 'manifest.json'} does not exist; run `nmsparse "
                                f"generate --shipped -o {d}` first (or use all modules)")
    if names is not None:
        return [load_sidecar(d / f"{name}.json") for name in names]
    return [load_sidecar(js) for js in sorted(d.glob("*.json")) if js.name != "manifest.json"]


def find_module(hdl_dir: str | Path, name: str) -> Sidecar:
    """The sidecar of module ``name`` in ``hdl_dir`` (``FileNotFoundError`` naming both)."""
    p = Path(hdl_dir) / f"{name}.json"
    if not p.is_file():
        raise FileNotFoundError(f"module {name} not found in {hdl_dir} (no {p.name})")
    return load_sidecar(p)
