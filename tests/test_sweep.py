"""`nmsparse sweep`: grids from the gen configs, and real sweeps on a real Dask LocalCluster
(2 workers, 1 thread each) with real synthesis, place and route and cross-check: a two-point
sweep served from the cache the second time, a worker killed mid-measurement, a tool that
fails."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from gen.config import TopKConfig
from nmsparse import cli
from nmsparse.sweep import grid, page, runner, table
from nmsparse.sweep.grid import Grid


# ----------------------------------------------------------------------------- grid (no tools)
def test_grid_is_the_product_of_config_parameters():
    g = Grid("topk", {"pattern": ["2:4", "4:8"], "arch": ["rank", "network"],
                      "pipeline": [1, 2]})
    pts = g.points()
    assert len(pts) == 8 and all(p.valid for p in pts)
    names = [p.name for p in pts]
    assert len(set(names)) == 8
    # the default register stages keep the shipped name (so the report's cache is shared)
    assert "nm_topk_2_4_int8_rank" in names and "nm_topk_2_4_int8_rank_p2" in names
    assert pts[0].config.pipeline == 1 and pts[0].config.n == 2


def test_every_config_class_is_a_unit_and_any_field_an_axis():
    classes = grid.config_classes()
    assert {"topk", "spmac", "linear", "dense_mac"} <= set(classes)
    p = Grid("linear", {"pattern": ["2:4"], "weight_width": [4], "outputs": [2]}).points()[0]
    assert p.valid and p.config.weight_width == 4 and p.name == "nm_linear_2_4_int8_k2_w4"
    assert Grid("dense_mac", {"pattern": ["8:16"]}).points()[0].config.m == 16


def test_invalid_combinations_are_points_with_their_error():
    pts = Grid("spmac", {"pattern": ["2:4"], "fmt": ["int8", "bf16"]}).points()
    assert [p.valid for p in pts] == [True, False]
    assert "bf16" in pts[1].error and pts[1].name.startswith("invalid:")


def test_unknown_unit_or_parameter_is_an_error_at_once():
    with pytest.raises(ValueError, match="topk has no parameter colour; its parameters: "
                                         "pattern, n, m"):
        Grid("topk", {"colour": [1]}).points()
    with pytest.raises(ValueError, match="unit must be one of .*not 'fft'"):
        Grid("fft", {}).points()


def test_duplicates_are_measured_once():
    default = TopKConfig(n=2, m=4).pipeline  # the default point, given once more explicitly
    g = Grid("topk", {"pattern": ["2:4"], "pipeline": [None, default]})
    assert [p.name for p in grid.expand([g])] == ["nm_topk_2_4_int8_network"]


def test_parse_param():
    assert grid.parse_param("pipeline=0,1,none") == ("pipeline", [0, 1, None])
    assert grid.parse_param("target-mhz=150.5") == ("target_mhz", [150.5])
    with pytest.raises(ValueError, match="NAME=V1,V2"):
        grid.parse_param("pipeline")


def test_sweep_file_errors(tmp_path):
    f = tmp_path / "s.toml"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        runner.load_spec(f)
    f.write_text("[sweep]\nname = 'x'\n")
    with pytest.raises(ValueError, match="no \\[\\[grid\\]\\] table"):
        runner.load_spec(f)
    f.write_text("[sweep]\nbogus = 1\n[[grid]]\nunit = 'topk'\n")
    with pytest.raises(ValueError, match="unknown \\[sweep\\] option bogus"):
        runner.load_spec(f)
    f.write_text("[[grid]]\nunit = 'topk'\npattern = ['2:4']\n[prune]\nmax_area = 3\n")
    with pytest.raises(ValueError, match="unknown \\[prune\\] key max_area"):
        runner.load_spec(f)
    f.write_text("[[grid]]\nunit = 'topk'\npattern = [\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        runner.load_spec(f)
    assert cli.main(["sweep", str(tmp_path / "none.toml")]) == 2
    assert cli.main(["sweep"]) == 2


def test_sample_is_deterministic():
    names = [f"m{i}" for i in range(400)]
    a = [n for n in names if runner._sampled(n, 0.25, 1)]
    assert a == [n for n in names if runner._sampled(n, 0.25, 1)]
    assert 60 < len(a) < 140


def test_pareto_front():
    rows = [{"module": "a", "status": "ok", "lut4": 10, "fmax_mhz": 100},
            {"module": "b", "status": "ok", "lut4": 20, "fmax_mhz": 200},
            {"module": "c", "status": "ok", "lut4": 30, "fmax_mhz": 150},
            {"module": "d", "status": "failed", "lut4": 1, "fmax_mhz": 999}]
    assert page.pareto(rows, [("lut4", "min"), ("fmax_mhz", "max")]) == {"a", "b"}


# ----------------------------------------------------------------------------- real sweeps
@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    lc = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=40)
    client = Client(lc)
    yield client
    client.close()
    lc.close()


def _spec(tmp: Path, grids, **kw) -> runner.SweepSpec:
    kw.setdefault("verify", 0.0)
    return runner.SweepSpec(grids=grids, name="t", output=tmp / "out", cache=tmp / "cache",
                            quality=None, **kw)


def test_two_point_sweep_on_a_local_cluster(tmp_path, cluster):
    grids = [Grid("topk", {"pattern": ["2:4"], "fmt": ["int8"], "arch": ["rank"]},
                  options={"verify": 1.0}),
             Grid("topk", {"pattern": ["2:4"], "fmt": ["int4"], "arch": ["rank"]})]
    out = io.StringIO()
    res = runner.run_sweep(_spec(tmp_path, grids), client=cluster, stream=out)
    log = out.getvalue()
    assert "2 points" in log and "2/2 points" in log
    assert [r["status"] for r in res.rows] == ["ok", "ok"], log
    a, b = res.rows
    assert a["module"] == "nm_topk_2_4_int8_rank" and b["module"] == "nm_topk_2_4_int4_rank"
    for r in res.rows:
        assert 30 <= r["lut4"] <= 500 and 20 <= r["fmax_mhz"] <= 500
        assert r["transistors"] > 1000 and r["comb_placed"] >= r["lut4"] // 2
    assert b["lut4"] < a["lut4"]  # narrower keys, fewer comparator bits
    assert a["verified_groups"] > 500 and a["mismatches"] == 0
    assert b["verified_groups"] is None  # not in the sample
    assert res.measured == 2 and res.cached == 0
    # one table in three forms
    assert [r["module"] for r in table.read(res.files["parquet"])] == [a["module"], b["module"]]
    csv_rows = table.read(res.files["csv"])
    assert csv_rows[0]["lut4"] == a["lut4"] and csv_rows[1]["fmax_mhz"] == b["fmax_mhz"]
    recs = json.loads(res.files["records"].read_text())["modules"]
    assert recs[0]["post_place"]["fmax_mhz"] == a["fmax_mhz"]
    # the page embeds plotly.js and loads nothing from the network
    html = res.files["html"].read_text()
    assert "Plotly.newPlot" in html and len(html) > 1_000_000
    assert "<script src=" not in html.replace("<script src=\"data:", "")
    assert "nm_topk_2_4_int4_rank" in html and "Pareto" in html
    # the emitted Verilog is kept for the user
    assert (tmp_path / "out" / "hdl" / "nm_topk_2_4_int8_rank.v").is_file()
    # nothing measured twice: the second run is served from the cache
    out2 = io.StringIO()
    t0 = time.monotonic()
    res2 = runner.run_sweep(_spec(tmp_path, grids), client=cluster, stream=out2)
    assert res2.measured == 0 and res2.cached == 2
    assert time.monotonic() - t0 < 30
    assert [(r["lut4"], r["fmax_mhz"], r["verified_groups"]) for r in res2.rows] == \
        [(r["lut4"], r["fmax_mhz"], r["verified_groups"]) for r in res.rows]


def test_resume_and_a_killed_worker(tmp_path, cluster):
    """An interrupted sweep resumes (a point measured before is not measured again), and a
    worker killed while it runs Yosys is replaced: the task runs again, the sweep ends ok."""
    first = [Grid("topk", {"pattern": ["2:4"], "arch": ["network"], "pipeline": [2]})]
    r1 = runner.run_sweep(_spec(tmp_path, first, place=False), client=cluster,
                          stream=io.StringIO())
    assert r1.measured == 1 and r1.rows[0]["status"] == "ok"
    both = [Grid("topk", {"pattern": ["2:4"], "arch": ["network"], "pipeline": [2, 3]})]
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(
        r=runner.run_sweep(_spec(tmp_path, both, place=False, retries=0), client=cluster,
                           stream=io.StringIO())))
    pids_before = cluster.run(os.getpid)
    thread.start()
    killed = None
    deadline = time.monotonic() + 180
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        for addr, keys in cluster.processing().items():
            if any(str(k).startswith("measure.ecp5-") for k in keys):
                time.sleep(1.0)  # let Yosys start
                os.kill(pids_before[addr], signal.SIGKILL)
                killed = addr
                break
        time.sleep(0.2)
    thread.join(600)
    assert killed is not None, "no measurement was seen running"
    res = result["r"]
    assert [r["status"] for r in res.rows] == ["ok", "ok"], res.rows
    assert res.cached == 1 and res.measured == 1  # resumed: only the new point measured
    assert res.rows[1]["lut4"] > 0
    cluster.wait_for_workers(2, timeout=120)
    assert cluster.run(os.getpid)  # the nanny restarted the killed worker


def test_a_failing_tool_is_recorded_not_fatal(tmp_path, capsys):
    f = tmp_path / "fail.toml"
    f.write_text(f"""
