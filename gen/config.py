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
from dataclasses import dataclass
from functools import cached_property

from amaranth.hdl import Shape, signed, unsigned
from amaranth.lib import data

from nmsparse.contract import VERSION
from nmsparse.contract.formats import get_format
from nmsparse.contract.patterns import SHIPPED_PATTERNS, check_nm
from nmsparse.contract.sidecar import Field, Port, Sidecar
from nmsparse.contract.units import UNITS

from .arch import ARCHITECTURES, Architecture
from .schedule import predicted_fmax, schedule_for_clock, schedule_stages

__all__ = [
    "TopKConfig",
    "SparseMACConfig",
    "LinearConfig",
    "DenseMACConfig",
    "SHIPPED",
    "TOPK_FORMATS",
    "MAC_FORMATS",
    "ARCHS",
    "payload_fields",
]

TOPK_FORMATS = ("int4", "int8", "int16", "fp16", "bf16", "fp32")
MAC_FORMATS = ("int4", "int8", "int16")
ARCHS = tuple(ARCHITECTURES)
MAX_PIPELINE = 64
DEFAULT_TARGET_MHZ = 200.0
MAX_LANES = 64
MAX_OUTPUTS = 256


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
            cuts = schedule_for_clock(delays, self.architecture.live_bits(), target)
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
        """The delay model's Fmax of this schedule (MHz)."""
        return predicted_fmax([la.delay_ns for la in self.architecture.layers()], self.cuts)

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


class _MACConfig(_Config):
    """Shared parts of the MAC configurations: weights, ``last`` and the accumulators."""

    def weights_layout(self) -> data.ArrayLayout:
        """The ``weights`` field: K*M signed weights, element ``k*M + j`` for output k and
        group position j."""
        return data.ArrayLayout(signed(self.weight_width), self.outputs * self.m)  # type: ignore

    def _weights_last(self) -> dict[str, tuple[Shape, int]]:
        return {"weights": (signed(self.weight_width), self.outputs * self.m),  # type: ignore
                "last": (unsigned(1), 1)}

    def output_layout(self) -> data.Layout:
        return _struct({"acc": (signed(self.acc_width), self.outputs)})  # type: ignore

    def _mac_params(self) -> dict:
        return {"weight_width": self.weight_width, "acc_width": self.acc_width,  # type: ignore
                "outputs": self.outputs, "lanes": 1}  # type: ignore


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
    """

    n: int
    m: int
    fmt: str = "int8"
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    unit = "spmac"

    def __post_init__(self) -> None:
        n, m = check_nm(self.n, self.m)
        _set(self, n=n, m=m)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=n)

    index_width = TopKConfig.index_width

    @property
    def latency(self) -> int:
        return 2

    def input_layout(self) -> data.Layout:
        return _struct({"values": (signed(self.width), self.n),
                        "index": (unsigned(self.index_width), self.n),
                        **self._weights_last()})

    def params(self) -> dict:
        return {"n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
                "index_width": self.index_width, "pipeline": self.latency,
                **self._mac_params()}

    def metrics(self) -> dict:
        return {"latency": self.latency, "groups_per_cycle": 1,
                "multipliers": self.n * self.outputs}


@dataclass(frozen=True)
class LinearConfig(_MACConfig):
    """Sparse linear engine ``nm_linear_<N>_<M>_<fmt>_k<K>``: top-k selector + sparse MAC.

    ``arch`` and ``pipeline`` configure the selector part (``pipeline`` its register stages);
    the MAC part adds two stages, so ``latency = pipeline + 2``.
    """

    n: int
    m: int
    fmt: str = "int8"
    arch: str = "network"
    pipeline: int | None = None
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    unit = "linear"

    def __post_init__(self) -> None:
        n, m = check_nm(self.n, self.m)
        _set(self, n=n, m=m)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=n)
        sel = TopKConfig(n=n, m=m, fmt=self.fmt, arch=self.arch, pipeline=self.pipeline)
        _set(self, pipeline=sel.pipeline)

    index_width = TopKConfig.index_width

    @property
    def selector(self) -> TopKConfig:
        return TopKConfig(n=self.n, m=self.m, fmt=self.fmt, arch=self.arch,
                          pipeline=self.pipeline)

    @property
    def mac(self) -> SparseMACConfig:
        return SparseMACConfig(n=self.n, m=self.m, fmt=self.fmt, weight_width=self.weight_width,
                               acc_width=self.acc_width, outputs=self.outputs)

    @property
    def latency(self) -> int:
        return self.pipeline + 2  # type: ignore[operator]

    def input_layout(self) -> data.Layout:
        return _struct({"data": (unsigned(self.width), self.m), **self._weights_last()})

    def params(self) -> dict:
        return {"n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
                "index_width": self.index_width, "arch": self.arch,
                "pipeline": self.pipeline, **self._mac_params()}

    def metrics(self) -> dict:
        sel = self.selector
        return {"latency": self.latency, "groups_per_cycle": 1,
                "comparators": sel.comparators, "network_depth": sel.network_depth,
                "multipliers": self.n * self.outputs}


@dataclass(frozen=True)
class DenseMACConfig(_MACConfig):
    """Dense baseline ``dense_mac_<M>_<fmt>_k<K>``: the dot product without sparsity."""

    m: int
    fmt: str = "int8"
    weight_width: int = 8
    acc_width: int = 32
    outputs: int = 4
    unit = "dense_mac"

    def __post_init__(self) -> None:
        m = _int("m", self.m, lo=1, hi=1024)
        _set(self, m=m)
        _mac_common(self, fmt=self.fmt, weight_width=self.weight_width,
                    acc_width=self.acc_width, outputs=self.outputs, terms=m)

    @property
    def latency(self) -> int:
        return 2

    def input_layout(self) -> data.Layout:
        return _struct({"data": (signed(self.width), self.m), **self._weights_last()})

    def params(self) -> dict:
        return {"m": self.m, "fmt": self.fmt, "width": self.width,
                "pipeline": self.latency, **self._mac_params()}

    def metrics(self) -> dict:
        return {"latency": self.latency, "groups_per_cycle": 1,
                "multipliers": self.m * self.outputs}


def _shipped() -> list[_Config]:
    out: list[_Config] = []
    for n, m in SHIPPED_PATTERNS:
        for fmt in ("int8", "bf16"):
            for arch in ("rank", "network"):
                out.append(TopKConfig(n=n, m=m, fmt=fmt, arch=arch))
    for n, m in ((2, 4), (8, 16), (16, 32)):
        out.append(SparseMACConfig(n=n, m=m, fmt="int8", outputs=4))
        out.append(LinearConfig(n=n, m=m, fmt="int8", outputs=4))
        out.append(DenseMACConfig(m=m, fmt="int8", outputs=4))
    return out


#: Every design point shipped in ``hdl/``, in manifest order.
SHIPPED: list[_Config] = _shipped()
