"""The hardware-cost column of the quality table: one cost model per method of the suite."""

from __future__ import annotations

from golden.llm import criteria, mitigations, quality
from nmsparse.report import analysis, render


def _rec(pattern="8:16", criterion="magnitude", mitigation=None, weight_pattern=None):
    return {"pattern": pattern, "criterion": criterion, "mitigation": mitigation,
            "weight_pattern": weight_pattern, "ppl": 50.0, "tokens": 64}


def test_every_suite_setting_has_a_known_cost():
    for s in quality.standard_settings():
        c = analysis.hardware_cost(_rec(s.pattern, s.criterion, s.mitigation, s.weight_pattern))
        assert c.kind in ("none", "static", "per-token statistic", "per-batch statistic",
                          "software only"), s
    for m in mitigations.MITIGATIONS:
        assert analysis.hardware_cost(_rec(mitigation=m)).kind != "unknown", m
    for c in criteria.CRITERIA:
        assert analysis.hardware_cost(_rec(criterion=c)).kind != "unknown", c


def test_cost_kinds_and_operation_counts():
    cost = analysis.hardware_cost
    assert cost({"pattern": "dense", "weight_pattern": None}).kind == "none"
    assert cost(_rec()).kind == "none"  # plain magnitude: the shipped selector
    assert cost(_rec(pattern="dense", criterion=None, weight_pattern="2:4")).kind == "none"
    d = cost(_rec(mitigation="dpts"))
    assert d.kind == "per-token statistic" and "median of K" in d.per_token
    v = cost(_rec(mitigation="var"))
    assert v.kind == "per-token statistic"
    assert "1 division, 1 square root" in v.per_token and "K squares" in v.per_token
    for m in ("spts", "spts_paper", "lpts"):
        c = cost(_rec(mitigation=m))
        assert c.kind == "static" and c.measured == analysis.SPTS_RTL_PENDING
    assert cost(_rec(mitigation="scaling")).kind == "none"  # the static scaling, folded
    assert cost(_rec(mitigation="scaling_batch")).kind == "per-batch statistic"
    assert "hardware saving" in cost(_rec(criterion="weight_norm_site")).note
    assert cost(_rec(pattern="unstructured:0.5")).kind == "software only"


def test_rendered_quality_table_has_the_columns():
    recs = [_rec(pattern="dense", criterion=None), _rec(), _rec(mitigation="spts"),
            _rec(mitigation="dpts")]
    t = next(t for t in render.tables([], None, recs) if t.title.startswith("Model quality"))
    assert t.columns[-2:] == ["hardware cost (per token)", "hardware measured"]
    spts = t.rows[2]
    assert spts[-2].startswith("static: K subtractions") and spts[-1] == render.NOT_RUN
    assert t.rows[3][-2].startswith("per-token statistic: median of K") and t.rows[3][-1] == "-"
    assert "S-PTS engine RTL" in t.note and "lands later" in t.note
