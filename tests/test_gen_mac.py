"""Sparse MAC, sparse linear engine and dense baseline in the Amaranth simulator vs golden."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest
import torch
from amaranth.hdl import ClockDomain, Module, Value, signed
from amaranth.sim import Simulator

import golden
from gen.config import DenseMACConfig, LinearConfig, SparseMACConfig
from gen.linear import NMLinear
from gen.mac import DenseMAC, NMSparseMAC
from gen.sim import pack, run_stream, run_testbench, unpack


def make_rows(cfg, rng: random.Random, rows: int, max_groups: int, *, extreme_every: int = 3):
    """Rows of (x groups [g][M], weights [g][K][M]); every few rows all most-negative values."""
    w, ww, m, k = cfg.width, cfg.weight_width, cfg.m, cfg.outputs
    out = []
    for r in range(rows):
        g = rng.randint(1, max_groups)
        if r % extreme_every == 0:
            x = [[-(1 << (w - 1))] * m for _ in range(g)]
            wt = [[[-(1 << (ww - 1))] * m for _ in range(k)] for _ in range(g)]
        else:
            x = [[rng.choice((rng.randrange(-(1 << (w - 1)), 1 << (w - 1)), 0, 1, -1))
                  for _ in range(m)] for _ in range(g)]
            wt = [[[rng.randrange(-(1 << (ww - 1)), 1 << (ww - 1)) for _ in range(m)]
                   for _ in range(k)] for _ in range(g)]
        out.append((x, wt))
    return out


def encode(dut, rows) -> tuple[list[int], list[int], list[int]]:
    """Input payloads, expected output payloads (golden), index of each row's last group
    (``dut``: a unit or its configuration)."""
    cfg = getattr(dut, "config", dut)
    m, k = cfg.m, cfg.outputs
    inputs, want, lasts = [], [], []
    for x, wt in rows:
        g = len(x)
        xt = torch.tensor(x, dtype=torch.int16).reshape(1, g * m)
        wmat = torch.tensor(wt, dtype=torch.int32).permute(1, 0, 2).reshape(k, g * m)
        if isinstance(cfg, DenseMACConfig):
            y = golden.wrap(xt.to(torch.int64) @ wmat.to(torch.int64).T, cfg.acc_width)
        else:
            y = golden.sparse_linear(xt, wmat, cfg.n, cfg.m, acc_width=cfg.acc_width,
                                     fmt=cfg.fmt, weight_fmt="int16")  # weights <= 16 bits
        want.append(pack(cfg.output_layout(), {"acc": y[0].tolist()}))
        if isinstance(cfg, SparseMACConfig):
            values, index = golden.nm_compress(xt, cfg.n, cfg.m, fmt=cfg.fmt)
        for gi in range(g):
            fields = {"weights": [wt[gi][kk][j] for kk in range(k) for j in range(m)],
                      "last": [int(gi == g - 1)]}
            if isinstance(cfg, SparseMACConfig):
                fields["values"] = values[0, gi].tolist()
                fields["index"] = index[0, gi].tolist()
            else:
                fields["data"] = x[gi]
            inputs.append(pack(cfg.input_layout(), fields))
        lasts.append(len(inputs) - 1)
    return inputs, want, lasts


UNITS = [
    ("spmac", dict(n=2, m=4)),
    ("spmac", dict(n=8, m=16)),
    ("spmac", dict(n=3, m=8, fmt="int4", weight_width=4, acc_width=12, outputs=3)),
    ("spmac", dict(n=2, m=4, fmt="int16", weight_width=16, acc_width=40, outputs=1)),
    ("dense", dict(m=4)),
    ("dense", dict(m=16)),
    ("dense", dict(m=8, fmt="int4", acc_width=16, outputs=2)),
    ("linear", dict(n=2, m=4)),
    ("linear", dict(n=8, m=16)),
    ("linear", dict(n=8, m=16, arch="rank")),
    ("linear", dict(n=3, m=8, pipeline=0, outputs=2)),
    ("linear", dict(n=4, m=8, arch="rank", pipeline=3, fmt="int4", acc_width=16)),
    # a radix selector in the engine (the raw elements wait in two chained 16-deep RAMs)
    ("linear", dict(n=4, m=8, arch="radix", pipeline=18, outputs=2)),
    # the output skid buffer (every stall enable a flip-flop)
    ("spmac", dict(n=8, m=16, skid=True, target_mhz=150)),
    ("dense", dict(m=16, skid=True, target_mhz=150)),
    ("linear", dict(n=8, m=16, arch="rank", skid=True, target_mhz=150)),
    ("linear", dict(n=3, m=8, pipeline=0, outputs=2, skid=True)),
]
_CLASSES = {"spmac": (NMSparseMAC, SparseMACConfig), "dense": (DenseMAC, DenseMACConfig),
            "linear": (NMLinear, LinearConfig)}


def _unit(unit: str, kwargs: dict):
    cls, config = _CLASSES[unit]
    return cls(config(**kwargs))


def _ids(case) -> str:
    return case[0] + "-" + "-".join(f"{k}{v}" for k, v in case[1].items())


@pytest.mark.parametrize("case", UNITS, ids=_ids)
def test_mac_units_against_golden(case, nm_seed: int) -> None:
    unit, kwargs = case
    dut = _unit(unit, kwargs)
    rng = random.Random(nm_seed + len(str(kwargs)))
    inputs, want, lasts = encode(dut, make_rows(dut.config, rng, 10, 4))
    run = run_stream(dut, inputs, len(want), seed=nm_seed, p_valid=0.8, p_ready=0.6)
    fields = dut.config.output_layout()
    for r, (got, exp) in enumerate(zip(run.outputs, want, strict=True)):
        assert got == exp, f"row {r}: got {unpack(fields, got)}, want {unpack(fields, exp)}"
    for r, last in enumerate(lasts):
        assert run.out_cycles[r] >= run.in_cycles[last] + dut.latency


@pytest.mark.parametrize("case", [UNITS[1], UNITS[5], UNITS[8], UNITS[10], UNITS[13],
                                  UNITS[15]], ids=_ids)
def test_mac_exact_latency_full_rate(case, nm_seed: int) -> None:
    unit, kwargs = case
    dut = _unit(unit, kwargs)
    inputs, want, lasts = encode(dut, make_rows(dut.config, random.Random(nm_seed), 8, 3))
    run = run_stream(dut, inputs, len(want), seed=nm_seed)
    assert run.outputs == want
    assert run.in_cycles == list(range(len(inputs))), "not one group per clock"
    assert [o - run.in_cycles[last] for o, last in zip(run.out_cycles, lasts, strict=True)] \
        == [dut.latency] * len(want)


def test_accumulator_wraps() -> None:
    """Long rows of most-negative products overflow an 18-bit accumulator: wrap exactly."""
    dut = NMSparseMAC(SparseMACConfig(n=2, m=4, acc_width=18, outputs=1))
    rows = [([[-128] * 4] * 20, [[[-128] * 4]] * 20)]
    inputs, want, _ = encode(dut, rows)
    assert unpack(dut.config.output_layout(), want[0])["acc"] == [
        int(golden.wrap(torch.tensor(20 * 2 * 16384), 18))
    ]
    assert run_stream(dut, inputs, 1, p_ready=0.5, seed=1).outputs == want


def test_reset_drops_the_row_in_progress() -> None:
    dut = NMSparseMAC(SparseMACConfig(n=2, m=4, outputs=1))
    cfg = dut.config
    first = pack(cfg.input_layout(), {"values": [5, 7], "index": [0, 1],
                                      "weights": [1, 1, 1, 1], "last": [0]})
    second = pack(cfg.input_layout(), {"values": [2, 3], "index": [1, 3],
                                       "weights": [10, 20, 30, 40], "last": [1]})
    top = Module()
    top.submodules.dut = dut
    top.domains.sync = cd = ClockDomain()
    got = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        ctx.set(Value.cast(dut.i.payload), first)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        await ctx.tick()  # the first group is now in the accumulator
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        ctx.set(dut.i.valid, 1)
        ctx.set(Value.cast(dut.i.payload), second)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for _ in range(4):
            if ctx.get(dut.o.valid):
                got.append(ctx.get(Value.cast(dut.o.payload)))
            await ctx.tick()

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert [unpack(cfg.output_layout(), g)["acc"] for g in got] == [[2 * 20 + 3 * 40]]


@pytest.mark.parametrize(
    ("cls", "kwargs", "exc", "needle"),
    [
        (SparseMACConfig, dict(n=4, m=4), ValueError, "n = 4"),
        (SparseMACConfig, dict(n=2, m=1), ValueError, "m must be at least 2, not 1"),
        (SparseMACConfig, dict(n=2, m=4, fmt="bf16"), ValueError, "'bf16'"),
        (SparseMACConfig, dict(n=2, m=4, fmt="int5"), ValueError, "'int5'"),
        (SparseMACConfig, dict(n=2, m=4, acc_width=16), ValueError, "not 16"),
        (SparseMACConfig, dict(n=2, m=4, acc_width=65), ValueError, "not 65"),
        (SparseMACConfig, dict(n=2, m=4, acc_width=32.0), TypeError, "32.0"),
        (SparseMACConfig, dict(n=2, m=4, weight_width=1), ValueError, "not 1"),
        (SparseMACConfig, dict(n=2, m=4, outputs=0), ValueError, "outputs must be in .*not 0"),
        (DenseMACConfig, dict(m=32, acc_width=20), ValueError, "\\[21, 64\\].*not 20"),
        (DenseMACConfig, dict(m=0), ValueError, "m must be in .*not 0"),
        (LinearConfig, dict(n=2, m=4, arch="bubble"), ValueError, "'bubble'"),
        (LinearConfig, dict(n=2, m=4, pipeline=-2), ValueError, "-2"),
        (LinearConfig, dict(n=2, m=4, fmt="fp16"), ValueError, "'fp16'"),
    ],
)
def test_mac_invalid_parameters(cls, kwargs: dict, exc: type, needle: str) -> None:
    with pytest.raises(exc, match=needle):
        cls(**kwargs)


SCHEDULES = [
    ("spmac", dict(n=8, m=16, mac_pipeline="pre=1,mul=1,tree=2")),
    ("spmac", dict(n=2, m=4, mac_pipeline="pre=0,mul=0,tree=0")),
    ("spmac", dict(n=3, m=8, mac_pipeline="pre=2,mul=0,tree=3", outputs=2)),
    ("spmac", dict(n=1, m=4, mac_pipeline="mul=1,tree=2", outputs=2)),
    ("spmac", dict(n=16, m=32, outputs=2)),  # compaction network
    ("spmac", dict(n=5, m=16, outputs=1, mac_pipeline="pre=1")),
    ("dense", dict(m=16, mac_pipeline="mul=1,tree=4")),
    ("dense", dict(m=4, mac_pipeline="mul=0,tree=1", outputs=3)),
    ("linear", dict(n=8, m=16, arch="rank", pipeline=3, mac_pipeline="wmux=1,pre=1,mul=1,tree=1")),
    ("linear", dict(n=8, m=16, arch="rank", pipeline=2, mac_pipeline="wmux=1,pre=0,mul=0")),
    ("linear", dict(n=2, m=4, pipeline=0, mac_pipeline="mul=0")),
    ("linear", dict(n=4, m=8, arch="rank", pipeline=1, target_mhz=90)),
]


@pytest.mark.parametrize("case", SCHEDULES, ids=_ids)
def test_mac_schedules_exact(case, nm_seed: int) -> None:
    """Every register placement: golden values under random valid/ready, and the exact
    sidecar latency at full rate."""
    unit, kwargs = case
    dut = _unit(unit, kwargs)
    rng = random.Random(nm_seed + 7)
    inputs, want, lasts = encode(dut, make_rows(dut.config, rng, 8, 4))
    run = run_stream(dut, inputs, len(want), seed=nm_seed, p_valid=0.7, p_ready=0.6)
    assert run.outputs == want
    run = run_stream(dut, inputs, len(want), seed=nm_seed)
    assert run.outputs == want
    assert run.in_cycles == list(range(len(inputs))), "not one group per clock"
    assert [o - run.in_cycles[last] for o, last in zip(run.out_cycles, lasts, strict=True)] \
        == [dut.latency] * len(want)


# ------------------------------------------------------------------ weights from memory
def random_store(cfg, rng: random.Random) -> list[list[list[int]]]:
    """Bank contents ``store[word][bank][k]``: every weight of the ``depth`` x M features."""
    ww = cfg.weight_width
    return [[[rng.randrange(-(1 << (ww - 1)), 1 << (ww - 1)) for _ in range(cfg.outputs)]
             for _ in range(cfg.m)] for _ in range(cfg.depth)]


def encode_program(dut, program) -> tuple[list[int], list[int], list[int]]:
    """A memory-mode program: ``("load", store)`` writes every feature's weights,
    ``("row", x)`` streams the groups ``x`` (weights from the banks, word = group mod depth).
    Returns input payloads, expected outputs (golden) and the index of each row's last group."""
    cfg = dut.config
    m, k, d = cfg.m, cfg.outputs, cfg.depth
    lay = cfg.input_layout()
    inputs, want, lasts = [], [], []
    store = None
    for op, arg in program:
        if op == "load":
            store = arg
            for g in range(d):
                for j in range(m):
                    inputs.append(pack(lay, {"data": [0] * m, "weights": store[g][j],
                                             "last": [0], "load": [1],
                                             "addr": [(g << cfg.index_width) | j]}))
            continue
        x = arg
        g = len(x)
        wt = [[[store[q % d][j][kk] for j in range(m)] for kk in range(k)] for q in range(g)]
        (rin, rwant, _) = encode(_stream_twin(dut), [(x, wt)])
        want += rwant
        for q in range(g):
            inputs.append(pack(lay, {"data": x[q], "weights": [0] * k, "last": [int(q == g - 1)],
                                     "load": [0], "addr": [0]}))
        lasts.append(len(inputs) - 1)
    return inputs, want, lasts


