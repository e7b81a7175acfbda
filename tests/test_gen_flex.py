"""The runtime-flexible units in the Amaranth simulator, against the golden model.

Configuration checks, the pattern decode against :mod:`nmsparse.contract.flex` for every
encoding, the register placement, and streams of transfers whose pattern changes on every
transfer (served and unserved, ties, NaN, extremes) under random valid/ready.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest
import torch
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

import golden
from gen.config import FlexLinearConfig, FlexSparseMACConfig, FlexTopKConfig, flex_tree_stages
from gen.flex import NMTopKFlex, decode_pattern
from gen.flexmac import NMLinearFlex, NMSparseMACFlex
from gen.sim import combinational_map, pack, run_stream, unpack
from nmsparse import cli
from nmsparse.contract import flex as contract
from nmsparse.contract.sidecar import SidecarError, parse_sidecar
from verif import flexvec


def _pools(fmt: str) -> list[int]:
    f = golden.get_format(fmt)
    return sorted(set(f.special_patterns()) | {0, 1, 2, 3})


def _transfers(cfg, rng: random.Random, count: int) -> tuple[list[list[int]], list, list]:
    """Random, tie-heavy and special-value lanes; a random pattern per transfer, about one in
    six an unserved encoding."""
    sc = cfg.sidecar()
    ok, bad = flexvec.served(sc), flexvec.unserved(sc)
    pool = _pools(cfg.fmt)
    data, ml, nn = [], [], []
    for t in range(count):
        kind = t % 3
        if kind == 0:
            d = [rng.randrange(1 << cfg.width) for _ in range(cfg.w)]
        elif kind == 1:
            d = [rng.choice(pool) for _ in range(cfg.w)]
        else:
            d = [rng.choice(pool[:5]) for _ in range(cfg.w)]
        n, m_log2 = rng.choice(bad) if rng.random() < 1 / 6 else rng.choice(ok)
        data.append(d)
        ml.append(m_log2)
        nn.append(n)
    return data, ml, nn


def _expected_payloads(cfg, data, ml, nn) -> list[int]:
    exp = flexvec.flex_expected(cfg.sidecar(), torch.tensor(data, dtype=torch.int64), ml, nn)
    lay = cfg.output_layout()
    return [pack(lay, {k: v[t].tolist() for k, v in exp.items()}) for t in range(len(data))]


# --------------------------------------------------------------------------------- configs

def test_config_names_and_defaults() -> None:
    c = FlexTopKConfig(w=32, fmt="int8")
    assert c.name == "nm_topk_flex_32_int8_rank"
    assert (c.max_kept, c.index_width, c.m_log2_width, c.n_width, c.count_width) == (16, 5, 3,
                                                                                    5, 5)
    assert FlexTopKConfig(w=16, fmt="bf16", max_kept=12).name == "nm_topk_flex_16_bf16_rank_s12"
    assert FlexSparseMACConfig(w=32).name == "nm_spmac_flex_32_int8_k4"
    assert FlexLinearConfig(w=16, outputs=2).name == "nm_linear_flex_16_int8_k2"
    # selector 3, products 1, adder tree of 8 products 2 (two levels per stage), output 1
    assert FlexLinearConfig(w=16, pipeline=3).latency == 7
    assert FlexSparseMACConfig(w=32).latency == 5 and flex_tree_stages(16) == 2
    assert [flex_tree_stages(t) for t in (1, 2, 3, 4, 5)] == [0, 1, 1, 1, 2]


@pytest.mark.parametrize(("kwargs", "exc", "text"), [
    ({"w": 12}, ValueError, "power of two from 4 to 64, not 12"),
    ({"w": 128}, ValueError, "not 128"),
    ({"w": True}, TypeError, "must be an integer"),
    ({"w": "32"}, TypeError, "must be an integer, not '32'"),
    ({"w": 16, "max_kept": 0}, ValueError, "max_kept must be in [1, 12], not 0"),
    ({"w": 16, "max_kept": 13}, ValueError, "max_kept must be in [1, 12], not 13"),
    ({"w": 16, "fmt": "int3"}, ValueError, "int3"),
    ({"w": 16, "arch": "network"}, ValueError, "arch must be one of rank"),
    ({"w": 16, "pipeline": -1}, ValueError, "pipeline must be in [0, 64], not -1"),
])
def test_config_errors_name_the_value(kwargs, exc, text) -> None:
    with pytest.raises(exc) as info:
        FlexTopKConfig(**kwargs)
    assert text in str(info.value)


def test_mac_config_errors() -> None:
    with pytest.raises(ValueError, match="MAC units supports the formats"):
        FlexSparseMACConfig(w=16, fmt="bf16")
    with pytest.raises(ValueError, match="acc_width must be in"):
        FlexLinearConfig(w=32, acc_width=16)


def test_sidecar_describes_every_field() -> None:
    c = FlexTopKConfig(w=16, fmt="int8")
    sc = parse_sidecar(json.loads(c.sidecar().to_json()))
    assert sc.flexible and sc.w == 16 and sc.max_kept == 8 and sc.pattern == "flex:16"
    def order(port):
        return [f.name for f in sorted(port.fields.values(), key=lambda f: f.offset)]

    assert order(sc.i) == ["data", "m_log2", "n"]
    assert order(sc.o) == ["mask", "values", "index", "count", "m_log2", "n", "err"]
    assert set(sc.metrics["field_doc"]) == set(sc.i.fields) | set(sc.o.fields)
    widths = {k: (f.elem_width, f.count) for k, f in sc.o.fields.items()}
    assert widths == {"mask": (1, 16), "values": (8, 8), "index": (4, 8), "count": (4, 1),
                      "m_log2": (3, 1), "n": (4, 1), "err": (1, 1)}
    doc = json.loads(c.sidecar().to_json())
    doc["params"]["w"] = 24
    with pytest.raises(SidecarError, match="power of two"):
        parse_sidecar(doc)
    doc["params"]["w"], doc["params"]["max_kept"] = 16, 13
    with pytest.raises(SidecarError, match="max_kept.*not 13"):
        parse_sidecar(doc)


def test_cli_generate_flex(tmp_path, capsys) -> None:
    assert cli.main(["generate", "--unit", "topk_flex", "--w", "8", "--fmt", "int4",
                     "--max-kept", "6", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "nm_topk_flex_8_int4_rank_s6.json").is_file()
    assert "W = 8 lanes, 6 slots" in capsys.readouterr().out
    assert cli.main(["generate", "--unit", "topk", "--max-kept", "3", "-o", str(tmp_path)]) == 2
    assert "--max-kept applies to the flexible units" in capsys.readouterr().err


# --------------------------------------------------------------------------------- pieces

@pytest.mark.parametrize(("w", "s"), [(4, 2), (8, 4), (8, 6), (16, 8), (16, 3), (32, 16),
                                      (64, 32)])
def test_decode_matches_the_contract_for_every_encoding(w: int, s: int) -> None:
    cfg = FlexTopKConfig(w=w, max_kept=s, pipeline=0)
    m = Module()
    ml, n = Signal(cfg.m_log2_width), Signal(cfg.n_width)
    dec = decode_pattern(cfg, ml, n)
    ok, count = Signal(), Signal(cfg.count_width)
    en = Signal(cfg.lanes_log2)
    m.d.comb += [ok.eq(dec["ok"]), count.eq(dec["count"]), en.eq(sum(
        (e << h for h, e in enumerate(dec["en"])), start=0))]
    seen = []

    async def bench(ctx):
        for a in range(1 << cfg.m_log2_width):
            for b in range(1 << cfg.n_width):
                ctx.set(ml, a)
                ctx.set(n, b)
                seen.append((a, b, ctx.get(ok), ctx.get(count), ctx.get(en)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    for a, b, got_ok, got_count, got_en in seen:
        assert got_ok == contract.serves(b, a, w, s), (a, b)
        assert got_count == contract.kept_count(b, a, w, s), (a, b)
        if got_ok:  # block h inside the group iff h < m_log2
            assert got_en == (1 << a) - 1, (a, b)


# --------------------------------------------------------------------------------- selector

SELECTOR_CASES = [(4, "int4", None, 2), (4, "int8", 3, 0), (8, "int4", None, 3),
                  (8, "bf16", 6, 1), (8, "fp32", 1, 2), (16, "int8", None, 4),
                  (16, "fp16", 12, 3), (16, "int16", 5, 2), (32, "int8", None, 5),
                  (32, "bf16", None, 7)]


@pytest.mark.parametrize(("w", "fmt", "s", "pipeline"), SELECTOR_CASES)
def test_flex_selector_streams(w: int, fmt: str, s: int | None, pipeline: int,
                               nm_seed: int) -> None:
    cfg = FlexTopKConfig(w=w, fmt=fmt, max_kept=s, pipeline=pipeline)
    dut = NMTopKFlex(cfg)
    rng = random.Random(nm_seed * 31 + w)
    data, ml, nn = _transfers(cfg, rng, 30 if w >= 32 else 60)
    inputs = [pack(cfg.input_layout(), {"data": d, "m_log2": [a], "n": [b]})
              for d, a, b in zip(data, ml, nn, strict=True)]
    want = _expected_payloads(cfg, data, ml, nn)
    if pipeline == 0:
        got = combinational_map(dut, inputs)
    else:
        run = run_stream(dut, inputs, len(inputs), seed=nm_seed, p_valid=0.8, p_ready=0.7)
        got = run.outputs
        lat = {o - i for i, o in zip(run.in_cycles, run.out_cycles, strict=True)}
        assert min(lat) == cfg.latency
    lay = cfg.output_layout()
    for t, (g, e) in enumerate(zip(got, want, strict=True)):
        assert g == e, (f"transfer {t}, pattern n={nn[t]} m_log2={ml[t]}, data {data[t]}: "
                        f"got {unpack(lay, g)}, want {unpack(lay, e)} (seed {nm_seed})")


def test_every_register_placement(nm_seed: int) -> None:
    """W = 8: every number of register stages from 0 to one per layer and beyond, so that a
    value taken from the wrong stage of any layer shows up."""
    rng = random.Random(nm_seed)
    layers = len(FlexTopKConfig(w=8, fmt="int4").architecture.layers())
    for pipeline in range(layers + 2):
        cfg = FlexTopKConfig(w=8, fmt="int4", max_kept=6, pipeline=pipeline)
        data, ml, nn = _transfers(cfg, rng, 12)
        inputs = [pack(cfg.input_layout(), {"data": d, "m_log2": [a], "n": [b]})
                  for d, a, b in zip(data, ml, nn, strict=True)]
        dut = NMTopKFlex(cfg)
        got = (combinational_map(dut, inputs) if pipeline == 0 else
               run_stream(dut, inputs, len(inputs), seed=nm_seed, p_ready=0.8).outputs)
        assert got == _expected_payloads(cfg, data, ml, nn), f"pipeline={pipeline}"


def test_flex_selector_every_pattern_at_w8_int4(nm_seed: int) -> None:
    """W = 8, int4: every encoding of the pattern fields, on the same tie-heavy data."""
    cfg = FlexTopKConfig(w=8, fmt="int4", pipeline=0)
    dut = NMTopKFlex(cfg)
    rng = random.Random(nm_seed)
    data = [[rng.randrange(16) for _ in range(8)] for _ in range(6)] + [[8] * 8, [0] * 8,
                                                                         [7, 9] * 4]
    enc = list(itertools.product(range(4), range(8)))
    rows = [(d, a, b) for d in data for a, b in enc]
    inputs = [pack(cfg.input_layout(), {"data": d, "m_log2": [a], "n": [b]}) for d, a, b in rows]
    want = _expected_payloads(cfg, [r[0] for r in rows], [r[1] for r in rows],
                              [r[2] for r in rows])
    got = combinational_map(dut, inputs)
    assert got == want


# --------------------------------------------------------------------------------- MAC units

def _mac_case(cfg, rng: random.Random, rows: int):
    sc = cfg.sidecar()
    ok, bad = flexvec.served(sc), flexvec.unserved(sc)
    inputs, accs = [], []
    w, k = cfg.w, cfg.outputs
    lo, hi = -(1 << (cfg.width - 1)), (1 << (cfg.width - 1)) - 1
    wlo, whi = -(1 << (cfg.weight_width - 1)), (1 << (cfg.weight_width - 1)) - 1
    for _ in range(rows):
        acc = [0] * k
        t = rng.randint(1, 3)
        for step in range(t):
            x = [rng.choice((lo, hi, 0, 1, -1, rng.randint(lo, hi))) for _ in range(w)]
            wt = [rng.choice((wlo, whi, rng.randint(wlo, whi))) for _ in range(k * w)]
            n, ml = rng.choice(bad) if rng.random() < 0.15 else rng.choice(ok)
            bits = torch.tensor([x]) & ((1 << cfg.width) - 1)
            exp = flexvec.flex_expected(sc, bits, [ml], [n])
            mask = exp["mask"][0].tolist()
            for kk in range(k):
                acc[kk] += sum(x[j] * wt[kk * w + j] for j in range(w) if mask[j])
            last = [int(step == t - 1)]
            if isinstance(cfg, FlexSparseMACConfig):
                kept = [j for j in range(w) if mask[j]]
                vals = [x[j] for j in kept] + [0] * (cfg.max_kept - len(kept))
                f = {"values": vals, "index": exp["index"][0].tolist()}
            else:
                f = {"data": x, "m_log2": [ml], "n": [n]}
            inputs.append(pack(cfg.input_layout(), {**f, "weights": wt, "last": last}))
        half = 1 << (cfg.acc_width - 1)
        accs.append(pack(cfg.output_layout(),
                         {"acc": [((a + half) % (2 * half)) - half for a in acc]}))
    return inputs, accs


@pytest.mark.parametrize(("cls", "cfg"), [
    (NMSparseMACFlex, FlexSparseMACConfig(w=8, outputs=3)),
    (NMSparseMACFlex, FlexSparseMACConfig(w=16, fmt="int4", max_kept=12, outputs=2,
                                          weight_width=4, acc_width=12)),
    (NMLinearFlex, FlexLinearConfig(w=8, outputs=2, pipeline=0)),
    (NMLinearFlex, FlexLinearConfig(w=16, outputs=3, max_kept=5)),
])
def test_flex_mac_rows(cls, cfg, nm_seed: int) -> None:
    rng = random.Random(nm_seed + cfg.w)
    inputs, want = _mac_case(cfg, rng, 25)
    run = run_stream(cls(cfg), inputs, len(want), seed=nm_seed, p_valid=0.8, p_ready=0.7)
    assert run.outputs == want
