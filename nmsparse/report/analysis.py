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
from nmsparse.contract.units import SHIFT_INPUT, is_lane_banks

from .synth import DEVICE_DSP

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
    "ShiftCost",
    "shift_costs",
    "is_shift",
    "DSP_CAPACITY",
    "EnginePoint",
    "engine_points",
    "EnginePair",
    "engine_pairs",
    "fit_line",
    "BreakEven",
    "break_even",
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
    def key(r: Mapping) -> tuple:
        # weights from memory pair with the dense baseline that also reads its own banks
        return (r["m"], r["outputs"], r["fmt"], r["lanes"],
                (r.get("params") or {}).get("weights", "stream"))

    dense = {key(r): r for r in records if r["unit"] == "dense_mac"}
    out = []
    for r in records:
        if r["unit"] not in ("spmac", "linear") or is_shift(r):
            continue
        d = dense.get(key(r))
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
    """The architectures of one selector point (pattern, format), side by side.

    Members
    -------
    target_mhz : float or None
        The clock every architecture of the point was scheduled for (None: they differ, or
        one was given register stages instead of a clock).
    archs : tuple of str
        The architectures, in name order; the tuples below follow it.
    transistors, fmax, comb, ff : tuple
        ASIC-proxy transistors, placed Fmax (MHz), placed logic cells (wrapper included) and
        flip-flops (module alone); None where not measured.
    """

    pattern: str
    fmt: str
    target_mhz: float | None
    archs: tuple[str, ...]
    transistors: tuple[float | None, ...]
    fmax: tuple[float | None, ...]
    comb: tuple[float | None, ...]
    ff: tuple[float | None, ...]

    def _best(self, values: tuple, low: bool) -> str | None:
        have = [(v, a) for v, a in zip(values, self.archs, strict=True) if v is not None]
        if not have:
            return None
        return (min(have) if low else max(have))[1]

    @property
    def smallest(self) -> str | None:
        """The architecture with the fewest transistors."""
        return self._best(self.transistors, low=True)

    @property
    def fastest(self) -> str | None:
        """The architecture with the highest placed Fmax."""
        return self._best(self.fmax, low=False)


def arch_comparisons(records: Sequence[Mapping]) -> list[ArchComparison]:
    """Every (pattern, format) measured in two architectures or more."""
    by: dict[tuple[str, str], dict[str, Mapping]] = {}
    for r in records:
        if r["unit"] == "topk" and r.get("arch") and figure(r, "asic", "transistors"):
            by.setdefault((r["pattern"], r["fmt"]), {})[r["arch"]] = r
    out = []
    for (pat, fmt), archs in sorted(by.items(),
                                    key=lambda kv: (kv[0][1], pattern_order(kv[0][0]))):
        if len(archs) < 2:
            continue
        names = tuple(sorted(archs))
        recs = [archs[a] for a in names]
        targets = {(r.get("params") or {}).get("target_mhz") for r in recs}
        out.append(ArchComparison(
            pat, fmt, targets.pop() if len(targets) == 1 else None, names,
            tuple(figure(r, "asic", "transistors") for r in recs),
            tuple(figure(r, "post_place", "fmax_mhz") for r in recs),
            tuple(figure(r, "post_place", "COMB") for r in recs),
            tuple(figure(r, "post_synth", "FF") for r in recs)))
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


#: the measured cell of a static shift when the report holds no S-PTS engine with its plain twin
SPTS_NOT_RUN = ("not run: `nmsparse report` measures the S-PTS engine (nm_linear_..._shift, "
                "DESIGN.md section 2) against the same engine without shift when both "
                "modules are in --hdl")
#: the measured cell of L-PTS (eta per input channel) without the run-time S-PTS engine
LPTS_NOT_RUN = ("not run: `nmsparse report` measures the run-time S-PTS engine "
                "(nm_linear_..._shiftin: eta per channel and the bias as input fields, "
                "DESIGN.md section 2) against the same engine without shift when both "
                "modules are in --hdl")


def is_shift(r: Mapping) -> bool:
    """A linear engine with an S-PTS shift (``params.shift``: a constant, or ``"input"``)."""
    return (r.get("params") or {}).get("shift") is not None


