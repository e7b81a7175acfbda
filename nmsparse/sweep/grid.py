"""The sweep grid: design points built from keyword parameters through the ``gen`` configs.

A grid names a unit and, for each parameter, a list of values; its points are the cartesian
product, each built as ``<unit's config class>(**params)``, so every parameter the generator
offers (pattern, format, architecture, pipeline or a target clock, lanes, K, ...) is an axis
without this module knowing it. A sweep is the union of several grids::

    [[grid]]                      TopKConfig(n=2, m=4, fmt="int8", arch="rank", pipeline=0)
    unit = "topk"           ──►   TopKConfig(n=2, m=4, fmt="int8", arch="rank", pipeline=1)
    pattern = ["2:4"]             TopKConfig(n=2, m=4, fmt="int8", arch="network", ...)
    arch = ["rank", "network"]    ...
    pipeline = [0, 1]

Config classes are found in :mod:`gen.config` by their ``unit`` (a new unit there is a new
``unit =`` value here). ``pattern = "N:M"`` is shorthand for ``n`` and ``m`` (only ``m`` for
a dense unit). A combination the config rejects becomes an *invalid* point with its error,
not a crash: the rest of the sweep runs. Module names: the config's own name, plus a suffix
for each parameter that changes the design but not the name (``_p2`` for two register
stages), so two points never share a module name and the same point always gets the same
name (and so the same cache entry as ``nmsparse report``).

Trade-off: validation happens only when a point is built (the generator is the one
authority on what is valid), so a misspelled value shows up as invalid points, listed
before any tool runs; a misspelled *parameter name* is an error at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nmsparse.contract.patterns import parse_pattern

__all__ = ["Point", "Grid", "config_classes", "build_config", "point_name", "expand",
           "parse_value", "parse_param"]

# short suffixes for parameters that are not part of the module name
_ABBREV = {"pipeline": "p", "lanes": "x", "outputs": "k", "weight_width": "w",
           "acc_width": "acc", "target_mhz": "t", "fmt": "", "arch": ""}


def config_classes() -> dict[str, type]:
    """``{unit: config class}`` of every design-point class in :mod:`gen.config`."""
    from gen import config as gc

    base = getattr(gc, "_Config", object)
    out: dict[str, type] = {}
    for obj in vars(gc).values():
        if (isinstance(obj, type) and issubclass(obj, base) and obj is not base
                and dataclasses.is_dataclass(obj) and getattr(obj, "unit", "")):
            out.setdefault(obj.unit, obj)
    return out


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def build_config(unit: str, params: Mapping[str, Any]):
    """The validated config of ``unit`` with ``params`` (``pattern`` expands to n, m).

    Raises
    ------
    ValueError, TypeError
        Unknown unit or parameter (naming the valid ones), or the config rejects a value.
    """
    classes = config_classes()
    if unit not in classes:
        raise ValueError(f"unit must be one of {', '.join(sorted(classes))}, not {unit!r}")
    cls = classes[unit]
    kw = dict(params)
    fields = _fields(cls)
    if "pattern" in kw:
        n, m = parse_pattern(str(kw.pop("pattern")))
        kw.setdefault("m", m)
        if "n" in fields:
            kw.setdefault("n", n)
    unknown = sorted(set(kw) - set(fields))
    if unknown:
        raise ValueError(f"{unit} has no parameter {', '.join(unknown)}; its parameters: "
                         f"pattern, {', '.join(fields)}")
    return cls(**kw)


def _token(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "", str(value).replace(".", "p")) or "x"


def point_name(config) -> str:
    """A unique, stable module name: ``config.name`` plus a suffix for every parameter that
    differs from its default and does not already change the name."""
    base = config.name
    cls = type(config)
    suffix = []
    mine = config.params()
    for f in dataclasses.fields(cls):
        if not f.init or (f.default is dataclasses.MISSING
                          and f.default_factory is dataclasses.MISSING):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if getattr(config, f.name) == default:
            continue
        try:
            other = dataclasses.replace(config, **{f.name: default})
        except (ValueError, TypeError):
            other = None
        if other is not None and (other.name != base or other.params() == mine):
            continue  # the name already says it, or the value is the default in effect
        abbrev = _ABBREV.get(f.name, f.name)
        suffix.append(f"_{abbrev}{_token(getattr(config, f.name))}")
    return base + "".join(suffix)


@dataclass
class Point:
    """One point of the sweep: its unit, parameters and the built config (None if invalid).

    Members
    -------
    name : str
        Module name (unique in the sweep); for an invalid point a label of its parameters.
    error : str or None
        Why the config rejected the parameters.
    options : dict
        Per-grid run options (``timeout``, ``retries``, ``place``, ``verify``).
    """

    unit: str
    params: dict
    config: Any = None
    name: str = ""
    error: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return self.config is not None

    def label(self) -> str:
        return self.unit + " " + " ".join(f"{k}={v}" for k, v in self.params.items())


_OPTIONS = ("timeout", "retries", "place", "verify")


@dataclass
class Grid:
    """One cartesian product: ``unit`` and ``axes`` (parameter -> list of values)."""

    unit: str
    axes: dict[str, list]
    options: dict = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], where: str = "grid") -> Grid:
        """A grid from a TOML table: ``unit``, run options, every other key an axis."""
        if "unit" not in table:
            raise ValueError(f"{where}: missing 'unit' (one of "
                             f"{', '.join(sorted(config_classes()))})")
        unit = table["unit"]
        if not isinstance(unit, str):
            raise ValueError(f"{where}: 'unit' must be a string, not {unit!r}")
        options = {k: table[k] for k in _OPTIONS if k in table}
        axes = {}
        for key, values in table.items():
            if key == "unit" or key in _OPTIONS:
                continue
            vals = list(values) if isinstance(values, (list, tuple)) else [values]
            if not vals:
                raise ValueError(f"{where}: axis {key!r} has no values")
            axes[key] = vals
        return cls(unit=unit, axes=axes, options=options)

    def check(self) -> None:
        """Unknown unit or parameter names: an error at once (values are checked per point)."""
        classes = config_classes()
        if self.unit not in classes:
            raise ValueError(f"unit must be one of {', '.join(sorted(classes))}, "
                             f"not {self.unit!r}")
        fields = _fields(classes[self.unit])
        unknown = sorted(set(self.axes) - set(fields) - {"pattern"})
        if unknown:
            raise ValueError(f"{self.unit} has no parameter {', '.join(unknown)}; its "
                             f"parameters: pattern, {', '.join(fields)}")

    def points(self) -> list[Point]:
        self.check()
        keys = list(self.axes)
        out = []
        for combo in itertools.product(*(self.axes[k] for k in keys)):
            params = dict(zip(keys, combo, strict=True))
            p = Point(unit=self.unit, params=params, options=dict(self.options))
            try:
                p.config = build_config(self.unit, params)
                p.name = point_name(p.config)
            except (ValueError, TypeError) as exc:
                p.error = str(exc)
                p.name = "invalid: " + p.label()
            out.append(p)
        return out


def expand(grids: Iterable[Grid]) -> list[Point]:
    """Every point of every grid, duplicates (same module name) removed, in grid order."""
    seen: set[str] = set()
    out = []
    for g in grids:
        for p in g.points():
            if p.name in seen:
                continue
            seen.add(p.name)
            out.append(p)
    return out


def parse_value(text: str) -> Any:
    """A flag value: ``none`` -> None, integers, floats, ``true``/``false``, else the string."""
    t = text.strip()
    low = t.lower()
    if low in ("none", "null", "default"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for conv in (int, float):
        try:
            return conv(t)
        except ValueError:
            pass
    return t


def parse_param(spec: str) -> tuple[str, list]:
    """``"pipeline=0,1,2"`` -> ``("pipeline", [0, 1, 2])``.

    Raises
    ------
    ValueError
        No ``=`` or no values.
    """
    key, sep, values = spec.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ValueError(f"--param must look like NAME=V1,V2,..., not {spec!r}")
    return key.strip().replace("-", "_"), [parse_value(v) for v in values.split(",")]


def describe(points: Sequence[Point]) -> str:
    """``"40 points (38 valid, 2 invalid)"``."""
    bad = sum(not p.valid for p in points)
    return f"{len(points)} points" + (f" ({len(points) - bad} valid, {bad} invalid)" if bad
                                      else "")
