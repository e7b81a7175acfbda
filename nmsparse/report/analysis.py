"""What the report concludes from the measured records: figures in, plain numbers out.

Parse (:mod:`.parse`) -> records (:mod:`.records`) -> analysis (this module) -> rendering
(:mod:`.render`). Nothing here formats text; every function returns numbers the renderer
prints, so a figure in the report always comes from one computation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nmsparse.contract.patterns import parse_sparsity, pattern_order

__all__ = [
    "figure",
    "area",
    "savings",
    "is_dense_quality",
    "dense_ppl",
    "best_quality",
    "selector_cost",
    "QualityPoint",
    "quality_vs_cost",
    "pareto_front",
    "ArchComparison",
    "arch_comparisons",
    "crosscheck_totals",
    "FlexCost",
    "best_fixed",
    "flexibility_cost",
]


def figure(rec: Mapping, section: str, key: str):
    """``rec[section][key]`` or None (also for a failed or unmeasured record)."""
    if rec.get("error"):
        return None
    sec = rec.get(section)
    return None if not sec else sec.get(key)


def area(r: Mapping) -> dict[str, float | None]:
    """LUT4, placed COMB, DSP and transistors of a record (None where not measured)."""
    return {"lut": figure(r, "post_synth", "LUT"), "comb": figure(r, "post_place", "COMB"),
            "dsp": figure(r, "post_synth", "DSP"), "tr": figure(r, "asic", "transistors")}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def savings(records: Sequence[Mapping]) -> list[dict]:
    """Sparse MAC and linear engine against ``dense_mac`` of the same M, K, format, lanes.

    Returns one dict per sparse module with the ratios (sparse / dense; below 1 is a saving)
    and the effective MACs per cycle at 50% activation sparsity: the products with a
    non-zero activation that the unit computes per clock. A dense unit spends M*K multipliers
    on M*K/2 useful products; an N:M unit (N/M = 1/2) spends N*K multipliers on N*K useful ones.
    """
    dense = {(r["m"], r["outputs"], r["fmt"], r["lanes"]): r for r in records
             if r["unit"] == "dense_mac"}
    out = []
    for r in records:
        if r["unit"] not in ("spmac", "linear"):
            continue
        d = dense.get((r["m"], r["outputs"], r["fmt"], r["lanes"]))
        if d is None:
            continue
        a, b = area(r), area(d)
        gpc = (r.get("groups_per_cycle") or 1)
        k = r.get("outputs") or 1
        eff_sparse = min(r["n"], r["m"] / 2) * k * gpc if r.get("n") is not None else None
        eff_dense = d["m"] / 2 * k * (d.get("groups_per_cycle") or 1)
        out.append({
            "module": r["module"], "dense": d["module"], "unit": r["unit"],
            "pattern": r["pattern"], "m": r["m"], "outputs": k,
            "lut_ratio": _ratio(a["lut"], b["lut"]),
            "comb_ratio": _ratio(a["comb"], b["comb"]),
            "transistor_ratio": _ratio(a["tr"], b["tr"]),
            "dsp": (a["dsp"], b["dsp"]),
            "multipliers": (r.get("multipliers"), d.get("multipliers")),
            "mult_ratio": _ratio(r.get("multipliers"), d.get("multipliers")),
            "eff_macs_sparse": eff_sparse, "eff_macs_dense": eff_dense,
            "eff_per_ktr_sparse": eff_sparse / a["tr"] * 1000 if eff_sparse and a["tr"] else None,
            "eff_per_ktr_dense": eff_dense / b["tr"] * 1000 if b["tr"] else None,
        })
    return out


def is_dense_quality(q: Mapping) -> bool:
    """The dense reference: no activation sparsity and no weight pruning."""
    return (q.get("pattern") in (None, "", "dense", "none")
            and q.get("weight_pattern") in (None, "", "dense", "none"))


def dense_ppl(quality: Sequence[Mapping] | None) -> float | None:
    """Perplexity of the dense reference run, if any."""
    if not quality:
        return None
    d = [q["ppl"] for q in quality
         if is_dense_quality(q) and isinstance(q.get("ppl"), (int, float))]
    return d[0] if d else None


def best_quality(quality: Sequence[Mapping] | None) -> dict[str, float]:
    """Perplexity per N:M activation pattern (dense weights): the plain magnitude criterion
    without mitigation when present, else the best of the runs of that pattern."""
    plain: dict[str, float] = {}
    best: dict[str, float] = {}
    for q in quality or ():
        if is_dense_quality(q) or not isinstance(q.get("ppl"), (int, float)):
            continue
        if q.get("plan"):  # a per-layer plan (golden.llm.plan), not one pattern
            continue
        if q.get("weight_pattern") not in (None, "", "dense", "none"):
            continue
        sp = parse_sparsity(str(q.get("pattern")))
        if sp is None or sp.kind != "nm":
            continue
        p = sp.label
        best[p] = min(best.get(p, math.inf), float(q["ppl"]))
        if (q.get("criterion") in (None, "", "magnitude")
                and q.get("mitigation") in (None, "", "none")):
            plain[p] = min(plain.get(p, math.inf), float(q["ppl"]))
    return {**best, **plain}


def selector_cost(records: Sequence[Mapping], fmt: str = "int8") -> dict[str, tuple[str, float]]:
    """Cheapest top-k selector per pattern in ``fmt``: ``{pattern: (arch, transistors / M)}``."""
    out: dict[str, tuple[str, float]] = {}
    for r in records:
        if r["unit"] != "topk" or r["fmt"] != fmt:
            continue
        tr = figure(r, "asic", "transistors")
        if tr is None:
            continue
        per = tr / r["m"] / (r.get("lanes") or 1)
        if r["pattern"] not in out or per < out[r["pattern"]][1]:
            out[r["pattern"]] = (str(r["arch"]), per)
    return out


@dataclass(frozen=True)
class QualityPoint:
    """One pattern on the quality-vs-cost plane."""

    pattern: str
    arch: str
    cost: float  # int8 selector transistors per input feature
    ppl: float


def quality_vs_cost(records: Sequence[Mapping],
                    quality: Sequence[Mapping] | None) -> list[QualityPoint]:
    """Every pattern with both a quality and a selector cost, cheapest first."""
    best, cost = best_quality(quality), selector_cost(records)
    pts = [QualityPoint(p, cost[p][0], cost[p][1], best[p]) for p in best if p in cost]
    return sorted(pts, key=lambda q: (q.cost, pattern_order(q.pattern)))


def pareto_front(points: Sequence[QualityPoint]) -> list[QualityPoint]:
    """The points no other point beats on both cost and perplexity (cheapest first)."""
    front, best = [], math.inf
    for q in sorted(points, key=lambda q: q.cost):
        if q.ppl < best:
            front.append(q)
            best = q.ppl
    return front


@dataclass(frozen=True)
class ArchComparison:
    """Two architectures of one selector point, side by side."""

    pattern: str
    fmt: str
    a: str
    b: str
    transistors: tuple[float, float]
    fmax: tuple[float | None, float | None]

    @property
    def smaller(self) -> str:
        return self.b if self.transistors[1] < self.transistors[0] else self.a

    @property
    def ratio(self) -> float:
        return max(self.transistors) / min(self.transistors)


def arch_comparisons(records: Sequence[Mapping], a: str = "rank",
                     b: str = "network") -> list[ArchComparison]:
    """Architecture ``a`` against ``b`` for every (pattern, format) measured in both."""
    by: dict[tuple[str, str], dict[str, Mapping]] = {}
    for r in records:
        if r["unit"] == "topk" and figure(r, "asic", "transistors"):
            by.setdefault((r["pattern"], r["fmt"]), {})[r["arch"]] = r
    out = []
    for (pat, fmt), archs in sorted(by.items(),
                                    key=lambda kv: (kv[0][1], pattern_order(kv[0][0]))):
        if a in archs and b in archs:
            ra, rb = archs[a], archs[b]
            out.append(ArchComparison(
                pat, fmt, a, b,
                (figure(ra, "asic", "transistors"), figure(rb, "asic", "transistors")),
                (figure(ra, "post_place", "fmax_mhz"), figure(rb, "post_place", "fmax_mhz"))))
    return out


def crosscheck_totals(cross: Sequence[Mapping]) -> tuple[int, int, int]:
    """(groups, mismatches, runs) over the cross-check records."""
    return (sum(int(c.get("groups") or 0) for c in cross),
            sum(int(c.get("mismatches") or 0) for c in cross), len(cross))


# ------------------------------------------------------------------ cost of flexibility

def best_fixed(records: Sequence[Mapping], pattern: str, fmt: str) -> Mapping | None:
    """The fixed top-k selector of ``pattern`` and ``fmt`` (one lane) with the fewest LUT4,
    ties broken by the higher Fmax; None when none is measured."""
    cands = [r for r in records if r["unit"] == "topk" and r["pattern"] == pattern
             and r["fmt"] == fmt and (r.get("lanes") or 1) == 1
             and figure(r, "post_synth", "LUT") is not None]
    if not cands:
        return None
    return min(cands, key=lambda r: (figure(r, "post_synth", "LUT"),
                                     -(figure(r, "post_place", "fmax_mhz") or 0.0)))


@dataclass(frozen=True)
class FlexCost:
    """A flexible selector against ``instances`` copies of the best fixed selector of one
    pattern that together take the same lanes per clock (W / M copies).

    Ratios are flexible / (instances x fixed) for LUT4, FF and transistors, flexible /
    fixed for Fmax; None where a figure is missing.
    """

    fmt: str
    flex: str
    w: int
    pattern: str
    fixed: str
    instances: int
    lut: tuple[float | None, float | None]
    ff: tuple[float | None, float | None]
    fmax: tuple[float | None, float | None]
    transistors: tuple[float | None, float | None]

    @staticmethod
    def _r(pair: tuple[float | None, float | None]) -> float | None:
        return _ratio(pair[0], pair[1])

    @property
    def lut_ratio(self) -> float | None:
        return self._r(self.lut)

    @property
    def ff_ratio(self) -> float | None:
        return self._r(self.ff)

    @property
    def fmax_ratio(self) -> float | None:
        return self._r(self.fmax)

    @property
    def transistor_ratio(self) -> float | None:
        return self._r(self.transistors)


def flexibility_cost(records: Sequence[Mapping],
                     patterns: Sequence[str] = ("16:32", "8:16")) -> list[FlexCost]:
    """Every measured flexible selector against the best fixed selector (:func:`best_fixed`)
    of each of ``patterns`` that fits its W lanes, same format; by format, W (widest
    first), then pattern order as given."""
    out = []
    flex = [r for r in records if r["unit"] == "topk_flex" and figure(r, "post_synth", "LUT")]
    for r in sorted(flex, key=lambda r: (str(r["fmt"]) != "int8", str(r["fmt"]), -r["w"])):
        for pat in patterns:
            sp = parse_sparsity(pat)
            if sp is None or sp.kind != "nm" or sp.m > r["w"] or sp.n * r["w"] // sp.m > (
                    r.get("max_kept") or r["w"] // 2):
                continue
            b = best_fixed(records, pat, r["fmt"])
            if b is None:
                continue
            k = r["w"] // sp.m

            def scaled(sec: str, key: str, k: int = k, b: Mapping = b) -> float | None:
                v = figure(b, sec, key)
                return None if v is None else k * v

            out.append(FlexCost(
                fmt=str(r["fmt"]), flex=r["module"], w=r["w"], pattern=pat, fixed=b["module"],
                instances=k,
                lut=(figure(r, "post_synth", "LUT"), scaled("post_synth", "LUT")),
                ff=(figure(r, "post_synth", "FF"), scaled("post_synth", "FF")),
                fmax=(figure(r, "post_place", "fmax_mhz"), figure(b, "post_place", "fmax_mhz")),
                transistors=(figure(r, "asic", "transistors"), scaled("asic", "transistors"))))
    return out
