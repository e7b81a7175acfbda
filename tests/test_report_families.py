"""Second FPGA families: parsers on stored real tool outputs (tests/fixtures/report/families),
the scan wrapper, the carry-input work-around, and `nmsparse report --families` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmsparse import cli
from nmsparse.report import families, parse, render

FIX = Path(__file__).parent / "fixtures" / "report" / "families"
MOD = "nm_topk_2_4_int8_rank"


def test_xilinx_synth_parser():
    res = parse.xilinx_synth_resources((FIX / "xilinx_stat.json").read_text(), MOD)
    # LUT2 5 + LUT3 32 + LUT4 12 + LUT5 30 + LUT6 15, FDRE 25
    assert res["LUT"] == 94 and res["FF"] == 25 and res["CARRY4"] == 14
    assert res["DSP"] == 0 and res["INV"] == 32 and res["cells"] == 165
    wrapper = parse.xilinx_synth_resources((FIX / "xilinx_stat.json").read_text(),
                                           "nmsparse_timing_wrapper")
    assert wrapper["FF"] == 61 and wrapper["IBUF"] == 36


def test_nexus_parsers():
    res = parse.nexus_synth_resources((FIX / "nexus_stat.json").read_text(), MOD)
    assert res["LUT"] == 57 and res["CARRY"] == 50 and res["FF"] == 25
    assert res["WIDEFN9"] == 16 and "VHI" not in res
    placed = parse.nextpnr_nexus_resources((FIX / "nexus_pnr.json").read_text())
    assert placed["COMB"] == 215 and placed["FF"] == 112 and placed["IO"] == 4
    assert placed["fmax_mhz"] == pytest.approx(194.25, abs=0.01) and placed["target_mhz"] == 200
    with pytest.raises(parse.ParseError, match="nextpnr-nexus report has no 'utilization'"):
        parse.nextpnr_nexus_resources("{}")


def test_parse_families():
    assert families.parse_families("xilinx, nexus,ecp5") == ("xilinx", "nexus")
    assert families.parse_families("") == ()
    with pytest.raises(ValueError, match="unknown FPGA family 'vivado'; valid: ecp5, xilinx"):
        families.parse_families("vivado")


def test_scan_wrapper_feeds_every_input_and_captures_every_output():
    ports = {"clk": ("in", 1), "rst": ("in", 1), "a": ("in", 5), "y": ("out", 3),
             "z": ("out", 1)}
    text, n_ff = families.scan_wrapper("m", ports)
    assert n_ff == 6 + 2 * 4
    assert ".rst(ichain[0:0])" in text and ".a(ichain[5:1])" in text
    assert ".y(dout[2:0])" in text and ".z(dout[3:3])" in text
    assert "capq <= dout;" in text  # capture without a multiplexer in front
    with pytest.raises(ValueError, match="no clock port"):
        families.scan_wrapper("m", {"a": ("in", 1)})


def test_constant_carry_inputs_are_detached():
    net = {"modules": {"top": {"cells": {
        "lo": {"type": "VLO", "connections": {"Z": [7]}},
        "c0": {"type": "CCU2", "connections": {"CIN": [7], "A0": [3]},
               "port_directions": {"CIN": "input"}},
        "c1": {"type": "CCU2", "connections": {"CIN": [9]}},
        "c2": {"type": "CCU2", "connections": {"CIN": ["0"]}}}}}}
    assert families._detach_constant_carry_in(net) == 2
    cells = net["modules"]["top"]["cells"]
    assert "CIN" not in cells["c0"]["connections"] and cells["c1"]["connections"]["CIN"] == [9]


def test_flow_signatures_differ_and_leave_ecp5_alone():
    from nmsparse.report import synth

    sigs = {f: families.flow_signature(f) for f in families.FAMILIES}
    assert len(set(sigs.values())) == 3 and sigs["ecp5"] == synth.flow_signature()


def test_report_with_families_end_to_end(tmp_path, small_hdl, capsys):
    """Xilinx and Nexus synthesis of a small module (--no-place keeps it short), the columns,
    and a second report without --families that reads them from the cache (about 25-35 s on
    an idle machine). In the default run: while it was marked slow, a change of the tool
    runner's return value broke every family measurement unnoticed."""
    out = tmp_path / "reports"
    args = ["report", "--hdl", str(small_hdl), "-o", str(out), "--jobs", "1", "--no-place"]
    assert cli.main([*args, "--families", "xilinx,nexus"]) == 0
    text = capsys.readouterr().out
    assert "2 measurement(s) of xilinx, nexus" in text
    (rec,) = json.loads((out / "resources.json").read_text())["modules"]
    x, n = rec["xilinx"]["post_synth"], rec["nexus"]["post_synth"]
    assert 20 <= x["LUT"] <= 400 and x["FF"] == rec["post_synth"]["FF"]
    assert 20 <= n["LUT"] <= 400 and n["FF"] == rec["post_synth"]["FF"]
    assert rec["nexus"]["post_place"] is None and rec["family_errors"] == {}
    md = (out / "report.md").read_text()
    assert "Second FPGA families" in md and "post-synthesis ESTIMATES" in md
    fam = md[md.index("Second FPGA families"):]
    row = next(line for line in fam.splitlines() if line.startswith(f"| {MOD} |"))
    assert row.startswith(f"| {MOD} | {x['LUT']} | {x['FF']} |")
    assert row.endswith("| not run | not run |")  # Nexus not placed with --no-place
    # without --families: nothing runs, the cached figures stay in the report
    assert cli.main(args) == 0
    assert "measurement(s) of" not in capsys.readouterr().out
    (again,) = json.loads((out / "resources.json").read_text())["modules"]
    assert again["xilinx"] == rec["xilinx"] and again["nexus"] == rec["nexus"]


def test_families_table_marks_failures_and_missing():
    recs = [{"module": "a", "xilinx": {"post_synth": {"LUT": 5, "FF": 1, "CARRY4": 0, "DSP": 0,
                                                      "MUXF7": 0}},
             "nexus": None, "family_errors": {"nexus": "boom"}},
            {"module": "b"}]
    t = render._families_table(recs)
    assert t.rows[0][1] == "5" and t.rows[0][6] == render.FAILED
    assert t.rows[1][1] == render.NOT_RUN