def _stream_twin(dut):
    """The same design point with weights in the stream (to reuse :func:`encode`'s golden)."""
    cfg = dut.config
    kw = {f: getattr(cfg, f) for f in ("fmt", "weight_width", "acc_width", "outputs")}
    if isinstance(cfg, DenseMACConfig):
        return DenseMACConfig(m=cfg.m, **kw)
    return LinearConfig(n=cfg.n, m=cfg.m, **kw)


MEMORY = [
    ("linear", dict(n=8, m=16, arch="rank", pipeline=2, weights="memory", depth=4)),
    ("linear", dict(n=2, m=4, weights="memory", depth=3, outputs=2,
                    mac_pipeline="pre=1,mul=1,tree=1")),
    ("linear", dict(n=3, m=8, pipeline=0, weights="memory", depth=2, outputs=3)),
    ("dense", dict(m=4, weights="memory", depth=4, mac_pipeline="mul=1,tree=1")),
    ("dense", dict(m=16, weights="memory", depth=2, outputs=2)),
    # banks by kept slot: depth a power of two (word = column * D + group as bits) and not
    ("linear", dict(n=8, m=16, arch="rank", pipeline=2, weights="memory", depth=4,
                    banks="lane")),
    ("linear", dict(n=2, m=4, weights="memory", depth=3, outputs=2,
                    mac_pipeline="pre=1,mul=1,tree=1", banks="lane")),
    ("linear", dict(n=3, m=8, pipeline=0, weights="memory", depth=2, outputs=3,
                    banks="lane")),
    ("linear", dict(n=5, m=6, pipeline=1, weights="memory", depth=5, outputs=2,
                    banks="lane")),
    # with the output skid buffer
    ("linear", dict(n=8, m=16, arch="rank", weights="memory", depth=4, banks="lane",
                    outputs=3, target_mhz=150, skid=True)),
    ("linear", dict(n=3, m=8, weights="memory", depth=2, outputs=3, target_mhz=150,
                    skid=True)),
    ("dense", dict(m=16, weights="memory", depth=2, outputs=2, target_mhz=150, skid=True)),
]


