"""The AXI4-Stream wrapper (``nmsparse generate --axis``): ports, sidecar, two simulators, and a
bit-exact run under cocotbext-axi's AxiStreamSource/AxiStreamSink with back-pressure and
``tlast`` frames against the golden model."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from gen.axis import axis_sidecar, emit_axis, tdata_fields
from gen.config import DenseMACConfig, LinearConfig, SparseMACConfig, TopKConfig
from nmsparse import cli
from nmsparse.contract import toolchain

POINTS = {
    "topk_rank_p1": TopKConfig(n=2, m=4, fmt="int8", arch="rank", pipeline=1),
    "topk_comb_p0": TopKConfig(n=2, m=4, fmt="int8", arch="network", pipeline=0),
    "topk_bf16_x2": TopKConfig(n=2, m=4, fmt="bf16", arch="network", lanes=2),
    "spmac_k2": SparseMACConfig(n=2, m=4, outputs=2),
    "linear_k2": LinearConfig(n=2, m=4, outputs=2),
    "dense_k2": DenseMACConfig(m=4, outputs=2),
}


@pytest.fixture(scope="module")
def axis_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("axis")
    for cfg in POINTS.values():
        emit_axis(cfg, d)
    return d


def _header(text: str) -> set[str]:
    m = re.search(r"module (\w+)\(([^)]*)\);", text)
    assert m is not None
    return {p.strip() for p in m.group(2).split(",")}


@pytest.mark.parametrize("key", list(POINTS))
def test_ports_are_axi4_stream_and_byte_aligned(axis_dir, key):
    cfg = POINTS[key]
    doc = json.loads((axis_dir / f"axis_{cfg.name}.json").read_text())
    text = (axis_dir / f"axis_{cfg.name}.v").read_text()
    assert _header(text) == {"aclk", "aresetn", "s_axis_tdata", "s_axis_tvalid",
                             "s_axis_tready", "s_axis_tlast", "m_axis_tdata", "m_axis_tvalid",
                             "m_axis_tready", "m_axis_tlast"}
    ports = doc["ports"]
    for side in ("s_axis_tdata", "m_axis_tdata"):
        assert ports[side]["width"] % 8 == 0
        assert ports[side]["width"] - 8 < ports[side]["payload_bits"] <= ports[side]["width"]
        assert re.search(rf"\[{ports[side]['width'] - 1}:0\] {side};", text)
    assert doc["wraps"]["module"] == cfg.name and doc["latency"] == cfg.latency
    assert doc["reset"] == {"port": "aresetn", "active": "low", "synchronous": True}
    mac = cfg.unit != "topk"
    assert doc["tlast_mode"] == ("row" if mac else "passthrough")
    inner = doc["wraps"]["ports"]["i__payload"]
    # tdata carries every input field but `last`, which is tlast
    assert set(ports["s_axis_tdata"]["fields"]) == set(inner["fields"]) - {"last"}
    assert ports["s_axis_tdata"]["payload_bits"] == inner["width"] - mac


def test_mac_fields_above_last_move_down_one_bit():
    cfg = SparseMACConfig(n=2, m=4, outputs=2)
    fields, _ = tdata_fields(cfg)
    inner = cfg.sidecar().ports["i__payload"].fields
    last = inner["last"].offset
    for name, f in fields.items():
        assert f["offset"] == inner[name].offset - (inner[name].offset > last)


def test_generate_axis_flag(tmp_path, capsys):
    assert cli.main(["generate", "--pattern", "2:4", "--unit", "spmac", "-k", "2", "--axis",
                     "-o", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["axis_nm_spmac_2_4_int8_k2.json",
                                                         "axis_nm_spmac_2_4_int8_k2.v"]
    assert "AXI4-Stream" in capsys.readouterr().out
    assert cli.main(["generate", "--shipped", "--axis", "-o", str(tmp_path)]) == 2


def test_sidecar_is_reproducible():
    cfg = POINTS["linear_k2"]
    assert axis_sidecar(cfg) == axis_sidecar(cfg)


@pytest.mark.parametrize("key", ["topk_rank_p1", "spmac_k2"])
def test_compiles_in_verilator_and_icarus(axis_dir, tmp_path, key):
    from gen.emit import VERILATOR_LINT_FLAGS

    v = axis_dir / f"axis_{POINTS[key].name}.v"
    lint = subprocess.run([toolchain.verilator(), "--lint-only", *VERILATOR_LINT_FLAGS,
                           "-Wno-DECLFILENAME", str(v)],
                          capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stderr
    if shutil.which("iverilog") is None:
        pytest.skip("Icarus Verilog is not installed (`make tools`)")
    ic = subprocess.run([toolchain.iverilog(), "-g2005", "-o", str(tmp_path / "a.out"),
                         str(v)], capture_output=True, text=True, check=False)
    assert ic.returncode == 0, ic.stderr


@pytest.mark.parametrize("key", list(POINTS))
def test_cocotbext_axi_bit_exact_with_backpressure_and_tlast(axis_dir, key, nm_seed):
    from verif.axis import AXIS_SCENARIOS, run_axis

    cfg = POINTS[key]
    res = run_axis(axis_dir / f"axis_{cfg.name}.json", seed=nm_seed, groups=60)
    assert res["passed"], json.dumps(res, indent=1)
    assert [s["name"] for s in res["scenarios"]] == [s[0] for s in AXIS_SCENARIOS]
    for s in res["scenarios"]:
        assert s["mismatches"] == 0 and s["in_beats"] > 30
        if cfg.unit == "topk":  # one output beat per input beat, framed as the input
            assert s["beats"] == s["in_beats"] and 3 < s["frames"] < s["beats"]
        else:  # MAC units: one row per input frame, one single-beat output frame per row
            assert s["beats"] == s["frames"] >= 15
