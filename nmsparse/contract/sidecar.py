"""The sidecar JSON of an emitted module (DESIGN.md section 3): one schema, one writer, one reader.

Every ``<module>.v`` comes with ``<module>.json``. The generator writes it
(:meth:`Sidecar.to_json`); testbenches, reports, benchmarks and tests read it with
:func:`load_sidecar`, which validates it and returns a typed :class:`Sidecar`. Nothing else
parses sidecars, so a third-party module with a hand-written sidecar is read exactly like a
generated one. The published JSON Schema (``sidecar.schema.json`` beside this file) is
:func:`schema`, written out; a test keeps the two equal::

    <module>.json --json.loads--> JSON Schema (structure, types, per-unit keys)
                                     |  errors -> "FILE: key 'a.b': expected X, not Y"
                                     v
                   cross-field checks (field shapes vs params, n < m, fits, no overlap)
                                     v
                               Sidecar (typed)  --> testbench, reports, crosscheck

The schema says everything JSON Schema can say (required keys per unit, enums, the element
width of each format, the fields of each payload); what it cannot (a field's count against
``params.n``, fields that overlap or overflow their port) is checked in Python afterwards and
listed in the schema's description, so the two never disagree on a document the schema
rejects.

Document::

    {"generator": {"name": "nmsparse", "version": "0.2.0"},
     "module": "nm_topk_8_16_int8_rank", "unit": "topk",
     "params": {"n": 8, "m": 16, "fmt": "int8", "width": 8, "index_width": 4, ...},
     "latency": 2,
     "ports": {"clk": {"dir": "in", "width": 1}, ...,
               "i__payload": {"dir": "in", "width": 128,
                              "fields": {"data": {"offset": 0, "width": 128,
                                                  "elem_width": 8, "count": 16}}}, ...},
     "sources": {"files": ["top.sv", "rtl/sort.v"], "include_dirs": ["rtl/include"],
                 "defines": {"NM_INT_KEY": 1}},              (optional)
     "groups_per_cycle": 1, "comparators": 120, ...}

Packing is LSB first: element ``e`` of lane ``l`` of a field sits at bit
``offset + l * lane_stride + e * elem_width``. Payloads are plain Python ints.
"""

from __future__ import annotations

import copy
import difflib
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import flex
from .formats import FORMATS, Format, get_format
from .patterns import pattern_label
from .units import (
    BANK_LAYOUTS,
    MEMORY_PARAMS,
    SHIFT_FIELDS,
    SHIFT_INPUT,
    UNITS,
    Unit,
    is_memory,
    is_shift_input,
)

