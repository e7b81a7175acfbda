"""Design points: one frozen, validated configuration object per emitted module.

Each configuration knows its module name, its payload fields (bit offsets LSB first, as in
DESIGN.md section 3), its latency and resource figures, and builds the sidecar JSON from the
same numbers the generator uses. Components take their parameters as keywords, validate them
here, and expose the result as ``component.config``.

Presets: :data:`SHIPPED` lists every design point of ``hdl/`` (``make hdl``).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from golden import check_nm, get_format

from . import networks

__all__ = [
    "VERSION",
    "Field",
    "TopKConfig",
    "SparseMACConfig",
    "LinearConfig",
    "DenseMACConfig",
    "SHIPPED",
    "TOPK_FORMATS",
    "MAC_FORMATS",
    "ARCHS",
]

VERSION = "0.1.0"
TOPK_FORMATS = ("int4", "int8", "int16", "fp16", "bf16", "fp32")
MAC_FORMATS = ("int4", "int8", "int16")
ARCHS = ("rank", "network")
MAX_PIPELINE = 64
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


@dataclass(frozen=True)
class Field:
    """One payload field: ``count`` elements of ``elem_width`` bits, element 0 at the LSB."""

    name: str
    elem_width: int
    count: int
    signed: bool = False

    @property
    def width(self) -> int:
        return self.elem_width * self.count


def _fields_json(fields: list[Field], lanes: int) -> tuple[int, dict]:
    """Sidecar ``fields`` of a payload (LSB first) and the payload's total width."""
    out: dict[str, dict] = {}
    offset = 0
    for f in fields:
        entry = {"offset": offset, "width": f.width, "elem_width": f.elem_width, "count": f.count}
        out[f.name] = entry
        offset += f.width
    stride = offset
    if lanes > 1:
        for entry in out.values():
            entry["lanes"] = lanes
            entry["lane_stride"] = stride
    return stride * lanes, out


