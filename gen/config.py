"""Design points: one frozen, validated configuration object per emitted module.

A configuration is built and checked before any hardware exists (as ``amaranth.lib.memory``
takes a ``MemoryData``): ``NMTopK(TopKConfig(n=8, m=16, fmt="int8", arch="rank"))``. It knows
its module name (:mod:`nmsparse.contract.units`), its stream payload layouts (Amaranth
``data`` layouts, LSB first as in DESIGN.md section 3), its latency and resource figures, and
writes the sidecar: the port and field offsets come from iterating those same layouts.

Presets: :data:`SHIPPED` lists every design point of ``hdl/`` (``make hdl``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TypeVar

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from nmsparse.contract import VERSION
from nmsparse.contract import flex as _flex
from nmsparse.contract.formats import get_format
from nmsparse.contract.patterns import SHIPPED_PATTERNS, check_nm
from nmsparse.contract.sidecar import Field, Port, Sidecar
from nmsparse.contract.units import BANK_LAYOUTS, SHIFT_INPUT, UNITS, is_lane_banks

from .arch import ARCHITECTURES, Architecture
from .macsched import (
    LANE_ADDR_STAGES,
    READ_STAGES,
    MACSchedule,
    MACShape,
    auto_schedule,
    parse_schedule,
    register_bits,
    stream_decodes,
    wmux_cut_after,
    wmux_steps,
)
from .schedule import predicted_fmax, schedule_for_clock, schedule_stages

__all__ = [
    "TopKConfig",
    "SparseMACConfig",
    "LinearConfig",
    "DenseMACConfig",
    "FlexTopKConfig",
    "FlexSparseMACConfig",
    "FlexLinearConfig",
    "FLEX_ARCHS",
    "SHIPPED",
    "SWEEP",
    "TOPK_FORMATS",
    "MAC_FORMATS",
    "ARCHS",
    "WEIGHT_SOURCES",
    "payload_fields",
]

TOPK_FORMATS = ("int4", "int8", "int16", "fp16", "bf16", "fp32")
MAC_FORMATS = ("int4", "int8", "int16")
ARCHS = tuple(ARCHITECTURES)
MAX_PIPELINE = 64
DEFAULT_TARGET_MHZ = 200.0

#: Register stages of the S-PTS subtraction (the saturating ``x - eta`` in front of the
#: selector, one carry chain and a clamp: a register after it keeps it out of the selector's
#: first segment, which the selector's schedule sizes without it).
SHIFT_STAGES = 1
MAX_LANES = 64
MAX_OUTPUTS = 256
MAX_DEPTH = 1 << 16
WEIGHT_SOURCES = ("stream", "memory")
DEFAULT_BANK_FEATURES = 1024
"""Default weight-bank capacity with weights from memory: rows of up to 1024 input features."""


def _int(name: str, value: object, *, lo: int, hi: int) -> int:
    """``value`` as an int in ``[lo, hi]``; errors name the parameter and the value."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if not lo <= v <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {v}")
    return v


def _fmt(value: object, allowed: tuple[str, ...], what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"fmt must be a format name (one of {', '.join(allowed)}), not {value!r}")
    get_format(value)  # ValueError naming the valid formats for unknown names
    if value not in allowed:
        raise ValueError(f"{what} supports the formats {', '.join(allowed)}, not {value!r}")
    return value


def _set(obj: object, **kw: object) -> None:
    for k, v in kw.items():
        object.__setattr__(obj, k, v)


def _struct(fields: dict[str, tuple[Shape, int]], lanes: int = 1) -> data.Layout:
    """Payload layout: each field an array of ``count`` elements, first field at the LSB;
    with ``lanes > 1`` an array of such structs, lane 0 at the LSB."""
    layout = data.StructLayout({name: data.ArrayLayout(shape, count)
                                for name, (shape, count) in fields.items()})
    return layout if lanes == 1 else data.ArrayLayout(layout, lanes)


def payload_fields(layout: data.Layout) -> tuple[int, dict[str, Field]]:
    """Width and sidecar fields of a payload layout, read from the layout itself."""
    lanes, struct = 1, layout
    if isinstance(layout, data.ArrayLayout):
        lanes, struct = layout.length, layout.elem_shape
    stride = Shape.cast(struct).width if lanes > 1 else 0
    fields = {}
    for name, member in struct:
        arr = member.shape
        fields[name] = Field(name=name, offset=member.offset,
                             elem_width=Shape.cast(arr.elem_shape).width, count=arr.length,
                             lanes=lanes, lane_stride=stride)
    return Shape.cast(layout).width, fields


class _Config:
    """Shared behaviour of the configuration dataclasses (not a dataclass itself)."""

    unit: str = ""
    lanes: int = 1

    def input_layout(self) -> data.Layout:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_layout(self) -> data.Layout:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def name(self) -> str:
        return UNITS[self.unit].module_name(**self.params())

    @property
    def width(self) -> int:
        return get_format(self.fmt).width  # type: ignore[attr-defined]

    def ports(self) -> dict[str, Port]:
        """Every port of the emitted module, payload fields read from the layouts."""
        iw, ifields = payload_fields(self.input_layout())
        ow, ofields = payload_fields(self.output_layout())
        one = {"clk": "in", "rst": "in", "i__valid": "in", "i__ready": "out",
               "o__valid": "out", "o__ready": "in"}
        ports = {n: Port(n, d, 1) for n, d in one.items()}
        ports["i__payload"] = Port("i__payload", "in", iw, ifields)
        ports["o__payload"] = Port("o__payload", "out", ow, ofields)
        return {n: ports[n] for n in ("clk", "rst", "i__payload", "i__valid", "i__ready",
                                      "o__payload", "o__valid", "o__ready")}

    def sidecar(self, name: str | None = None) -> Sidecar:
        """The sidecar (DESIGN.md section 3) of this design point."""
        metrics = self.metrics()
        latency = metrics.pop("latency")
        return Sidecar(module=name or self.name, unit=self.unit, params=self.params(),
                       latency=latency, ports=self.ports(), metrics=metrics,
                       generator={"name": "nmsparse", "version": VERSION})