@dataclass(frozen=True)
class ShiftCost:
    """An S-PTS engine against the same engine without the shift, from two report records.

    Members
    -------
    module, plain : str
        The two modules.
    shift : int or list of int
        The engine's eta.
    figures : dict
        ``name -> (plain, shift)`` for LUT4, CARRY, FF, DSP (post-synthesis), Fmax MHz
        (placed) and transistors (ASIC proxy).
    """

    module: str
    plain: str
    shift: object
    figures: dict

    def text(self) -> str:
        """One cell: every figure plain -> shift with the relative change."""
        parts = []
        for name, (a, b) in self.figures.items():
            unit = " MHz" if name == "Fmax" else ""
            rel = f" ({(b / a - 1) * 100:+.1f}%)" if a else ""
            parts.append(f"{name} {_num(a)} -> {_num(b)}{unit}{rel}")
        return f"{self.module} vs {self.plain}: " + ", ".join(parts)


def _num(v: float) -> str:
    return f"{v:.1f}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v)}"


def shift_costs(records: Sequence[Mapping]) -> list[ShiftCost]:
    """Every measured S-PTS engine with its plain twin (same params but ``shift``); a pair
    with a figure missing on either side is left out."""
    plain = {}
    for r in records:
        if r.get("unit") == "linear" and not is_shift(r):
            plain[_params_key(r.get("params") or {})] = r
    out = []
    for r in records:
        if r.get("unit") != "linear" or not is_shift(r):
            continue
        params = dict(r.get("params") or {})
        eta = params.pop("shift")
        p = plain.get(_params_key(params))
        if p is None:
            continue
        figs = {}
        for name, sec, key in (("LUT4", "post_synth", "LUT"), ("CARRY", "post_synth", "CARRY"),
                               ("FF", "post_synth", "FF"), ("DSP", "post_synth", "DSP"),
                               ("Fmax", "post_place", "fmax_mhz"),
                               ("transistors", "asic", "transistors")):
            figs[name] = (figure(p, sec, key), figure(r, sec, key))
        if any(v is None for pair in figs.values() for v in pair):
            continue
        out.append(ShiftCost(module=r["module"], plain=p["module"], shift=eta, figures=figs))
    return out


def _params_key(params: Mapping) -> str:
    return repr(sorted((k, repr(v)) for k, v in params.items()))


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
        "b = W eta after the row", SPTS_NOT_RUN),
    "spts_paper": HardwareCost(
        "static",
        "as spts (only the calibration differs)", SPTS_NOT_RUN),
    "lpts": HardwareCost(
        "static",
        "as spts with eta per channel: K subtractions with eta an input field of the "
        "engine (..._shiftin); O adds of b = W eta (computed once per weight tile by the "
        "host) after the row", LPTS_NOT_RUN),
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


def hardware_cost(q: Mapping, records: Sequence[Mapping] = ()) -> HardwareCost:
    """The hardware cost of a quality record's method (its mitigation, else its criterion).

    Unstructured sparsity has no N:M selector at all (``software only``); weight pruning
    costs nothing at run time. The static shifts (``spts``, ``spts_paper``) are measured
    when ``records`` (the report's resource records) hold an S-PTS engine and its plain
    twin (:func:`shift_costs`; the one of the record's N:M pattern if there is one), ``lpts``
    when they hold a run-time S-PTS engine (``shift: "input"``) and its twin.
    """
    c = _hardware_cost(q)
    if c.measured in (SPTS_NOT_RUN, LPTS_NOT_RUN):
        # the constant shift for spts, the run-time engine (eta per channel) for lpts
        run_time = c.measured == LPTS_NOT_RUN
        costs = [s for s in shift_costs(records) if (s.shift == SHIFT_INPUT) == run_time]
        same = [s for s in costs if s.module.startswith(
            f"nm_linear_{str(q.get('pattern', '')).replace(':', '_')}_")]
        if same or costs:
            c = HardwareCost(c.kind, c.per_token, (same or costs)[0].text(), c.note)
    return c


def _hardware_cost(q: Mapping) -> HardwareCost:
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


# ----------------------------------------------------------------------------- engine sweep
# The sparse linear engine against the dense baseline across K (issue: from what array size
# on does N:M pay off?). A point is one measured engine; the dense baseline of a sparse engine
# has the same M, K, format and weight source.

