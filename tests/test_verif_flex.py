"""The flexible selector through Verilator and cocotb: exhaustive small points, mutants.

- W = 4, int4: every one of the 16**4 data words under both served patterns (1:4, 2:4), and
  every unserved encoding of the pattern fields on sampled words; the slow variant crosses
  all 16 encodings with all words (1,048,576 transfers).
- W = 8, int4 (slow): every weak ordering of the keys (545,835 orderings of 8 lanes, with
  ties and random signs) under every served M = 8 pattern, every pair of weak orderings of
  two groups of 4 under every served M = 4 pattern, every unserved encoding sampled.
- A mutated copy (one group enable or one bound of the pattern decode changed) must fail.

The shipped W = 16 and 32 units run the full regression in ``test_verif_regression.py``.
"""

from __future__ import annotations

import functools
import itertools
import re
from pathlib import Path

import pytest
import torch
from conftest import seed

from gen.config import FlexTopKConfig
from gen.emit import emit
from nmsparse.contract import sidecar
from nmsparse.contract.vectors import Scenario
from verif import flexvec, runner


def _emit(cfg, d: Path) -> sidecar.Sidecar:
    emit(cfg, d)
    return sidecar.load_sidecar(d / f"{cfg.name}.json")


def _run(sc, scenarios):
    res = runner.run_vectors(sc, scenarios, seed=seed(), tag="flex")
    for rec in res.scenarios:
        print(f"{sc.module}: {rec.name}: {rec.transfers} transfers, {rec.mismatches} "
              f"mismatches, latency {rec.latencies}")
    return res


def _all_words(w: int, bits: int) -> torch.Tensor:
    """Every ``w``-lane word of ``bits``-bit lanes, ``[2**(w*bits), w]``."""
    v = torch.arange(1 << (w * bits), dtype=torch.int64)
    return torch.stack([(v >> (bits * j)) & ((1 << bits) - 1) for j in range(w)], dim=1)


def _phase_for(sc, words: torch.Tensor, pats: list[tuple[int, int]]):
    bits = words.repeat(len(pats), 1)
    ml = torch.tensor([p[1] for p in pats]).repeat_interleave(words.shape[0])
    nn = torch.tensor([p[0] for p in pats]).repeat_interleave(words.shape[0])
    return flexvec.flex_topk_phase(sc, bits, ml, nn)


@pytest.fixture(scope="module")
def w4(tmp_path_factory) -> sidecar.Sidecar:
    return _emit(FlexTopKConfig(w=4, fmt="int4"), tmp_path_factory.mktemp("w4"))


def test_w4_int4_exhaustive_served_and_every_unserved_encoding(w4) -> None:
    words = _all_words(4, 4)
    served, unserved = flexvec.served(w4), flexvec.unserved(w4)
    assert served == [(1, 2), (2, 2)] and len(unserved) == 14
    gen = torch.Generator().manual_seed(seed())
    sample = words[torch.randperm(words.shape[0], generator=gen)[:2048]]
    scen = [Scenario("every word, served patterns", [_phase_for(w4, words, served)],
                     check_latency=True),
            Scenario("every unserved encoding", [_phase_for(w4, sample, unserved)],
                     check_latency=True)]
    res = _run(w4, scen)
    assert res.passed, res.failure_text()
    assert sum(s.transfers for s in res.scenarios) == 2 * 65536 + 14 * 2048


@pytest.mark.slow
def test_w4_int4_every_word_under_every_encoding(w4) -> None:
    pats = flexvec.served(w4) + flexvec.unserved(w4)
    assert len(pats) == 16
    res = _run(w4, [Scenario("every word x every encoding",
                             [_phase_for(w4, _all_words(4, 4), pats)], check_latency=True)])
    assert res.passed, res.failure_text()
    assert res.scenarios[0].transfers == 1 << 20


@functools.cache
def weak_orderings(k: int) -> torch.Tensor:
    """Every weak ordering of ``k`` items as levels ``[F(k), k]`` (level 0 lowest): each
    assignment of levels whose used levels are exactly 0 .. L-1 (F(4) = 75, F(8) = 545,835).

    Filtered from all k**k assignments, in chunks of the first two lanes' levels.
    """
    rest = torch.cartesian_prod(*[torch.arange(k)] * (k - 2))
    rest_used = torch.zeros(rest.shape[0], dtype=torch.int64)
    for j in range(k - 2):
        rest_used |= 1 << rest[:, j]
    out = []
    for a in range(k):
        for b in range(k):
            used = rest_used | (1 << a) | (1 << b)
            keep = (used & (used + 1)) == 0
            head = torch.tensor([a, b]).expand(int(keep.sum()), 2)
            out.append(torch.cat([head, rest[keep]], 1))
    return torch.cat(out)


