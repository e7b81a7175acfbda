"""Fast estimates of LUT4, FF, Fmax and transistors: analytic models fitted on measured points.

Each target is a non-negative combination of a few *structural* terms of the design point,
read from its sidecar (parameters and metrics), so an estimate takes microseconds once the
config exists and never runs a tool::

    area (LUT4, FF, transistors) = c0 + c1*(comparator bits) + c2*(selection mux bits)
                                   + c3*(multiplier bits) + c4*(accumulator bits) + ...
    clock period (1/Fmax)        = t0 + t1*(carry-chain bits per stage)
                                   + t2*(comparator layers per stage) + ...

One model per *group* (unit and architecture: ``topk/rank``, ``topk/network``, ``spmac``,
...) and target, in one of two forms: the sum above, fitted by non-negative least squares on
the relative error (the coefficients keep a physical meaning: a comparator never has negative
cost), or a product of power laws of the same terms (``log y`` linear in ``log(1 + term)``,
ridge-regularized), whichever predicts the group's points better when each is left out.
A point of a group without a model (a new architecture before its first measurements)
falls back to the pooled model of its unit and is flagged ``pooled``.

Held-out error: leave-one-out within each group (each measured point predicted by the model
fitted on all the others, its form chosen on those others too), printed by
``nmsparse estimate --fit``. The trade-off: a handful of
terms generalizes across patterns and formats but cannot see synthesis' own optimizations
(constant propagation, LUT packing), which the held-out error measures; refit
(``make estimate-fit``) whenever architectures or the flow change.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nmsparse.contract.formats import get_format

__all__ = ["TARGETS", "features", "point_of", "nnls", "Model", "fit", "heldout_errors",
           "DEFAULT_COEFFICIENTS", "training_points"]

DEFAULT_COEFFICIENTS = Path(__file__).with_name("data") / "estimate.json"
TARGETS = ("lut4", "ff", "fmax_mhz", "transistors")
MIN_POINTS = 4


def _log2(x: float) -> float:
    return math.log2(x) if x > 1 else 0.0


def point_of(d: Mapping) -> dict:
    """The fields the model reads, from a ``resources.json`` record or a sidecar document
    (``params`` + metrics) or a sweep row."""
    p = dict(d.get("params") or {})
    out = {k: d.get(k, p.get(k)) for k in ("unit", "n", "m", "fmt", "arch", "lanes",
                                            "outputs", "comparators", "network_depth",
                                            "multipliers", "compaction_comparators")}
    out["unit"] = d.get("unit")
    out["pipeline"] = p.get("pipeline", d.get("pipeline"))
    out["weight_width"] = p.get("weight_width", d.get("weight_width"))
    out["acc_width"] = p.get("acc_width", d.get("acc_width"))
    out["latency"] = d.get("latency_cycles", d.get("latency"))
    return out


def group_of(pt: Mapping) -> str:
    """``topk/rank``, ``linear/network``, ``spmac``, ``dense_mac``."""
    return f"{pt['unit']}/{pt['arch']}" if pt.get("arch") else str(pt["unit"])


def _per(pt: Mapping, target: str) -> float:
    """What an area target is divided by before the fit (and the estimate multiplied by):
    the lanes of a selector, which are independent copies of one group's logic."""
    return 1.0 if target == "fmax_mhz" else float(int(pt.get("lanes") or 1))


