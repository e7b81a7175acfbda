"""The hardware units of DESIGN.md section 3: their names, payload fields and parameters.

One :class:`Unit` per kind of module. It says which payload fields its streams carry (the
sidecar reader checks them) and which parameters its sidecar must give, and it builds the
module name of a design point::

    UNITS["topk"].module_name(n=8, m=16, fmt="int8", arch="rank")   -> "nm_topk_8_16_int8_rank"
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Unit", "UNITS", "unit", "module_name", "is_memory", "MEMORY_PARAMS", "MUL_REG",
           "BANK_LAYOUTS", "is_lane_banks",
           "WBANK", "DELAY", "PRIMITIVES", "primitives_used", "SHIFT_INPUT",
           "SHIFT_FIELDS", "is_shift_input", "is_skid"]

#: The multiplier with registered operands and a registered product that the MAC units
#: instantiate (DESIGN.md section 3): its generic Verilog is appended to every emitted file that
#: uses it; a flow may read a primitive form in its place (gen/prims/<family>/).
MUL_REG = "nmsparse_mul_reg"


#: The weight bank with its read data registered twice, the second time on its own enable (DESIGN.md
#: section 3.1): a flow maps it onto block RAM whose output register holds that second stage
#: (gen/prims/ecp5/: DP16KD with REGMODE OUTREG; Yosys' own block-RAM mapping for ECP5 leaves
#: the output register unused).
WBANK = "nmsparse_wbank"

#: A delay line of DEPTH stages on one clock enable (DESIGN.md section 3): the stream weights'
#: way past the selector. Its generic Verilog is the stages of flip-flops; a flow may keep them
#: in distributed RAM instead (gen/prims/ecp5/: a 16-word LUT-RAM ring and one output register).
DELAY = "nmsparse_delay"

#: Every primitive module an emitted file may instantiate, in the order their generic Verilog is
#: appended to it.
PRIMITIVES = (MUL_REG, WBANK, DELAY)


def primitives_used(verilog: str | bytes) -> tuple[str, ...]:
    """The :data:`PRIMITIVES` an emitted Verilog text instantiates (their instances, and their
    own definitions, are the only places ``<name> #(`` appears)."""
    text = verilog.decode() if isinstance(verilog, bytes) else verilog
    return tuple(p for p in PRIMITIVES if f"{p} #(" in text)


def _lanes(p: Mapping) -> str:
    lanes = int(p.get("lanes", 1) or 1)
    return f"_x{lanes}" if lanes > 1 else ""


def _wmem(p: Mapping) -> str:
    """``_wmem``: the weights come from the unit's own banks (DESIGN.md section 3.1);
    ``_wlane``: from banks by kept slot (``banks: lane``)."""
    if p.get("weights") != "memory":
        return ""
    return "_wlane" if is_lane_banks(p) else "_wmem"


#: ``params.shift`` of the run-time S-PTS form: eta and the bias are input fields
SHIFT_INPUT = "input"
#: the input fields the run-time form adds after the others (DESIGN.md section 2)
SHIFT_FIELDS = ("eta", "bias")


def is_shift_input(params: Mapping) -> bool:
    """Whether a linear design point takes eta and the bias as input fields."""
    return params.get("shift") == SHIFT_INPUT


def _shift(p: Mapping) -> str:
    """``_shift``: a constant S-PTS shift before the selector; ``_shiftin``: eta and the bias
    as input fields (DESIGN.md section 2)."""
    if p.get("shift") is None:
        return ""
    return "_shiftin" if is_shift_input(p) else "_shift"


def is_skid(p: Mapping) -> bool:
    """Whether a MAC design point has the output skid buffer (``params.skid``, DESIGN.md
    section 3: every stall enable is a flip-flop; module name ``..._skid``)."""
    return p.get("skid") is True


def _skid(p: Mapping) -> str:
    return "_skid" if is_skid(p) else ""


#: Bank layouts of a linear engine with weights from memory (params ``banks``, DESIGN.md
#: section 3.1): one bank per group position (the default), or one per kept slot (``_wlane``).
BANK_LAYOUTS = ("position", "lane")


def is_lane_banks(p: Mapping) -> bool:
    """Whether params ``p`` lay the weight banks out by kept slot (``banks: lane``)."""
    return p.get("banks") == BANK_LAYOUTS[1]


#: Parameters a unit with weights from memory also gives (DESIGN.md section 3.1).
MEMORY_PARAMS = ("weights", "depth", "index_width")
_MEMORY_FIELDS = ("data", "weights", "last", "load", "addr")


def is_memory(u: Unit, params: Mapping) -> bool:
    """Whether a design point of ``u`` holds its weights in banks (``weights: memory``)."""
    return bool(u.memory_inputs) and params.get("weights") == "memory"
def _slots(p: Mapping) -> str:
    """``_s<S>`` when a flexible unit has other than the default W/2 output slots."""
    w, s = int(p["w"]), int(p["max_kept"])
    return "" if s == w // 2 else f"_s{s}"


_FLEX_IN = ("data", "m_log2", "n")
_FLEX_OUT = ("mask", "values", "index", "count", "m_log2", "n", "err")
_FLEX_PARAMS = ("w", "fmt", "width", "index_width", "max_kept", "m_log2_width", "n_width",
                "count_width")


@dataclass(frozen=True)
class Unit:
    """One kind of module.

    Parameters
    ----------
    name : str
        The sidecar's ``unit`` value.
    inputs, outputs : tuple of str
        Payload fields of the ``i`` and ``o`` streams, LSB first.
    params : tuple of str
        Parameters every sidecar of this unit must give.
    sparse : bool
        Whether the unit implements one fixed N:M pattern (``n`` is then required).
    describe : str
        One line for documentation.
    memory_inputs : tuple of str
        Payload fields of ``i`` when the unit holds its weights (``params.weights ==
        "memory"``, DESIGN.md section 3.1); empty if it has no such form.
    flexible : bool
        Whether the pattern travels with each transfer (DESIGN.md section 5; ``w`` and
        ``max_kept`` are then required, :mod:`nmsparse.contract.flex`).
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: tuple[str, ...]
    sparse: bool
    describe: str
    _name: Callable[[Mapping], str]
    memory_inputs: tuple[str, ...] = ()
    flexible: bool = False

    def input_fields(self, params: Mapping) -> tuple[str, ...]:
        """The ``i`` payload fields of a design point with ``params``."""
        base = self.memory_inputs if is_memory(self, params) else self.inputs
        return base + SHIFT_FIELDS if is_shift_input(params) else base

    def module_name(self, **params: object) -> str:
        """The module name of a design point of this unit."""
        try:
            return self._name(params)
        except KeyError as exc:
            raise ValueError(f"the {self.name} module name needs the parameter {exc}") from None


UNITS: dict[str, Unit] = {
    u.name: u
    for u in (
        Unit("topk", ("data",), ("mask", "values", "index"),
             ("n", "m", "fmt", "width", "index_width", "lanes"), True,
             "N:M top-k selector: M elements in; mask, kept values and indices out",
             lambda p: f"nm_topk_{p['n']}_{p['m']}_{p['fmt']}_{p['arch']}{_lanes(p)}"),
        Unit("spmac", ("values", "index", "weights", "last"), ("acc",),
             ("n", "m", "fmt", "width", "index_width", "weight_width", "acc_width", "outputs"),
             True, "sparse MAC: compressed groups times K x M weights, accumulated per row",
             lambda p: f"nm_spmac_{p['n']}_{p['m']}_{p['fmt']}_k{p['outputs']}{_skid(p)}"),
        Unit("linear", ("data", "weights", "last"), ("acc",),
             ("n", "m", "fmt", "width", "index_width", "weight_width", "acc_width", "outputs"),
             True, "sparse linear engine: the selector and the sparse MAC in one pipeline",
             lambda p: (f"nm_linear_{p['n']}_{p['m']}_{p['fmt']}_k{p['outputs']}{_wmem(p)}"
                        f"{_shift(p)}{_skid(p)}"),
             _MEMORY_FIELDS),
        Unit("dense_mac", ("data", "weights", "last"), ("acc",),
             ("m", "fmt", "width", "weight_width", "acc_width", "outputs"), False,
             "dense baseline: the same dot product without sparsity",
             lambda p: f"dense_mac_{p['m']}_{p['fmt']}_k{p['outputs']}{_wmem(p)}{_skid(p)}",
             _MEMORY_FIELDS),
        Unit("topk_flex", _FLEX_IN, _FLEX_OUT, _FLEX_PARAMS, False,
             "runtime-flexible N:M selector: W lanes and the pattern in; mask, kept values "
             "and lane indices in max_kept slots, count, pattern and err out",
             lambda p: f"nm_topk_flex_{p['w']}_{p['fmt']}_{p['arch']}{_slots(p)}",
             flexible=True),
        Unit("spmac_flex", ("values", "index", "weights", "last"), ("acc",),
             (*_FLEX_PARAMS, "weight_width", "acc_width", "outputs"), False,
             "runtime-flexible sparse MAC: the flexible selector's slots times K x W weights",
             lambda p: f"nm_spmac_flex_{p['w']}_{p['fmt']}_k{p['outputs']}{_slots(p)}",
             flexible=True),
        Unit("linear_flex", (*_FLEX_IN, "weights", "last"), ("acc",),
             (*_FLEX_PARAMS, "weight_width", "acc_width", "outputs"), False,
             "runtime-flexible sparse linear engine: flexible selector and MAC in one pipeline",
             lambda p: f"nm_linear_flex_{p['w']}_{p['fmt']}_k{p['outputs']}{_slots(p)}",
             flexible=True),
    )
}


def unit(name: object) -> Unit:
    """The :class:`Unit` called ``name`` (``ValueError`` naming the valid ones)."""
    if not isinstance(name, str) or name not in UNITS:
        raise ValueError(f"unit must be one of {', '.join(UNITS)}, not {name!r}")
    return UNITS[name]


def module_name(unit_name: str, **params: object) -> str:
    """``unit(unit_name).module_name(**params)``."""
    return unit(unit_name).module_name(**params)
