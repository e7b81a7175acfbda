"""`nmsparse prove`: the quick subset proves, broken copies are rejected with decoded
counterexamples, and the 0-1 checker and key check can fail.

The solver runs here are the quick subset (2:4 and the 4-element dense MAC); the full run
(`nmsparse prove --full`, `make prove`) is on request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nmsparse import cli
from nmsparse.contract import networks
from nmsparse.contract.sidecar import find_module
from verif.formal import compose, delaylines, equiv, mutants, stream
from verif.formal.cli import prove_datapath

REPO = Path(__file__).resolve().parent.parent
HDL = REPO / "hdl"


def test_quick_prove_passes_and_writes_records(tmp_path, capsys):
    out = tmp_path / "proofs.json"
    rc = cli.main(["prove", "--quick", "--json", str(out), "--work", str(tmp_path / "w")])
    text = capsys.readouterr().out
    assert rc == 0, text
    recs = json.loads(out.read_text())
    names = {r["module"] for r in recs}
    assert {"nm_topk_2_4_int8_rank", "nm_topk_2_4_int8_network", "nm_spmac_2_4_int8_k4",
            "nm_linear_2_4_int8_k4", "dense_mac_4_int8_k4"} <= names
    for r in recs:
        assert r["passed"], r
        assert "stream" in r["proven"]
        if r["unit"] == "topk":
            assert r["datapath"] == "direct + compositional"
            steps = {s["name"] for s in r["steps"]}
            assert {"datapath.direct", "stream.prove"} <= steps


@pytest.mark.parametrize("module", ["nm_topk_2_4_int8_rank", "nm_topk_2_4_int8_network"])
@pytest.mark.parametrize("mutant", ["flip-tie", "drop-comparator", "swap-outputs"])
def test_datapath_mutants_are_caught_with_decoded_counterexamples(tmp_path, module, mutant):
    sc = find_module(HDL, module)
    msc, mut = mutants.mutate(sc, mutant, tmp_path / "m")
    steps = equiv.prove_direct(msc, tmp_path / "d") + compose.prove_compositional(
        msc, tmp_path / "c")
    failed = [s for s in steps if not s.passed]
    assert failed, f"{mutant} of {module} survived ({mut.what})"
    direct = next(s for s in steps if s.name == "datapath.direct")
    assert not direct.passed
    assert "input  data: [" in direct.detail and "<-- differs" in direct.detail
    assert "expected mask:" in direct.detail
    # the compositional proof catches it too, in one of its steps
    assert any(not s.passed for s in steps if s.name.split(".")[1] in
               ("R1", "R2", "R3", "N1", "N2", "N3", "structure"))


def test_stuck_valid_is_caught_by_the_stream_proof(tmp_path):
    sc = find_module(HDL, "nm_topk_2_4_int8_rank")
    msc, _ = mutants.mutate(sc, "stick-valid", tmp_path / "m")
    steps = stream.prove_stream(msc, tmp_path / "s")
    bad = [s for s in steps if not s.passed]
    assert bad
    assert "property" in bad[0].detail and "failed" in bad[0].detail
    assert "trace" in bad[0].detail and "out mask:" in bad[0].detail


def test_zero_one_checker_fails_on_a_broken_network():
    net = networks.selection_network(8, 16)
    ok, count, _ = compose.check_selection_01(16, 8, list(net.comparators), list(net.outputs))
    assert ok and count == 12870
    comps = list(net.comparators)
    del comps[len(comps) // 2]
    ok, _, bad = compose.check_selection_01(16, 8, comps, list(net.outputs))
    assert not ok and sum(bad) == 8
    assert compose.check_sorting_01(4, [(0, 1), (2, 3), (0, 2), (1, 3), (1, 2)])
    assert not compose.check_sorting_01(4, [(0, 1), (2, 3), (0, 2), (1, 3)])


def test_key_reference_matches_the_contract(tmp_path):
    assert equiv.prove_key("int8", tmp_path / "k8").passed
    assert equiv.prove_key("bf16", tmp_path / "kb").passed


def test_bad_arguments_are_one_line_errors(tmp_path, capsys):
    assert cli.main(["prove", "--hdl-dir", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["prove", "--module", "no_such_*"]) == 2
    assert "no module" in capsys.readouterr().err


def test_stream_proof_of_a_unit_with_weights_from_memory(tmp_path):
    """Load transfers make no group and may wait while groups are in flight (DESIGN.md 3.1):
    the contract the proof checks for a memory unit."""
    sc = find_module(HDL, "dense_mac_16_int8_k4_wmem")
    steps = stream.prove_stream(sc, tmp_path / "s")
    assert steps and all(s.passed for s in steps), [s.detail for s in steps if not s.passed]


@pytest.fixture(scope="module")
def radix_2_4(tmp_path_factory):
    """A 2:4 radix selector (not shipped: the shipped ones are 16:32) with its key planes in
    distributed-RAM delay lines, generated here: the same decomposition, proven in seconds."""
    out = tmp_path_factory.mktemp("radix")
    assert cli.main(["generate", "--pattern", "2:4", "--arch", "radix", "-o", str(out)]) == 0
    sc = find_module(out, "nm_topk_2_4_int8_radix")
    assert delaylines.has_delay_lines(sc)
    return sc


def test_radix_datapath_is_proven_through_its_delay_lines(tmp_path, radix_2_4):
    steps, how = prove_datapath(radix_2_4, tmp_path, full=False)
    assert how == "direct + compositional"
    assert all(s.passed for s in steps), [(s.name, s.detail) for s in steps if not s.passed]
    names = [s.name for s in steps]
    assert names[0] == "datapath.delay_lines" and "writes" in steps[0].detail
    assert {"datapath.X1-X4.steps", "datapath.X5.compaction"} <= set(names)


@pytest.mark.parametrize("mutant, step", [("flip-tie", "datapath.X1-X4.steps"),
                                          ("delay-skew", "datapath.pipeline"),
                                          ("delay-write-always", "datapath.delay_lines")])
def test_radix_and_delay_line_mutants_are_caught(tmp_path, radix_2_4, mutant, step):
    msc, mut = mutants.mutate(radix_2_4, mutant, tmp_path / "m")
    steps, _ = prove_datapath(msc, tmp_path / "w", full=False)
    failed = {s.name: s for s in steps if not s.passed}
    assert step in failed, f"{mutant} survived {step} ({mut.what}): {list(failed)}"
    if mutant == "flip-tie":
        assert "u of element 0" in failed[step].detail and "input  data: [" in \
            failed[step].detail
    if mutant == "delay-write-always":
        assert "does not advance by exactly the write enable" in failed[step].detail


def test_delay_line_rewrite_keeps_the_module_interface(tmp_path):
    """The rewritten netlist (each delay line a register chain) is a drop-in module: the
    direct proof of a shipped 4:8 selector with a delay line passes on it."""
    sc = find_module(HDL, "nm_topk_4_8_int8_network")
    new, steps = delaylines.rewrite(sc, tmp_path / "dl")
    assert [s.passed for s in steps] == [True] and "7 writes" in steps[0].detail
    assert new.module == sc.module and new.latency == sc.latency
    assert not delaylines.has_delay_lines(new)
    assert all(s.passed for s in equiv.prove_direct(new, tmp_path / "d"))


def test_flexible_selector_datapath_is_proven_and_mutants_are_caught(tmp_path):
    sc = find_module(HDL, "nm_topk_flex_16_int8_rank")
    steps, how = prove_datapath(sc, tmp_path / "ok", full=False)
    assert how == "compositional"
    assert [s.name for s in steps] == ["datapath.F1.comparisons", "datapath.F2.group_rank",
                                       "datapath.F3.compaction", "datapath.lemma"]
    assert all(s.passed for s in steps), [(s.name, s.detail) for s in steps if not s.passed]
    for mutant, step in (("flip-tie", "datapath.F1.comparisons"),
                         ("swap-outputs", "datapath.F3.compaction")):
        msc, _ = mutants.mutate(sc, mutant, tmp_path / mutant)
        steps, _ = prove_datapath(msc, tmp_path / f"{mutant}_w", full=False)
        bad = [s for s in steps if not s.passed]
        assert bad and bad[0].name == step, (mutant, [(s.name, s.detail) for s in bad])
        assert "input  m_log2:" in bad[0].detail


def test_stream_proof_of_a_deep_mac_needs_same_stage_invariants(tmp_path):
    """The last flag of each MAC stage is related to that stage's valid (an invariant with
    another stage's guard survives random simulation but is not inductive: the proof of
    this 11-stage MAC failed on it)."""
    sc = find_module(HDL, "nm_spmac_8_16_int8_k4")
    steps = stream.prove_stream(sc, tmp_path / "s")
    assert steps and all(s.passed for s in steps), [s.detail for s in steps if not s.passed]


def test_network_cells_prove_a_shipped_network_and_catch_its_mutants(tmp_path):
    """N2 cuts every comparator output and every record it sends on, so each check is one
    cell: the shipped 8:16 network (894 s as one miter over the comparators) takes seconds,
    and a flipped tie or a dropped comparator fails at its cell, a swap at the compaction."""
    sc = find_module(HDL, "nm_topk_8_16_int8_network")
    steps, how = prove_datapath(sc, tmp_path / "ok", full=False)
    assert how == "compositional"
    assert [s.name for s in steps] == ["datapath.delay_lines", "datapath.N1.selection",
                                       "datapath.N2.cells", "datapath.N3.compaction",
                                       "datapath.lemma"]
    assert all(s.passed for s in steps), [(s.name, s.detail) for s in steps if not s.passed]
    sc = find_module(HDL, "nm_topk_4_8_int8_network")
    for mutant, names in (("flip-tie", ("datapath.N2.cells",)),
                          ("drop-comparator", ("datapath.structure", "datapath.N1.selection",
                                               "datapath.N2.cells")),
                          ("swap-outputs", ("datapath.N3.compaction",))):
        msc, mut = mutants.mutate(sc, mutant, tmp_path / mutant)
        steps, _ = prove_datapath(msc, tmp_path / f"{mutant}_w", full=False)
        bad = [s for s in steps if not s.passed]
        assert bad and bad[0].name in names, (mutant, [(s.name, s.detail) for s in bad])


def test_constant_output_bits_are_read_as_constants(tmp_path):
    """write_aiger leaves constant port bits out of its map; the reader puts them back from
    the JSON netlist (a 1 read as the 0 of a missing bit could make two designs look equal)."""
    (tmp_path / "c.v").write_text("module c(input [1:0] a, output [3:0] y);\n"
                                  "  assign y = {1'b1, a[1], 1'b0, a[0]};\nendmodule\n")
    g = equiv.miter_aig(tmp_path, ["c.v"], "c")
    y = g.outputs["y"]
    assert len(y) == 4 and y[1] == 0 and y[3] == 1
    assert y[0] == g.inputs["a"][0] and y[2] == g.inputs["a"][1]


def test_bank_write_port_registers_are_told_from_free_running_data(tmp_path):
    """The memory engine's registered bank write port loads every clock; its fan-out ends in
    the banks' write ports only, which the stream proof states (stream rule 2) instead of
    failing the structure rule. A MAC without banks has none."""
    for d in ("w", "s"):
        (tmp_path / d).mkdir()
    cd = stream.cut_design(find_module(HDL, "nm_linear_8_16_int8_k4_wmem"), tmp_path / "w")
    assert not cd.free_running
    assert "wbank_write_en" in cd.write_port and len(cd.write_port) == 4
    cd = stream.cut_design(find_module(HDL, "nm_spmac_2_4_int8_k4"), tmp_path / "s")
    assert not cd.free_running and not cd.write_port


@pytest.mark.parametrize("args", [
    ["--unit", "spmac", "--pattern", "2:4"],
    ["--unit", "linear", "--pattern", "2:4", "--weights", "memory", "--depth", "4",
     "--banks", "lane"],
])
def test_stream_proof_of_a_unit_with_the_output_skid_buffer(tmp_path, args):
    """The skid buffer's contract (DESIGN.md 3): latency, order, hold, i.ready from
    registers only, frozen while both entries are full; its registered stall enables are
    control registers, not free-running data."""
    assert cli.main(["generate", *args, "--target-mhz", "150", "--skid",
                     "-o", str(tmp_path)]) == 0
    sc = find_module(tmp_path, next(p.stem for p in tmp_path.glob("*_skid.v")))
    steps = stream.prove_stream(sc, tmp_path / "s")
    assert steps and all(s.passed for s in steps), [s.detail for s in steps if not s.passed]


def test_a_skid_buffer_that_drops_its_entry_is_caught(tmp_path, monkeypatch):
    """The buffer forgets its result when the output stays stalled a second cycle."""
    from amaranth.hdl import Signal

    from gen import pipeline
    from gen.config import SparseMACConfig
    from gen.emit import emit

    def broken_init(self, m, o):
        self.m, self.o = m, o
        self.pv, self.skid = Signal(name="out_pv"), Signal(name="out_skid")
        self.advance = Signal(name="advance")
        m.d.comb += self.advance.eq(~self.pv | ~self.skid)
        m.d.sync += self.skid.eq(self.pv & ~o.ready)  # should be (pv | skid) & ~o.ready

    monkeypatch.setattr(pipeline.OutputSkid, "__init__", broken_init)
    emit(SparseMACConfig(n=2, m=4, target_mhz=150, skid=True), tmp_path)
    sc = find_module(tmp_path, "nm_spmac_2_4_int8_k4_skid")
    steps = stream.prove_stream(sc, tmp_path / "s")
    bad = [s for s in steps if not s.passed]
    assert bad and "property" in bad[0].detail and "failed" in bad[0].detail