def features(pt: Mapping, target: str) -> dict[str, float]:
    """Structural terms of one point for ``target`` (names -> values); area terms are per
    lane (see :func:`_per`)."""
    f = get_format(pt["fmt"])
    w, kw = f.width, f.key_width
    m = int(pt["m"])
    n = int(pt.get("n") or m)
    lanes = int(pt.get("lanes") or 1)
    k = int(pt.get("outputs") or 0)
    ww = int(pt.get("weight_width") or 0)
    acc = int(pt.get("acc_width") or 0)
    cmp_ = int(pt.get("comparators") or 0) / lanes  # the sidecar counts every lane
    depth = int(pt.get("network_depth") or 0)
    mult = int(pt.get("multipliers") or 0)
    pipe = int(pt.get("pipeline") or 0)
    iw = max(1, (m - 1).bit_length())
    unit = pt["unit"]
    sparse_sel = unit in ("topk", "linear")
    if target == "fmax_mhz":
        stages = max(1, pipe)
        out = {"t0": 1.0}
        if sparse_sel:
            out["cmp_chain"] = depth * kw / stages
            out["cmp_layers"] = depth / stages
            out["select"] = _log2(m) * (1 + _log2(n)) / stages
        if unit != "topk":
            out["mac"] = (_log2(n if unit != "dense_mac" else m) + 1) * acc / 32
            out["wsel"] = _log2(m)
        out["fanout"] = _log2(lanes * m * w)
        return out
    out = {"c0": 1.0}
    if sparse_sel:
        out["cmp_bits"] = cmp_ * kw
        if pt.get("arch") == "network" and pt.get("compaction_comparators") is not None:
            # the survivors leave the selection network in line order and are sorted by
            # index (a small network of compare-exchanges on index and value)
            out["sel_bits"] = int(pt["compaction_comparators"]) * (w + 2 * iw)
        else:  # the AND-OR compaction: slot s takes one of elements s .. s + M - N
            out["sel_bits"] = n * (m - n + 1) * (w + iw)
        out["rank_bits"] = (m * m * iw if pt.get("arch") == "rank"
                            else cmp_ * (w + iw))
        # deep cones in few stages: the mapper trades LUTs for depth (measured: a 4:8 bf16
        # rank selector needs 3x the LUT4 with one register stage as with two)
        out["cone_bits"] = cmp_ * kw * depth / max(1, pipe)
    if unit in ("spmac", "linear", "dense_mac"):
        out["mul_bits"] = mult * w * ww
        out["acc_bits"] = k * acc
        if unit != "dense_mac":
            out["wsel_bits"] = n * k * m * ww
    if target == "ff":
        out["pipe_bits"] = max(0, pipe - 1) * m * (w + iw)
        out["out_bits"] = (m + n * (w + iw)) if unit == "topk" else k * acc
        if unit != "topk":
            out["in_bits"] = k * m * ww + m * w
    return out


def nnls(A: Sequence[Sequence[float]], b: Sequence[float], iters: int = 500) -> list[float]:
    """Non-negative least squares (Lawson-Hanson active set): ``min |Ax - b|, x >= 0``."""
    import numpy as np

    A = np.asarray(A, dtype=float)
    b = np.asarray(b, dtype=float)
    n = A.shape[1]
    x = np.zeros(n)
    passive = np.zeros(n, dtype=bool)
    for _ in range(iters):
        w = A.T @ (b - A @ x)
        if passive.all() or not (w[~passive] > 1e-10 * max(1.0, np.abs(w).max())).any():
            break
        j = np.argmax(np.where(~passive, w, -np.inf))
        passive[j] = True
        while True:
            z = np.zeros(n)
            z[passive] = np.linalg.lstsq(A[:, passive], b, rcond=None)[0]
            if (z[passive] > 0).all():
                x = z
                break
            neg = passive & (z <= 0)
            alpha = np.min(x[neg] / (x[neg] - z[neg] + 1e-300))
            x = x + alpha * (z - x)
            passive &= x > 1e-12
            x[~passive] = 0.0
    return [float(v) for v in x]


def _fit_one(pts: Sequence[Mapping], ys: Sequence[float], target: str,
             kind: str = "nnls") -> dict:
    if kind == "loglin":
        return _fit_loglin(pts, ys, target)
    names = list(features(pts[0], target))
    rows = [[features(p, target).get(nm, 0.0) for nm in names] for p in pts]
    ys = [y / _per(p, target) for p, y in zip(pts, ys, strict=True)]
    # the period for Fmax (additive delays); relative error: each row scaled by 1/y
    ys_t = [1000.0 / y for y in ys] if target == "fmax_mhz" else list(ys)
    A = [[v / y for v in r] for r, y in zip(rows, ys_t, strict=True)]
    coef = nnls(A, [1.0] * len(ys_t))
    return {"kind": "nnls", "features": names, "coef": coef}


RIDGE = 0.05
"""Ridge weight of the log-linear fit (few points per group: keeps exponents moderate)."""


def _fit_loglin(pts: Sequence[Mapping], ys: Sequence[float], target: str) -> dict:
    """``log y = b0 + sum b_i log(1 + term_i)``: a product of power laws, least squares on
    the log (i.e. on the relative error), lightly ridge-regularized."""
    import numpy as np

    names = [nm for nm in features(pts[0], target) if nm not in ("c0", "t0")]
    X = np.array([[1.0] + [math.log1p(features(p, target).get(nm, 0.0)) for nm in names]
                  for p in pts])
    y = np.log(np.asarray([v / _per(p, target) for p, v in zip(pts, ys, strict=True)],
                          dtype=float))
    reg = RIDGE * np.eye(X.shape[1])
    reg[0, 0] = 0.0
    coef = np.linalg.solve(X.T @ X + reg, X.T @ y)
    return {"kind": "loglin", "features": ["1", *names], "coef": [float(c) for c in coef]}