DSP_CAPACITY = DEVICE_DSP
"""MULT18X18D blocks of the LFE5U-85F: engines needing more multipliers are not placed."""


#: The weights label of an engine with banks by kept slot (``banks: lane``, DESIGN.md 3.1).
LANE_LABEL = "lane-bank memory"


@dataclass(frozen=True)
class EnginePoint:
    """One measured linear engine or dense baseline (figures None where not measured)."""

    module: str
    unit: str
    pattern: str
    n: int | None
    m: int
    k: int
    fmt: str
    weights: str
    multipliers: int | None
    lut: float | None
    carry: float | None
    ff: float | None
    dsp: float | None
    bram: float | None
    lutram: float | None
    fmax: float | None
    transistors: float | None
    runtime_s: float | None
    cpu_s: float | None
    weight_bits_per_group: int | None
    weight_bits_stored: int | None
    #: where the weights come from ("stream" or "memory"), the key that pairs an engine with
    #: its dense baseline; ``weights`` is the label of the layout ("lane-bank memory" for an
    #: engine with banks by kept slot, DESIGN.md 3.1)
    source: str = "stream"
    #: the clock the point was scheduled for (its sidecar's ``target_mhz``; None if none)
    target_mhz: float | None = None

    @property
    def weight_banks(self) -> int:
        """Banks of an engine from memory: N by kept slot, else M (one per position)."""
        return self.n if self.weights == LANE_LABEL and self.n else self.m

    @property
    def sparse(self) -> bool:
        return self.unit == "linear"

    @property
    def fits(self) -> bool:
        """Placeable on the LFE5U-85F: its multipliers fit the DSP blocks."""
        return self.multipliers is None or self.multipliers <= DSP_CAPACITY

    @property
    def eff_macs_per_cycle(self) -> float:
        """Useful products per clock at 50% activation sparsity: N*K for an N:M engine (N <= M/2),
        M*K/2 for the dense baseline (half of its products multiply a zero)."""
        if self.sparse and self.n is not None:
            return min(self.n, self.m / 2) * self.k
        return self.m * self.k / 2

    @property
    def eff_macs_per_s(self) -> float | None:
        return self.eff_macs_per_cycle * self.fmax * 1e6 if self.fmax else None

    def lut4_equivalents(self, lut4_per_dsp: float | None) -> float | None:
        """LUT4 + 2 x CCU2C (a carry cell spans two LUT4s) + ``lut4_per_dsp`` x DSP."""
        if None in (self.lut, self.carry, self.dsp) or lut4_per_dsp is None:
            return None
        return self.lut + 2 * self.carry + lut4_per_dsp * self.dsp  # type: ignore[operator]


def engine_points(records: Sequence[Mapping]) -> list[EnginePoint]:
    """Every linear engine and dense baseline with an integer format, in record order."""
    out = []
    for r in records:
        if r.get("unit") not in ("linear", "dense_mac") or is_shift(r):
            continue
        params = r.get("params") or {}
        def total(key: str, r: Mapping = r) -> float | None:
            vals = [v for v in (r.get(key) or {}).values() if isinstance(v, (int, float))]
            return sum(vals) if vals and not r.get("error") else None

        out.append(EnginePoint(
            module=r["module"], unit=r["unit"], pattern=r["pattern"], n=r.get("n"),
            m=r["m"], k=r.get("outputs") or 1, fmt=str(r.get("fmt")),
            weights=LANE_LABEL if is_lane_banks(params)
            else str(params.get("weights", "stream")),
            source=str(params.get("weights", "stream")),
            target_mhz=params.get("target_mhz"),
            multipliers=r.get("multipliers"),
            lut=figure(r, "post_synth", "LUT"), carry=figure(r, "post_synth", "CARRY"),
            ff=figure(r, "post_synth", "FF"), dsp=figure(r, "post_synth", "DSP"),
            bram=figure(r, "post_synth", "BRAM"), lutram=figure(r, "post_synth", "LUTRAM"),
            fmax=figure(r, "post_place", "fmax_mhz"),
            transistors=figure(r, "asic", "transistors"),
            runtime_s=total("runtime_s"), cpu_s=total("cpu_s"),
            weight_bits_per_group=r.get("weight_bits_per_group"),
            weight_bits_stored=r.get("weight_bits_stored"),
        ))
    return out


