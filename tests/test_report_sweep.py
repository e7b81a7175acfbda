"""The engine-vs-dense analysis of the report: pairs, break-even K, throughput per area.

Records are built the way ``records.make_record`` builds them (the figures are arbitrary but
chosen so that every derived number can be checked by hand).
"""

from __future__ import annotations

import pytest

from nmsparse.report import analysis, render


def rec(unit: str, m: int, k: int, *, n: int | None = None, weights: str = "stream",
        tr: float | None = None, lut: float = 100, carry: float = 10, dsp: float | None = None,
        fmax: float | None = 100.0, bits: int | None = None) -> dict:
    mult = (n if unit == "linear" else m) * k
    name = (f"nm_linear_{n}_{m}_int8_k{k}" if unit == "linear" else f"dense_mac_{m}_int8_k{k}")
    return {
        "module": name + ("_wmem" if weights == "memory" else ""), "unit": unit,
        "pattern": f"{n}:{m}" if n else f"dense:{m}", "n": n, "m": m, "fmt": "int8",
        "outputs": k, "lanes": 1, "params": {"weights": weights}, "multipliers": mult,
        "weight_bits_per_group": bits, "weight_bits_stored": 4096 if weights == "memory" else None,
        "post_synth": {"LUT": lut, "CARRY": carry, "FF": 50, "DSP": mult if dsp is None else dsp,
                       "BRAM": 0, "LUTRAM": 0},
        "post_place": None if fmax is None else {"fmax_mhz": fmax},
        "asic": {"transistors": tr}, "runtime_s": {"yosys": 10.0, "nextpnr": 5.0},
        "error": None,
    }


def sweep(weights: str = "stream") -> list[dict]:
    """8:16 engines costing 50k + 40k K against dense 5k + 70k K: break-even at K = 1.5."""
    out = []
    for k in (4, 16, 32):
        out.append(rec("linear", 16, k, n=8, weights=weights, tr=50_000 + 40_000 * k,
                       fmax=150.0 if k < 32 else None))
        out.append(rec("dense_mac", 16, k, weights=weights, tr=5_000 + 70_000 * k,
                       fmax=140.0 if k < 16 else None))
    return out


def test_fit_line_is_exact_on_a_line():
    assert analysis.fit_line([4, 16, 32], [9, 33, 65]) == pytest.approx((1.0, 2.0))
    with pytest.raises(ValueError, match="two or more distinct"):
        analysis.fit_line([4, 4], [1, 2])


def test_pairs_match_m_k_and_weight_source():
    recs = sweep() + sweep("memory")
    pairs = analysis.engine_pairs(recs)
    assert len(pairs) == 6
    assert all(q.sparse.weights == q.dense.weights and q.sparse.k == q.dense.k for q in pairs)
    assert [q.sparse.weights for q in pairs][:3] == ["stream"] * 3  # stream first, by K
    q = pairs[0]
    assert q.sparse.eff_macs_per_cycle == 8 * 4 == q.dense.eff_macs_per_cycle
    # effective MACs/s per 1k transistors: 32 MACs x 150 MHz / 210k transistors x 1000
    assert q.eff_per_ktr[0] == pytest.approx(32 * 150e6 / 210_000 * 1e3)
    assert q.ratio("transistors") == pytest.approx(210_000 / 285_000)
    assert q.sparse.lut4_equivalents(306) == 100 + 2 * 10 + 306 * 32
    assert not pairs[2].sparse.fits and pairs[1].sparse.fits  # 256 > 156 DSP, 128 fit


def test_break_even_from_the_lines():
    (b,) = analysis.break_even(sweep())
    assert b.pattern == "8:16" and b.weights == "stream"
    assert b.sparse == pytest.approx((50_000, 40_000)) and b.dense == pytest.approx((5_000, 70_000))
    assert b.k_star == pytest.approx(45_000 / 30_000)
    assert b.first_measured == 4 and b.worst_residual == pytest.approx(0, abs=1e-9)
    never = [r if r["unit"] == "dense_mac"
             else {**r, "asic": {"transistors": 80_000 * r["outputs"]}} for r in sweep()]
    (b,) = analysis.break_even(never)
    assert b.k_star is None and b.first_measured is None
    # cheaper at every K: the lines cross at K < 1
    cheap = [r if r["unit"] == "dense_mac"
             else {**r, "asic": {"transistors": 1_000 + 40_000 * r["outputs"]}} for r in sweep()]
    assert any("smaller than dense at every K" in x for x in render.sweep_summary(cheap))


