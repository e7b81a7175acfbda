"""The report's cost-of-flexibility analysis and rendering, from records of measured figures."""

from __future__ import annotations

import json

import pytest

from gen.config import FlexTopKConfig
from gen.emit import emit
from nmsparse.report import analysis, records, render


def _rec(module, unit, pattern, fmt, lut, ff, fmax, tr, **kw):
    return {"module": module, "unit": unit, "pattern": pattern, "fmt": fmt, "lanes": 1,
            "arch": kw.pop("arch", "rank"), "n": kw.pop("n", None), "m": kw.pop("m", None),
            "outputs": None, "latency_cycles": 4, "comparators": 1, "network_depth": 1,
            "multipliers": None, "index_bits_per_group": 0, "error": None,
            "post_synth": {"LUT": lut, "FF": ff, "CARRY": 0, "PFUMX": 0, "L6MUX": 0},
            "post_place": {"fmax_mhz": fmax, "COMB": lut}, "asic": {"transistors": tr},
            "runtime_s": {"yosys": 1.0}, **kw}


RECS = [
    _rec("nm_topk_16_32_int8_rank", "topk", "16:32", "int8", 4000, 1700, 100.0, 180_000,
         n=16, m=32),
    _rec("nm_topk_16_32_int8_network", "topk", "16:32", "int8", 8000, 1400, 36.0, 150_000,
         n=16, m=32, arch="network"),
    _rec("nm_topk_8_16_int8_rank", "topk", "8:16", "int8", 1500, 250, 80.0, 42_000, n=8, m=16),
    _rec("nm_topk_flex_32_int8_rank", "topk_flex", "flex:32", "int8", 4800, 2200, 84.0,
         200_000, w=32, max_kept=16, flexible=True),
    _rec("nm_topk_flex_16_int8_rank", "topk_flex", "flex:16", "int8", 1600, 600, 90.0, 50_000,
         w=16, max_kept=8, flexible=True),
]


def test_best_fixed_is_the_fewest_lut4() -> None:
    assert analysis.best_fixed(RECS, "16:32", "int8")["module"] == "nm_topk_16_32_int8_rank"
    assert analysis.best_fixed(RECS, "16:32", "bf16") is None


def test_flexibility_cost_scales_the_fixed_side_to_the_same_lanes() -> None:
    costs = analysis.flexibility_cost(RECS)
    got = [(c.flex, c.pattern, c.instances) for c in costs]
    assert got == [("nm_topk_flex_32_int8_rank", "16:32", 1),
                   ("nm_topk_flex_32_int8_rank", "8:16", 2),
                   ("nm_topk_flex_16_int8_rank", "8:16", 1)]
    c = costs[0]
    assert c.lut_ratio == pytest.approx(1.2) and c.fmax_ratio == pytest.approx(0.84)
    assert c.ff_ratio == pytest.approx(2200 / 1700)
    two = costs[1]
    assert two.lut == (4800, 3000) and two.transistor_ratio == pytest.approx(200 / 84)


def test_report_lines_and_table() -> None:
    lines = render.summary(RECS, None, None)
    flex = [ln for ln in lines if ln.startswith("Cost of flexibility (int8)")]
    assert len(flex) == 1
    assert "1.20x the LUT4" in flex[0] and "nm_topk_16_32_int8_rank" in flex[0]
    assert "2 x nm_topk_8_16_int8_rank" in flex[0]
    assert "LUT4 met (1.20x), Fmax NOT met (0.84x)" in flex[0]
    titles = [t.title for t in render.tables(RECS, None, None)]
    assert titles[1].startswith("Cost of flexibility")
    assert any(t.startswith("Runtime-flexible units") for t in titles)
    mac = next(t for t in render.tables(RECS, None, None) if t.title.startswith("MAC units"))
    assert not mac.rows  # flexible units have their own table


def test_record_of_a_flexible_sidecar(tmp_path) -> None:
    cfg = FlexTopKConfig(w=8, fmt="int4")
    emit(cfg, tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"modules": [cfg.name]}))
    (pt,) = records.find_points(tmp_path)
    rec = records.make_record(pt, None)
    assert rec["pattern"] == "flex:8" and rec["w"] == 8 and rec["max_kept"] == 4
    assert rec["flexible"] and rec["n"] is None and rec["comparators"] == 28