@dataclass(frozen=True)
class TopKConfig(_Config):
    """N:M top-k selector ``nm_topk_<N>_<M>_<fmt>_<arch>[_x<L>]``.

    Parameters
    ----------
    n, m : int
        Keep ``n`` of every ``m`` (``0 < n < m``, ``m >= 2``).
    fmt : str
        ``int4``, ``int8``, ``int16``, ``fp16``, ``bf16`` or ``fp32``.
    arch : str
        A name of :data:`gen.arch.ARCHITECTURES` (``"rank"``, ``"network"``, ...).
    pipeline : int, "auto" or None
        Register stages (= latency in cycles), placed by the architecture's delay model so
        that the slowest segment is as fast as it can be; 0 makes the unit combinational.
        ``"auto"``: as many stages, wherever the live data is narrowest, as ``target_mhz``
        needs (:func:`gen.schedule.schedule_for_clock`). ``None``: ``"auto"`` when
        ``target_mhz`` is given, else the architecture's default number of stages. After
        validation ``pipeline`` holds the resolved number of stages.
    lanes : int
        Independent groups per clock.
    target_mhz : float or None
        Clock target of ``pipeline="auto"`` (default :data:`DEFAULT_TARGET_MHZ`).

    Raises
    ------
    TypeError, ValueError
        For invalid parameters; the message names the value.
    """

    n: int
    m: int
    fmt: str = "int8"
    arch: str = "network"
    pipeline: int | str | None = None
    lanes: int = 1
    target_mhz: float | None = None
    unit = "topk"

    def __post_init__(self) -> None:
        n, m = check_nm(self.n, self.m)
        fmt = _fmt(self.fmt, TOPK_FORMATS, "the top-k selector")
        if not isinstance(self.arch, str) or self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, not {self.arch!r}")
        lanes = _int("lanes", self.lanes, lo=1, hi=MAX_LANES)
        _set(self, n=n, m=m, fmt=fmt, lanes=lanes)
        auto = self.pipeline == "auto" or (self.pipeline is None and self.target_mhz is not None)
        target = self.target_mhz
        if target is not None or auto:
            target = DEFAULT_TARGET_MHZ if target is None else target
            if isinstance(target, bool) or not isinstance(target, int | float) \
                    or not 1 <= target <= 2000:
                raise ValueError(f"target_mhz must be a clock in MHz in [1, 2000], "
                                 f"not {self.target_mhz!r}")
            target = float(target)
        if not auto and target is not None:
            raise ValueError(f"target_mhz={target:g} needs pipeline='auto' (or None), not "
                             f"pipeline={self.pipeline!r}")
        delays = [layer.delay_ns for layer in self.architecture.layers()]
        if auto:
            aim = target / (1.0 - self.architecture.SCHEDULE_MARGIN)
            cuts = schedule_for_clock(delays, self.architecture.live_bits(), aim)
        else:
            if self.pipeline is None:
                stages = self.architecture.default_pipeline()
            else:
                stages = _int("pipeline", self.pipeline, lo=0, hi=MAX_PIPELINE)
            cuts = schedule_stages(delays, stages)
        _set(self, pipeline=sum(cuts), target_mhz=target)
        object.__setattr__(self, "_cuts", tuple(cuts))

    @cached_property
    def architecture(self) -> Architecture:
        """The architecture object that builds one lane (:mod:`gen.arch`)."""
        return ARCHITECTURES[self.arch](self)

    @property
    def key_width(self) -> int:
        return get_format(self.fmt).key_width

    @property
    def index_width(self) -> int:
        return max(1, (self.m - 1).bit_length())

    @property
    def latency(self) -> int:
        return self.pipeline  # type: ignore[return-value]

    @property
    def cuts(self) -> tuple[int, ...]:
        """Register stages after each layer of the architecture (``sum(cuts) = pipeline``)."""
        return self._cuts  # type: ignore[attr-defined]

    @property
    def predicted_fmax_mhz(self) -> float:
        """The delay model's Fmax of this schedule (MHz), less the architecture's
        ``SCHEDULE_MARGIN``."""
        arch = self.architecture
        return predicted_fmax([la.delay_ns for la in arch.layers()], self.cuts) \
            * (1.0 - arch.SCHEDULE_MARGIN)

    @property
    def comparators(self) -> int:
        """Key comparators of one lane (see the architecture)."""
        return self.architecture.comparators()

    @property
    def network_depth(self) -> int:
        """Comparator layers of the selection (1 for the rank matrix)."""
        return self.architecture.network_depth()

    def input_layout(self) -> data.Layout:
        return _struct({"data": (unsigned(self.width), self.m)}, self.lanes)

    def output_layout(self) -> data.Layout:
        return _struct({"mask": (unsigned(1), self.m),
                        "values": (unsigned(self.width), self.n),
                        "index": (unsigned(self.index_width), self.n)}, self.lanes)

    def params(self) -> dict:
        out = {"n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
               "index_width": self.index_width, "arch": self.arch,
               "pipeline": self.pipeline, "lanes": self.lanes}
        if self.target_mhz is not None:
            out["target_mhz"] = self.target_mhz
        return out

    def metrics(self) -> dict:
        out = {"latency": self.latency, "groups_per_cycle": self.lanes,
               "comparators": self.comparators * self.lanes,
               "network_depth": self.network_depth}
        out.update({k: v * self.lanes if k.endswith("comparators") else v
                    for k, v in self.architecture.metrics().items()})
        return out


def _mac_common(obj: object, *, fmt: object, weight_width: object, acc_width: object,
                outputs: object, terms: int) -> None:
    fmt = _fmt(fmt, MAC_FORMATS, "the MAC units")
    ww = _int("weight_width", weight_width, lo=2, hi=32)
    k = _int("outputs", outputs, lo=1, hi=MAX_OUTPUTS)
    width = get_format(fmt).width
    need = width + ww + max(0, (terms - 1).bit_length())
    if isinstance(acc_width, bool) or not isinstance(acc_width, int):
        raise TypeError(f"acc_width must be an integer, not {acc_width!r}")
    if not need <= acc_width <= 64:
        raise ValueError(
            f"acc_width must be in [{need}, 64] to hold the sum of {terms} products of "
            f"{fmt} x {ww}-bit weights, not {acc_width}"
        )
    _set(obj, fmt=fmt, weight_width=ww, acc_width=acc_width, outputs=k)


def _target(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"target_mhz must be a number of MHz, not {value!r}")
    if not 1 <= value <= 1000:
        raise ValueError(f"target_mhz must be in [1, 1000] MHz, not {value}")
    return float(value)


