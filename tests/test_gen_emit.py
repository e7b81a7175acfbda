"""Emission: the shipped hdl/ is reproducible, self-consistent, and lints / compiles cleanly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gen import cli as gen_cli
from gen.config import SHIPPED, TopKConfig, flex_tree_stages
from gen.emit import VERILATOR_LINT_FLAGS, emit, emit_shipped
from nmsparse import cli
from nmsparse.contract import VERSION, toolchain
from nmsparse.contract.sidecar import load_sidecar

ROOT = Path(__file__).resolve().parent.parent
HDL = ROOT / "hdl"
MODULES = [c.name for c in SHIPPED]

# Top-k points the report compares: comparators of the architectures per pattern (the
# network selectors build the shallowest best-known network; radix select has none).
COMPARATORS = {
    (2, 4): {"rank": 6, "network": 4},
    (4, 8): {"rank": 28, "network": 14},
    (8, 16): {"rank": 120, "network": 46},
    (16, 32): {"rank": 496, "network": 138, "radix": 0},
}


def test_manifest_lists_every_shipped_point() -> None:
    manifest = json.loads((HDL / "manifest.json").read_text())
    assert manifest == {"modules": MODULES}
    # fixed selectors (rank and network everywhere, radix at 16:32, no rank at 16:32 bf16:
    # gen.config.NOT_SHIPPED), MAC units (from memory: banks by position and by kept slot;
    # S-PTS: one constant, one run-time), flexible units
    assert len(MODULES) == 17 + 14 + 6
    for name in MODULES:
        for ext in (".v", ".json", ".core"):
            assert (HDL / f"{name}{ext}").is_file(), f"{name}{ext} missing: run `make hdl`"


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    """`make hdl` into a fresh directory reproduces the checked-in hdl/ byte for byte."""
    emit_shipped(tmp_path)
    fresh = sorted(p.name for p in tmp_path.iterdir())
    shipped = sorted(p.name for p in HDL.iterdir() if p.is_file())
    assert fresh == shipped
    changed = [n for n in fresh if (tmp_path / n).read_bytes() != (HDL / n).read_bytes()]
    assert not changed, f"hdl/ is stale, run `make hdl`: {changed}"


_PORT = re.compile(r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):0\]\s*)?\\?(\w+)\s*;",
                   re.M)


@pytest.mark.parametrize("name", MODULES)
def test_sidecar_matches_verilog(name: str) -> None:
    sc = load_sidecar(HDL / f"{name}.json")
    text = (HDL / f"{name}.v").read_text()
    assert sc.module == name
    assert sc.generator == {"name": "nmsparse", "version": VERSION}
    assert re.search(rf"^module {name}\(", text, re.M)
    ports = {p: (d, int(w) + 1 if w else 1) for d, w, p in _PORT.findall(text)}
    want = {p: ({"in": "input", "out": "output"}[v.dir], v.width) for p, v in sc.ports.items()}
    assert ports == want
    for port in (sc.i, sc.o):
        end = 0
        # LSB first, contiguous
        for fld in sorted(port.fields.values(), key=lambda f: f.offset):
            assert fld.offset == end
            end += fld.width
        assert end == port.width
    assert sc.params["pipeline"] >= 0
    if sc.unit in ("topk", "linear"):
        assert sc.metrics["comparators"] == COMPARATORS[(sc.n, sc.m)][sc.arch]
    if sc.unit == "topk":
        assert sc.latency == sc.params["pipeline"]
        outs = sc.o.fields
        assert (outs["mask"].count, outs["values"].count, outs["index"].elem_width) \
            == (sc.m, sc.n, (sc.m - 1).bit_length())
    elif sc.flexible:
        # selector stages (the MAC: its weight select), products, adder tree, output
        tree = flex_tree_stages(sc.params["max_kept"]) if sc.unit != "topk_flex" else 0
        assert sc.latency == sc.params["pipeline"] + (
            2 + tree if sc.unit == "linear_flex" else 0)
    else:
        assert sc.metrics["multipliers"] == sc.outputs * (
            sc.m if sc.unit == "dense_mac" else sc.n)


@pytest.mark.parametrize("name", MODULES)
def test_core_file(name: str) -> None:
    core = yaml.safe_load((HDL / f"{name}.core").read_text())
    assert (HDL / f"{name}.core").read_text().startswith("CAPI=2:\n")
    assert core["name"] == f"nmsparse:nmsparse:{name}:{VERSION}"
    assert core["filesets"]["rtl"]["files"] == [f"{name}.v"]
    assert core["targets"]["default"]["toplevel"] == name
    assert core["targets"]["lint"]["toplevel"] == name


@pytest.fixture(scope="module")
def verilator() -> str:
    toolchain.setup(verilator=True)
    path = shutil.which("verilator")
    assert path and str(toolchain.verilator_root()) in path
    return path


@pytest.mark.parametrize("name", MODULES)
def test_verilator_lint(name: str, verilator: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [verilator, "--lint-only", *VERILATOR_LINT_FLAGS, "--top-module", name,
         str(HDL / f"{name}.v")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert res.returncode == 0 and "%Warning" not in res.stderr, res.stderr[-3000:]


@pytest.mark.parametrize("name", MODULES)
def test_iverilog_compiles(name: str, tmp_path: Path) -> None:
    res = subprocess.run(
        [toolchain.iverilog(), "-g2005", "-Wall", "-s", name, "-o", str(tmp_path / "a.out"),
         str(HDL / f"{name}.v")],
        capture_output=True, text=True,
    )
    assert res.returncode == 0, res.stderr[-3000:]


def test_cli_generate(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = cli.main(["generate", "--pattern", "3:8", "--fmt", "bf16", "--unit", "topk",
                   "--arch", "rank", "--pipeline", "3", "-o", str(tmp_path)])
    assert rc == 0
    name = "nm_topk_3_8_bf16_rank"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.core", f"{name}.json",
                                                          f"{name}.v"]
    side = json.loads((tmp_path / f"{name}.json").read_text())
    assert side["latency"] == 3 and side["comparators"] == 28
    assert "latency 3" in capsys.readouterr().out


def test_cli_generate_mac_with_name(tmp_path: Path) -> None:
    rc = cli.main(["generate", "--pattern", "2:4", "--unit", "linear", "--outputs", "2",
                   "--acc-width", "24", "--name", "my_engine", "-o", str(tmp_path)])
    assert rc == 0
    side = json.loads((tmp_path / "my_engine.json").read_text())
    assert side["module"] == "my_engine" and side["params"]["outputs"] == 2
    assert "module my_engine(" in (tmp_path / "my_engine.v").read_text()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--pattern", "4:4"], "4:4"),
        (["--pattern", "8-16"], "8-16"),
        (["--unit", "spmac", "--fmt", "bf16"], "'bf16'"),
        (["--unit", "dense_mac", "--acc-width", "8"], "not 8"),
        (["--pipeline", "-3"], "-3"),
        (["--unit", "spmac", "--lanes", "2"], "--lanes"),
    ],
)
def test_cli_errors_are_one_line(argv: list[str], needle: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    rc = cli.main(["generate", *argv, "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("nmsparse: error:") and needle in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_emit_lanes_point(tmp_path: Path) -> None:
    cfg = TopKConfig(n=2, m=4, fmt="int8", arch="network", lanes=4)
    paths = emit(cfg, tmp_path)
    assert [p.name for p in paths] == [f"{cfg.name}.v", f"{cfg.name}.json", f"{cfg.name}.core"]
    side = json.loads(paths[1].read_text())
    assert side["module"] == "nm_topk_2_4_int8_network_x4"
    assert side["groups_per_cycle"] == 4
    assert side["ports"]["i__payload"]["fields"]["data"]["lane_stride"] == 32
    assert side["ports"]["i__payload"]["width"] == 128


def test_config_from_args_defaults() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    gen_cli.add_arguments(parser)
    cfg = gen_cli.config_from_args(parser.parse_args([]))
    assert cfg == TopKConfig(n=8, m=16, fmt="int8", arch="network")


def test_combinational_unit_keeps_clock_and_reset_ports(tmp_path: Path) -> None:
    """pipeline=0 uses no register, but the module still has every port its sidecar lists."""
    cfg = TopKConfig(n=2, m=4, fmt="int8", arch="rank", pipeline=0)
    emit(cfg, tmp_path)
    text = (tmp_path / f"{cfg.name}.v").read_text()
    ports = {p for _d, _w, p in _PORT.findall(text)}
    assert ports == set(load_sidecar(tmp_path / f"{cfg.name}.json").ports)