def _predict_one(model: Mapping, pt: Mapping, target: str) -> float:
    fx = features(pt, target)
    if model.get("kind") == "loglin":
        z = model["coef"][0] + sum(c * math.log1p(fx.get(nm, 0.0)) for nm, c in
                                   zip(model["features"][1:], model["coef"][1:], strict=True))
        return math.exp(z) * _per(pt, target)
    v = sum(c * fx.get(nm, 0.0) for nm, c in zip(model["features"], model["coef"], strict=True))
    if target == "fmax_mhz":
        return 1000.0 / v if v > 0 else float("nan")
    return v * _per(pt, target)


def _measured(rec: Mapping, target: str) -> float | None:
    """The measured value of ``target`` in a record or a sweep row (None if absent)."""
    if "post_synth" in rec or "asic" in rec:
        if rec.get("error"):
            return None
        sec = {"lut4": ("post_synth", "LUT"), "ff": ("post_synth", "FF"),
               "fmax_mhz": ("post_place", "fmax_mhz"),
               "transistors": ("asic", "transistors")}[target]
        s = rec.get(sec[0])
        v = None if not s else s.get(sec[1])
    else:
        if rec.get("status") not in (None, "ok"):
            return None
        v = rec.get(target)
    return float(v) if isinstance(v, (int, float)) and v and v > 0 else None


def training_points(sources: Iterable[str | Path]) -> list[tuple[dict, dict[str, float]]]:
    """``(point, {target: measured})`` from ``resources.json`` / sweep ``records.json`` files
    and sweep tables (``.parquet``/``.csv``); the same module measured twice counts once
    (the later source wins).

    Raises
    ------
    FileNotFoundError
        A source does not exist.
    """
    from . import table

    by_module: dict[str, tuple[dict, dict[str, float]]] = {}
    for src in sources:
        p = Path(src)
        if not p.is_file():
            raise FileNotFoundError(f"measured data {p} does not exist")
        if p.suffix == ".json":
            doc = json.loads(p.read_text())
            recs = doc["modules"] if isinstance(doc, dict) else doc
        else:
            recs = table.read(p)
        for r in recs:
            if not r.get("unit") or r.get("m") is None or not r.get("fmt"):
                continue
            ys = {t: v for t in TARGETS if (v := _measured(r, t)) is not None}
            if ys:
                by_module[r["module"]] = (point_of(r), ys)
    return list(by_module.values())


