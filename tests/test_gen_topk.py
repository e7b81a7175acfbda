"""The N:M top-k selectors in the Amaranth simulator, against the golden model."""

from __future__ import annotations

import random

import pytest
import torch

import golden
from gen.arch import ARCHITECTURES
from gen.config import TopKConfig
from gen.sim import combinational_map, pack, run_stream, unpack
from gen.topk import NMTopK


def expected(cfg: TopKConfig, groups: list[list[int]]) -> list[int]:
    """Golden output payloads (packed ints) for groups of raw bit patterns."""
    x = golden.from_bits(torch.tensor(groups, dtype=torch.int64), cfg.fmt)
    mask = golden.nm_mask(x, cfg.n, cfg.m, fmt=cfg.fmt)
    values, index = golden.nm_compress(x, cfg.n, cfg.m, fmt=cfg.fmt)
    vbits = golden.to_bits(values, cfg.fmt)
    layout = cfg.output_layout()
    return [
        pack(layout, {"mask": mask[g].int().tolist(), "values": vbits[g, 0].tolist(),
                      "index": index[g, 0].tolist()})
        for g in range(len(groups))
    ]


def edge_pool(fmt: str) -> list[int]:
    """Bit patterns that stress the key: zeros, extremes, -0, inf, NaN payloads, subnormals."""
    f = golden.get_format(fmt)
    w = f.width
    sign = 1 << (w - 1)
    if f.is_int:
        return [0, 1, sign - 1, sign, sign + 1, (1 << w) - 1, 2]  # 0, 1, max, min, min+1, -1, 2
    exp_bits, man = f.exp_bits, f.mant_bits
    inf = ((1 << exp_bits) - 1) << man
    return [0, sign, inf, inf | sign, inf | 1, inf | (1 << (man - 1)) | sign, (1 << (w - 1)) - 1,
            1, 1 | sign, 1 << man, (1 << man) - 1]


def groups_for(cfg: TopKConfig, rng: random.Random, count: int) -> list[list[int]]:
    w, m = cfg.width, cfg.m
    pool = edge_pool(cfg.fmt)
    out = [[0] * m, [pool[3]] * m, [pool[1]] * m, pool[:m] + [0] * max(0, m - len(pool))]
    while len(out) < count:
        kind = len(out) % 3
        if kind == 0:
            out.append([rng.randrange(1 << w) for _ in range(m)])
        elif kind == 1:
            out.append([rng.choice(pool) for _ in range(m)])
        else:  # heavy ties among few magnitudes of both signs
            out.append([rng.choice((0, 3, (1 << w) - 3, 7)) for _ in range(m)])
    return out[:count]


CASES = [
    (n, m, fmt, arch)
    for arch in sorted(ARCHITECTURES)
    for (n, m, fmt) in [(2, 4, "int8"), (2, 4, "bf16"), (4, 8, "int4"), (4, 8, "fp16"),
                        (8, 16, "int8"), (8, 16, "bf16"), (8, 16, "int16"), (3, 8, "int8"),
                        (5, 12, "fp16"), (1, 4, "bf16"), (16, 32, "int8"), (16, 32, "bf16")]
]