def _weights_source(obj: object, weights: object, depth: object, m: int) -> None:
    """Validate ``weights`` ("stream" or "memory") and the bank ``depth`` (memory only)."""
    if weights not in WEIGHT_SOURCES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_SOURCES)}, not {weights!r}")
    if weights == "stream":
        if depth is not None:
            raise ValueError(f"depth applies to weights='memory' only, not {depth!r} with "
                             "weights='stream'")
    else:
        depth = (max(2, DEFAULT_BANK_FEATURES // m) if depth is None
                 else _int("depth", depth, lo=2, hi=MAX_DEPTH))
    _set(obj, weights=weights, depth=depth)


def _bank_layout(obj: object, banks: object, weights: str) -> None:
    """Validate ``banks`` (weights from memory only; default ``"position"``)."""
    if weights != "memory":
        if banks is not None:
            raise ValueError(f"banks applies to weights='memory' only, not {banks!r} with "
                             f"weights={weights!r}")
        return
    if banks is None:
        banks = "position"
    if banks not in BANK_LAYOUTS:
        raise ValueError(f"banks must be one of {', '.join(BANK_LAYOUTS)}, not {banks!r}")
    _set(obj, banks=banks)


def _shift(value: object, fmt: str, m: int,
           weights: str) -> int | tuple[int, ...] | str | None:
    """Validate a shift: None, ``"input"`` (run-time eta and bias fields), one integer, or M
    integers, in ``fmt``'s range."""
    if value is None:
        return None
    f = get_format(fmt)
    if not f.is_int:
        raise ValueError(f"shift needs an integer format, not {fmt}")
    if isinstance(value, str):
        if value != SHIFT_INPUT:
            raise ValueError(f"shift must be an integer, M integers or {SHIFT_INPUT!r} (eta and "
                             f"the bias as input fields), not {value!r}")
        return value
    if weights != "stream":
        raise ValueError(f"a constant shift needs weights='stream' (the bias sums every "
                         f"weight of a group), not weights={weights!r}; shift={SHIFT_INPUT!r} "
                         f"works with either")
    if isinstance(value, (list, tuple)):
        if len(value) != m:
            raise ValueError(f"shift must be one integer or M = {m} integers (one per group "
                             f"position), not {len(value)}")
        return tuple(_int("shift", v, lo=f.min, hi=f.max) for v in value)
    return _int("shift", value, lo=f.min, hi=f.max)


def _skid(obj: object) -> None:
    """Validate ``skid`` (the output skid buffer of a MAC unit: a bool)."""
    value = obj.skid  # type: ignore[attr-defined]
    if not isinstance(value, bool):
        raise TypeError(f"skid must be True or False, not {value!r}")


def _mac_schedule(obj: object) -> None:
    """Resolve ``mac_pipeline`` (spec, "auto" or None) and ``target_mhz`` into the canonical
    spec string; ``obj.schedule`` then returns the :class:`MACSchedule`."""
    target = _target(obj.target_mhz)  # type: ignore[attr-defined]
    spec = obj.mac_pipeline  # type: ignore[attr-defined]
    sched = parse_schedule(spec)
    if sched is None:
        if spec == "auto" and target is None:
            raise ValueError("mac_pipeline='auto' needs target_mhz (the clock to schedule for)")
        if target is None:
            sched = MACSchedule()
        else:
            sched = auto_schedule(obj.mac_shape(), target,  # type: ignore
                                  obj.acc_width)  # type: ignore[attr-defined]
    shape = obj.mac_shape()  # type: ignore[attr-defined]
    if shape.decode and sched.wmux != 1:
        if parse_schedule(spec) is None:  # MACSchedule() without a target: its one place
            sched = replace(sched, wmux=1)
        else:
            raise ValueError(f"mac_pipeline {sched.spec()!r}: the one-hot weight selection of "
                             f"the linear engine with weights in the stream registers its "
                             f"decoded selects, so wmux must be 1")
    if sched.wmux:
        if not obj.selects_weights:  # type: ignore[attr-defined]
            what = ("the lane banks (banks='lane')" if obj.lane_banks  # type: ignore
                    else "the dense baseline")
            raise ValueError(f"mac_pipeline {sched.spec()!r}: {what} has no weight "
                             f"selection to put wmux stages in")
        wmux_cut_after(len(wmux_steps(obj.n, obj.m, memory=shape.memory,  # type: ignore
                                      decode=shape.decode)), sched.wmux)
    _set(obj, mac_pipeline=sched.spec(), target_mhz=target)


class _MACConfig(_Config):
    """Shared parts of the MAC configurations: weights, ``last`` and the accumulators."""

    @property
    def lane_banks(self) -> bool:
        """Weights from memory in banks by kept slot (``banks="lane"``, DESIGN.md 3.1)."""
        return is_lane_banks({"banks": getattr(self, "banks", None)})

    @property
    def selects_weights(self) -> bool:
        """Whether each multiplier's weight is selected by the kept index: a sparse unit,
        except with lane banks, which read each slot's weights at its index."""
        return self.unit != "dense_mac" and not self.lane_banks  # type: ignore[attr-defined]

    def weights_layout(self) -> data.ArrayLayout:
        """The ``weights`` field: K*M signed weights, element ``k*M + j`` for output k and
        group position j."""
        return data.ArrayLayout(signed(self.weight_width), self.outputs * self.m)  # type: ignore

    def _weights_last(self) -> dict[str, tuple[Shape, int]]:
        return {"weights": (signed(self.weight_width), self.outputs * self.m),  # type: ignore
                "last": (unsigned(1), 1)}

    def output_layout(self) -> data.Layout:
        return _struct({"acc": (signed(self.acc_width), self.outputs)})  # type: ignore

    @property
    def index_width(self) -> int:
        """Bits of a group position: ceil(log2 M) (at least 1)."""
        return max(1, (self.m - 1).bit_length())  # type: ignore[attr-defined]

    @property
    def schedule(self) -> MACSchedule:
        """Register stages of the MAC datapath (:mod:`gen.macsched`)."""
        return parse_schedule(self.mac_pipeline)  # type: ignore[attr-defined]

    @property
    def terms(self) -> int:
        """Products summed per output and group (N sparse, M dense)."""
        return self.m if self.unit == "dense_mac" else self.n  # type: ignore[attr-defined]

    def mac_shape(self, memory: bool | None = None) -> MACShape:
        """The datapath as the scheduler sees it."""
        sparse = self.selects_weights
        if memory is None:
            memory = getattr(self, "weights", "stream") == "memory"
        span = self.m - self.n + 1 if sparse else 0  # type: ignore[attr-defined]
        return MACShape(terms=self.terms, outputs=self.outputs,  # type: ignore[attr-defined]
                        width=self.width, weight_width=self.weight_width,  # type: ignore
                        span=span, memory=memory,
                        decode=self.decodes_selects and not memory and span > 0)

    @property
    def decodes_selects(self) -> bool:
        """Whether the weights in the stream reach the slots by one-hot AND-ORs whose selects
        the unit decodes from the index (:attr:`gen.macsched.MACShape.decode`): the linear
        engine where :func:`gen.macsched.stream_decodes` (8:16)."""
        return (self.unit == "linear" and self.selects_weights  # type: ignore[attr-defined]
                and stream_decodes(self.n, self.m))  # type: ignore[attr-defined]

    def _memory_layout(self) -> dict[str, tuple[Shape, int]]:
        """Fields after ``data`` with weights from memory (DESIGN.md section 3.1)."""
        word_bits = max(1, (self.depth - 1).bit_length())  # type: ignore[attr-defined]
        return {"weights": (signed(self.weight_width), self.outputs),  # type: ignore
                "last": (unsigned(1), 1), "load": (unsigned(1), 1),
                "addr": (unsigned(self.index_width + word_bits), 1)}

    def _mac_params(self) -> dict:
        out = {"weight_width": self.weight_width, "acc_width": self.acc_width,  # type: ignore
               "outputs": self.outputs, "lanes": 1,  # type: ignore
               "weights": getattr(self, "weights", "stream")}
        if hasattr(self, "mac_pipeline"):  # the flexible MACs have fixed stages
            out["mac_pipeline"] = self.mac_pipeline  # type: ignore[attr-defined]
        if getattr(self, "target_mhz", None) is not None:
            out["target_mhz"] = self.target_mhz  # type: ignore[attr-defined]
        if getattr(self, "skid", False):  # the default, no skid buffer, is not written
            out["skid"] = True
        if out["weights"] == "memory":
            out.update(depth=self.depth, index_width=self.index_width)  # type: ignore
            if self.lane_banks:  # "position", the default layout, is not written
                out["banks"] = self.banks  # type: ignore[attr-defined]
        return out

    def _mac_metrics(self, latency: int) -> dict:
        """Sidecar figures shared by the MAC units: multipliers, datapath stages and the
        weight bits that reach the multipliers per group (from memory: the bits read)."""
        k, ww, m = self.outputs, self.weight_width, self.m  # type: ignore[attr-defined]
        out = {"latency": latency, "groups_per_cycle": 1, "multipliers": self.terms * k,
               "mac_stages": self.schedule.stages,
               "mac_register_bits": register_bits(self.mac_shape(), self.schedule)}
        memory = getattr(self, "weights", "stream") == "memory"
        out["weight_bits_per_group"] = (self.terms if memory else m) * k * ww
        if memory:
            banks, words = m, self.depth  # type: ignore[attr-defined]
            if self.lane_banks:  # N banks of M-N+1 columns each
                banks, words = self.n, (m - self.n + 1) * words  # type: ignore[attr-defined]
            out.update(weight_banks=banks, bank_words=words, bank_width=k * ww,
                       weight_bits_stored=banks * words * k * ww)
        return out


@dataclass(frozen=True)
class SparseMACConfig(_MACConfig):
    """Sparse MAC ``nm_spmac_<N>_<M>_<fmt>_k<K>``: compressed groups times K x M weights.

    Parameters
    ----------
    n, m : int
        The N:M pattern of the compressed input.
    fmt : str
        Integer activation format: ``int4``, ``int8`` or ``int16``.
    weight_width : int
        Signed weight width in bits (2..32).
    acc_width : int
        Two's-complement accumulator width; must hold one group's sum (<= 64).
    outputs : int
        K, the number of outputs (dot products) computed in parallel.
    mac_pipeline : str or None
        Register stages of the datapath per part, ``"pre=1,mul=1,tree=2"``
        (:mod:`gen.macsched`), or ``"auto"``; default ``"mul=1"`` (products registered), or
        automatic when ``target_mhz`` is given.
    target_mhz : float or None
        Clock the automatic schedule aims at (ECP5 delay model).
    skid : bool
        A one-entry skid buffer at the output (module ``..._skid``; DESIGN.md section 3):
        every stall enable is then a flip-flop and ``i.ready`` a function of registers only,
        for arrays whose clock enables cross the device. Default False (the whole unit
        freezes in the cycle its output stalls). The linear engine and the dense baseline
        take it too.
    """

    n: int
    m: int
    fmt: str = "int8"
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    mac_pipeline: str | None = None
    target_mhz: float | None = None
    skid: bool = False
    unit = "spmac"

    def __post_init__(self) -> None:
        n, m = check_nm(self.n, self.m)
        _set(self, n=n, m=m)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=n)
        _mac_schedule(self)
        _skid(self)

    @property
    def latency(self) -> int:
        return self.schedule.stages

    def input_layout(self) -> data.Layout:
        return _struct({"values": (signed(self.width), self.n),
                        "index": (unsigned(self.index_width), self.n),
                        **self._weights_last()})

    def params(self) -> dict:
        return {"n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
                "index_width": self.index_width, "pipeline": self.latency,
                **self._mac_params()}

    def metrics(self) -> dict:
        return self._mac_metrics(self.latency)


