"""Records, tables, summary and plots of the report, from stored real measurements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmsparse.report import analysis, baselines, cli, parse, records, render

FIX = Path(__file__).parent / "fixtures" / "report"
TOPK = FIX / "topk_2_4_int8_rank"


def _measured() -> dict:
    """The figures of the 2:4 selector as synth.measure returns them, from the fixtures."""
    return {
        "post_synth": parse.ecp5_synth_resources((TOPK / "synth_stat.json").read_text()),
        "post_place": {**parse.nextpnr_resources((TOPK / "pnr.json").read_text()),
                       "wrapper_ff": 61, "device": "LFE5U-85F"},
        "asic": {"transistors": parse.cmos_transistors((TOPK / "asic_stat.json").read_text()),
                 "logic_depth": parse.ltp_depth((TOPK / "ltp.txt").read_text())},
        "runtime_s": {"yosys": 10.0, "nextpnr": 9.5},
        "tools": {"yosys": "0.70 (28ba3cb92)"},
    }


@pytest.fixture
def point(small_hdl) -> records.Point:
    return records.find_points(small_hdl)[0]


def test_record_joins_sidecar_and_measurement(point):
    rec = records.make_record(point, _measured())
    assert rec["module"] == "nm_topk_2_4_int8_rank"
    assert rec["pattern"] == "2:4" and rec["unit"] == "topk" and rec["arch"] == "rank"
    assert rec["latency_cycles"] == 1 and rec["comparators"] == 6
    assert rec["index_bits_per_group"] == 4  # 2 indices of 2 bits
    assert rec["post_synth"]["LUT"] == 125 and rec["post_place"]["fmax_mhz"] > 100
    assert rec["error"] is None
    failed = records.make_record(point, None, error="boom")
    assert failed["post_synth"] is None and failed["error"] == "boom"


def test_find_points_errors(tmp_path, point, small_hdl):
    with pytest.raises(FileNotFoundError, match="nmsparse generate"):
        records.find_points(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        records.find_points(tmp_path)
    with pytest.raises(ValueError, match="'some'"):
        records.find_points(small_hdl, "some")
    with pytest.raises(ValueError, match="matching nm_dense"):
        records.find_points(small_hdl, only=["nm_dense*"])
    assert [p.module for p in records.find_points(small_hdl, "all")] == [point.module]


def test_not_run_without_results(point, tmp_path):
    recs = [records.make_record(point, _measured())]
    res, md, page = cli.write_reports(recs, tmp_path)
    text = md.read_text()
    assert "| nm_topk_2_4_int8_rank | 2:4 | int8 | rank | 125 | 40 | 40 | 16 | 25 | 247 | 110.8 |" \
        in text
    assert "cross-check: not run" in text and "Model quality: not run" in text
    doc = json.loads(res.read_text())
    assert doc["modules"][0]["post_place"]["fmax_mhz"] == pytest.approx(110.77, abs=0.01)
    assert set(doc["modules"][0]) >= {"post_synth", "post_place", "asic", "latency_cycles"}
    html = page.read_text()
    assert "data:image/png;base64," in html  # area and Fmax plots
    assert "Perplexity vs selection cost" in html and "not run: no data" in html


def test_results_columns_come_from_the_files(point, tmp_path):
    recs = [records.make_record(point, _measured())]
    (tmp_path / "crosscheck.json").write_text(json.dumps([
        {"module": point.module, "pattern": "2:4", "fmt": "int8", "arch": "rank",
         "groups": 4096, "mismatches": 0, "groups_per_second": 1234.5, "seed": 1,
         "source": "embedded"}]))
    (tmp_path / "quality.json").write_text(json.dumps([
        # weight pruning with dense activations is not the dense reference
        {"pattern": "dense", "criterion": None, "mitigation": None, "weight_pattern": "2:4",
         "ppl": 30.0, "tokens": 1000, "model": "SmolLM2", "text": "austen"},
        {"pattern": "dense", "criterion": None, "mitigation": None, "weight_pattern": None,
         "ppl": 20.0, "tokens": 1000, "model": "SmolLM2", "text": "austen"},
        {"pattern": "2:4", "criterion": "magnitude", "mitigation": None,
         "weight_pattern": None, "ppl": 25.0, "tokens": 1000, "model": "SmolLM2",
         "text": "austen"}]))
    _, md, page = cli.write_reports(recs, tmp_path)
    text = md.read_text()
    assert "| 4,096 | 0 |" in text
    assert "4,096 groups over 1 runs, 0 mismatches" in text
    assert "2:4: perplexity 25.000, +25.0% vs dense" in text
    assert "Pareto-optimal patterns" in text
    assert page.read_text().count("data:image/png;base64,") == 3


def test_failed_point_shows_failed_not_a_number(point, tmp_path):
    recs = [records.make_record(point, None, error="Yosys synthesis failed")]
    _, md, _ = cli.write_reports(recs, tmp_path)
    row = next(line for line in md.read_text().splitlines()
               if line.startswith("| nm_topk_2_4_int8_rank"))
    assert "failed" in row and "125" not in row
    assert "failed: nm_topk_2_4_int8_rank" in md.read_text()


def test_savings_against_dense():
    def rec(module, unit, n, m, lut, tr, mult):
        return {"module": module, "unit": unit, "pattern": f"{n}:{m}", "n": n, "m": m,
                "fmt": "int8", "outputs": 4, "lanes": 1, "groups_per_cycle": 1,
                "multipliers": mult, "error": None,
                "post_synth": {"LUT": lut, "DSP": mult}, "post_place": {"COMB": lut},
                "asic": {"transistors": tr}}
    recs = [rec("nm_spmac_8_16_int8_k4", "spmac", 8, 16, 500, 40_000, 32),
            rec("dense_mac_16_int8_k4", "dense_mac", None, 16, 800, 100_000, 64)]
    (s,) = analysis.savings(recs)
    assert s["dense"] == "dense_mac_16_int8_k4"
    assert s["transistor_ratio"] == pytest.approx(0.4)
    assert s["mult_ratio"] == pytest.approx(0.5)
    assert s["eff_macs_sparse"] == 32 and s["eff_macs_dense"] == 32


def test_baselines_catch_a_blow_up(point, tmp_path):
    rec = records.make_record(point, _measured())
    base = baselines.load(baselines.write(tmp_path / "b.json", [rec]))
    assert baselines.compare([rec], base) == []
    worse = json.loads(json.dumps(rec))
    worse["post_synth"]["LUT"] = 200
    worse["post_place"]["fmax_mhz"] = 50.0
    problems = baselines.compare([worse], base)
    assert any("post_synth.LUT = 200, baseline 125" in p for p in problems)
    assert any("fmax_mhz" in p for p in problems)
    assert baselines.compare([], base) == [
        "nm_topk_2_4_int8_rank: in the baseline but not measured"]


def test_cli_rejects_bad_jobs():
    import argparse

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    with pytest.raises(SystemExit):
        p.parse_args(["--jobs", "0"])
    assert p.parse_args(["--jobs", "3"]).jobs == 3


def test_cached_only_shows_not_run(tmp_path, capsys, small_hdl):
    from nmsparse import cli as main_cli

    out = tmp_path / "reports"
    assert main_cli.main(["report", "--hdl", str(small_hdl), "-o", str(out),
                          "--cached-only"]) == 0
    assert "0 cached, 1 not run (--cached-only)" in capsys.readouterr().out
    text = (out / "report.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| nm_topk_2_4_int8_rank"))
    assert row.count("not run") >= 10 and "failed" not in row
    assert "0 of 1 modules measured; not run: nm_topk_2_4_int8_rank." in text


def test_markdown_cells_escape_the_pipe():
    """A cost text such as ``|x| * f`` stays one cell of the markdown table."""
    t = render.Table("t", ["a", "b"], [["|x| * f", "2"]])
    row = t.to_markdown().splitlines()[-1]
    assert row == "| \\|x\\| * f | 2 |"
