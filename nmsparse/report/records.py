"""Design points to measure, and the records of ``reports/resources.json``.

A record joins what the sidecar JSON states (parameters, latency, comparators, multipliers)
with what the tools measured. Post-synthesis, post-place and ASIC-proxy figures stay in
separate sections; each uses the normalized keys of :mod:`nmsparse.report.parse`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Point", "find_points", "make_record", "load_results", "SCHEMA"]

SCHEMA = 1
_UNIT_ORDER = {"topk": 0, "spmac": 1, "linear": 2, "dense_mac": 3}


@dataclass(frozen=True)
class Point:
    """One module to measure: its Verilog and its parsed sidecar."""

    module: str
    verilog: Path
    sidecar: dict

    @property
    def unit(self) -> str:
        return str(self.sidecar.get("unit", ""))

    @property
    def params(self) -> dict:
        return dict(self.sidecar.get("params") or {})

    def sort_key(self) -> tuple:
        p = self.params
        return (_UNIT_ORDER.get(self.unit, 9), str(p.get("fmt", "")), int(p.get("m", 0) or 0),
                str(p.get("arch", "")), self.module)


def _load_sidecar(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read sidecar {path}: {exc}") from None
    if not isinstance(data, dict) or "module" not in data or "ports" not in data:
        raise ValueError(f"{path} is not a module sidecar (needs 'module' and 'ports')")
    return data


def find_points(hdl_dir: str | Path, which: str = "shipped",
                only: Sequence[str] = ()) -> list[Point]:
    """Modules of ``hdl_dir`` to measure.

    Parameters
    ----------
    hdl_dir : path
        Directory with ``<module>.v`` + ``<module>.json`` (and ``manifest.json``).
    which : {"shipped", "all"}
        ``shipped``: the modules in ``manifest.json``; ``all``: every module with a sidecar in
        the directory (e.g. extra points added with ``nmsparse generate``).
    only : sequence of str
        Shell-style patterns; keep only modules whose name matches one of them.

    Raises
    ------
    FileNotFoundError
        The directory, the manifest or a module's files are missing.
    ValueError
        ``which`` is unknown, a sidecar is malformed, or nothing is left to measure.
    """
    import fnmatch

    d = Path(hdl_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"HDL directory {d} does not exist; "
                                "run `nmsparse generate --shipped -o hdl` first")
    if which == "shipped":
        manifest = d / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} does not exist; run `nmsparse generate "
                                    f"--shipped -o {d}` first (or use --points all)")
        try:
            names = json.loads(manifest.read_text())["modules"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{manifest} has no 'modules' list: {exc}") from None
        paths = [d / f"{name}.json" for name in names]
    elif which == "all":
        paths = sorted(p for p in d.glob("*.json") if p.name != "manifest.json")
    else:
        raise ValueError(f"--points must be 'shipped' or 'all', not {which!r}")
    points = []
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"sidecar {p} listed in the manifest does not exist")
        sc = _load_sidecar(p)
        v = p.with_suffix(".v")
        if not v.is_file():
            raise FileNotFoundError(f"{v} (the Verilog of {sc['module']}) does not exist")
        if only and not any(fnmatch.fnmatchcase(sc["module"], pat) for pat in only):
            continue
        points.append(Point(module=sc["module"], verilog=v, sidecar=sc))
    if not points:
        what = f" matching {', '.join(only)}" if only else ""
        raise ValueError(f"no modules{what} to measure in {d}")
    return sorted(points, key=Point.sort_key)


def _opt_int(v: object) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def make_record(point: Point, measured: Mapping | None, *, error: str | None = None) -> dict:
    """One ``resources.json`` record: parameters, micro-architecture and measured figures.

    ``measured`` is the result of :func:`nmsparse.report.synth.measure`; None if it failed
    (``error`` then says why) or was not run (``error`` None: the figures show "not run").
    """
    sc, p = point.sidecar, point.params
    n, m = _opt_int(p.get("n")), _opt_int(p.get("m"))
    iw = _opt_int(p.get("index_width"))
    pattern = f"{n}:{m}" if n is not None else f"dense:{m}"
    rec = {
        "module": point.module,
        "unit": point.unit,
        "pattern": pattern,
        "n": n,
        "m": m,
        "fmt": p.get("fmt"),
        "arch": p.get("arch"),
        "outputs": _opt_int(p.get("outputs")),
        "lanes": _opt_int(p.get("lanes")) or 1,
        "params": p,
        "generator": sc.get("generator"),
        "latency_cycles": _opt_int(sc.get("latency")),
        "groups_per_cycle": _opt_int(sc.get("groups_per_cycle")),
        "comparators": _opt_int(sc.get("comparators")),
        "network_depth": _opt_int(sc.get("network_depth")),
        "multipliers": _opt_int(sc.get("multipliers")),
        "index_bits_per_group": (n * iw if n is not None and iw is not None else 0),
    }
    if measured is None:
        rec.update(post_synth=None, post_place=None, asic=None, runtime_s=None, tools=None,
                   error=error)
    else:
        rec.update({k: measured.get(k) for k in
                    ("post_synth", "post_place", "asic", "runtime_s", "tools")})
        rec["error"] = None
    return rec


def load_results(path: str | Path) -> list[dict] | None:
    """Records of ``reports/crosscheck.json`` or ``reports/quality.json``; None if absent.

    Raises
    ------
    ValueError
        The file exists but is not a JSON list of objects.
    """
    f = Path(path)
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{f} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("records"), list):
        data = data["records"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError(f"{f} must hold a JSON list of records")
    return data