@dataclass(frozen=True)
class LinearConfig(_MACConfig):
    """Sparse linear engine ``nm_linear_<N>_<M>_<fmt>_k<K>[_wmem]``: top-k selector + MAC.

    ``arch`` and ``pipeline`` configure the selector part (``pipeline`` its register stages,
    or ``"auto"``: placed for ``target_mhz`` by the selector's own delay model, as
    :class:`TopKConfig`; ``None`` with a ``target_mhz`` means ``"auto"``); ``mac_pipeline``
    and ``target_mhz`` the MAC datapath (as :class:`SparseMACConfig`), so one ``target_mhz``
    schedules the whole engine and ``latency = pipeline + MAC stages`` (+ READ_STAGES from memory
    with weights from memory).
    ``weights``: ``"stream"`` (K x M weights with every group, carried through the selector
    stages) or ``"memory"`` (M banks of ``depth`` words, loaded through the input stream,
    read by the kept mask; DESIGN.md section 3.1). ``depth`` defaults to 1024 / M groups.
    ``banks`` (weights from memory; module ``..._wlane`` for ``"lane"``): ``"position"`` (the
    default: M banks, one copy of the weights, an (M-N+1):1 multiplexer per weight bit after
    them) or ``"lane"`` (N banks, each with the M-N+1 columns its slot can be given, read at
    the kept index: N (M-N+1) / M copies of the weights and no multiplexer).
    ``shift`` (static S-PTS, DESIGN.md section 2; module ``..._shift``): ``eta``, one integer
    for the layer, or M integers (one per group position, the same for every group), a
    constant of the generated module in the activation format's range; integer formats with
    weights in the stream only (the bias needs every weight of the group). ``shift="input"``
    (module ``..._shiftin``): the run-time form, eta per input channel with every transfer
    (field ``eta``, M elements) and the row's bias ``b = wrap(W eta)`` with its ``last``
    transfer (field ``bias``, K accumulators; the host computes it once per weight tile),
    either weight source; one module serves every layer and per-channel shifts (L-PTS).
    """

    n: int
    m: int
    fmt: str = "int8"
    arch: str = "network"
    pipeline: int | str | None = None
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    mac_pipeline: str | None = None
    target_mhz: float | None = None
    weights: str = "stream"
    depth: int | None = None
    shift: int | tuple[int, ...] | str | None = None
    banks: str | None = None
    skid: bool = False
    unit = "linear"

    def __post_init__(self) -> None:
        n, m = check_nm(self.n, self.m)
        _set(self, n=n, m=m)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=n)
        auto = self.pipeline == "auto" or (self.pipeline is None and self.target_mhz is not None)
        sel = TopKConfig(n=n, m=m, fmt=self.fmt, arch=self.arch,
                         pipeline="auto" if auto else self.pipeline,
                         target_mhz=_target(self.target_mhz) if auto else None)
        _set(self, pipeline=sel.pipeline)
        object.__setattr__(self, "_selector", sel)  # its register placement, as resolved
        _weights_source(self, self.weights, self.depth, m)
        _bank_layout(self, self.banks, self.weights)
        _set(self, shift=_shift(self.shift, self.fmt, m, self.weights))
        _mac_schedule(self)
        _skid(self)

    @property
    def shift_lanes(self) -> tuple[int, ...] | None:
        """``eta_j`` for every group position j (None without a constant shift)."""
        if self.shift is None or self.shift == SHIFT_INPUT:
            return None
        return (self.shift,) * self.m if isinstance(self.shift, int) else self.shift

    @property
    def selector(self) -> TopKConfig:
        """The selector part (with the register placement resolved for this engine)."""
        return self._selector  # type: ignore[attr-defined]

    @property
    def mac(self) -> SparseMACConfig:
        return SparseMACConfig(n=self.n, m=self.m, fmt=self.fmt, weight_width=self.weight_width,
                               acc_width=self.acc_width, outputs=self.outputs)

    @property
    def latency(self) -> int:
        read = READ_STAGES if self.weights == "memory" else 0
        if self.lane_banks:  # each bank's read address registered first
            read += LANE_ADDR_STAGES
        # the shifted activations get a register of their own before the selector
        shift = SHIFT_STAGES if self.shift is not None else 0
        return self.pipeline + read + shift + self.schedule.stages  # type: ignore[operator]

    @property
    def shift_input(self) -> bool:
        """eta and the bias are input fields (``shift="input"``)."""
        return self.shift == SHIFT_INPUT

    def input_layout(self) -> data.Layout:
        rest = self._memory_layout() if self.weights == "memory" else self._weights_last()
        if self.shift_input:
            rest = {**rest, "eta": (unsigned(self.width), self.m),
                    "bias": (signed(self.acc_width), self.outputs)}
        return _struct({"data": (unsigned(self.width), self.m), **rest})

    def params(self) -> dict:
        out = {"n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
               "index_width": self.index_width, "arch": self.arch,
               "pipeline": self.pipeline, **self._mac_params()}
        if self.shift is not None:
            out["shift"] = (list(self.shift) if isinstance(self.shift, tuple)
                            else self.shift)
        return out

    def metrics(self) -> dict:
        sel = self.selector
        out = self._mac_metrics(self.latency)
        out.update(comparators=sel.comparators, network_depth=sel.network_depth)
        # weights and last through the selector's register stages (stream form only)
        side = self.outputs * self.m * self.weight_width if self.weights == "stream" else 0
        if self.shift_input:  # the row's bias travels with its last group
            side += self.outputs * self.acc_width
        out["sideband_bits"] = self.pipeline * (side + 1)  # type: ignore[operator]
        if self.shift is not None:
            # one subtract-and-clamp per lane; per output one bias (a constant product) per group
            out.update(shift_subtractors=self.m, shift_bias_adders=self.outputs)
        return out