@pytest.mark.parametrize(("n", "m", "fmt", "arch"), CASES)
def test_topk_random_and_edges(n: int, m: int, fmt: str, arch: str, nm_seed: int) -> None:
    dut = NMTopK(TopKConfig(n=n, m=m, fmt=fmt, arch=arch))
    cfg = dut.config
    rng = random.Random(nm_seed + m * 7 + n)
    groups = groups_for(cfg, rng, 40 if m >= 32 else 90)
    inputs = [pack(cfg.input_layout(), {"data": g}) for g in groups]
    run = run_stream(dut, inputs, len(inputs), seed=nm_seed, p_valid=0.8, p_ready=0.7)
    want = expected(cfg, groups)
    for k, (got, exp) in enumerate(zip(run.outputs, want, strict=True)):
        assert got == exp, (
            f"group {k} {groups[k]}: got {unpack(cfg.output_layout(), got)}, "
            f"want {unpack(cfg.output_layout(), exp)} (seed {nm_seed})"
        )
    for i_cycle, o_cycle in zip(run.in_cycles, run.out_cycles, strict=True):
        assert o_cycle >= i_cycle + cfg.latency


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("pipeline", [0, 1, 2, 3, 7])
def test_topk_exact_latency_full_rate(arch: str, pipeline: int, nm_seed: int) -> None:
    dut = NMTopK(TopKConfig(n=4, m=8, fmt="int8", arch=arch, pipeline=pipeline))
    cfg = dut.config
    assert dut.latency == pipeline
    rng = random.Random(nm_seed)
    groups = groups_for(cfg, rng, 30)
    inputs = [pack(cfg.input_layout(), {"data": g}) for g in groups]
    run = run_stream(dut, inputs, len(inputs), seed=nm_seed)
    assert run.outputs == expected(cfg, groups)
    assert run.in_cycles == list(range(len(inputs))), "not one group per clock"
    assert [o - i for i, o in zip(run.in_cycles, run.out_cycles, strict=True)] == \
        [pipeline] * len(inputs)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize(("p_valid", "p_ready"), [(1.0, 0.3), (0.4, 1.0), (0.6, 0.6)])
def test_topk_backpressure(arch: str, p_valid: float, p_ready: float, nm_seed: int) -> None:
    dut = NMTopK(TopKConfig(n=8, m=16, fmt="bf16", arch=arch))
    cfg = dut.config
    groups = groups_for(cfg, random.Random(nm_seed + 1), 60)
    inputs = [pack(cfg.input_layout(), {"data": g}) for g in groups]
    run = run_stream(dut, inputs, len(inputs), seed=nm_seed + 2, p_valid=p_valid,
                     p_ready=p_ready)
    assert run.outputs == expected(cfg, groups)  # no loss, duplication or reordering
    for i_cycle, o_cycle in zip(run.in_cycles, run.out_cycles, strict=True):
        assert o_cycle >= i_cycle + cfg.latency


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_topk_2_4_int4_exhaustive(arch: str) -> None:
    """All 65,536 groups of 2:4 int4, 64 lanes of a combinational selector per step."""
    lanes = 64
    dut = NMTopK(TopKConfig(n=2, m=4, fmt="int4", arch=arch, pipeline=0, lanes=lanes))
    lane_cfg = TopKConfig(n=2, m=4, fmt="int4", arch=arch, pipeline=0)
    groups = [[(v >> (4 * j)) & 15 for j in range(4)] for v in range(1 << 16)]
    iw = 16  # one lane's input payload: 4 x 4 bits, so lane l = bits 16l.. of the payload
    inputs = [sum(v << (iw * l) for l, v in enumerate(range(b, b + lanes)))
              for b in range(0, 1 << 16, lanes)]
    outputs = combinational_map(dut, inputs)
    want = expected(lane_cfg, groups)
    ow = lane_cfg.output_layout().size
    got = [(word >> (ow * l)) & ((1 << ow) - 1) for word in outputs for l in range(lanes)]
    bad = [g for g in range(1 << 16) if got[g] != want[g]]
    assert not bad, f"{len(bad)} groups differ, first {groups[bad[0]]}"


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_topk_lanes(arch: str, nm_seed: int) -> None:
    lanes = 3
    dut = NMTopK(TopKConfig(n=2, m=4, fmt="int8", arch=arch, lanes=lanes))
    cfg = dut.config
    assert cfg.name.endswith("_x3")
    lane_cfg = TopKConfig(n=2, m=4, fmt="int8", arch=arch)
    groups = groups_for(lane_cfg, random.Random(nm_seed), 30)
    iw, ow = lane_cfg.input_layout().size, lane_cfg.output_layout().size
    inputs = [sum(pack(lane_cfg.input_layout(), {"data": groups[b + l]}) << (iw * l)
                  for l in range(lanes)) for b in range(0, 30, lanes)]
    run = run_stream(dut, inputs, len(inputs), seed=nm_seed, p_ready=0.5)
    got = [(word >> (ow * l)) & ((1 << ow) - 1) for word in run.outputs for l in range(lanes)]
    assert got == expected(lane_cfg, groups)
    side = cfg.sidecar().ports["o__payload"]
    assert side.width == ow * lanes
    assert side.fields["index"].lanes == lanes
    assert side.fields["index"].lane_stride == ow