@dataclass
class Model:
    """Fitted coefficients: ``groups[group][target] = {"features": [...], "coef": [...]}``."""

    groups: dict[str, dict[str, dict]] = field(default_factory=dict)
    heldout: dict = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def predict(self, pt: Mapping) -> dict:
        """Estimates of every target for one point: ``{target: value, "group": ...,
        "pooled": bool}``; a target without a model is absent."""
        g = group_of(pt)
        out: dict = {"group": g, "pooled": False}
        for target in TARGETS:
            model = self.groups.get(g, {}).get(target)
            if model is None:
                model = self.groups.get(f"{pt['unit']}/*", {}).get(target)
                out["pooled"] = out["pooled"] or model is not None
            if model is not None:
                v = _predict_one(model, pt, target)
                if math.isfinite(v):
                    out[target] = v
        return out

    def predict_config(self, config) -> dict:
        """Estimates for a ``gen`` design point (its sidecar, no elaboration)."""
        sc = config.sidecar()
        doc = {"unit": sc.unit, "params": dict(sc.params), **dict(sc.metrics),
               "latency": sc.latency}
        return self.predict(point_of(doc))

    def to_json(self) -> str:
        return json.dumps({"schema": 1, "targets": list(TARGETS), "sources": self.sources,
                           "heldout": self.heldout, "groups": self.groups},
                          indent=1, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Model:
        doc = json.loads(Path(path).read_text())
        return cls(groups=doc["groups"], heldout=doc.get("heldout", {}),
                   sources=doc.get("sources", []))

    @classmethod
    def load_default(cls) -> Model | None:
        """The coefficients shipped in the package; None when there are none yet."""
        if not DEFAULT_COEFFICIENTS.is_file():
            return None
        return cls.load(DEFAULT_COEFFICIENTS)


def _groups(data: Sequence[tuple[dict, dict]]) -> dict[str, list[tuple[dict, dict]]]:
    out: dict[str, list] = {}
    for pt, ys in data:
        out.setdefault(group_of(pt), []).append((pt, ys))
        out.setdefault(f"{pt['unit']}/*", []).append((pt, ys))
    return out


def fit(data: Sequence[tuple[dict, dict[str, float]]], sources: Sequence[str] = ()) -> Model:
    """Fit every group and target that has at least :data:`MIN_POINTS` measured points, and
    the held-out (leave-one-out) errors."""
    model = Model(sources=[str(s) for s in sources])
    for g, items in sorted(_groups(data).items()):
        for target in TARGETS:
            pts = [(p, ys[target]) for p, ys in items if target in ys]
            if len(pts) < MIN_POINTS:
                continue
            if g.endswith("/*") and len({group_of(p) for p, _ in pts}) < 2:
                continue  # a pooled model only where it pools something
            kind = _best_kind(pts, target)
            model.groups.setdefault(g, {})[target] = _fit_one([p for p, _ in pts],
                                                              [y for _, y in pts], target, kind)
    model.heldout = heldout_errors(data)
    return model


KINDS = ("nnls", "loglin")


def _loo(pts: Sequence[tuple[dict, float]], target: str, kind: str) -> list[float]:
    errs = []
    for i, (p, y) in enumerate(pts):
        rest = pts[:i] + pts[i + 1:]
        m = _fit_one([q for q, _ in rest], [v for _, v in rest], target, kind)
        v = _predict_one(m, p, target)
        errs.append(abs(v - y) / y * 100 if math.isfinite(v) else 1e9)
    return errs


def _best_kind(pts: Sequence[tuple[dict, float]], target: str) -> str:
    """The model form with the lower leave-one-out mean error on these points."""
    if len(pts) < MIN_POINTS + 1:
        return "nnls"
    return min(KINDS, key=lambda k: sum(_loo(pts, target, k)))


def heldout_errors(data: Sequence[tuple[dict, dict[str, float]]]) -> dict:
    """Leave-one-out relative errors per target: ``{target: {"n", "mean_pct", "max_pct",
    "median_pct", "worst"}}``, plus per group."""
    out: dict = {"all": {}, "groups": {}}
    errs: dict[str, list[tuple[float, str]]] = {t: [] for t in TARGETS}
    per_group: dict[str, dict[str, list[float]]] = {}
    for g, items in sorted(_groups(data).items()):
        if g.endswith("/*"):
            continue
        for target in TARGETS:
            pts = [(p, ys[target]) for p, ys in items if target in ys]
            if len(pts) < MIN_POINTS + 1:
                continue
            for i, (p, y) in enumerate(pts):
                rest = pts[:i] + pts[i + 1:]
                kind = _best_kind(rest, target)  # chosen without the held-out point
                m = _fit_one([q for q, _ in rest], [v for _, v in rest], target, kind)
                v = _predict_one(m, p, target)
                e = abs(v - y) / y * 100 if math.isfinite(v) else 1e9
                errs[target].append((e, _label(p)))
                per_group.setdefault(g, {}).setdefault(target, []).append(e)
    for target, es in errs.items():
        out["all"][target] = _stats(es)
    for g, ts in per_group.items():
        out["groups"][g] = {t: _stats([(e, "") for e in es]) for t, es in ts.items()}
    return out


def _stats(es: Sequence[tuple[float, str]]) -> dict:
    if not es:
        return {"n": 0}
    vals = sorted(e for e, _ in es)
    worst = max(es)
    return {"n": len(vals), "mean_pct": round(sum(vals) / len(vals), 1),
            "median_pct": round(vals[len(vals) // 2], 1), "max_pct": round(worst[0], 1),
            "worst": worst[1]}


def _label(p: Mapping) -> str:
    bits = [str(p["unit"]), f"{p.get('n')}:{p['m']}", str(p["fmt"])]
    if p.get("arch"):
        bits.append(str(p["arch"]))
    bits.append(f"p{p.get('pipeline')}")
    if (p.get("lanes") or 1) > 1:
        bits.append(f"x{p['lanes']}")
    if p.get("outputs"):
        bits.append(f"k{p['outputs']}")
    return " ".join(bits)