class _Config:
    """Shared behaviour of the configuration dataclasses (not a dataclass itself)."""

    unit: str = ""

    # filled in by subclasses
    def input_fields(self) -> list[Field]:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_fields(self) -> list[Field]:  # pragma: no cover - abstract
        raise NotImplementedError

    def params(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def metrics(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def ports(self) -> dict:
        """Sidecar ``ports``: every port of the emitted module with direction and width."""
        iw, ifields = _fields_json(self.input_fields(), self.lanes)  # type: ignore[attr-defined]
        ow, ofields = _fields_json(self.output_fields(), self.lanes)  # type: ignore[attr-defined]
        return {
            "clk": {"dir": "in", "width": 1},
            "rst": {"dir": "in", "width": 1},
            "i__payload": {"dir": "in", "width": iw, "fields": ifields},
            "i__valid": {"dir": "in", "width": 1},
            "i__ready": {"dir": "out", "width": 1},
            "o__payload": {"dir": "out", "width": ow, "fields": ofields},
            "o__valid": {"dir": "out", "width": 1},
            "o__ready": {"dir": "in", "width": 1},
        }

    def sidecar(self) -> dict:
        """The sidecar JSON document (DESIGN.md section 3) of this design point."""
        doc = {
            "generator": {"name": "nmsparse", "version": VERSION},
            "module": self.name,  # type: ignore[attr-defined]
            "unit": self.unit,
            "params": self.params(),
            "ports": self.ports(),
        }
        doc.update(self.metrics())
        return doc


def default_topk_pipeline(n: int, m: int, arch: str) -> int:
    """Register stages chosen when ``pipeline=None``: about one per six comparator layers
    for ``network`` (selection plus compaction); for ``rank`` one at M = 4, two up to
    M = 16 (one after the popcounts: with compare, popcount and compaction in one stage,
    synthesis takes minutes instead of seconds and the result is larger), and four above
    (a register after the comparators, popcounts, prefix counts and compaction: at M = 32
    with two stages, LUT mapping alone takes about a minute)."""
    if arch == "rank":
        return 1 if m <= 4 else 2 if m <= 16 else 4
    layers = networks.selection_network(n, m).depth + networks.sorting_network(n).depth
    return max(1, math.ceil(layers / 6))


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
        ``"network"`` (comparator network and index sort) or ``"rank"`` (comparison matrix).
    pipeline : int or None
        Register stages (= latency in cycles); ``None`` picks a default per point; 0 makes the
        unit combinational.
    lanes : int
        Independent groups per clock.
    """

    n: int
    m: int
    fmt: str = "int8"
    arch: str = "network"
    pipeline: int | None = None
    lanes: int = 1
    unit = "topk"

    def __post_init__(self) -> None:
        n, m = check_nm(self.n, self.m)
        fmt = _fmt(self.fmt, TOPK_FORMATS, "the top-k selector")
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {self.arch!r}")
        if self.pipeline is None:
            pipeline = default_topk_pipeline(n, m, self.arch)
        else:
            pipeline = _int("pipeline", self.pipeline, lo=0, hi=MAX_PIPELINE)
        lanes = _int("lanes", self.lanes, lo=1, hi=MAX_LANES)
        _set(self, n=n, m=m, fmt=fmt, pipeline=pipeline, lanes=lanes)

    @property
    def width(self) -> int:
        return get_format(self.fmt).width

    @property
    def key_width(self) -> int:
        return get_format(self.fmt).key_width

    @property
    def is_int(self) -> bool:
        return get_format(self.fmt).is_int

    @property
    def index_width(self) -> int:
        return max(1, (self.m - 1).bit_length())

    @property
    def name(self) -> str:
        suffix = f"_x{self.lanes}" if self.lanes > 1 else ""
        return f"nm_topk_{self.n}_{self.m}_{self.fmt}_{self.arch}{suffix}"

    @property
    def latency(self) -> int:
        return self.pipeline  # type: ignore[return-value]

    @property
    def network(self) -> networks.Network:
        """The selection network (``arch="network"``)."""
        return networks.selection_network(self.n, self.m)

    @property
    def sorter(self) -> networks.Network:
        """The network sorting the N survivors by index (``arch="network"``)."""
        return networks.sorting_network(self.n)

    @property
    def comparators(self) -> int:
        """Key comparators: the selection network's, or M(M-1)/2 for the rank matrix."""
        if self.arch == "rank":
            return self.m * (self.m - 1) // 2
        return self.network.size

    @property
    def network_depth(self) -> int:
        """Comparator layers of the selection (1 for the rank matrix)."""
        return 1 if self.arch == "rank" else self.network.depth

    def input_fields(self) -> list[Field]:
        return [Field("data", self.width, self.m)]

    def output_fields(self) -> list[Field]:
        return [
            Field("mask", 1, self.m),
            Field("values", self.width, self.n),
            Field("index", self.index_width, self.n),
        ]

    def params(self) -> dict:
        return {
            "n": self.n,
            "m": self.m,
            "fmt": self.fmt,
            "width": self.width,
            "index_width": self.index_width,
            "arch": self.arch,
            "pipeline": self.pipeline,
            "lanes": self.lanes,
        }

    def metrics(self) -> dict:
        out = {
            "latency": self.latency,
            "groups_per_cycle": self.lanes,
            "comparators": self.comparators * self.lanes,
            "network_depth": self.network_depth,
        }
        if self.arch == "network":
            out["compaction_comparators"] = self.sorter.size * self.lanes
            out["compaction_depth"] = self.sorter.depth
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


@dataclass(frozen=True)
class SparseMACConfig(_Config):
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

    width = TopKConfig.width
    index_width = TopKConfig.index_width
    lanes = 1

    @property
    def name(self) -> str:
        return f"nm_spmac_{self.n}_{self.m}_{self.fmt}_k{self.outputs}"

    @property
    def latency(self) -> int:
        return 2

    def _weights_last(self) -> list[Field]:
        return [Field("weights", self.weight_width, self.outputs * self.m, signed=True),
                Field("last", 1, 1)]

    def input_fields(self) -> list[Field]:
        return [Field("values", self.width, self.n, signed=True),
                Field("index", self.index_width, self.n)] + self._weights_last()

    def output_fields(self) -> list[Field]:
        return [Field("acc", self.acc_width, self.outputs, signed=True)]

    def params(self) -> dict:
        return {
            "n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
            "index_width": self.index_width, "weight_width": self.weight_width,
            "acc_width": self.acc_width, "outputs": self.outputs, "pipeline": self.latency,
            "lanes": 1,
        }

    def metrics(self) -> dict:
        return {"latency": self.latency, "groups_per_cycle": 1,
                "multipliers": self.n * self.outputs}


@dataclass(frozen=True)
class LinearConfig(_Config):
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

    width = TopKConfig.width
    index_width = TopKConfig.index_width
    lanes = 1

    @property
    def selector(self) -> TopKConfig:
        return TopKConfig(n=self.n, m=self.m, fmt=self.fmt, arch=self.arch,
                          pipeline=self.pipeline)

    @property
    def mac(self) -> SparseMACConfig:
        return SparseMACConfig(n=self.n, m=self.m, fmt=self.fmt, weight_width=self.weight_width,
                               acc_width=self.acc_width, outputs=self.outputs)

    @property
    def name(self) -> str:
        return f"nm_linear_{self.n}_{self.m}_{self.fmt}_k{self.outputs}"

    @property
    def latency(self) -> int:
        return self.pipeline + 2  # type: ignore[operator]

    def input_fields(self) -> list[Field]:
        return [Field("data", self.width, self.m)] + self.mac._weights_last()

    def output_fields(self) -> list[Field]:
        return self.mac.output_fields()

    def params(self) -> dict:
        return {
            "n": self.n, "m": self.m, "fmt": self.fmt, "width": self.width,
            "index_width": self.index_width, "arch": self.arch, "pipeline": self.pipeline,
            "weight_width": self.weight_width, "acc_width": self.acc_width,
            "outputs": self.outputs, "lanes": 1,
        }

    def metrics(self) -> dict:
        sel = self.selector
        return {"latency": self.latency, "groups_per_cycle": 1,
                "comparators": sel.comparators, "network_depth": sel.network_depth,
                "multipliers": self.n * self.outputs}


@dataclass(frozen=True)
class DenseMACConfig(_Config):
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

    width = TopKConfig.width
    lanes = 1

    @property
    def name(self) -> str:
        return f"dense_mac_{self.m}_{self.fmt}_k{self.outputs}"

    @property
    def latency(self) -> int:
        return 2

    def input_fields(self) -> list[Field]:
        return [Field("data", self.width, self.m, signed=True),
                Field("weights", self.weight_width, self.outputs * self.m, signed=True),
                Field("last", 1, 1)]

    def output_fields(self) -> list[Field]:
        return [Field("acc", self.acc_width, self.outputs, signed=True)]

    def params(self) -> dict:
        return {
            "m": self.m, "fmt": self.fmt, "width": self.width,
            "weight_width": self.weight_width, "acc_width": self.acc_width,
            "outputs": self.outputs, "pipeline": self.latency, "lanes": 1,
        }

    def metrics(self) -> dict:
        return {"latency": self.latency, "groups_per_cycle": 1,
                "multipliers": self.m * self.outputs}


def _shipped() -> list[_Config]:
    out: list[_Config] = []
    for n, m in ((2, 4), (4, 8), (8, 16), (16, 32)):
        for fmt in ("int8", "bf16"):
            for arch in ARCHS:
                out.append(TopKConfig(n=n, m=m, fmt=fmt, arch=arch))
    for n, m in ((2, 4), (8, 16), (16, 32)):
        out.append(SparseMACConfig(n=n, m=m, fmt="int8", outputs=4))
        out.append(LinearConfig(n=n, m=m, fmt="int8", outputs=4))
        out.append(DenseMACConfig(m=m, fmt="int8", outputs=4))
    return out


#: Every design point shipped in ``hdl/``, in manifest order.
SHIPPED: list[_Config] = _shipped()
