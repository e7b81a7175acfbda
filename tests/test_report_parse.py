"""Parsers of Yosys / nextpnr outputs, on stored real tool outputs (tests/fixtures/report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmsparse.report import parse

FIX = Path(__file__).parent / "fixtures" / "report"
TOPK = FIX / "topk_2_4_int8_rank"


def test_synth_stat_normalized_keys():
    res = parse.ecp5_synth_resources((TOPK / "synth_stat.json").read_text())
    assert res["LUT"] == 125
    assert res["CARRY"] == 40
    assert res["FF"] == 25
    assert res["PFUMX"] == 40
    assert res["L6MUX"] == 16
    assert res["DSP"] == 0
    assert res["cells"] == 246


def test_synth_stat_by_module_and_unknown_module():
    text = (TOPK / "synth_stat.json").read_text()
    assert parse.yosys_cell_counts(text, "nm_topk_2_4_int8_rank")["LUT4"] == 125
    with pytest.raises(parse.ParseError, match="no module 'nope'"):
        parse.yosys_cell_counts(text, "nope")


def test_unknown_cell_types_are_kept():
    doc = {"design": {"num_cells_by_type": {"LUT4": 3, "WEIRD_CELL": 2}}}
    res = parse.ecp5_synth_resources(json.dumps(doc))
    assert res["LUT"] == 3 and res["WEIRD_CELL"] == 2 and res["cells"] == 5


def test_nextpnr_report():
    res = parse.nextpnr_resources((TOPK / "pnr.json").read_text())
    assert res["COMB"] == 247
    assert res["FF"] == 86
    assert res["DSP"] == 0
    assert res["fmax_mhz"] == pytest.approx(110.77, abs=0.01)
    assert res["target_mhz"] == 200
    res = parse.nextpnr_resources((TOPK / "pnr.json").read_text(), clock="clk")
    assert res["fmax_mhz"] == pytest.approx(110.77, abs=0.01)
    with pytest.raises(parse.ParseError, match="no clock 'sys'"):
        parse.nextpnr_resources((TOPK / "pnr.json").read_text(), clock="sys")


def test_critical_path_names_the_signals_and_splits_the_delay():
    cp = parse.critical_path((TOPK / "pnr.json").read_text())
    # the worst path sets the clock: 1000 / 110.77 MHz = 9.03 ns
    assert cp == {"source": "i__payload.data", "sink": "o__payload", "ns": 9.03,
                  "logic_ns": 3.61, "routing_ns": 5.42, "cells": 14}
    assert parse.critical_path((FIX / "pnr_no_fmax.json").read_text()) is None


def test_nextpnr_without_register_paths_has_no_fmax():
    res = parse.nextpnr_resources((FIX / "pnr_no_fmax.json").read_text())
    assert res["fmax_mhz"] is None and res["COMB"] == 16 and res["FF"] == 9


def test_transistors_json_and_text():
    assert parse.cmos_transistors((TOPK / "asic_stat.json").read_text()) == 2768
    assert parse.cmos_transistors((FIX / "asic_add8.txt").read_text()) == 494
    with pytest.raises(parse.ParseError, match="-tech cmos"):
        parse.cmos_transistors((TOPK / "synth_stat.json").read_text())


def test_ltp_depth():
    assert parse.ltp_depth((TOPK / "ltp.txt").read_text()) == 24
    text = ("Longest topological path in a (length=3):\nLongest topological path in b "
            "(length=7):\n")
    assert parse.ltp_depth(text) == 7
    with pytest.raises(parse.ParseError):
        parse.ltp_depth("nothing here")


def test_bad_json_names_the_tool():
    with pytest.raises(parse.ParseError, match="nextpnr report is not valid JSON"):
        parse.nextpnr_resources("{truncated")
    with pytest.raises(parse.ParseError, match="utilization"):
        parse.nextpnr_resources("{}")


def test_yosys_version():
    text = (TOPK / "synth_stat.json").read_text()
    assert parse.yosys_version(text) == "0.70 (28ba3cb92)"
    assert parse.yosys_version("Yosys 0.40") == "0.40"
    assert parse.yosys_version("no banner") is None


MAC = FIX / "dense_mac_4_int8_k4"


def test_hierarchical_stat_counts_module_and_wrapper_apart():
    """The current flow keeps the module as one level inside its timing wrapper."""
    text = (MAC / "synth_stat.json").read_text()
    mod = parse.ecp5_synth_resources(text, "dense_mac_4_int8_k4")
    assert (mod["LUT"], mod["CARRY"], mod["FF"], mod["DSP"]) == (949, 64, 515, 16)
    wrap = parse.ecp5_synth_resources(text, "nmsparse_timing_wrapper")
    assert wrap["FF"] == 294 and wrap["LUT"] == 0  # registers only
    whole = parse.ecp5_synth_resources(text)  # design totals: module + wrapper
    assert whole["FF"] == 515 + 294


def test_placed_mac_uses_dsp_blocks():
    res = parse.nextpnr_resources((MAC / "pnr.json").read_text())
    assert res["DSP"] == 16 and res["FF"] == 515 + 294
    assert res["fmax_mhz"] == pytest.approx(111.12, abs=0.01)
    assert parse.cmos_transistors((MAC / "asic_stat.json").read_text()) == 88216
    assert parse.ltp_depth((MAC / "ltp.txt").read_text()) == 78
