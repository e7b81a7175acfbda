"""The sidecar schema and its one reader, without a simulator.

The published schema file is current; every shipped sidecar and every example validates
against it (with the ``jsonschema`` package, independently of the reader); the reader and the
schema reject the same broken documents, and the documents only the reader rejects are the
cross-field rules the schema lists; every bad sidecar of issue 16 gets an error that names
the file, the key and what is expected, through every path (load, list, crosscheck, verify).
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from nmsparse import cli
from nmsparse.contract import sidecar
from verif import sources

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "verif" / "data" / "example_hdl"
OETS = EXAMPLES / "oets"
SMALL = EXAMPLES / "nm_topk_2_4_int8_example.json"
SHIPPED = sorted(p for p in (REPO / "hdl").glob("*.json") if p.name != "manifest.json")
EXAMPLE_SIDECARS = sorted(EXAMPLES.rglob("*.json"))


def _doc(path: Path = SMALL) -> dict:
    return json.loads(path.read_text())


def _validator() -> Draft202012Validator:
    schema = json.loads(sidecar.SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_published_schema_is_current():
    assert sidecar.SCHEMA_FILE.read_text() == sidecar.schema_text(), (
        "nmsparse/contract/sidecar.schema.json is stale: regenerate it with "
        "`nmsparse sidecar schema > nmsparse/contract/sidecar.schema.json`")
    assert "sidecar.schema.json" in (REPO / "DESIGN.md").read_text()
    assert "sidecar.schema.json" in (REPO / "README.md").read_text()


@pytest.mark.parametrize("path", SHIPPED + EXAMPLE_SIDECARS, ids=lambda p: p.name)
def test_every_shipped_and_example_sidecar_validates(path):
    assert SHIPPED and len(EXAMPLE_SIDECARS) >= 3
    doc = json.loads(path.read_text())
    errors = [e.message for e in _validator().iter_errors(doc)]
    assert not errors, f"{path}: {errors}"
    sc = sidecar.load_sidecar(path)
    assert sc.module and all(f.is_file() for f in sc.hdl_files)
    # the generator's layout is the DESIGN.md layout the reader knows
    if path in SHIPPED:
        assert sidecar.default_ports(sc.unit, sc.params) == sc.ports


def test_default_ports_match_the_generator_with_lanes():
    from gen.config import TopKConfig

    cfg = TopKConfig(n=2, m=4, fmt="int8", arch="rank", lanes=3)
    sc = cfg.sidecar()
    assert sidecar.default_ports("topk", sc.params) == sc.ports
    sidecar.parse_sidecar(json.loads(sc.to_json()), "lanes")


# (label, change, words the reader's message must contain): the schema rejects each too
SCHEMA_BROKEN = [
    ("missing module", lambda d: d.pop("module"), ["missing key 'module'"]),
    ("missing unit", lambda d: d.pop("unit"), ["missing key 'unit'", "topk"]),
    ("unknown unit", lambda d: d.update(unit="sorter"), ["'unit'", "'topk'", "'sorter'"]),
    ("dir written as direction",
     lambda d: d["ports"]["clk"].update(direction=d["ports"]["clk"].pop("dir")),
     ["missing key 'ports.clk.dir'", "'direction'", "named 'dir'"]),
    ("no elem_width", lambda d: d["ports"]["i__payload"]["fields"]["data"].pop("elem_width"),
     ["missing key 'ports.i__payload.fields.data.elem_width'", "bits of one element"]),
    ("no count", lambda d: d["ports"]["i__payload"]["fields"]["data"].pop("count"),
     ["missing key 'ports.i__payload.fields.data.count'"]),
    ("input field not named data",
     lambda d: d["ports"]["i__payload"]["fields"].update(
         x=d["ports"]["i__payload"]["fields"].pop("data")),
     ["missing key 'ports.i__payload.fields.data'", "carries the field data", "'x'"]),
    ("an extra field", lambda d: d["ports"]["i__payload"]["fields"].update(
        x={"offset": 0, "elem_width": 1, "count": 1}),
     ["unknown key 'ports.i__payload.fields.x'", "data"]),
    ("missing params.n", lambda d: d["params"].pop("n"),
     ["missing key 'params.n'", "a topk unit's params"]),
    ("width against fmt", lambda d: d["params"].update(width=16),
     ["'params.width'", "int8 elements are 8 bits", "16"]),
    ("unknown fmt", lambda d: d["params"].update(fmt="int7"), ["'params.fmt'", "'int7'"]),
    ("negative latency", lambda d: d.update(latency=-1), ["'latency'", ">= 0"]),
    ("latency as text", lambda d: d.update(latency="1"), ["'latency'", "an integer"]),
    ("a boolean n", lambda d: d["params"].update(n=True), ["'params.n'", "an integer"]),
    ("missing port", lambda d: d["ports"].pop("o__ready"),
     ["missing key 'ports.o__ready'", "every module has the ports"]),
    ("wrong direction", lambda d: d["ports"]["o__ready"].update(dir="out"),
     ["'ports.o__ready.dir'", "'in'"]),
    ("wide clock", lambda d: d["ports"]["clk"].update(width=2), ["'ports.clk.width'", "1 bit"]),
    ("unknown port key", lambda d: d["ports"]["clk"].update(polarity=1),
     ["unknown key 'ports.clk.polarity'"]),
    ("bad module name", lambda d: d.update(module="1top"), ["'module'", "Verilog identifier"]),
    ("empty files", lambda d: d.update(sources={"files": []}), ["'sources.files'"]),
    ("includes for include_dirs", lambda d: d.update(sources={"includes": ["inc"]}),
     ["unknown key 'sources.includes'", "did you mean 'include_dirs'"]),
    ("bad define name", lambda d: d.update(sources={"defines": {"1X": 1}}),
     ["'sources.defines'", "'1X'"]),
    ("bad define value", lambda d: d.update(sources={"defines": {"X": [1]}}),
     ["'sources.defines.X'"]),
    ("params not an object", lambda d: d.update(params=[]), ["'params'", "an object"]),
]
# cross-field rules JSON Schema cannot state: the schema accepts, the reader rejects
SEMANTIC_BROKEN = [
    ("n = m", lambda d: d["params"].update(n=4), ["'params.n'", "0 < n < m"]),
    ("index_width too small", lambda d: d["params"].update(index_width=1),
     ["'params.index_width'", "at least 2"]),
    ("values count", lambda d: d["ports"]["o__payload"]["fields"]["values"].update(
        count=3, width=24), ["'ports.o__payload.fields.values'", "count 2 x elem_width 8"]),
    ("field width", lambda d: d["ports"]["o__payload"]["fields"]["index"].update(width=5),
     ["'ports.o__payload.fields.index.width'", "elem_width x count = 4"]),
    ("overflow", lambda d: d["ports"]["o__payload"].update(width=20),
     ["'ports.o__payload.fields'", "does not fit in the 20-bit port"]),
    ("overlap", lambda d: d["ports"]["o__payload"]["fields"]["index"].update(offset=18),
     ["'ports.o__payload.fields'", "overlaps"]),
]


@pytest.mark.parametrize("label,change,words", SCHEMA_BROKEN, ids=[c[0] for c in SCHEMA_BROKEN])
def test_reader_and_schema_reject_the_same_documents(label, change, words):
    doc = _doc()
    change(doc)
    assert list(_validator().iter_errors(doc)), f"the schema accepts: {label}"
    with pytest.raises(sidecar.SidecarError) as exc:
        sidecar.parse_sidecar(doc, "bad.json")
    msg = str(exc.value)
    assert msg.startswith("bad.json: ") and "\n" not in msg
    for w in words:
        assert w in msg, f"{label}: {w!r} not in {msg!r}"


@pytest.mark.parametrize("label,change,words", SEMANTIC_BROKEN,
                         ids=[c[0] for c in SEMANTIC_BROKEN])
def test_cross_field_rules_are_the_readers_and_listed_in_the_schema(label, change, words):
    doc = _doc()
    change(doc)
    assert not list(_validator().iter_errors(doc))
    with pytest.raises(sidecar.SidecarError) as exc:
        sidecar.parse_sidecar(doc, "bad.json")
    for w in words:
        assert w in str(exc.value), f"{label}: {w!r} not in {exc.value}"
    description = json.loads(sidecar.SCHEMA_FILE.read_text())["description"]
    assert "Beyond this schema the reader checks" in description and "n < m" in description


def test_missing_n_is_an_error_never_dense(tmp_path):
    doc = _doc()
    del doc["params"]["n"]
    (tmp_path / "nm_topk_2_4_int8_example.json").write_text(json.dumps(doc))
    shutil.copy(EXAMPLES / "nm_topk_2_4_int8_example.v", tmp_path)
    with pytest.raises(sidecar.SidecarError, match="missing key 'params.n'"):
        sidecar.list_modules(tmp_path)


def test_invalid_json_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "m.json"
    bad.write_text('{"module": "m",')
    with pytest.raises(sidecar.SidecarError, match=r"m\.json: not valid JSON"):
        sidecar.list_modules(tmp_path)
    bad.unlink()
    doc = _doc()
    doc["sources"] = {"files": ["top.v", "rtl/missing.v"]}
    (tmp_path / "top.v").write_text("module m; endmodule\n")
    p = tmp_path / "m.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(FileNotFoundError, match=r"'sources.files\[1\]': rtl/missing.v does not "
                                                r"exist \(paths are relative to "):
        sidecar.load_sidecar(p)
    doc["sources"] = {"include_dirs": ["nope"]}
    p.write_text(json.dumps(doc))
    (tmp_path / "m.v").write_text("module m; endmodule\n")
    with pytest.raises(FileNotFoundError, match=r"'sources.include_dirs\[0\]': nope is not a"):
        sidecar.load_sidecar(p)


def test_sv_top_and_sources_resolve_relative_to_the_sidecar(tmp_path, monkeypatch):
    d = tmp_path / "design"
    d.mkdir()
    doc = _doc()
    (d / "nm_topk_2_4_int8_example.sv").write_text("module x; endmodule\n")
    (d / "nm_topk_2_4_int8_example.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    sc = sidecar.load_sidecar("design/nm_topk_2_4_int8_example.json")
    assert sc.verilog == (d / "nm_topk_2_4_int8_example.sv").resolve()
    assert sc.hdl_files == [sc.verilog]
    sc = sidecar.load_sidecar(OETS / "nm_topk_4_8_int8_oets.json")
    assert sc.verilog == OETS / "nm_topk_4_8_int8_oets.sv"
    assert sc.hdl_files == [OETS / "nm_topk_4_8_int8_oets.sv", OETS / "rtl" / "oets_sort.v"]
    assert sc.include_dirs == [OETS / "include"] and sc.defines == {"NM_INT_KEY": "1"}
    assert json.loads(sc.to_json())["sources"] == doc_sources(OETS)


def doc_sources(d: Path) -> dict:
    return json.loads((d / "nm_topk_4_8_int8_oets.json").read_text())["sources"]


def test_sources_for_merges_sidecar_core_and_flags(tmp_path):
    sc = sidecar.load_sidecar(OETS / "nm_topk_4_8_int8_oets.json")
    core = sources.read_core(OETS / "nm_topk_4_8_int8_oets.core")
    assert core.toplevel == sc.module and core.target == "default"
    assert core.files == (OETS / "nm_topk_4_8_int8_oets.sv", OETS / "rtl" / "oets_sort.v")
    assert core.include_dirs == (OETS / "include",) and core.defines == (("NM_INT_KEY", "1"),)
    # the core and the sidecar describe the same build: one build directory for both
    assert sources.sources_for(sc, core=core).key() == sources.sources_for(sc).key()
    extra = tmp_path / "more.v"
    extra.write_text("module more; endmodule\n")
    src = sources.sources_for(sc, files=[extra], include_dirs=[tmp_path],
                              defines=["NM_INT_KEY=0", "FAST"])
    assert src.files[-1] == extra and src.include_dirs[-1] == tmp_path
    assert dict(src.defines) == {"NM_INT_KEY": "0", "FAST": None}
    assert src.define_args() == ["-DNM_INT_KEY=0", "-DFAST"]
    with pytest.raises(ValueError, match="not a Verilog identifier"):
        sources.parse_define("1X=2")
    other = tmp_path / "x.core"
    other.write_text("CAPI=2:\nname: a:b:c:1\nfilesets: {rtl: {files: [a.v], file_type: "
                     "verilogSource}}\ntargets: {default: {filesets: [rtl], toplevel: other}}\n")
    with pytest.raises(ValueError, match="toplevel 'other' but the sidecar"):
        sources.sources_for(sc, core=sources.read_core(other))
    other.write_text("name: not capi\n")
    with pytest.raises(ValueError, match="not a FuseSoC CAPI2 core"):
        sources.read_core(other)


def test_dependency_list_is_read_from_verilators_make_rule(tmp_path):
    root = tmp_path / "verilator"
    (root / "include").mkdir(parents=True)
    (tmp_path / "my dir").mkdir()
    (tmp_path / "a.sv").write_text("")
    (tmp_path / "my dir" / "k.svh").write_text("")
    (tmp_path / "Vtop__ver.d").write_text(
        f"Vtop.cpp Vtop.h : {root}/bin/verilator_bin {root}/include/verilated_std.sv "
        f"{tmp_path}/ports.vlt {tmp_path}/a.sv {tmp_path}/my\\ dir/k.svh \\\n  a.sv\n")
    deps = sources.read_dependencies(tmp_path, exclude=[root, tmp_path / "ports.vlt"])
    assert deps == [tmp_path / "a.sv", tmp_path / "my dir" / "k.svh"]
    h = sources.file_hashes(deps + [tmp_path / "gone.v"])
    assert h[str(tmp_path / "gone.v")] == "missing" and len(h[str(deps[0])]) == 64


def test_every_cli_path_reports_a_bad_sidecar(tmp_path, capsys):
    d = tmp_path / "mine"
    d.mkdir()
    doc = _doc()
    del doc["module"]
    (d / "nm_topk_2_4_int8_example.json").write_text(json.dumps(doc))
    shutil.copy(EXAMPLES / "nm_topk_2_4_int8_example.v", d)
    runs = [
        ["crosscheck", "--pattern", "2:4", "--fmt", "int8", "--activations", "default",
         "--limit", "8", "--hdl-dir", str(d)],
        ["verify", "--hdl-dir", str(d)],
        ["verify", "--sidecar", str(d / "nm_topk_2_4_int8_example.json")],
        ["sidecar", "check", str(d / "nm_topk_2_4_int8_example.json")],
    ]
    for argv in runs:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, err
        assert "nm_topk_2_4_int8_example.json: missing key 'module'" in err, (argv, err)


def test_crosscheck_explains_an_unusable_arch(tmp_path, capsys):
    doc = _doc()
    del doc["params"]["arch"]
    (tmp_path / "nm_topk_2_4_int8_example.json").write_text(json.dumps(doc))
    shutil.copy(EXAMPLES / "nm_topk_2_4_int8_example.v", tmp_path)
    from verif.cli import select_modules

    assert [sc.arch for sc in select_modules(tmp_path, 2, 4, "int8", None)] == [""]
    with pytest.raises(FileNotFoundError, match="has no params.arch, so --arch cannot select "
                                                "it: add \"arch\""):
        select_modules(tmp_path, 2, 4, "int8", "rank")


def test_verify_needs_a_design(capsys):
    assert cli.main(["verify"]) == 2
    assert "--hdl-dir DIR" in capsys.readouterr().err


def test_sidecar_schema_and_check_commands(capsys):
    assert cli.main(["sidecar", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == sidecar.schema()
    assert cli.main(["sidecar", "check", str(OETS / "nm_topk_4_8_int8_oets.json"),
                     str(SMALL)]) == 0
    out = capsys.readouterr().out
    assert "nm_topk_4_8_int8_oets.sv, oets_sort.v" in out and out.count(": ok: ") == 2


def test_find_module_by_module_name(tmp_path):
    doc = copy.deepcopy(_doc())
    (tmp_path / "mine.json").write_text(json.dumps(doc))
    shutil.copy(EXAMPLES / "nm_topk_2_4_int8_example.v", tmp_path / "mine.v")
    assert sidecar.find_module(tmp_path, "nm_topk_2_4_int8_example").path.name == "mine.json"
    with pytest.raises(FileNotFoundError, match="it has: nm_topk_2_4_int8_example"):
        sidecar.find_module(tmp_path, "other")