@dataclass(frozen=True)
class DenseMACConfig(_MACConfig):
    """Dense baseline ``dense_mac_<M>_<fmt>_k<K>[_wmem]``: the dot product without sparsity.

    ``mac_pipeline``/``target_mhz`` as :class:`SparseMACConfig` (the same scheduler);
    ``weights``/``depth`` as :class:`LinearConfig` (from memory, all M banks are read per
    group).
    """

    m: int
    fmt: str = "int8"
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    mac_pipeline: str | None = None
    target_mhz: float | None = None
    weights: str = "stream"
    depth: int | None = None
    skid: bool = False
    unit = "dense_mac"

    def __post_init__(self) -> None:
        m = _int("m", self.m, lo=1, hi=1024)
        _set(self, m=m)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=m)
        _weights_source(self, self.weights, self.depth, m)
        _mac_schedule(self)
        _skid(self)

    @property
    def latency(self) -> int:
        return self.schedule.stages + (READ_STAGES if self.weights == "memory" else 0)

    def input_layout(self) -> data.Layout:
        if self.weights == "memory":
            return _struct({"data": (signed(self.width), self.m), **self._memory_layout()})
        return _struct({"data": (signed(self.width), self.m), **self._weights_last()})

    def params(self) -> dict:
        return {"m": self.m, "fmt": self.fmt, "width": self.width,
                "pipeline": self.latency, **self._mac_params()}

    def metrics(self) -> dict:
        return self._mac_metrics(self.latency)


# ---------------------------------------------------------------- runtime-flexible units
# DESIGN.md section 5: W lanes per transfer, the pattern (m_log2, n) travels in the payload.

#: Architectures of the flexible selector (:mod:`gen.flex`).
FLEX_ARCHS = ("rank",)


class _FlexCommon:
    """Field widths shared by the flexible configurations (all from
    :mod:`nmsparse.contract.flex`)."""

    w: int
    max_kept: int

    @property
    def lanes_log2(self) -> int:
        return _flex.lanes_log2(self.w)

    @property
    def index_width(self) -> int:
        """Bits of one lane index: log2 W."""
        return self.lanes_log2

    @property
    def m_log2_width(self) -> int:
        return _flex.m_log2_width(self.w)

    @property
    def n_width(self) -> int:
        return _flex.n_width(self.w)

    @property
    def count_width(self) -> int:
        return _flex.count_width(self.max_kept)

    def _pattern_fields(self) -> dict[str, tuple[Shape, int]]:
        return {"m_log2": (unsigned(self.m_log2_width), 1), "n": (unsigned(self.n_width), 1)}

    #: What each payload field holds, written into the sidecar (``field_doc``).
    FIELD_DOC = {
        "data": "W lanes (raw bit patterns); lanes g*M .. g*M+M-1 form group g",
        "m_log2": "group size M = 2**m_log2 of this transfer (served: 2 .. log2 W)",
        "n": "keep N of every M in this transfer (served: 0 < N < M, N*W/M <= max_kept)",
        "mask": "bit j = lane j kept; 0 when err",
        "values": "kept lanes' values in ascending lane order; unused slots 0",
        "index": "lane index (0 .. W-1) of each slot; unused slots 0",
        "count": "slots used = N*W/M; 0 when err",
        "err": "1: the transfer's pattern is not served (mask, values, index, count all 0)",
        "weights": "K*W signed weights; element k*W + j is output k's weight of lane j",
        "last": "1: this transfer ends the row; its K results follow",
        "acc": "K signed accumulators of the row, wrapping modulo 2**acc_width",
    }

    def field_doc(self) -> dict[str, str]:
        """``FIELD_DOC`` of this unit's payload fields (input and output)."""
        names = [n for lay in (self.input_layout(), self.output_layout())  # type: ignore
                 for n, _ in lay]
        return {n: self.FIELD_DOC[n] for n in dict.fromkeys(names)}

    def _flex_params(self) -> dict:
        return {"w": self.w, "fmt": self.fmt, "width": self.width,  # type: ignore[attr-defined]
                "index_width": self.index_width, "max_kept": self.max_kept,
                "m_log2_width": self.m_log2_width, "n_width": self.n_width,
                "count_width": self.count_width, "m_min": 1 << _flex.MIN_M_LOG2,
                "m_max": self.w, "lanes": 1}


