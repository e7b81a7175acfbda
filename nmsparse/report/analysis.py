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
    "HardwareCost",
    "hardware_cost",
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


# ------------------------------------------------------------------ hardware cost of methods


@dataclass(frozen=True)
class HardwareCost:
    """What a quality setting adds to the N:M selector + sparse MAC datapath.

    Members
    -------
    kind : str
        ``none``, ``static`` (constants fixed before run time), ``per-token statistic``,
        ``per-batch statistic`` or ``software only`` (no N:M selector can compute it).
    per_token : str
        Extra operations per token as formulas of K (input features), O (outputs of the
        layer), N:M and w (activation bits); ``""`` when there are none.
    measured : str or None
        How the cost was measured, or why it was not (None: nothing to measure).
    note : str
        A remark, e.g. a hardware saving.
    """

    kind: str
    per_token: str = ""
    measured: str | None = None
    note: str = ""


#: where the measured S-PTS engine figures will come from (issue 14, section 2)
SPTS_RTL_PENDING = ("not run: the S-PTS engine RTL (golden.sparse_linear(..., shift=), "
                    "DESIGN.md section 2) lands later, then `nmsparse report` measures it "
                    "against the engine without shift")

_MEDIAN = ("median of K: w*K compare-and-count steps (bitwise radix select) or "
           "~K*log2(K)^2/4 comparators (a sorting network)")

_MITIGATION_COST: dict[str, HardwareCost] = {
    "var": HardwareCost(
        "per-token statistic",
        "K squares + 2K adds (dense sum x, sum x^2), the same over the (N/M)K kept, "
        "1 division, 1 square root; the scale: O multiplies after the MAC"),
    "dpts": HardwareCost(
        "per-token statistic",
        f"{_MEDIAN}; K subtractions before the selector; O multiply-adds after the row "
        "(eta * rowsum(W), rowsum precomputed)"),
    "spts": HardwareCost(
        "static",
        "K subtractions (saturating, one per lane) before the selector; O adds of the constant "
        "b = W eta after the row", SPTS_RTL_PENDING),
    "spts_paper": HardwareCost(
        "static",
        "as spts (only the calibration differs)", SPTS_RTL_PENDING),
    "lpts": HardwareCost(
        "static",
        "as spts with eta per channel: K subtractions, constants from a K-entry ROM; O adds",
        SPTS_RTL_PENDING),
    "out_bias": HardwareCost(
        "static", "O adds of a constant bias after the row (no change before the selector)"),
    "scaling_static": HardwareCost(
        "none", "", None,
        "folded offline: W' = W diag(s), 1/s into the previous layer's output scale"),
    "scaling_batch": HardwareCost(
        "per-batch statistic",
        "K compares (running channel max over the batch) + K multiplies (x / s); per batch "
        "K divisions and K square roots"),
}

_CRITERION_COST: dict[str, HardwareCost] = {
    "weight_norm": HardwareCost(
        "static", "K multiplies |x| * f before the selector (f per layer, a K-entry ROM)",
        None, "one selector per Linear (q, k, v each their own)"),
    "weight_norm_site": HardwareCost(
        "static", "K multiplies |x| * f before the selector (f per site, a K-entry ROM)",
        None, "one selector per site: q/k/v (gate/up) share a mask, a hardware saving"),
    "var_weight": HardwareCost(
        "static", "K multiplies |x| * Var(W[:, j]) before the selector (a K-entry ROM)",
        None, "one selector per Linear"),
    "clact": HardwareCost(
        "per-batch statistic",
        "K squares + K adds (column norms over the batch) + K squares + K adds + 1 square "
        "root (row norm) + K multiplies; per batch K square roots"),
    "clact_seq": HardwareCost(
        "per-batch statistic", "as clact, the column norms over the sequence"),
}


def hardware_cost(q: Mapping) -> HardwareCost:
    """The hardware cost of a quality record's method (its mitigation, else its criterion).

    Unstructured sparsity has no N:M selector at all (``software only``); weight pruning
    costs nothing at run time.
    """
    if is_dense_quality(q):
        return HardwareCost("none")
    pattern = str(q.get("pattern") or "dense")
    sp = parse_sparsity(pattern) if pattern not in ("", "none") else None
    if sp is None:  # weight pruning with dense activations
        return HardwareCost("none", "", None, "weights pruned offline")
    mit = q.get("mitigation") or None
    mit = {"scaling": "scaling_static"}.get(mit, mit)
    crit = q.get("criterion") or "magnitude"
    if sp.kind != "nm":
        whole = crit in ("clact", "weight_norm")
        return HardwareCost("software only",
                            f"a top-{'(1-s)TK of the whole tile' if whole else '(1-s)K per token'}"
                            " instead of an N:M selector")
    if mit in _MITIGATION_COST:
        return _MITIGATION_COST[mit]
    if mit is not None:
        return HardwareCost("unknown", "", None, f"no cost model for mitigation {mit!r}")
    return _CRITERION_COST.get(crit, HardwareCost("none"))