@pytest.mark.parametrize("case", MEMORY, ids=_ids)
def test_weights_from_memory(case, nm_seed: int) -> None:
    """Loads, rows longer than the banks (words wrap), a reload right behind a row that is
    still in the selector (the load waits; each row sees its own weights), random
    valid/ready; then exact latency and full rate with the loads first."""
    unit, kwargs = case
    dut = _unit(unit, kwargs)
    cfg = dut.config
    rng = random.Random(nm_seed + 11)
    rows = [x for x, _ in make_rows(cfg, rng, 6, cfg.depth + 2)]
    # the row right before the reload ends at word 0, the first word the reload writes
    # and keeps element 0 (the largest magnitude), so it reads bank 0, written first
    rows[2] = [list(g) for g in rows[2][: 1]]
    rows[2][0][0] = -(1 << (cfg.width - 1))
    s1, s2 = random_store(cfg, rng), random_store(cfg, rng)
    program = ([("load", s1)] + [("row", x) for x in rows[:3]] + [("load", s2)]
               + [("row", x) for x in rows[3:]])
    inputs, want, _ = encode_program(dut, program)
    for p_valid, p_ready in ((1.0, 1.0), (0.7, 0.5)):
        run = run_stream(dut, inputs, len(want), seed=nm_seed, p_valid=p_valid,
                         p_ready=p_ready)
        assert run.outputs == want
    inputs, want, lasts = encode_program(dut, [("load", s1)] + [("row", x) for x in rows])
    run = run_stream(dut, inputs, len(want), seed=nm_seed)
    assert run.outputs == want
    assert run.in_cycles == list(range(len(inputs))), "not one transfer per clock"
    assert [o - run.in_cycles[last] for o, last in zip(run.out_cycles, lasts, strict=True)] \
        == [dut.latency] * len(want)