def _int4_from_levels(levels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """int4 bit patterns with those key orders: level l -> |x| = l, or every key one higher
    and the top level |x| = 8 (the most negative value) on every other row; random signs."""
    top = levels.max(dim=1, keepdim=True).values
    alt = (torch.arange(levels.shape[0]) % 2 == 1)[:, None]
    key = torch.where(alt, torch.where(levels == top, 8, levels + 1), levels)
    neg = torch.rand(levels.shape, generator=gen) < 0.5
    x = torch.where((key == 8) | (neg & (key > 0)), -key, key)
    return x & 15


def test_weak_orderings_count() -> None:
    assert weak_orderings(4).shape == (75, 4)
    assert len({tuple(r) for r in weak_orderings(4).tolist()}) == 75


@pytest.mark.slow
def test_w8_int4_every_key_order_under_every_pattern(tmp_path) -> None:
    sc = _emit(FlexTopKConfig(w=8, fmt="int4"), tmp_path)
    gen = torch.Generator().manual_seed(seed())
    w8 = weak_orderings(8)
    assert w8.shape[0] == 545_835
    w4 = weak_orderings(4)
    pairs = torch.cat([w4.repeat_interleave(w4.shape[0], 0), w4.repeat(w4.shape[0], 1)], 1)
    served = flexvec.served(sc)
    scen = []
    for n, ml in served:
        words = _int4_from_levels(w8 if ml == 3 else pairs, gen)
        scen.append(Scenario(f"every key order, {n}:{1 << ml}",
                             [_phase_for(sc, words, [(n, ml)])], check_latency=True))
    sample = _int4_from_levels(w8[torch.randperm(w8.shape[0], generator=gen)[:1024]], gen)
    scen.append(Scenario("every unserved encoding",
                         [_phase_for(sc, sample, flexvec.unserved(sc))], check_latency=True))
    res = _run(sc, scen)
    assert res.passed, res.failure_text()
    assert sum(s.transfers for s in res.scenarios) == (
        4 * 545_835 + 2 * 75 * 75 + len(flexvec.unserved(sc)) * 1024)


# --------------------------------------------------------------------------------- mutants

MUTANTS = {
    # block h = 2 (lanes 4 apart) counted at M = 4 too: the group enable breaks
    "group enable": (r"(assign \S+\s+= i__payload\[\d+:\d+\]) > 2'h2;", r"\1 >= 2'h2;"),
    # 5:8 accepted although it keeps 10 of 16 lanes, more than the 8 slots
    "slot bound": (r"(assign \S+\s+= i__payload\[\d+:\d+\]) <= 3'h4;", r"\1 <= 3'h5;"),
}


@pytest.mark.parametrize("mutant", list(MUTANTS))
def test_mutated_flex_selector_fails(mutant: str, tmp_path: Path) -> None:
    sc = _emit(FlexTopKConfig(w=16, fmt="int8", pipeline=2), tmp_path)
    pat, rep = MUTANTS[mutant]
    text = sc.verilog.read_text()
    new, count = re.subn(pat, rep, text, count=1)
    assert count == 1, f"no line to mutate for {mutant}"
    sc.verilog.write_text(new)
    sc = sidecar.load_sidecar(sc.path)
    scen = [s for s in flexvec.flex_scenarios(sc, seed())
            if s.name.startswith(("directed", "every unserved"))]
    res = _run(sc, scen)
    assert not res.passed and res.mismatches > 0
    text = res.failure_text()
    assert "MISMATCH at output" in text and "input  m_log2:" in text and "<-- differs" in text


def test_adversarial_sequences_change_the_pattern_on_every_transfer(w4) -> None:
    seq = flexvec.adversarial_patterns(w4)
    changes = sum(a != b for a, b in itertools.pairwise(seq))
    assert changes >= 0.8 * (len(seq) - 1)
    assert set(seq) >= set(flexvec.served(w4))


def test_crosscheck_drives_a_flexible_selector(tmp_path: Path, capsys) -> None:
    import json

    from nmsparse import cli

    cfg = FlexTopKConfig(w=8, fmt="int8")
    hdl = tmp_path / "hdl"
    emit(cfg, hdl)
    out = tmp_path / "cc.json"
    rc = cli.main(["crosscheck", "--pattern", "2:4", "--fmt", "int8", "--activations",
                   "default", "--limit", "600", "--hdl-dir", str(hdl), "--json", str(out)])
    assert rc == 0, capsys.readouterr().err
    (rec,) = json.loads(out.read_text())
    assert rec["module"] == cfg.name and rec["flexible"] and rec["pattern"] == "2:4"
    assert rec["groups"] >= 600 and rec["mismatches"] == 0
    # a pattern it does not serve selects nothing
    assert cli.main(["crosscheck", "--pattern", "3:4", "--fmt", "int8", "--activations",
                     "default", "--hdl-dir", str(hdl)]) == 2
    assert "no top-k selector for 3:4 int8" in capsys.readouterr().err
