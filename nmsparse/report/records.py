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

from nmsparse.contract.patterns import pattern_label
from nmsparse.contract.sidecar import Sidecar, list_modules

__all__ = ["Point", "find_points", "make_record", "attach_families", "load_results", "SCHEMA"]

SCHEMA = 1
_UNIT_ORDER = {"topk": 0, "spmac": 1, "linear": 2, "dense_mac": 3, "topk_flex": 4,
               "spmac_flex": 5, "linear_flex": 6}


@dataclass(frozen=True)
class Point:
    """One module to measure: its Verilog and its validated sidecar."""

    module: str
    verilog: Path
    sidecar: Sidecar

    @property
    def unit(self) -> str:
        return self.sidecar.unit

    @property
    def params(self) -> dict:
        return dict(self.sidecar.params)

    def sort_key(self) -> tuple:
        p = self.params
        return (_UNIT_ORDER.get(self.unit, 9), str(p.get("fmt", "")),
                int(p.get("m", 0) or p.get("w", 0) or 0), str(p.get("arch", "")), self.module)


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

    if which not in ("shipped", "all"):
        raise ValueError(f"--points must be 'shipped' or 'all', not {which!r}")
    if not Path(hdl_dir).is_dir():
        raise FileNotFoundError(f"HDL directory {hdl_dir} does not exist; "
                                "run `nmsparse generate --shipped -o hdl` first")
    points = [Point(module=sc.module, verilog=sc.verilog, sidecar=sc)
              for sc in list_modules(hdl_dir, which)
              if not only or any(fnmatch.fnmatchcase(sc.module, pat) for pat in only)]
    if not points:
        what = f" matching {', '.join(only)}" if only else ""
        raise ValueError(f"no modules{what} to measure in {hdl_dir}")
    return sorted(points, key=Point.sort_key)


def _opt_int(v: object) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def make_record(point: Point, measured: Mapping | None, *, error: str | None = None,
                place_error: str | None = None) -> dict:
    """One ``resources.json`` record: parameters, micro-architecture and measured figures.

    ``measured`` is the result of :func:`nmsparse.report.synth.measure`; None if it failed
    (``error`` then says why) or was not run (``error`` None: the figures show "not run").
    ``place_error``: why a point was synthesized only (its place and route did not finish
    in the time allowed), recorded as ``place_error``.
    """
    sc, p = point.sidecar, point.params
    n, m = _opt_int(p.get("n")), _opt_int(p.get("m"))
    iw = _opt_int(p.get("index_width"))
    pattern = sc.pattern if sc.flexible else pattern_label(n, m)
    metrics = sc.metrics
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
        "generator": sc.generator,
        "latency_cycles": sc.latency,
        "groups_per_cycle": _opt_int(metrics.get("groups_per_cycle")),
        "comparators": _opt_int(metrics.get("comparators")),
        # network selectors: the compare-exchanges sorting the survivors by index
        "compaction_comparators": _opt_int(metrics.get("compaction_comparators")),
        "network_depth": _opt_int(metrics.get("network_depth")),
        "multipliers": _opt_int(metrics.get("multipliers")),
        "index_bits_per_group": (n * iw if n is not None and iw is not None else 0),
        # MAC units: weight bits that reach the multipliers per group, and those in banks
        "weight_bits_per_group": _opt_int(metrics.get("weight_bits_per_group")),
        "weight_bits_stored": _opt_int(metrics.get("weight_bits_stored")),
    }
    if sc.flexible:  # DESIGN.md section 5: the pattern travels with each transfer
        rec.update(w=sc.w, max_kept=sc.max_kept, flexible=True)
    if measured is None:
        rec.update(post_synth=None, post_place=None, asic=None, runtime_s=None, cpu_s=None,
                   tools=None, error=error)
    else:
        rec.update({k: measured.get(k) for k in
                    ("post_synth", "post_place", "asic", "runtime_s", "cpu_s", "tools")})
        rec["error"] = None
        if measured.get("synth_fallback"):  # synthesized with another script: say which
            rec["synth_fallback"] = measured["synth_fallback"]
        if place_error:
            rec["place_error"] = place_error
    return rec


def attach_families(rec: dict, sections: Mapping | None) -> dict:
    """Add the second families' sections (``xilinx``: post-synthesis estimates; ``nexus``:
    post-synthesis and post-place) to a record; None where not measured, and
    ``family_errors`` naming the family and why it failed."""
    sections = sections or {}
    for fam in ("xilinx", "nexus"):
        rec[fam] = sections.get(fam)
    rec["family_errors"] = dict(sections.get("errors") or {})
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


def attach_proofs(recs: Sequence[dict], proofs: list[dict] | None) -> None:
    """Set each record's ``proven`` from ``reports/proofs.json`` (``nmsparse prove``):
    its one-line summary, or None when the module was not proven."""
    by_module = {p.get("module"): p for p in proofs or []}
    for r in recs:
        p = by_module.get(r.get("module"))
        r["proven"] = None if p is None else str(p.get("proven") or "")
