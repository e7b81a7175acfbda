"""Verifying a user's own multi-file RTL with ``nmsparse verify`` (Verilator, no mocks).

The worked example (``verif/data/example_hdl/oets``: an ``.sv`` top, a sorter in a second
file, a key macro in an include directory, a define) is copied and verified from another
working directory with relative paths; replacing the included file by a broken one must
fail the next run (no stale PASS from the cached build). Bad inputs get one-line causes with
exit 2 (a width that disagrees with the Verilog, a missing port, a missing include or module
file) and failing designs exit 1 (a module that never raises ``o__valid``, a simulation that
hangs).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nmsparse import cli
from nmsparse.contract import sidecar
from verif import runner

REPO = Path(__file__).resolve().parent.parent
OETS = REPO / "verif" / "data" / "example_hdl" / "oets"
TOP = "nm_topk_4_8_int8_oets"
GOOD_KEY = "(~(x) + 1'b1)"


def _copy(dst: Path) -> Path:
    shutil.copytree(OETS, dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def _sidecar(d: Path, change) -> None:
    p = d / f"{TOP}.json"
    doc = json.loads(p.read_text())
    change(doc)
    p.write_text(json.dumps(doc, indent=2))


def _verify(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["verify", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_example_verifies_and_a_broken_include_fails_the_next_run(tmp_path, monkeypatch, capsys):
    _copy(tmp_path / "design")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = _verify(capsys, "--hdl-dir", "design", "--build-dir", "build")
    assert rc == 0 and f"{TOP}: PASS" in out
    for scenario in ("directed edge cases", "random idle=random:0.3 bp=random:0.3",
                     "reset mid-stream", "SmolLM2 activations (int8)"):
        assert f"  {scenario}: " in out and "[FAIL]" not in out
    builds = [p for p in (tmp_path / "build").iterdir() if p.is_dir()]
    assert len(builds) == 1, builds  # the relative --build-dir is relative to the caller
    stamp = json.loads((builds[0] / runner.STAMP).read_text())
    inputs = {Path(p).relative_to(tmp_path / "design").as_posix() for p in stamp["inputs"]}
    assert inputs == {f"{TOP}.sv", "rtl/oets_sort.v", "include/oets_key.svh"}

    # the included key forgets the +1 of the two's complement: |-1| becomes 0
    key = tmp_path / "design" / "include" / "oets_key.svh"
    _edit(key, GOOD_KEY, "(~(x))")
    assert runner.stale_inputs(builds[0]) == [str(key)]
    rc, out, err = _verify(capsys, "--hdl-dir", "design", "--build-dir", "build",
                           "--activations", "none")
    assert rc == 1 and f"{TOP}: FAIL: scenario 'directed edge cases':" in out
    assert "MISMATCH at output" in err and "<-- differs" in err
    assert [p for p in (tmp_path / "build").iterdir() if p.is_dir()] == builds  # in place

    # repaired: the next run rebuilds and passes; the FuseSoC core shares that build
    _edit(key, "(~(x))", GOOD_KEY)
    rc, out, _ = _verify(capsys, "--core", f"design/{TOP}.core", "--build-dir", "build",
                         "--activations", "none", "-q")
    assert rc == 0 and f"{TOP}: PASS" in out
    rc, out, _ = _verify(capsys, "--sidecar", f"design/{TOP}.json", "--build-dir", "build",
                         "-q", "--activations", "none")
    assert rc == 0 and "build 0.0 s" in out  # reused: nothing changed
    assert [p for p in (tmp_path / "build").iterdir() if p.is_dir()] == builds

    # a sidecar edited after the build is checked against the ports the build read
    _sidecar(tmp_path / "design", lambda d: d["ports"]["o__payload"].update(width=56))
    rc, out, _ = _verify(capsys, "--hdl-dir", "design", "--build-dir", "build")
    assert rc == 2
    assert "o__payload is 52 bits in the Verilog but 56 in the sidecar" in out


def _bad_input(tmp_path, capsys, *extra: str) -> str:
    rc, out, err = _verify(capsys, "--hdl-dir", str(tmp_path / "design"), "--build-dir",
                           str(tmp_path / "build"), *extra)
    assert rc == 2
    line = next(ln for ln in out.splitlines() if ": ERROR: " in ln)
    return line


def test_a_width_that_disagrees_with_the_verilog_is_named(tmp_path, capsys):
    d = _copy(tmp_path / "design")
    _sidecar(d, lambda doc: doc["ports"]["o__payload"].update(width=56))
    line = _bad_input(tmp_path, capsys)
    assert line == (f"{TOP}: ERROR: o__payload is 52 bits in the Verilog but 56 in the sidecar "
                    f"({TOP}.sv, {TOP}.json)")


def test_a_missing_port_is_named(tmp_path, capsys):
    d = _copy(tmp_path / "design")
    _edit(d / f"{TOP}.sv", "input  logic        o__ready", "input  logic        o_ready")
    _edit(d / f"{TOP}.sv", "|| o__ready;", "|| o_ready;")
    line = _bad_input(tmp_path, capsys)
    assert "the Verilog has no port o__ready, which the sidecar lists" in line
    assert "o_ready" in line


def test_a_missing_include_directory_or_module_file_is_named(tmp_path, capsys):
    d = _copy(tmp_path / "design")
    _sidecar(d, lambda doc: doc["sources"].pop("include_dirs"))
    line = _bad_input(tmp_path, capsys)
    assert "Cannot find include file: 'oets_key.svh'" in line and "-I DIR" in line
    _sidecar(d, lambda doc: doc["sources"].update(include_dirs=["include"],
                                                   files=[f"{TOP}.sv"]))
    line = _bad_input(tmp_path, capsys)
    assert "Cannot find file containing module: 'oets_sort'" in line
    assert "--source FILE" in line


def test_a_module_that_never_raises_valid_times_out(tmp_path, capsys):
    d = _copy(tmp_path / "design")
    _edit(d / f"{TOP}.sv", "                o__valid <= v1;", "                o__valid <= 1'b0;")
    rc, out, _ = _verify(capsys, "--hdl-dir", str(d), "--build-dir", str(tmp_path / "build"),
                         "--activations", "none", "-q")
    assert rc == 1
    line = next(ln for ln in out.splitlines() if ": FAIL: " in ln)
    assert "directed edge cases: timeout: no transfer for 2000 cycles" in line
    assert "o__valid never went high (0 of 76 output transfers)" in line
    assert "76 of 76 input transfers accepted, the last (#75) at cycle" in line


def test_a_hung_simulation_is_stopped_with_its_last_progress(tmp_path, capsys):
    d = _copy(tmp_path / "design")
    # a combinational loop that never ends once a group waits for a consumer that is not ready
    _edit(d / f"{TOP}.sv", "    wire advance2 = !o__valid || o__ready;", """
    logic spin;
    always_comb begin
        longint n;
        n = 0;
        while (v1 && o__valid && !o__ready)
            n = n + 1;
        spin = n != 0;
    end
    wire advance2 = (!o__valid || o__ready) && !spin;""")
    rc, out, _ = _verify(capsys, "--hdl-dir", str(d), "--build-dir", str(tmp_path / "build"),
                         "--activations", "none", "-q", "--sim-timeout", "15")
    assert rc == 1
    line = next(ln for ln in out.splitlines() if ": FAIL: " in ln)
    assert "the simulation was stopped after 15 s (wall clock" in line
    assert "last progress recorded: scenario 'random idle=none bp=cycle:1,1,1,0'" in line
    assert "input transfers accepted" in line


def test_sidecar_init_drafts_the_example_and_says_what_it_could_not_infer(tmp_path, capsys,
                                                                           monkeypatch):
    d = _copy(tmp_path / "design")
    (d / f"{TOP}.json").unlink()
    monkeypatch.chdir(d)
    argv = ["sidecar", "init", f"{TOP}.sv", "--unit", "topk", "--pattern", "4:8", "--fmt",
            "int8", "--source", "rtl/oets_sort.v", "-I", "include", "-D", "NM_INT_KEY=1"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "could not infer" in out and "latency" in out and "arch" in out
    assert "the draft does not load yet:" in out and "key 'latency'" in out
    draft = json.loads((d / f"{TOP}.json").read_text())
    shipped = json.loads((OETS / f"{TOP}.json").read_text())
    assert draft["latency"] is None
    for key in ("module", "unit", "ports", "sources"):
        assert draft[key] == shipped[key], key
    assert {k: v for k, v in shipped["params"].items() if k not in ("arch", "pipeline")} == \
        draft["params"]
    assert cli.main(argv) == 2  # never overwrites without --force
    assert "exists; pass --force" in capsys.readouterr().err
    assert cli.main([*argv, "--force", "--arch", "oets", "--latency", "2"]) == 0
    assert "next: nmsparse verify --sidecar" in capsys.readouterr().out
    sc = sidecar.load_sidecar(d / f"{TOP}.json")
    assert sc.arch == "oets" and sc.latency == 2
    # a format whose layout disagrees with the Verilog's widths is reported, not hidden
    assert cli.main([*argv[:8], "int16", *argv[9:], "-o", "wide.json"]) == 0
    out = capsys.readouterr().out
    assert "i__payload is 64 bits in the Verilog but the DESIGN.md layout needs 128" in out
    # a module without the stream ports cannot be drafted
    (d / "plain.v").write_text("module plain(input clk, output q); assign q = clk; endmodule\n")
    assert cli.main(["sidecar", "init", "plain.v", "--unit", "topk", "--pattern", "4:8",
                     "--fmt", "int8"]) == 2
    assert "has no port(s) rst, i__payload" in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["--module", "x"], "--module selects modules of --hdl-dir"),
    (["--core", "nope.core"], "FuseSoC core nope.core does not exist"),
    (["--hdl-dir", "no/such/dir"], "does not exist"),
])
def test_verify_argument_errors(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["verify", *argv]) == 2
    assert words in capsys.readouterr().err
