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
    for m in ("spts", "spts_paper"):
        c = cost(_rec(mitigation=m))
        assert c.kind == "static" and c.measured == analysis.SPTS_NOT_RUN
    assert cost(_rec(mitigation="lpts")).measured == analysis.LPTS_NOT_RUN
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
    assert "S-PTS engine" in t.note and "not run" in t.note


def _engine(module, shift=None, lut=1000, ff=500, fmax=100.0, tr=20000, error=None):
    params = {"n": 8, "m": 16, "fmt": "int8", "outputs": 4, "weights": "stream"}
    if shift is not None:
        params["shift"] = shift
    return {"module": module, "unit": "linear", "pattern": "8:16", "n": 8, "m": 16,
            "fmt": "int8", "outputs": 4, "lanes": 1, "params": params, "error": error,
            "post_synth": {"LUT": lut, "CARRY": 10, "FF": ff, "DSP": 32},
            "post_place": {"fmax_mhz": fmax}, "asic": {"transistors": tr}}


def test_static_shift_cost_comes_from_the_records():
    plain = _engine("nm_linear_8_16_int8_k4")
    shift = _engine("nm_linear_8_16_int8_k4_shift", shift=-3, lut=1100, ff=550, fmax=95.0,
                    tr=22000)
    c = analysis.hardware_cost(_rec(mitigation="spts"), [plain, shift])
    assert c.measured.startswith("nm_linear_8_16_int8_k4_shift vs nm_linear_8_16_int8_k4: ")
    assert "LUT4 1000 -> 1100 (+10.0%)" in c.measured and "Fmax 100 -> 95 MHz (-5.0%)" in c.measured
    # one side missing or failed: not run, never a figure from elsewhere
    assert analysis.hardware_cost(_rec(mitigation="spts"), [shift]).measured == \
        analysis.SPTS_NOT_RUN
    failed = _engine("nm_linear_8_16_int8_k4", error="timeout")
    assert analysis.shift_costs([failed, shift]) == []
    # the shift engine is not a second sparse engine of the savings and sweep tables
    assert [s["module"] for s in analysis.savings([plain, shift])] == []
    assert [p.module for p in analysis.engine_points([plain, shift])] == [plain["module"]]
    t = render._quality_table([_rec(mitigation="spts")], [plain, shift])
    assert t.rows[0][-1] == c.measured and "from this report's records" in t.note


def test_lpts_cost_comes_from_the_run_time_shift_engine():
    """L-PTS (eta per channel) is measured on the run-time engine (``shift: "input"``), the
    constant-shift engine stays spts's, and neither stands in for the other."""
    plain = _engine("nm_linear_8_16_int8_k4")
    const = _engine("nm_linear_8_16_int8_k4_shift", shift=-3, lut=1100)
    rt = _engine("nm_linear_8_16_int8_k4_shiftin", shift="input", lut=1200, ff=700)
    lpts = analysis.hardware_cost(_rec(mitigation="lpts"), [plain, const, rt])
    assert lpts.measured.startswith("nm_linear_8_16_int8_k4_shiftin vs nm_linear_8_16_int8_k4")
    assert "LUT4 1000 -> 1200 (+20.0%)" in lpts.measured
    spts = analysis.hardware_cost(_rec(mitigation="spts"), [plain, const, rt])
    assert spts.measured.startswith("nm_linear_8_16_int8_k4_shift vs ")
    assert analysis.hardware_cost(_rec(mitigation="lpts"), [plain, const]).measured == \
        analysis.LPTS_NOT_RUN
    assert analysis.hardware_cost(_rec(mitigation="spts"), [plain, rt]).measured == \
        analysis.SPTS_NOT_RUN