[sweep]
name = "fail"
output = "{tmp_path / 'out'}"
cache = "{tmp_path / 'cache'}"
place = false
verify = 0
retries = 1

[[grid]]
unit = "dense_mac"
pattern = ["2:4"]
outputs = [1]

[[grid]]                    # Yosys cannot finish in 50 ms: a tool failure, retried once
unit = "topk"
pattern = ["2:4"]
timeout = 0.05

[[grid]]                    # the generator rejects it: an invalid point
unit = "spmac"
pattern = ["2:4"]
fmt = ["bf16"]
""")
    assert cli.main(["sweep", str(f), "--workers", "2"]) == 1
    text = capsys.readouterr().out
    rows = {r["module"]: r for r in table.read(tmp_path / "out" / "sweep.csv")}
    assert rows["dense_mac_4_int8_k1"]["status"] == "ok"
    bad = rows["nm_topk_2_4_int8_network"]
    assert bad["status"] == "failed" and "did not finish in 0.05 s" in bad["error"]
    inv = [r for m, r in rows.items() if m.startswith("invalid:")]
    assert len(inv) == 1 and "bf16" in inv[0]["error"]
    assert "failures (2):" in text and "did not finish" in text
    assert "3 points (1 failed, 1 invalid, 1 ok)" in text