def test_config_properties_and_architectures() -> None:
    net = TopKConfig(n=8, m=16, fmt="bf16", pipeline=4)
    rank = TopKConfig(n=8, m=16, arch="rank")
    assert (net.n, net.m, net.fmt, net.arch, net.pipeline, net.latency, net.lanes) == \
        (8, 16, "bf16", "network", 4, 4, 1)
    assert net.comparators == 46  # the shallowest best-known 8:16 network (7 layers)
    assert net.network_depth == 7
    assert rank.comparators == 120
    assert type(net.architecture).__name__ == "NetworkArch"
    assert type(rank.architecture).__name__ == "RankArch"
    radix = TopKConfig(n=16, m=32, arch="radix", pipeline=20)
    assert type(radix.architecture).__name__ == "RadixArch"
    assert (radix.comparators, radix.network_depth) == (0, 8 + 5)  # key bits + index bits
    # frozen: a design point cannot change under a built component
    with pytest.raises(AttributeError):
        net.pipeline = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "exc", "needle"),
    [
        (dict(n=4, m=4), ValueError, "n = 4"),
        (dict(n=5, m=4), ValueError, "n = 5"),
        (dict(n=0, m=4), ValueError, "n = 0"),
        (dict(n=1, m=1), ValueError, "m must be at least 2, not 1"),
        (dict(n=2.0, m=4), TypeError, "2.0"),
        (dict(n=True, m=4), TypeError, "True"),
        (dict(n=2, m=4, fmt="int3"), ValueError, "'int3'"),
        (dict(n=2, m=4, fmt=8), TypeError, "8"),
        (dict(n=2, m=4, arch="heap"), ValueError, "'heap'"),
        (dict(n=2, m=4, pipeline=-1), ValueError, "-1"),
        (dict(n=2, m=4, pipeline="2"), TypeError, "'2'"),
        (dict(n=2, m=4, lanes=0), ValueError, "lanes must be in \\[1, 64\\], not 0"),
    ],
)
def test_topk_invalid_parameters(kwargs: dict, exc: type, needle: str) -> None:
    with pytest.raises(exc, match=needle):
        TopKConfig(**kwargs)


def test_component_takes_a_config() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UnusedElaboratable warning from a half-built unit
        with pytest.raises(TypeError, match="TopKConfig"):
            NMTopK(n=2, m=4)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="TopKConfig"):
            NMTopK({"n": 2, "m": 4})  # type: ignore[arg-type]
        import gc

        gc.collect()


@pytest.mark.parametrize("fmt", ["int4", "int8", "bf16"])
def test_hardware_keys_equal_the_contract(fmt: str) -> None:
    """Both hardware forms of the key (``key_sign``: |x| with a negation; ``key_bits``: LUT
    logic per bit) equal ``Format.key`` on every pattern (bf16: a sample)."""
    from amaranth.hdl import Cat, Module, Signal
    from amaranth.sim import Simulator

    from gen.arch.base import key_bits, key_sign

    cfg = TopKConfig(n=1, m=2, fmt=fmt)
    f = golden.get_format(fmt)
    x = Signal(cfg.width)
    a, b = Signal(cfg.key_width), Signal(cfg.key_width)
    m = Module()
    m.d.comb += [a.eq(key_sign(cfg, x)[0]), b.eq(Cat(*key_bits(cfg, x)))]
    pats = (range(1 << cfg.width) if cfg.width <= 8
            else random.Random(1).sample(range(1 << cfg.width), 4096) + [0x8000, 0x7FFF, 0x7F80])
    bad = []

    async def bench(ctx):
        for p in pats:
            ctx.set(x, p)
            want = int(f.key(p))
            if (ctx.get(a), ctx.get(b)) != (want, want):
                bad.append((p, ctx.get(a), ctx.get(b), want))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]