def _flex_schedule(obj: object, arch: object, pipeline: object, target_mhz: object) -> None:
    """Resolve ``pipeline`` / ``target_mhz`` of a flexible selector into register stages per
    layer, with the project's scheduler (:mod:`gen.schedule`), as :class:`TopKConfig` does:
    ``"auto"`` (or a ``target_mhz``) places as few registered bits as the clock allows, an
    integer P places P stages to minimize the slowest segment, None the default stages."""
    auto = pipeline == "auto" or (pipeline is None and target_mhz is not None)
    target = target_mhz
    if target is not None or auto:
        target = DEFAULT_TARGET_MHZ if target is None else target
        if isinstance(target, bool) or not isinstance(target, int | float) \
                or not 1 <= target <= 2000:
            raise ValueError(f"target_mhz must be a clock in MHz in [1, 2000], "
                             f"not {target_mhz!r}")
        target = float(target)
    if not auto and target is not None:
        raise ValueError(f"target_mhz={target:g} needs pipeline='auto' (or None), not "
                         f"pipeline={pipeline!r}")
    delays = [layer.delay_ns for layer in arch.layers()]  # type: ignore[attr-defined]
    if auto:
        cuts = schedule_for_clock(delays, arch.live_bits(), target)  # type: ignore
    else:
        stages = (arch.default_pipeline() if pipeline is None  # type: ignore[attr-defined]
                  else _int("pipeline", pipeline, lo=0, hi=MAX_PIPELINE))
        cuts = schedule_stages(delays, stages)
    _set(obj, pipeline=sum(cuts), target_mhz=target)
    object.__setattr__(obj, "_cuts", tuple(cuts))


def _flex_common(obj: object, w: object, max_kept: object) -> None:
    w = _flex.check_lanes(w)
    top = _flex.max_slots(w)
    s = _flex.default_max_kept(w) if max_kept is None else _int(
        "max_kept", max_kept, lo=1, hi=top)
    _set(obj, w=w, max_kept=s)


@dataclass(frozen=True)
class FlexTopKConfig(_FlexCommon, _Config):
    """Runtime-flexible N:M selector ``nm_topk_flex_<W>_<fmt>_<arch>[_s<S>]`` (DESIGN.md
    section 5): W lanes per transfer, the pattern (``m_log2``, ``n``) in the payload.

    Parameters
    ----------
    w : int
        Lanes per transfer, a power of two from 4 to 64; groups of M = 4, 8, ..., W.
    fmt : str
        ``int4``, ``int8``, ``int16``, ``fp16``, ``bf16`` or ``fp32``.
    arch : str
        One of :data:`FLEX_ARCHS` (:mod:`gen.flex`).
    max_kept : int or None
        Output slots S (default W/2, so every pattern of density up to 1/2 is served; at most
        3W/4, what 3:4 keeps).
    pipeline : int, "auto" or None
        Register stages (= latency), placed by the delay model to minimize the slowest
        segment; ``"auto"``: as many as ``target_mhz`` needs, where the live data is
        narrowest; ``None``: ``"auto"`` with a ``target_mhz``, else the default stages.
        After validation ``pipeline`` holds the resolved number of stages.
    target_mhz : float or None
        Clock target of ``pipeline="auto"`` (default :data:`DEFAULT_TARGET_MHZ`).

    Raises
    ------
    TypeError, ValueError
        For invalid parameters; the message names the value.
    """

    w: int = 32
    fmt: str = "int8"
    arch: str = "rank"
    max_kept: int | None = None
    pipeline: int | str | None = None
    target_mhz: float | None = None
    unit = "topk_flex"

    def __post_init__(self) -> None:
        _flex_common(self, self.w, self.max_kept)
        _set(self, fmt=_fmt(self.fmt, TOPK_FORMATS, "the flexible selector"))
        if not isinstance(self.arch, str) or self.arch not in FLEX_ARCHS:
            raise ValueError(f"arch must be one of {', '.join(FLEX_ARCHS)} for a flexible "
                             f"selector, not {self.arch!r}")
        _flex_schedule(self, self.architecture, self.pipeline, self.target_mhz)

    @property
    def cuts(self) -> tuple[int, ...]:
        """Register stages after each layer of the architecture (``sum(cuts) = pipeline``)."""
        return self._cuts  # type: ignore[attr-defined]

    @property
    def predicted_fmax_mhz(self) -> float:
        """The delay model's Fmax of this schedule (MHz)."""
        return predicted_fmax([la.delay_ns for la in self.architecture.layers()], self.cuts)

    @cached_property
    def architecture(self):
        """The object that builds the datapath (:mod:`gen.flex`)."""
        from .flex import FLEX_ARCHITECTURES

        return FLEX_ARCHITECTURES[self.arch](self)

    @property
    def key_width(self) -> int:
        return get_format(self.fmt).key_width

    @property
    def latency(self) -> int:
        return self.pipeline  # type: ignore[return-value]

    def input_layout(self) -> data.Layout:
        return _struct({"data": (unsigned(self.width), self.w), **self._pattern_fields()})

    def output_layout(self) -> data.Layout:
        return _struct({"mask": (unsigned(1), self.w),
                        "values": (unsigned(self.width), self.max_kept),
                        "index": (unsigned(self.index_width), self.max_kept),
                        "count": (unsigned(self.count_width), 1),
                        **self._pattern_fields(),
                        "err": (unsigned(1), 1)})

    def params(self) -> dict:
        out = {**self._flex_params(), "arch": self.arch, "pipeline": self.pipeline}
        if self.target_mhz is not None:
            out["target_mhz"] = self.target_mhz
        return out

    def metrics(self) -> dict:
        return {"latency": self.latency, "lanes_per_cycle": self.w,
                **self.architecture.metrics(), "field_doc": self.field_doc()}