def test_sweep_tables_and_summary_state_fit_and_goal():
    recs = sweep()
    tables = render.sweep_tables(recs, lut4_per_dsp=306)
    text = "\n".join(t.to_markdown() for t in tables)
    assert "does not fit (256 DSP > 156)" in text  # 8:16 K = 32
    assert "| 8:16 | stream | transistors | 50,000 + 40,000 K | 5,000 + 70,000 K | 1.5 |" in text
    lines = render.sweep_summary(recs)
    goal = next(x for x in lines if "k16" in x)
    # 690k / 1,125k = 0.61; the dense K = 16 point is not placed: its clock is taken from
    # the largest placed dense array of the same M (K = 4, 140 MHz), which 150 MHz beats
    assert "0.61x the transistors" in goal
    assert "dense_mac_16_int8_k4, the largest placed dense array of M = 16, runs at 140.0" in goal
    assert "goal met (Fmax against dense_mac_16_int8_k4)" in goal
    unplaced = [{**r, "post_place": None} if r["unit"] == "dense_mac" else r for r in recs]
    goal = next(x for x in render.sweep_summary(unplaced) if "k16" in x)
    assert "dense not placed: Fmax not compared" in goal and "goal met" not in goal
    # an engine synthesized only (--no-place): not compared, and not called slower
    no_fmax = [{**r, "post_place": None} if r["unit"] == "linear" else r for r in recs]
    goal = next(x for x in render.sweep_summary(no_fmax) if "k16" in x)
    assert "engine not placed: Fmax not compared" in goal and "below dense" not in goal
    assert any("Break-even 8:16 (stream weights, transistors): K = 1.5" in x for x in lines)
    recs[3]["post_place"] = {"fmax_mhz": 140.0}
    goal = next(x for x in render.sweep_summary(recs) if "k16" in x)
    assert "goal met" in goal
    recs[3]["post_place"] = {"fmax_mhz": 160.0}
    assert "Fmax below dense" in next(x for x in render.sweep_summary(recs) if "k16" in x)


def test_memory_table_reports_bits_read():
    recs = [rec("linear", 16, 16, n=8, weights="memory", tr=1e5, bits=1024),
            rec("dense_mac", 16, 16, weights="memory", tr=2e5, bits=2048)]
    text = "\n".join(t.to_markdown() for t in render.sweep_tables(recs))
    assert "| 8:16 | memory | 16 | 1,024 / 2,048 | 0.50 | 16 x 2 x 128 | 4,096 | 1.00 |" in text


def lane(r: dict) -> dict:
    """An engine record turned into its lane-bank form (DESIGN.md 3.1): N banks, 4.5 copies."""
    return {**r, "module": r["module"].replace("_wmem", "_wlane"),
            "params": {"weights": "memory", "banks": "lane"},
            "weight_bits_stored": r["weight_bits_stored"] * 9 // 2}


def test_lane_banks_pair_with_the_dense_memory_baseline():
    """Lane-bank engines pair with the dense baseline from memory, but fit their own lines
    and show their copies of the weights in the memory table."""
    recs = sweep("memory")
    recs += [lane(r) for r in recs if r["unit"] == "linear"]
    pairs = analysis.engine_pairs(recs)
    assert [q.sparse.weights for q in pairs] == ["memory"] * 3 + [analysis.LANE_LABEL] * 3
    assert all(q.dense.module.endswith("_wmem") and q.dense.k == q.sparse.k for q in pairs)
    assert {b.weights for b in analysis.break_even(recs)} == {"memory", analysis.LANE_LABEL}
    text = "\n".join(t.to_markdown() for t in render.sweep_tables(recs))
    assert f"| 8:16 | {analysis.LANE_LABEL} | 4 | - / - | - | 8 x 72 x 32 | 18,432 | 4.50 |" \
        in text
    goal = [x for x in render.sweep_summary(recs) if "k16" in x]
    assert len(goal) == 2 and f"({analysis.LANE_LABEL} weights)" in goal[1]


def test_sweep_plots_need_two_k():
    assert render.sweep_plots(sweep()[:2]) == {}
    pngs = render.sweep_plots(sweep() + sweep("memory"))
    assert set(pngs) == {"engine_area_vs_k", "engine_eff_vs_k"}
    assert all(p.startswith(b"\x89PNG") for p in pngs.values())