def test_lane_banks_hold_each_slot_its_columns() -> None:
    """Banks by kept slot: N banks of (M-N+1) x D words, the same N columns read per group,
    N (M-N+1) / M copies stored; no weight selection (one stage less than by position), and
    each bank's read address registered before the read (one more, LANE_ADDR_STAGES)."""
    from gen.macsched import LANE_ADDR_STAGES

    for n, m, copies in ((2, 4, 1.5), (8, 16, 4.5), (16, 32, 8.5)):
        pos = LinearConfig(n=n, m=m, outputs=16, weights="memory", target_mhz=150)
        lane = LinearConfig(n=n, m=m, outputs=16, weights="memory", banks="lane",
                            target_mhz=150)
        assert lane.name == f"nm_linear_{n}_{m}_int8_k16_wlane"
        assert pos.banks == "position" and "banks" not in pos.params()
        assert lane.params()["banks"] == "lane"
        got, ref = lane.metrics(), pos.metrics()
        assert (got["weight_banks"], got["bank_words"]) == (n, (m - n + 1) * pos.depth)
        assert got["weight_bits_per_group"] == ref["weight_bits_per_group"] == n * 16 * 8
        assert got["weight_bits_stored"] == copies * ref["weight_bits_stored"]
        assert lane.schedule.wmux == 0
        assert lane.latency == pos.latency - pos.schedule.wmux + LANE_ADDR_STAGES