@dataclass(frozen=True)
class EnginePair:
    """A sparse engine and its dense baseline (same M, K, format and weight source)."""

    sparse: EnginePoint
    dense: EnginePoint

    def ratio(self, attr: str) -> float | None:
        return _ratio(getattr(self.sparse, attr), getattr(self.dense, attr))

    @property
    def eff_per_ktr(self) -> tuple[float | None, float | None]:
        """Effective MACs/s per 1k transistors (sparse, dense); None without an Fmax."""
        return tuple(  # type: ignore[return-value]
            p.eff_macs_per_s / p.transistors * 1e3 if p.eff_macs_per_s and p.transistors
            else None for p in (self.sparse, self.dense))

    @property
    def eff_per_cycle_ktr(self) -> tuple[float | None, float | None]:
        """Effective MACs/cycle per 1k transistors (sparse, dense): the ASIC view, no Fmax."""
        return tuple(  # type: ignore[return-value]
            p.eff_macs_per_cycle / p.transistors * 1e3 if p.transistors else None
            for p in (self.sparse, self.dense))


def engine_pairs(records: Sequence[Mapping]) -> list[EnginePair]:
    """Sparse engines with their dense baselines, by pattern, weight source and K."""
    pts = engine_points(records)
    dense = {(p.m, p.k, p.fmt, p.source): p for p in pts if not p.sparse}
    pairs = [EnginePair(p, dense[(p.m, p.k, p.fmt, p.source)]) for p in pts
             if p.sparse and (p.m, p.k, p.fmt, p.source) in dense]
    order = {"stream": 0, "memory": 1, LANE_LABEL: 2}
    return sorted(pairs, key=lambda q: (pattern_order(q.sparse.pattern),
                                        order.get(q.sparse.weights, 3), q.sparse.k))


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares ``y = c0 + c1 x`` (two or more points with distinct x)."""
    n = len(xs)
    if n < 2 or len(set(xs)) < 2:
        raise ValueError(f"a line needs two or more distinct x values, not {list(xs)}")
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    c1 = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return my - c1 * mx, c1


@dataclass(frozen=True)
class BreakEven:
    """Where an N:M engine becomes smaller than the dense baseline, from measured points.

    ``sparse``/``dense``: the fitted costs ``c0 + c1 K`` (``c0``: per-engine parts such as the
    selector; ``c1``: per-output parts); ``k_star`` the K where the lines cross (None: the
    sparse engine's per-output cost is not below the dense one's, so it never pays off);
    ``ratios`` the measured sparse/dense ratio at each K; ``worst_residual`` the largest
    relative deviation of a measured point from its line.
    """

    pattern: str
    weights: str
    metric: str
    sparse: tuple[float, float]
    dense: tuple[float, float]
    k_star: float | None
    ratios: dict[int, float]
    worst_residual: float

    @property
    def first_measured(self) -> int | None:
        """The smallest measured K at which the engine is already smaller."""
        ks = [k for k, r in sorted(self.ratios.items()) if r < 1]
        return ks[0] if ks else None


def break_even(records: Sequence[Mapping], metric: str = "transistors") -> list[BreakEven]:
    """Break-even K per (pattern, weight source) with two or more measured K."""
    groups: dict[tuple[str, str], list[EnginePair]] = {}
    for q in engine_pairs(records):
        if getattr(q.sparse, metric) and getattr(q.dense, metric):
            groups.setdefault((q.sparse.pattern, q.sparse.weights), []).append(q)
    out = []
    for (pat, weights), qs in groups.items():
        ks = [q.sparse.k for q in qs]
        if len(set(ks)) < 2:
            continue
        s = fit_line(ks, [getattr(q.sparse, metric) for q in qs])
        d = fit_line(ks, [getattr(q.dense, metric) for q in qs])
        k_star = (s[0] - d[0]) / (d[1] - s[1]) if d[1] > s[1] else None
        worst = max(abs(c0 + c1 * q.sparse.k - y) / y
                    for (c0, c1), attr in ((s, "sparse"), (d, "dense")) for q in qs
                    for y in [getattr(getattr(q, attr), metric)])
        out.append(BreakEven(pat, weights, metric, s, d,
                             max(k_star, 0.0) if k_star is not None else None,
                             {q.sparse.k: q.ratio(metric) for q in qs}, worst))
    return out


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