class _FlexMAC(_FlexCommon, _MACConfig):
    """Weights of a flexible MAC: K x W per transfer, element ``k*W + j`` for output k and
    lane j (the fixed engine's layout with the group replaced by the transfer)."""

    def weights_layout(self) -> data.ArrayLayout:
        return data.ArrayLayout(signed(self.weight_width), self.outputs * self.w)  # type: ignore

    def _weights_last(self) -> dict[str, tuple[Shape, int]]:
        return {"weights": (signed(self.weight_width), self.outputs * self.w),  # type: ignore
                "last": (unsigned(1), 1)}


#: adder-tree levels per register stage of the flexible MACs (two carry chains and their
#: routes per clock; the whole tree and the accumulator in one clock ran at 60.6 MHz)
FLEX_TREE_LEVELS = 2


def flex_tree_stages(terms: int) -> int:
    """Register stages of a flexible MAC's adder tree over ``terms`` products."""
    levels = max(0, (terms - 1).bit_length())
    return -(-levels // FLEX_TREE_LEVELS)


@dataclass(frozen=True)
class FlexSparseMACConfig(_FlexMAC):
    """Runtime-flexible sparse MAC ``nm_spmac_flex_<W>_<fmt>_k<K>[_s<S>]``: the flexible
    selector's ``values`` and ``index`` slots times K x W weights, accumulated per row.

    ``max_kept`` (S) multipliers per output: every pattern that fills the S slots (density
    S/W) keeps all of them busy. Unused slots carry value 0 (DESIGN.md section 5) and add 0.
    """

    w: int = 32
    fmt: str = "int8"
    max_kept: int | None = None
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    unit = "spmac_flex"

    def __post_init__(self) -> None:
        _flex_common(self, self.w, self.max_kept)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=self.max_kept)

    @property
    def latency(self) -> int:
        """The selected weights' register, the products', the adder tree's, the output's."""
        return 3 + flex_tree_stages(self.max_kept)  # type: ignore[arg-type]

    def input_layout(self) -> data.Layout:
        return _struct({"values": (signed(self.width), self.max_kept),
                        "index": (unsigned(self.index_width), self.max_kept),
                        **self._weights_last()})

    def params(self) -> dict:
        return {**self._flex_params(), "pipeline": self.latency, **self._mac_params()}

    def metrics(self) -> dict:
        return {"latency": self.latency, "lanes_per_cycle": self.w,
                "multipliers": self.max_kept * self.outputs, "field_doc": self.field_doc()}


@dataclass(frozen=True)
class FlexLinearConfig(_FlexMAC):
    """Runtime-flexible sparse linear engine ``nm_linear_flex_<W>_<fmt>_k<K>[_s<S>]``: the
    flexible selector and S multipliers per output in one pipeline; ``latency = pipeline + 2 +
    flex_tree_stages(S)``.

    The weights of each lane ride through the selector's compaction network with the lane's
    value, so each slot meets its own weights without an index multiplexer.
    """

    w: int = 32
    fmt: str = "int8"
    arch: str = "rank"
    max_kept: int | None = None
    pipeline: int | str | None = None
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    target_mhz: float | None = None
    unit = "linear_flex"

    def __post_init__(self) -> None:
        _flex_common(self, self.w, self.max_kept)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=self.max_kept)
        sel = FlexTopKConfig(w=self.w, fmt=self.fmt, arch=self.arch, max_kept=self.max_kept,
                             pipeline=self.pipeline, target_mhz=self.target_mhz)
        _set(self, pipeline=sel.pipeline, target_mhz=sel.target_mhz)
        object.__setattr__(self, "_selector", sel)

    @property
    def selector(self) -> FlexTopKConfig:
        """The selector part (its register stages are this engine's ``pipeline``)."""
        return self._selector  # type: ignore[attr-defined]

    @property
    def latency(self) -> int:
        """The selector's stages, the products' register, the adder tree's, the output's."""
        return self.pipeline + 2 + flex_tree_stages(self.max_kept)  # type: ignore[operator]

    def input_layout(self) -> data.Layout:
        return _struct({"data": (unsigned(self.width), self.w), **self._pattern_fields(),
                        **self._weights_last()})

    def params(self) -> dict:
        return {**self._flex_params(), "arch": self.arch, "pipeline": self.pipeline,
                **self._mac_params()}

    def metrics(self) -> dict:
        sel = self.selector.architecture.metrics()
        return {"latency": self.latency, "lanes_per_cycle": self.w,
                "comparators": sel["comparators"], "multipliers": self.max_kept * self.outputs,
                "field_doc": self.field_doc()}


def _flex_shipped() -> list[_Config]:
    out: list[_Config] = []
    for w in (16, 32):
        for fmt in ("int8", "bf16"):
            # scheduled for DEFAULT_TARGET_MHZ, as the fixed rank selectors they are
            # compared with (the cost of flexibility is then measured at equal effort)
            out.append(FlexTopKConfig(w=w, fmt=fmt, pipeline="auto"))
    out.append(FlexSparseMACConfig(w=32, fmt="int8", outputs=4))
    # its selector scheduled as the shipped flexible selectors (8 stages at W = 32; with the
    # default 3 stages the compaction carrying the weights limited it to 59.9 MHz)
    out.append(FlexLinearConfig(w=32, fmt="int8", outputs=4, pipeline="auto"))
    return out


#: Clock the shipped selectors are scheduled for: the selector QoR goal of the point
#: (DEFAULT_TARGET_MHZ where there is none), so that the architectures of one point are
#: compared at one clock.
SELECTOR_TARGET_MHZ = {(8, 16, "bf16"): 175.0, (16, 32, "int8"): 175.0,
                       (16, 32, "bf16"): 150.0}
#: Architectures shipped per group size: radix select at 16:32 only, where it is the one
#: architecture that reaches the point's clock and has the fewest placed logic cells (it
#: needs more flip-flops; at 8:16 rank is smaller and as fast; bench/bench_qor.py).
SHIPPED_ARCHS = {4: ("rank", "network"), 8: ("rank", "network"), 16: ("rank", "network"),
                 32: ("rank", "network", "radix")}
#: (M, format, architecture) left out of the shipped set, with the measured reason. The
#: generator still builds them (``nmsparse gen --arch``) and bench/bench_qor.py measures them.
NOT_SHIPPED = {(32, "bf16", "rank"): "16:32 bf16 rank at 150 MHz (7 stages): nextpnr-ecp5 did "
               "not finish placing it in 1,200 s (seed 1)"}