@pytest.mark.parametrize("kwargs, match", [
    (dict(banks="lane"), "banks applies to weights='memory' only, not 'lane'"),
    (dict(weights="memory", banks="slot"), "banks must be one of position, lane, not 'slot'"),
    (dict(weights="memory", banks="lane", mac_pipeline="wmux=1,pre=1,mul=1"),
     "the lane banks .* has no weight selection"),
])
def test_lane_banks_reject_bad_parameters(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        LinearConfig(n=8, m=16, **kwargs)


def test_banks_option_only_for_the_linear_engine(tmp_path, capsys) -> None:
    from nmsparse import cli
    rc = cli.main(["generate", "--pattern", "8:16", "--unit", "dense_mac", "--weights",
                   "memory", "--banks", "lane", "-o", str(tmp_path)])
    assert rc == 2
    assert "--banks applies to --unit linear with --weights memory, not 'dense_mac'" \
        in capsys.readouterr().err


def test_memory_reads_only_kept_banks() -> None:
    """The sidecar states the weight bits per group: N of M columns from memory."""
    lin = LinearConfig(n=8, m=16, outputs=16, weights="memory")
    dense = DenseMACConfig(m=16, outputs=16, weights="memory")
    assert lin.metrics()["weight_bits_per_group"] == 8 * 16 * 8
    assert dense.metrics()["weight_bits_per_group"] == 16 * 16 * 8
    assert lin.metrics()["weight_bits_stored"] == dense.metrics()["weight_bits_stored"] \
        == 16 * 64 * 16 * 8
    assert lin.name == "nm_linear_8_16_int8_k16_wmem"


@pytest.mark.parametrize(("n", "m"), [(3, 6), (2, 5), (4, 8), (1, 4), (5, 7)])
def test_compaction_network_every_index_set(n: int, m: int) -> None:
    """The compaction network routes column index[s] to slot s for every ascending index
    set (it is used where it needs fewer multiplexers, here forced for small patterns)."""
    import itertools

    from amaranth.hdl import Module, Signal

    from gen.mac import _compact_weights

    top = Module()
    idx = [Signal(range(m), name=f"i{s}") for s in range(n)]
    cols = [Signal(signed(8), name=f"c{j}") for j in range(m)]
    out = _compact_weights(top, idx, lambda k, j: cols[j], m_=m, outputs=1, weight_width=8,
                           name="t")[0]
    sets = list(itertools.combinations(range(m), n))

    async def bench(ctx):
        for j, c in enumerate(cols):
            ctx.set(c, 10 * j - 40)
        for chosen in sets:
            for s, i in enumerate(chosen):
                ctx.set(idx[s], i)
            assert [ctx.get(o) for o in out] == [10 * i - 40 for i in chosen], chosen

    sim = Simulator(top)
    sim.add_testbench(bench)
    sim.run()


def test_schedule_specs_and_errors() -> None:
    from gen.macsched import MACSchedule, parse_schedule

    assert parse_schedule("pre=1, tree=2") == MACSchedule(pre=1, mul=1, tree=2)
    assert parse_schedule("auto") is None and parse_schedule(None) is None
    assert SparseMACConfig(n=2, m=4, mac_pipeline="tree=1").mac_pipeline == "pre=0,mul=1,tree=1"
    for spec, exc, needle in (("lut=1", ValueError, "'lut=1' is not <part>=<stages>"),
                              ("mul=x", ValueError, "mul must be an integer, not 'x'"),
                              ("mul=1,mul=2", ValueError, "gives mul twice"),
                              ("tree=9", ValueError, "tree must be in \\[0, 8\\], not 9"),
                              (3, TypeError, "spec string")):
        with pytest.raises(exc, match=needle):
            SparseMACConfig(n=2, m=4, mac_pipeline=spec)
    with pytest.raises(ValueError, match="'auto' needs target_mhz"):
        DenseMACConfig(m=4, mac_pipeline="auto")
    with pytest.raises(ValueError, match=r"out of reach: the route into the DSP input "
                       r"registers alone"):
        DenseMACConfig(m=4, target_mhz=400)
    with pytest.raises(TypeError, match="target_mhz must be a number"):
        DenseMACConfig(m=4, target_mhz="fast")


def test_auto_schedule_meets_the_model_with_fewest_bits() -> None:
    """Faster clocks never need fewer register bits; every segment of the chosen schedule fits
    the period in the model; at a slow clock nothing but the accumulator is registered (and
    the decoded selects of the one-hot stream engine)."""
    from gen.macsched import ECP5_DELAYS_NS, _meets, auto_schedule, layer_delays, register_bits

    for cfg, top in ((LinearConfig(n=8, m=16, outputs=16), 150),
                     (DenseMACConfig(m=32, outputs=4), 150),
                     (LinearConfig(n=16, m=32, outputs=16), 150),
                     (LinearConfig(n=16, m=32, outputs=16, weights="memory"), 125)):
        shape = cfg.mac_shape()
        prev = -1
        for mhz in (20, 50, 70, 90, 120, top):
            sched = auto_schedule(shape, mhz, 32)
            assert register_bits(shape, sched) >= prev
            prev = register_bits(shape, sched)
            budget = 1000 / mhz - 0.8
            assert _meets(shape, sched, layer_delays(shape, 32), budget, ECP5_DELAYS_NS)
            # one stage fewer anywhere misses the clock (the schedule is not padded)
            for part in ("wmux", "pre", "mul", "tree"):
                if getattr(sched, part):
                    fewer = dataclasses.replace(sched, **{part: getattr(sched, part) - 1})
                    assert (not _meets(shape, fewer, layer_delays(shape, 32), budget,
                                       ECP5_DELAYS_NS)
                            or register_bits(shape, fewer) >= register_bits(shape, sched))
        # (the one-hot stream engine's decoded selects are always registered)
        assert auto_schedule(shape, 20, 32).stages == 1 + shape.decode
        # at the top clock the multipliers' operands and products sit in the DSP's registers,
        # and at 150 MHz with 128 and more multipliers a fabric register takes the product's
        # long route (at 125 MHz 256 of them still fit the period without it)
        fast = auto_schedule(shape, top, 32)
        long_route = top == 150 and shape.terms * shape.outputs >= 128
        assert fast.pre >= 1 and fast.mul == (2 if long_route else 1)
    # a register after the weight multiplexers (8 bits per product) beats one after the
    # multipliers (16 bits) when either meets the clock
    assert LinearConfig(n=2, m=4, outputs=8, target_mhz=90).mac_pipeline.startswith("pre=1")


def test_product_route_grows_with_the_array() -> None:
    """The product's route out of the DSP (dsp_spread) is local up to DSP_SPREAD_BASE
    multipliers and grows per doubling beyond: at 150 MHz, 64 multipliers keep the product in
    the DSP's register alone, 128 get a fabric register after it (the measured 8:16 K = 16
    and 16-wide dense K = 8 arrays, gen.macsched)."""
    from gen.macsched import DSP_SPREAD_BASE, dsp_spread

    assert dsp_spread(DSP_SPREAD_BASE) == 0 and dsp_spread(1) == 0
    assert dsp_spread(4 * DSP_SPREAD_BASE) == pytest.approx(2 * dsp_spread(2 * DSP_SPREAD_BASE))
    mul = {k: LinearConfig(n=8, m=16, outputs=k, weights="memory", banks="lane",
                           target_mhz=150).schedule.mul for k in (4, 8, 16)}
    assert mul == {4: 1, 8: 1, 16: 2}
    assert DenseMACConfig(m=16, outputs=8, target_mhz=150).schedule.mul == 2
    assert DenseMACConfig(m=16, outputs=4, target_mhz=150).schedule.mul == 1


def test_latency_properties() -> None:
    mac, dense = SparseMACConfig(n=8, m=16), DenseMACConfig(m=16)
    lin = LinearConfig(n=8, m=16, pipeline=4)
    assert mac.latency == 2 and dense.latency == 2
    # the selector, the one-hot stream selects' register, the default MAC stages
    assert lin.latency == 4 + 1 + 2 and lin.selector.pipeline == 4
    assert LinearConfig(n=2, m=4, pipeline=4).latency == 6


def test_adder_tree_partial_sums_are_kept() -> None:
    """Each partial sum is its own ``keep`` signal, so synthesis maps two-operand adders
    (carry chains) instead of one multi-operand adder expanded into LUT logic."""
    from amaranth.back import verilog

    text = verilog.convert(DenseMAC(DenseMACConfig(m=4, outputs=1)), name="t",
                           emit_src=False)
    # 4 products: 3 partial sums for the one output
    assert text.count("(* keep = 32'd1 *)") == 3


@pytest.mark.parametrize(("n", "m"), [(8, 16), (2, 4), (3, 6), (1, 4), (4, 4)])
def test_onehot_weight_selection_every_index_set(n: int, m: int) -> None:
    """Weights from memory: the one-hot selects of every ascending index set pick column
    index[s] for slot s (exactly one select bit per slot)."""
    import itertools

    from amaranth.hdl import Module, Signal

    from gen.mac import _onehot_weights, onehot_select

    top = Module()
    idx = [Signal(range(m), name=f"i{s}") for s in range(n)]
    cols = [Signal(signed(8), name=f"c{j}") for j in range(m)]
    sel = onehot_select(top, idx, m_=m, name="t_sel")
    out = _onehot_weights(top, [sel], lambda k, j: cols[j], outputs=1, weight_width=8,
                          name="t")[0]
    sets = list(itertools.combinations(range(m), n))

    async def bench(ctx):
        for j, c in enumerate(cols):
            ctx.set(c, 17 * j - 128)
        for chosen in sets[:: max(1, len(sets) // 2000)]:
            for s, i in enumerate(chosen):
                ctx.set(idx[s], i)
            assert [bin(ctx.get(v)).count("1") for v in sel] == [1] * n, chosen
            assert [ctx.get(o) for o in out] == [17 * i - 128 for i in chosen], chosen

    sim = Simulator(top)
    sim.add_testbench(bench)
    sim.run()


def test_memory_weight_selection_has_one_place_for_a_register() -> None:
    """From memory the select is decoded during the bank read; the one place for a register in
    the weight selection is before the AND-OR (the read data of all banks in the fabric),
    which the automatic schedule uses where the route out of the block RAM and the AND-OR do
    not fit one period (150 MHz) and leaves out where they do (125 MHz); two are refused."""
    from gen.macsched import weight_select, wmux_steps

    assert weight_select(8, 16, memory=True) == "onehot"
    assert weight_select(8, 16) == "compaction" and weight_select(2, 4) == "tree"
    assert len(wmux_steps(8, 16, memory=True)) == 2
    for k in (4, 16, 32):
        cfg = LinearConfig(n=8, m=16, outputs=k, weights="memory", target_mhz=125)
        assert cfg.schedule.wmux == 0, cfg.mac_pipeline
        cfg = LinearConfig(n=8, m=16, outputs=k, weights="memory", target_mhz=150)
        assert cfg.schedule.wmux == 1, cfg.mac_pipeline
        assert LinearConfig(n=8, m=16, outputs=k, target_mhz=150).schedule.wmux >= 1
    with pytest.raises(ValueError, match="wmux=2: the weight selection has 2 steps"):
        LinearConfig(n=8, m=16, weights="memory", mac_pipeline="wmux=2,pre=1,mul=1")


def test_stream_engine_selects_8_16_weights_one_hot() -> None:
    """The linear engine with weights in the stream selects 8:16's weights by one-hot
    AND-ORs (gen.macsched.ONEHOT_STREAM_SPAN): its schedule has exactly the decoded selects'
    register (wmux = 1, also without a target), its Verilog has the select registers and no
    compaction stage, and its weights wait one stage more in the delay line. 2:4 keeps its
    per-slot trees, 16:32 its compaction network, the sparse MAC alone its compaction."""
    from gen.emit import verilog_text

    for k in (4, 16):
        cfg = LinearConfig(n=8, m=16, outputs=k, target_mhz=150)
        assert cfg.mac_shape().decode and cfg.schedule.wmux == 1, cfg.mac_pipeline
    plain = LinearConfig(n=8, m=16)
    assert plain.schedule.wmux == 1
    assert not LinearConfig(n=2, m=4, target_mhz=150).mac_shape().decode
    assert not LinearConfig(n=16, m=32, target_mhz=150).mac_shape().decode
    assert not LinearConfig(n=8, m=16, weights="memory").mac_shape().decode
    assert not SparseMACConfig(n=8, m=16, target_mhz=150).mac_shape().decode
    with pytest.raises(ValueError, match="registers its decoded selects, so wmux must be 1"):
        LinearConfig(n=8, m=16, mac_pipeline="wmux=2,pre=1,mul=1")
    with pytest.raises(ValueError, match="wmux must be 1"):
        LinearConfig(n=8, m=16, mac_pipeline="pre=1,mul=1")
    cfg = LinearConfig(n=8, m=16, outputs=4, target_mhz=150)
    text = verilog_text(cfg)
    assert "mac_sel_r0" in text and "mac_wmux_s" not in text
    depths = set(re.findall(r"nmsparse_delay #\(\s*\.DEPTH\(32'd(\d+)\)", text))
    assert depths == {str(cfg.pipeline + 1)}, depths


def test_memory_engine_keeps_a_select_copy_per_eight_outputs() -> None:
    """The one-hot selects are registered once per SELECT_COPY_OUTPUTS outputs, each copy on
    its own stall-enable copy (so that synthesis cannot merge them): 1 copy at K = 4, 2 at
    K = 16; with the fabric register before the AND-OR (wmux = 1) each copy is registered
    again on its own enable."""
    from gen.emit import verilog_text
    from gen.macsched import select_copies

    assert [select_copies(k) for k in (1, 4, 8, 9, 16, 32)] == [1, 1, 1, 2, 2, 4]
    for k, copies in ((4, 1), (16, 2)):
        cfg = LinearConfig(n=2, m=4, outputs=k, weights="memory", target_mhz=150)
        assert cfg.schedule.wmux == 1
        text = verilog_text(cfg)
        for name in ("mac_sel_r", "mac_wmux_sel"):
            found = {g for g in range(4) if f"{name}{g}_s0" in text}
            assert found == set(range(copies)), (k, name, found)


def test_dsp_registered_multipliers_load_on_an_enable_copy_per_four() -> None:
    """Where the schedule puts operands and product in the DSP blocks, every product is an
    nmsparse_mul_reg instance, and groups of DSP_ENABLE_MULTS of them share a copy of the stall
    enable (no enable drives every DSP block): 32 multipliers of 8:16 at K = 4 on 8 copies,
    each driving 4, the K multipliers of one activation on the same copy (so synthesis of the
    generic form keeps one operand register for them); a schedule without the DSP form
    instantiates none."""
    import re

    from gen.emit import verilog_text
    from gen.macsched import DSP_ENABLE_MULTS, dsp_enable_copies

    assert DSP_ENABLE_MULTS == 4
    assert [dsp_enable_copies(c) for c in (1, 4, 5, 32, 128)] == [1, 1, 2, 8, 32]
    cfg = SparseMACConfig(n=8, m=16, outputs=4, mac_pipeline="pre=1,mul=1,tree=1")
    text = verilog_text(cfg)
    insts = re.findall(r"nmsparse_mul_reg #\([^;]*?\)\s*(\S+)\s*\([^;]*?\.ce\(([^)]*)\)", text,
                       flags=re.S)
    enables = {name: ce for name, ce in insts}
    assert len(enables) == 32
    counts = {e: list(enables.values()).count(e) for e in enables.values()}
    assert sorted(counts.values()) == [4] * 8, counts
    for t in range(8):  # mac_mul<k>_<t>: the 4 outputs of activation t share one enable
        assert len({enables[f"mac_mul{k}_{t}"] for k in range(4)}) == 1, t
    plain = verilog_text(SparseMACConfig(n=8, m=16, outputs=4, mac_pipeline="pre=0,mul=1"))
    assert "nmsparse_mul_reg #(" not in plain


SKID_UNITS = [("spmac", dict(n=2, m=4, skid=True, target_mhz=150)),
              ("dense", dict(m=4, skid=True, target_mhz=150)),
              ("linear", dict(n=2, m=4, skid=True, target_mhz=150)),
              ("linear", dict(n=2, m=4, weights="memory", depth=2, banks="lane", skid=True,
                              target_mhz=150))]


@pytest.mark.parametrize("case", SKID_UNITS, ids=_ids)
def test_skid_ready_is_registered_and_the_unit_moves_one_cycle_into_a_stall(case) -> None:
    """With the output skid buffer, i.ready never follows o.ready within a cycle; when the
    output stalls with one result, the unit still takes a group in that cycle (the result
    moves into the buffer), freezes once a second result waits, and both leave in order."""
    unit, kwargs = case
    dut = _unit(unit, kwargs)
    cfg = dut.config
    assert cfg.name.endswith("_skid") and cfg.params()["skid"] is True
    rows = make_rows(cfg, random.Random(5), 40, 1)  # one group per row: a result per group
    if cfg.params()["weights"] == "memory":
        inputs, want, _ = encode_program(dut, [("load", random_store(cfg, random.Random(6)))]
                                         + [("row", x) for x, _ in rows])
    else:
        inputs, want, _ = encode(dut, rows)
    ipay, opay = Value.cast(dut.i.payload), Value.cast(dut.o.payload)
    seen: list[int] = []
    log: list[tuple[int, int, int]] = []  # (o.valid, i.ready, accepted) per cycle of stall

    async def bench(ctx):
        k = 0
        stall_from = None
        for cycle in range(200):
            ctx.set(dut.i.valid, int(k < len(inputs)))
            ctx.set(ipay, inputs[min(k, len(inputs) - 1)])
            readies = set()
            for ready in (0, 1):  # i.ready must not depend on o.ready in the same cycle
                ctx.set(dut.o.ready, ready)
                readies.add(ctx.get(dut.i.ready))
            assert len(readies) == 1, f"cycle {cycle}: i.ready follows o.ready"
            if stall_from is None and ctx.get(dut.o.valid):
                stall_from = cycle
            stalled = stall_from is not None and cycle < stall_from + 4
            ctx.set(dut.o.ready, int(not stalled))
            i_fire = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
            if stalled:
                log.append((ctx.get(dut.o.valid), ctx.get(dut.i.ready), int(bool(i_fire))))
            if ctx.get(dut.o.valid) and not stalled:
                seen.append(ctx.get(opay))
            await ctx.tick()
            k += int(bool(i_fire))
            if len(seen) == len(want):
                return
        raise AssertionError(f"{len(seen)}/{len(want)} outputs")

    run_testbench(dut, bench)
    assert seen == want
    # the first stalled cycle still moves (a group accepted), then the unit freezes
    assert log[0] == (1, 1, 1) and all(entry == (1, 0, 0) for entry in log[1:]), log


def test_skid_option_errors(capsys) -> None:
    with pytest.raises(TypeError, match="skid must be True or False, not 'yes'"):
        SparseMACConfig(n=2, m=4, skid="yes")
    from nmsparse import cli
    assert cli.main(["generate", "--unit", "topk", "--skid", "-o", "/nonexistent"]) == 2
    assert "--skid applies to the MAC units" in capsys.readouterr().err


def test_skid_names_and_the_engine_sweep_rule() -> None:
    """The skid buffer ends the module name (after _wlane/_wmem/_shift) and is written to
    params only when set; the engine sweep has it from SWEEP_SKID_K on, sparse and dense alike."""
    from gen.config import SWEEP, SWEEP_SKID_K
    assert SparseMACConfig(n=8, m=16, skid=True).name == "nm_spmac_8_16_int8_k4_skid"
    assert LinearConfig(n=8, m=16, outputs=8, weights="memory", banks="lane",
                        skid=True).name == "nm_linear_8_16_int8_k8_wlane_skid"
    assert DenseMACConfig(m=16, outputs=8, weights="memory",
                          skid=True).name == "dense_mac_16_int8_k8_wmem_skid"
    assert "skid" not in DenseMACConfig(m=16).params()
    assert {(c.outputs >= SWEEP_SKID_K) == c.skid for c in SWEEP} == {True}
    assert {c.unit for c in SWEEP if c.skid} == {"linear", "dense_mac"}


def test_registered_stall_copies_read_replicas_of_the_last_stages_valid() -> None:
    """With the skid buffer, o.valid's input (the last stage's valid & last) is made again
    beside every BEFORE_FANOUT stall-enable copies: each copy loads its shadow from a replica,
    no replica feeds more than BEFORE_FANOUT copies, and every replica loads on a copy."""
    import re

    from gen.emit import verilog_text
    from gen.pipeline import BEFORE_FANOUT

    text = verilog_text(LinearConfig(n=8, m=16, outputs=4, target_mhz=150, skid=True))
    sources = dict(re.findall(r"assign (stall_adv\d+)_valid_next = \1 \? (\S+) :", text))
    assert len(sources) > BEFORE_FANOUT
    assert all(re.fullmatch(r"stall_before\d+", s) for s in sources.values()), sources
    fanout = {s: list(sources.values()).count(s) for s in sources.values()}
    assert max(fanout.values()) <= BEFORE_FANOUT
    assert len(fanout) == -(-len(sources) // BEFORE_FANOUT)
    plain = verilog_text(LinearConfig(n=8, m=16, outputs=4, target_mhz=150))
    assert "stall_before" not in plain  # without the skid buffer the copies are LUTs


def test_sweep_points_take_the_highest_clock_their_models_reach() -> None:
    """An engine-sweep point with weights from memory and the skid buffer is scheduled for the
    first of SWEEP_TARGETS_MHZ its delay models reach (175 MHz for 8:16 at K = 16 and its dense
    baseline), every other point for the last (150 MHz: in the stream, and at K = 4); an error
    other than an unreachable target is not swallowed."""
    from gen import config

    assert config.SWEEP_TARGETS_MHZ[0] == 175.0 and config.SWEEP_TARGETS_MHZ[-1] == 150.0
    assert config._sweep_linear(8, 16, 16, "memory", banks="lane").target_mhz == 175.0
    assert config._sweep_dense(16, 8, "memory").target_mhz == 175.0
    assert config._sweep_linear(8, 16, 4, "memory", banks="lane").target_mhz == 150.0
    assert config._sweep_linear(8, 16, 16, "stream").target_mhz == 150.0
    assert config._sweep_dense(16, 16, "stream").target_mhz == 150.0
    assert {c.target_mhz for c in config.SWEEP
            if getattr(c, "weights", "stream") != "memory" or c.outputs < 8} == {150.0}
    with pytest.raises(ValueError, match="out of reach"):
        LinearConfig(n=8, m=16, arch="rank", pipeline="auto", outputs=32, target_mhz=175.0,
                     skid=True)
    with pytest.raises(ValueError, match="outputs"):
        config._sweep_linear(8, 16, 0, "stream")


def test_each_dsp_operand_register_feeds_one_enable_copys_blocks() -> None:
    """With a fabric pre stage before the DSP blocks, an activation's last register is made
    once per DSP enable copy: every multiplier of activation t reads a register of t, no
    register feeds more than DSP_ENABLE_MULTS blocks, and the blocks reading one register load
    on one copy (8:16 at K = 16: 128 multipliers on 32 copies, 4 registers per activation)."""
    import re

    from gen.emit import verilog_text
    from gen.macsched import DSP_ENABLE_MULTS

    text = verilog_text(SparseMACConfig(n=8, m=16, outputs=16,
                                        mac_pipeline="pre=2,mul=1,tree=1"))
    insts = re.findall(r"\) mac_mul(\d+)_(\d+) \(\s*\.a\(([^)]*)\),[^;]*?\.ce\(([^)]*)\)",
                       text, re.S)
    assert len(insts) == 128
    readers: dict[str, list[tuple[int, str]]] = {}
    for k, t, a, ce in insts:
        reg = re.fullmatch(r"mac_pre_a(\d+)_g\d+", a)
        assert reg is not None and reg.group(1) == t, (k, t, a)
        readers.setdefault(a, []).append((int(k), ce))
    assert len(readers) == 32
    for a, rs in readers.items():
        assert len(rs) <= DSP_ENABLE_MULTS, (a, rs)
        assert len({ce for _, ce in rs}) == 1, (a, rs)