__all__ = [
    "SidecarError",
    "Field",
    "Port",
    "Sources",
    "Sidecar",
    "STREAM_PORTS",
    "SCHEMA_FILE",
    "schema",
    "schema_text",
    "validate",
    "default_ports",
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
_TOP_KEYS = ("generator", "module", "unit", "params", "latency", "ports", "sources")
#: The published schema (DESIGN.md section 3 points here).
SCHEMA_FILE = Path(__file__).with_name("sidecar.schema.json")
#: Verilog file suffixes a top file may have (``<sidecar stem>.v`` first).
HDL_SUFFIXES = (".v", ".sv")
_IDENT = r"^[A-Za-z_][A-Za-z0-9_$]*$"
# keys people write for the real ones (from DESIGN.md prose and other tools' formats)
_ALIASES = {"direction": "dir", "elements": "count", "element_width": "elem_width",
            "elem_count": "count", "bits": "width", "elem_bits": "elem_width",
            "include": "include_dirs", "includes": "include_dirs", "incdirs": "include_dirs",
            "defs": "defines", "define": "defines", "file": "files"}


class SidecarError(ValueError):
    """A sidecar that cannot be used; the message names the file, the key and what is expected."""


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
class Sources:
    """The optional ``sources`` block: what the simulator must read to build the module.

    Paths are kept as written (relative to the sidecar's directory, or absolute);
    :class:`Sidecar` resolves them (:attr:`Sidecar.hdl_files`, :attr:`Sidecar.include_dirs`).

    Members
    -------
    files : tuple of str
        Every Verilog/SystemVerilog file, in compile order; empty means the default top file
        (``<sidecar stem>.v`` or ``.sv``).
    include_dirs : tuple of str
        Directories searched for `` `include`` files (and, by Verilator, for modules).
    defines : dict
        Preprocessor defines: name -> value (a string or an integer), or None for a bare
        `` `define NAME``.
    """

    files: tuple[str, ...] = ()
    include_dirs: tuple[str, ...] = ()
    defines: dict[str, str | int | None] = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict = {}
        if self.files:
            d["files"] = list(self.files)
        if self.include_dirs:
            d["include_dirs"] = list(self.include_dirs)
        if self.defines:
            d["defines"] = dict(self.defines)
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
        The JSON file it was read from; the Verilog is :attr:`verilog` (same stem, ``.v`` or
        ``.sv``, unless ``sources`` says otherwise).
    sources : Sources or None
        The optional ``sources`` block (files, include directories, defines).
    """

    module: str
    unit: str
    params: dict
    latency: int
    ports: dict[str, Port]
    metrics: dict = field(default_factory=dict)
    generator: dict = field(default_factory=dict)
    path: Path | None = None
    sources: Sources | None = None

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
    def shift(self) -> int | list[int] | None:
        """Static S-PTS eta of a linear unit (one per layer or one per group position), or
        None (DESIGN.md section 2)."""
        return self.params.get("shift")

    @property
    def pattern(self) -> str:
        """``"8:16"``, ``"dense:16"``, or ``"flex:32"`` for a flexible unit of W = 32."""
        if self.flexible:
            return f"flex:{self.w}"
        return pattern_label(self.n, self.m)

    # ------------------------------------------------------------------ sources
    def _base(self) -> Path:
        if self.path is None:
            raise ValueError(f"the sidecar of {self.module} was not read from a file")
        return self.path.parent

    def _resolve(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else self._base() / q

    @property
    def hdl_files(self) -> list[Path]:
        """Every Verilog file to compile: ``sources.files``, else the top file alone."""
        if self.sources is not None and self.sources.files:
            return [self._resolve(f) for f in self.sources.files]
        return [self.verilog]

    @property
    def include_dirs(self) -> list[Path]:
        return [self._resolve(d) for d in (self.sources.include_dirs if self.sources else ())]

    @property
    def defines(self) -> dict[str, str | None]:
        """Preprocessor defines as Verilator's ``-D`` takes them (None: no value)."""
        raw = self.sources.defines if self.sources else {}
        return {k: None if v is None else str(v) for k, v in raw.items()}

    @property
    def verilog(self) -> Path:
        """The top file: the listed file named like the sidecar or the module, else
        ``<sidecar stem>.v``, else ``<sidecar stem>.sv``, else the first listed file."""
        if self.path is None:
            raise ValueError(f"the sidecar of {self.module} was not read from a file")
        if self.sources is not None and self.sources.files:
            files = [self._resolve(f) for f in self.sources.files]
            for stem in (self.path.stem, self.module):
                for f in files:
                    if f.stem == stem and f.suffix in HDL_SUFFIXES:
                        return f
            return files[0]
        for suffix in HDL_SUFFIXES:
            p = self.path.with_suffix(suffix)
            if p.is_file():
                return p
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
        if self.sources is not None and self.sources.to_dict():
            doc["sources"] = self.sources.to_dict()
        doc.update(self.metrics)
        return doc

    def to_json(self) -> str:
        """The document as written to disk: sorted keys, two-space indent, final newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------- schema

def _int(minimum: int, description: str) -> dict:
    return {"type": "integer", "minimum": minimum, "description": description}


# The element shape of every payload field, per unit: (elem_width, count) as parameter names
# or numbers; "outputs*m" is K x M weights. Checked in Python (JSON Schema cannot compare keys).
_SHAPES: dict[str, dict[str, tuple[str | int, str | int]]] = {
    "topk": {"data": ("width", "m"), "mask": (1, "m"), "values": ("width", "n"),
             "index": ("index_width", "n")},
    "spmac": {"values": ("width", "n"), "index": ("index_width", "n"),
              "weights": ("weight_width", "outputs*m"), "last": (1, 1),
              "acc": ("acc_width", "outputs")},
    "linear": {"data": ("width", "m"), "weights": ("weight_width", "outputs*m"),
               "last": (1, 1), "acc": ("acc_width", "outputs"),
               # params.shift == "input" (DESIGN.md section 2): eta per channel of the
               # group, and the row's bias, read with its last transfer
               "eta": ("width", "m"), "bias": ("acc_width", "outputs")},
    "dense_mac": {"data": ("width", "m"), "weights": ("weight_width", "outputs*m"),
                  "last": (1, 1), "acc": ("acc_width", "outputs")},
    # runtime-flexible units (DESIGN.md section 5): W lanes, max_kept slots
    "topk_flex": {"data": ("width", "w"), "m_log2": ("m_log2_width", 1), "n": ("n_width", 1),
                  "mask": (1, "w"), "values": ("width", "max_kept"),
                  "index": ("index_width", "max_kept"), "count": ("count_width", 1),
                  "err": (1, 1)},
    "spmac_flex": {"values": ("width", "max_kept"), "index": ("index_width", "max_kept"),
                   "weights": ("weight_width", "outputs*w"), "last": (1, 1),
                   "acc": ("acc_width", "outputs")},
    "linear_flex": {"data": ("width", "w"), "m_log2": ("m_log2_width", 1),
                    "n": ("n_width", 1), "weights": ("weight_width", "outputs*w"),
                    "last": (1, 1), "acc": ("acc_width", "outputs")},
}
# With weights from memory (params.weights == "memory", DESIGN.md section 3.1) these fields of
# the input take other shapes: the weights of one input feature, the load flag, the address.
_MEMORY_SHAPES: dict[str, tuple[str | int, str | int]] = {
    "weights": ("weight_width", "outputs"), "load": (1, 1), "addr": ("addr_width", 1)}
_SEMANTIC_CHECKS = (
    "n < m for a sparse unit",
    "2**index_width >= m (flexible units: 2**index_width >= w)",
    "a flexible unit's w is a power of two from 4 to 64 and 1 <= max_kept <= 3w/4",
    "each payload field has the shape its unit gives it (e.g. a topk unit's values: n "
    "elements of params.width bits; lanes = params.lanes)",
    "a field's width, if given, is elem_width x count",
    "every field fits in its port and no two fields (or lanes) overlap",
    "every file and include directory of sources exists",
    "params.shift (S-PTS: one integer, or m integers, in the range of an integer fmt, on a "
    "linear unit with weights in the stream; or \"input\", eta and the bias as input "
    "fields, on a linear unit with an integer fmt)",
)


def _unit_variant(per_unit: list, u: Unit, cond: dict, inputs: tuple[str, ...],
                  required: list[str], label: str) -> None:
    """One if/then of the sidecar schema: the params and payload fields of one unit form."""
    per_unit.append({
        "if": cond,
        "then": {"properties": {
            "params": {"required": required,
                       "description": f"a {u.name} unit's params{label}: "
                                      f"{', '.join(required)}"},
            "ports": {"properties": {
                port: {"properties": {"fields": {
                    "required": list(names),
                    "properties": {f: True for f in names},
                    "additionalProperties": False,
                    "description": f"a {u.name} unit's {port}{label} carries the "
                                   f"field{'s' if len(names) > 1 else ''} "
                                   f"{', '.join(names)}"}}}
                for port, names in (("i__payload", inputs),
                                    ("o__payload", u.outputs))}},
        }},
    })


@functools.cache
def _schema() -> dict:
    fmt_names = list(FORMATS)
    field_schema = {
        "type": "object",
        "description": "a payload field: count elements of elem_width bits per lane, element "
                       "0 at bit offset (LSB first); lane l starts l x lane_stride bits higher",
        "required": ["offset", "elem_width", "count"],
        "properties": {
            "offset": _int(0, "bit position of element 0 of lane 0"),
            "width": _int(1, "bits of the field in one lane (elem_width x count; optional)"),
            "elem_width": _int(1, "bits of one element"),
            "count": _int(1, "elements per lane"),
            "lanes": _int(1, "lanes (groups per transfer; default 1)"),
            "lane_stride": _int(0, "bits between the starts of two lanes (default 0)"),
        },
        "additionalProperties": False,
    }
    port_schema = {
        "type": "object",
        "description": "a top-level port: direction, width in bits, and for the payloads the "
                       "fields packed in it",
        "required": ["dir", "width"],
        "properties": {
            "dir": {"enum": ["in", "out"], "description": "'in' or 'out'"},
            "width": _int(1, "bits of the port"),
            "fields": {"type": "object", "description": "field name -> field",
                       "additionalProperties": {"$ref": "#/$defs/field"}},
        },
        "additionalProperties": False,
    }
    ports_props: dict = {}
    for name in STREAM_PORTS:
        extra: dict = {"dir": {"const": _DIRS[name],
                               "description": f"{name} is an {_DIRS[name]}put"}}
        required = []
        if name.endswith("__payload"):
            required = ["fields"]
        else:
            extra["width"] = {"const": 1, "description": f"{name} is 1 bit"}
        ports_props[name] = {"allOf": [{"$ref": "#/$defs/port"},
                                       {"properties": extra, "required": required}]}
    int_params = {
        "n": _int(1, "N: elements kept per group (sparse units)"),
        "m": _int(2, "M: elements per group"),
        "width": _int(1, "bits of one element (the width of fmt)"),
        "index_width": _int(1, "bits of one in-group index, ceil(log2 M)"),
        "lanes": _int(1, "groups per transfer"),
        "weight_width": _int(1, "bits of one weight (MAC units)"),
        "acc_width": _int(1, "bits of one accumulator (MAC units)"),
        "outputs": _int(1, "K: accumulators per row (MAC units)"),
        "pipeline": _int(0, "register stages (informative)"),
        "w": _int(4, "W: lanes per transfer (flexible units)"),
        "max_kept": _int(1, "output slots (flexible units)"),
        "m_log2_width": _int(1, "bits of the m_log2 field (flexible units)"),
        "n_width": _int(1, "bits of the n field (flexible units)"),
        "count_width": _int(1, "bits of the count field (flexible units)"),
        "m_min": _int(4, "smallest group a flexible unit serves"),
        "m_max": _int(4, "largest group a flexible unit serves (= w)"),
    }
    params_schema = {
        "type": "object",
        "description": "design parameters; which ones are required depends on the unit",
        "properties": {
            **int_params,
            "fmt": {"enum": fmt_names, "description": f"element format: {', '.join(fmt_names)}"},
            "arch": {"type": "string", "minLength": 1,
                     "description": "architecture label of a selector (any name; "
                                    "`nmsparse crosscheck --arch` selects by it)"},
            "weights": {"enum": ["stream", "memory"],
                        "description": "MAC units: K x M weights with every group (stream), "
                                       "or held in the unit's banks (memory, DESIGN.md 3.1)"},
            "depth": _int(2, "words per weight bank with weights from memory"),
            "banks": {"enum": list(BANK_LAYOUTS),
                      "description": "a linear engine's bank layout with weights from memory: "
                                     "one bank per group position, or one per kept slot "
                                     "(DESIGN.md 3.1)"},
            "mac_pipeline": {"type": "string", "minLength": 1,
                             "description": "MAC units: register stages per part of the "
                                            "datapath (informative)"},
            "skid": {"type": "boolean",
                     "description": "MAC units: a one-entry skid buffer after the output "
                                    "register (module name ..._skid): the unit moves one "
                                    "more cycle after its output stalls, i.ready depends on "
                                    "registers only (DESIGN.md 3); absent: false"},
            "shift": {"oneOf": [{"type": "integer"},
                                {"type": "array", "items": {"type": "integer"},
                                 "minItems": 2},
                                {"const": SHIFT_INPUT}],
                      "description": "linear units: S-PTS eta, one per layer or one "
                                     "per group position (m integers), subtracted with "
                                     "saturation before the selector, the bias W eta "
                                     "added per group; or \"input\": eta per channel in "
                                     "the input field eta, the row's bias in the field bias "
                                     "(DESIGN.md section 2)"},
        },
    }
    per_unit = []
    memory = {"required": ["params"],
              "properties": {"params": {"required": ["weights"],
                                        "properties": {"weights": {"const": "memory"}}}}}
    shift_in = {"required": ["params"],
                "properties": {"params": {"required": ["shift"],
                                          "properties": {"shift": {"const": SHIFT_INPUT}}}}}
    for u in UNITS.values():
        variants = [(u.inputs, list(u.params), "", False)]
        if u.memory_inputs:
            variants.append((u.memory_inputs, list(u.params) + [
                k for k in MEMORY_PARAMS if k not in u.params], " with weights from memory",
                True))
        shifts = [False]
        if "eta" in _SHAPES[u.name]:  # the run-time S-PTS form adds its fields
            shifts.append(True)
        for inputs, required, label, mem in variants:
            for sh in shifts:
                conds: list = [{"required": ["unit"], "properties": {"unit": {"const": u.name}}}]
                if u.memory_inputs:
                    conds.append(memory if mem else {"not": memory})
                if len(shifts) > 1:
                    conds.append(shift_in if sh else {"not": shift_in})
                _unit_variant(per_unit, u, {"allOf": conds} if len(conds) > 1 else conds[0],
                              inputs + (SHIFT_FIELDS if sh else ()), required,
                              label + (" with eta and the bias as inputs" if sh else ""))
    per_fmt = [{
        "if": {"required": ["params"],
               "properties": {"params": {"required": ["fmt"],
                                         "properties": {"fmt": {"const": f.name}}}}},
        "then": {"properties": {"params": {"properties": {"width": {
            "const": f.width, "description": f"{f.name} elements are {f.width} bits"}}}}},
    } for f in FORMATS.values()]
    sources_schema = {
        "type": "object",
        "description": "what the simulator reads to build the module (optional). Paths are "
                       "relative to the sidecar's directory. Without it: <sidecar stem>.v "
                       "(or .sv) alone",
        "properties": {
            "files": {"type": "array", "minItems": 1,
                      "items": {"type": "string", "minLength": 1},
                      "description": "every Verilog/SystemVerilog file, in compile order"},
            "include_dirs": {"type": "array", "items": {"type": "string", "minLength": 1},
                             "description": "directories searched for `include files"},
            "defines": {"type": "object", "propertyNames": {"pattern": _IDENT},
                        "additionalProperties": {"type": ["string", "integer", "null"]},
                        "description": "preprocessor defines: name -> value (string or "
                                       "integer), or null for a bare `define"},
        },
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "nmsparse/contract/sidecar.schema.json",
        "title": "nmsparse sidecar",
        "description": (
            "The sidecar <module>.json of an N:M sparsity module (DESIGN.md section 3): its "
            "unit, parameters, latency, ports with the bit offsets of every payload field, "
            "and optionally its source files. Written by `nmsparse generate` and "
            "`nmsparse sidecar init`, read only by nmsparse.contract.sidecar.load_sidecar. "
            "Any other top-level key is a metric (e.g. groups_per_cycle, comparators) and "
            "is kept. Beyond this schema the reader checks: "
            + "; ".join(_SEMANTIC_CHECKS) + "."),
        "type": "object",
        "required": ["module", "unit", "params", "latency", "ports"],
        "properties": {
            "generator": {"type": "object", "description": "what wrote the file",
                          "properties": {"name": {"type": "string"},
                                         "version": {"type": "string"}}},
            "module": {"type": "string", "pattern": _IDENT,
                       "description": "the Verilog module name of the top level"},
            "unit": {"enum": list(UNITS),
                     "description": "the kind of module: " + ", ".join(UNITS)},
            "params": params_schema,
            "latency": _int(0, "cycles from an input transfer to the output transfer it "
                               "produces, with o__ready held high"),
            "ports": {"type": "object",
                      "description": f"every module has the ports {', '.join(STREAM_PORTS)}",
                      "required": list(STREAM_PORTS),
                      "properties": ports_props,
                      "additionalProperties": {"$ref": "#/$defs/port"}},
            "sources": sources_schema,
        },
        "allOf": per_unit + per_fmt,
        "$defs": {"port": port_schema, "field": field_schema},
    }


def schema() -> dict:
    """The JSON Schema (draft 2020-12) of a sidecar document; a copy, safe to modify."""
    return copy.deepcopy(_schema())


def schema_text() -> str:
    """The schema as published in :data:`SCHEMA_FILE` (two-space indent, final newline)."""
    return json.dumps(_schema(), indent=2) + "\n"


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_schema())


def _key(path: Sequence[object]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _show(v: object) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(err) -> str:
    """What a failing keyword asks for, in words."""
    s, v = err.schema, err.validator_value
    desc = s.get("description")
    if err.validator == "type":
        kinds = v if isinstance(v, list) else [v]
        words = [{"integer": "an integer", "object": "an object", "array": "a list",
                            "string": "a string", "null": "null"}.get(k, k) for k in kinds]
        what = words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]
        return what + (f" ({desc})" if desc else "")
    if err.validator == "minimum":
        return f"an integer >= {v}" + (f" ({desc})" if desc else "")
    if err.validator == "enum":
        return "one of " + ", ".join(_show(x) for x in v)
    if err.validator == "const":
        return _show(v) + (f" ({desc})" if desc else "")
    if err.validator == "pattern":
        return "a Verilog identifier" if v == _IDENT else f"a string matching {v}"
    if err.validator in ("minItems", "minLength"):
        return "a non-empty " + ("list" if err.validator == "minItems" else "string")
    return err.message


def _hint(instance: object, missing: str | None = None, unknown: str | None = None,
          allowed: Sequence[str] = ()) -> str:
    if unknown is not None:
        real = _ALIASES.get(unknown)
        if real not in allowed:
            close = difflib.get_close_matches(unknown, list(allowed), 1, 0.7)
            real = close[0] if close else None
        return f"; did you mean {real!r}?" if real else ""
    if missing is not None and isinstance(instance, Mapping):
        found = [k for k in instance if _ALIASES.get(k) == missing]
        if found:
            return f"found {found[0]!r}: the key is named {missing!r}"
    return ""


def _schema_error(where: str, err) -> SidecarError:
    path = list(err.absolute_path)
    key = _key(path)
    if err.validator == "required":
        inst = err.instance if isinstance(err.instance, Mapping) else {}
        missing = next((k for k in err.validator_value if k not in inst),
                       err.validator_value[0])
        full = _key(path + [missing])
        prop = err.schema.get("properties", {}).get(missing, {})
        desc = prop.get("description") if isinstance(prop, Mapping) else None
        notes = [desc or err.schema.get("description") or ""]
        notes.append(_hint(inst, missing=missing))
        if err.schema.get("additionalProperties") is False:
            extra = [k for k in inst if k not in err.schema.get("properties", {})]
            if extra and not notes[-1]:
                notes.append("found " + ", ".join(repr(k) for k in extra))
        text = "; ".join(n for n in notes if n)
        return SidecarError(f"{where}: missing key {full!r}" + (f" ({text})" if text else ""))
    if err.validator == "additionalProperties" and isinstance(err.instance, Mapping):
        allowed = list(err.schema.get("properties", {}))
        extra = [k for k in err.instance if k not in allowed]
        name = extra[0] if extra else "?"
        desc = err.schema.get("description")
        expected = f"expected {', '.join(allowed)}" if allowed else "no other keys"
        return SidecarError(
            f"{where}: unknown key {_key(path + [name])!r} ("
            + (desc if desc and "carries" in desc else expected) + ")"
            + _hint(err.instance, unknown=name, allowed=allowed))
    if err.validator == "pattern" and path and path[-1] != "module":
        # a define name (propertyNames) or another patterned string
        return SidecarError(f"{where}: key {key!r}: {_show(err.instance)} is not a "
                            f"Verilog identifier")
    return SidecarError(f"{where}: key {key or '(document)'!r}: expected {_expected(err)}, "
                        f"not {_show(err.instance)}")


def validate(doc: object, where: str = "sidecar") -> None:
    """Check ``doc`` against the JSON Schema only (see :func:`parse_sidecar` for all checks).

    Raises
    ------
    SidecarError
        The first (shallowest) violation, naming ``where``, the key and what is expected.
    """
    errors = list(_validator().iter_errors(doc))
    if not errors:
        return
    rank = {"required": 0, "additionalProperties": 1, "type": 2}
    first = min(errors, key=lambda e: (len(e.absolute_path), rank.get(e.validator, 3)))
    raise _schema_error(where, first)


# ---------------------------------------------------------------------------------- reader

def _shape_of(unit: str, fname: str, params: Mapping) -> tuple[int, int, str]:
    if is_memory(UNITS[unit], params) and fname in _MEMORY_SHAPES:
        ew, cnt = _MEMORY_SHAPES[fname]
    else:
        ew, cnt = _SHAPES[unit][fname]

    def val(x: str | int) -> int:
        if isinstance(x, int):
            return x
        if x in ("outputs*m", "outputs*w"):
            return int(params["outputs"]) * int(params[x[-1]])
        if x == "addr_width":  # (word << index_width) | bank
            return int(params["index_width"]) + max(1, (int(params["depth"]) - 1).bit_length())
        return int(params[x])

    if ew == "addr_width":
        return val(ew), val(cnt), "1 element of params.index_width + ceil(log2 params.depth) bits"
    words = {"outputs*m": "outputs x m", "outputs*w": "outputs x w"}
    text = (f"{words.get(str(cnt), cnt)} elements of "
            f"{ew if isinstance(ew, int) else 'params.' + ew} bits")
    return val(ew), val(cnt), text


def default_ports(unit: str, params: Mapping) -> dict[str, Port]:
    """The ports of DESIGN.md section 3 for ``unit`` with ``params``: the control ports, and
    the payloads with their fields in the unit's order, LSB first, each ``count`` elements
    of ``elem_width`` bits; with ``lanes > 1`` (selectors) one such struct per lane, lane 0
    at the LSB. This is the layout the generator emits; a hand-written sidecar may differ.

    Raises
    ------
    ValueError
        An unknown unit, or a parameter the layout needs is missing.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {unit!r}")
    spec = UNITS[unit]
    missing = [k for k in spec.params if k not in params]
    if missing:
        raise ValueError(f"the {unit} layout needs the params {', '.join(missing)}")
    lanes = int(params.get("lanes", 1) or 1) if unit == "topk" else 1
    ports = {n: Port(n, _DIRS[n], 1) for n in STREAM_PORTS if not n.endswith("__payload")}
    for name, names in (("i__payload", spec.input_fields(params)),
                        ("o__payload", spec.outputs)):
        shapes = [(f, *_shape_of(unit, f, params)[:2]) for f in names]
        stride = sum(ew * cnt for _, ew, cnt in shapes)
        fields, off = {}, 0
        for f, ew, cnt in shapes:
            fields[f] = Field(f, off, ew, cnt, lanes, stride if lanes > 1 else 0)
            off += ew * cnt
        ports[name] = Port(name, _DIRS[name], stride * lanes, fields)
    return {n: ports[n] for n in STREAM_PORTS}


def _check_port(where: str, unit: str, port: Port, params: Mapping) -> None:
    lanes = int(params.get("lanes", 1) or 1) if unit == "topk" else 1
    spans: list[tuple[int, int, str]] = []
    for f in port.fields.values():
        key = f"ports.{port.name}.fields.{f.name}"
        ew, cnt, text = _shape_of(unit, f.name, params)
        if (f.elem_width, f.count) != (ew, cnt):
            raise SidecarError(
                f"{where}: key {key!r}: expected count {cnt} x elem_width {ew} (a {unit} "
                f"unit's {f.name}: {text}), not count {f.count} x elem_width {f.elem_width}")
        if f.lanes != lanes:
            raise SidecarError(f"{where}: key {key + '.lanes'!r}: expected {lanes} "
                               f"(params.lanes), not {f.lanes}")
        if lanes > 1 and f.lane_stride < 1:
            raise SidecarError(f"{where}: key {key + '.lane_stride'!r}: expected the bits "
                               f"between two lanes ({lanes} lanes), not {f.lane_stride}")
        for lane in range(f.lanes):
            lo = f.offset + lane * f.lane_stride
            spans.append((lo, lo + f.width, f"{f.name}" + (f" lane {lane}" if lanes > 1 else "")))
    spans.sort()
    for (a0, a1, an), (b0, _b1, bn) in zip(spans, spans[1:], strict=False):
        if b0 < a1:
            raise SidecarError(f"{where}: key {'ports.' + port.name + '.fields'!r}: {an} "
                               f"(bits {a0}..{a1 - 1}) overlaps {bn} (from bit {b0})")
    if spans and spans[-1][1] > port.width:
        lo, hi, name = max(spans, key=lambda s: s[1])
        raise SidecarError(f"{where}: key {'ports.' + port.name + '.fields'!r}: {name} "
                           f"(bits {lo}..{hi - 1}) does not fit in the {port.width}-bit port "
                           f"(ports.{port.name}.width)")


def _port(name: str, d: Mapping, where: str) -> Port:
    fields: dict[str, Field] = {}
    for fname, fd in (d.get("fields") or {}).items():
        f = Field(name=fname, offset=fd["offset"], elem_width=fd["elem_width"],
                  count=fd["count"], lanes=fd.get("lanes", 1),
                  lane_stride=fd.get("lane_stride", 0))
        if "width" in fd and fd["width"] != f.width:
            raise SidecarError(f"{where}: key 'ports.{name}.fields.{fname}.width': expected "
                               f"elem_width x count = {f.width}, not {fd['width']}")
        fields[fname] = f
    return Port(name=name, dir=d["dir"], width=d["width"], fields=fields)


def parse_sidecar(doc: object, where: str = "sidecar", path: Path | None = None) -> Sidecar:
    """Validate a sidecar document (already parsed JSON) and return it typed.

    The document must satisfy the JSON Schema (:func:`schema`) and the cross-field checks
    the schema's description lists.

    Raises
    ------
    SidecarError
        Naming ``where``, the key and what is expected.
    """
    validate(doc, where)
    assert isinstance(doc, Mapping)
    unit = doc["unit"]
    params = dict(doc["params"])
    if UNITS[unit].sparse and not params["n"] < params["m"]:
        raise SidecarError(f"{where}: key 'params.n': expected 0 < n < m = {params['m']}, "
                           f"not {params['n']}")
    if UNITS[unit].flexible:
        try:
            flex.check_lanes(params["w"])
        except ValueError as exc:
            raise SidecarError(f"{where}: key 'params.w': {exc}") from None
        top = flex.max_slots(params["w"])
        if not 1 <= params["max_kept"] <= top:
            raise SidecarError(f"{where}: key 'params.max_kept': expected 1 .. {top} for "
                               f"w = {params['w']}, not {params['max_kept']}")
    group = params.get("m", params.get("w"))
    if "index_width" in params and group is not None and (1 << params["index_width"]) < group:
        what = "m" if "m" in params else "w"
        raise SidecarError(f"{where}: key 'params.index_width': expected at least "
                           f"{(group - 1).bit_length()} bits for {what} = {group}, "
                           f"not {params['index_width']}")
    if "shift" in params:
        _check_shift(where, unit, params)
    ports = {n: _port(n, d, where) for n, d in doc["ports"].items()}
    for name in ("i__payload", "o__payload"):
        _check_port(where, unit, ports[name], params)
    src = doc.get("sources")
    sources = None
    if src is not None:
        sources = Sources(files=tuple(src.get("files", ())),
                          include_dirs=tuple(src.get("include_dirs", ())),
                          defines=dict(src.get("defines", {})))
    metrics = {k: v for k, v in doc.items() if k not in _TOP_KEYS}
    return Sidecar(module=doc["module"], unit=unit, params=params, latency=doc["latency"],
                   ports=ports, metrics=metrics, generator=dict(doc.get("generator") or {}),
                   path=path, sources=sources)


def _check_shift(where: str, unit: str, params: Mapping) -> None:
    """params.shift: a linear unit with weights in the stream, eta in the format's range; or
    "input" on a linear unit with an integer format."""
    key = "key 'params.shift'"
    if is_shift_input(params):
        if unit != "linear" or not FORMATS[params["fmt"]].is_int:
            raise SidecarError(f"{where}: {key}: shift {SHIFT_INPUT!r} is defined for a linear "
                               f"unit with an integer fmt, not unit {unit!r} with fmt "
                               f"{params.get('fmt')!r}")
        return
    if unit != "linear" or params.get("weights", "stream") != "stream":
        raise SidecarError(f"{where}: {key}: a static shift is defined for a linear unit with "
                           f"weights in the stream only, not unit {unit!r} with weights "
                           f"{params.get('weights', 'stream')!r}")
    f = FORMATS[params["fmt"]]
    if not f.is_int:
        raise SidecarError(f"{where}: {key}: a static shift needs an integer fmt, not "
                           f"{f.name}")
    eta = params["shift"]
    etas = eta if isinstance(eta, list) else [eta]
    if isinstance(eta, list) and len(eta) != params["m"]:
        raise SidecarError(f"{where}: {key}: expected one integer or m = {params['m']} "
                           f"integers, not {len(eta)}")
    for e in etas:
        if not f.min <= e <= f.max:
            raise SidecarError(f"{where}: {key}: expected eta in [{f.min}, {f.max}] "
                               f"({f.name}), not {e}")


def _check_files(sc: Sidecar, where: str) -> None:
    base = sc.path.parent if sc.path else Path.cwd()
    if sc.sources is not None and sc.sources.files:
        for k, (raw, p) in enumerate(zip(sc.sources.files, sc.hdl_files, strict=True)):
            if not p.is_file():
                raise FileNotFoundError(f"{where}: key 'sources.files[{k}]': {raw} does not "
                                        f"exist (paths are relative to {base})")
    elif not sc.verilog.is_file():
        raise FileNotFoundError(
            f"{sc.path.with_suffix('.v')} (the Verilog of {sc.module}) does not exist; "
            f"name the top file {sc.path.stem}.v or {sc.path.stem}.sv, or list the design's "
            "files in the sidecar's sources.files")
    if sc.sources is not None:
        for k, (raw, p) in enumerate(zip(sc.sources.include_dirs, sc.include_dirs,
                                         strict=True)):
            if not p.is_dir():
                raise FileNotFoundError(f"{where}: key 'sources.include_dirs[{k}]': {raw} is "
                                        f"not a directory (paths are relative to {base})")


def load_sidecar(path: str | Path, *, need_verilog: bool = True) -> Sidecar:
    """Read and validate ``<module>.json``.

    Raises
    ------
    FileNotFoundError
        The JSON (or, with ``need_verilog``, a source file or include directory) does not
        exist.
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
    if need_verilog:
        _check_files(sc, str(p))
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
    """The sidecar of module ``name`` in ``hdl_dir``: ``<name>.json``, else the one sidecar
    whose ``module`` is ``name``.

    Raises
    ------
    FileNotFoundError
        No such module; the message lists the modules ``hdl_dir`` has.
    SidecarError
        Its sidecar (or, when searching, any sidecar of the directory) does not validate.
    """
    d = Path(hdl_dir)
    p = d / f"{name}.json"
    if p.is_file():
        return load_sidecar(p)
    if not d.is_dir():
        raise FileNotFoundError(f"HDL directory {d} does not exist")
    mods = list_modules(d, "all")
    hit = [sc for sc in mods if sc.module == name]
    if hit:
        return hit[0]
    have = ", ".join(sc.module for sc in mods) or "no sidecars at all"
    raise FileNotFoundError(f"module {name} not found in {d} (no {p.name}; it has: {have})")