def _shipped() -> list[_Config]:
    out: list[_Config] = []
    for n, m in SHIPPED_PATTERNS:
        for fmt in ("int8", "bf16"):
            target = SELECTOR_TARGET_MHZ.get((n, m, fmt), DEFAULT_TARGET_MHZ)
            for arch in SHIPPED_ARCHS[m]:
                if (m, fmt, arch) in NOT_SHIPPED:
                    continue
                out.append(TopKConfig(n=n, m=m, fmt=fmt, arch=arch, pipeline="auto",
                                      target_mhz=target))
    for n, m in SWEEP_PATTERNS:
        out.append(SparseMACConfig(n=n, m=m, fmt="int8", outputs=4,
                                   target_mhz=SWEEP_TARGETS_MHZ[-1]))
        out.append(_sweep_linear(n, m, 4, "stream"))
        out.append(_sweep_dense(m, 4, "stream"))
    # weights from memory (DESIGN.md section 3.1), in the default regression
    out.append(_sweep_linear(8, 16, 4, "memory"))
    out.append(_sweep_linear(8, 16, 4, "memory", banks="lane"))
    out.append(_sweep_dense(16, 4, "memory"))
    # S-PTS (DESIGN.md section 2): the 8:16 engine with a per-layer constant shift, and the
    # run-time form (eta per channel and the bias as inputs) with weights from memory
    out.append(_sweep_linear(8, 16, 4, "stream", shift=SHIPPED_SHIFT))
    out.append(_sweep_linear(8, 16, 4, "memory", shift=SHIFT_INPUT))
    out += _flex_shipped()
    return out


#: The engine sweep (``hdl/engine_sweep``, ``make engine-sweep``): the linear engine against
#: the dense baseline at K = 4, 8, 16, 32 for 2:4, 8:16 and 16:32 (int8), weights in the stream
#: and from memory, every point with the same MAC scheduler and target clock. Its K = 4 points are
#: the shipped ones.
SWEEP_PATTERNS = ((2, 4), (8, 16), (16, 32))
SWEEP_K = (4, 8, 16, 32)
#: Clocks the engine sweep's points are scheduled for, highest first, with the multipliers'
#: operands and products in the DSP's registers and, from memory, the read data in the block
#: RAM's output register (gen/prims/ecp5/nmsparse_wbank.v; without it the block RAM's read,
#: 8.04 ns into a fabric register, bounded every memory point near 125 MHz). A point with
#: weights from memory and the output skid buffer (K >= SWEEP_SKID_K; the linear engine with
#: its rank selector and the dense baseline alike) gets the first that its delay models reach
#: (:func:`gen.macsched.auto_schedule` raises for one they do not); every other point gets the
#: last, 150 MHz. One target for every point left the engine's selector, which the flow's own
#: placement puts about 1 ns behind the model, as the limit of an engine that has the dense
#: array's clock in reach: at 8:16 K = 16 from lane banks 151.9 against 157.9 MHz (seed 1).
#: Where the weights ride through the selector's stages (the stream: K x M x 8 bits per stage)
#: or the stall enable still fans out combinationally (no skid buffer), the deeper selector cost
#: more than it gave: 8:16 K = 8 in the stream 151.3 -> 143.2 MHz, 16:32 K = 4 from lane banks
#: 144.0 -> 109.8 MHz (README, engine sweep, fourth pass).
SWEEP_TARGETS_MHZ = (175.0, 170.0, 165.0, 160.0, 155.0, 150.0)
#: From this K on, the engine sweep's points (sparse and dense alike) have the output skid
#: buffer (``skid``, module ``..._skid``): with 64 and more DSP blocks the stall enable's route
#: from ``o.ready`` to their clock enables crosses the device (7.0-7.9 ns at 8:16 K = 16). With
#: every enable a flip-flop, nm_linear_8_16_int8_k16_wlane against dense_mac_16_int8_k8_wmem
#: placed at 142.3 / 138.3 / 151.7 against 144.3 / 141.5 / 140.9 MHz (seeds 1-3), without it
#: 133.5 / 131.2 / 131.0 against 146.7 / 142.5 / 147.6 (README, bench/bench_skid.py).
SWEEP_SKID_K = 8


#: eta of the shipped S-PTS engine: a small negative shift, as S-PTS calibrates on int8
#: activations (any nonzero eta exercises the saturation at both ends of the range).
SHIPPED_SHIFT = -3


_C = TypeVar("_C")


def _sweep_target(make: Callable[[float], _C], ladder: bool) -> _C:
    """``make(target)`` for the first of :data:`SWEEP_TARGETS_MHZ` its delay models reach
    (``ladder``), else for the last."""
    for target in SWEEP_TARGETS_MHZ[:-1] if ladder else ():
        try:
            return make(target)
        except ValueError as e:
            if "out of reach" not in str(e):
                raise
    return make(SWEEP_TARGETS_MHZ[-1])


def _on_ladder(weights: str, k: int) -> bool:
    """Whether a sweep point climbs :data:`SWEEP_TARGETS_MHZ`: weights from memory and the
    skid buffer (sparse and dense alike)."""
    return weights == "memory" and k >= SWEEP_SKID_K


def _sweep_linear(n: int, m: int, k: int, weights: str,
                  shift: int | str | None = None, banks: str | None = None) -> LinearConfig:
    return _sweep_target(lambda t: LinearConfig(
        n=n, m=m, fmt="int8", arch="rank", pipeline="auto", outputs=k, target_mhz=t,
        weights=weights, shift=shift, banks=banks, skid=k >= SWEEP_SKID_K),
        _on_ladder(weights, k))


def _sweep_dense(m: int, k: int, weights: str) -> DenseMACConfig:
    return _sweep_target(lambda t: DenseMACConfig(
        m=m, fmt="int8", outputs=k, target_mhz=t, weights=weights, skid=k >= SWEEP_SKID_K),
        _on_ladder(weights, k))


def _sweep() -> list[_Config]:
    out = [cfg for n, m in SWEEP_PATTERNS for weights in WEIGHT_SOURCES for k in SWEEP_K
           for cfg in (_sweep_linear(n, m, k, weights), _sweep_dense(m, k, weights))]
    # banks by kept slot (DESIGN.md 3.1): against the same dense baselines from memory
    return out + [_sweep_linear(n, m, k, "memory", banks="lane")
                  for n, m in SWEEP_PATTERNS for k in SWEEP_K]


#: Every design point shipped in ``hdl/``, in manifest order.
SHIPPED: list[_Config] = _shipped()
#: Every design point of the engine sweep (``hdl/engine_sweep``), in manifest order.
SWEEP: list[_Config] = _sweep()
