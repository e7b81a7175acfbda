"""Register placement in the MAC datapath: explicit stages per part, or automatic for a clock.

The MAC of every unit (sparse MAC, linear engine, dense baseline) is a chain of combinational
layers; register stages go between them. The accumulate stage (accumulator and output
registers) is always there and ends the chain::

    [read]* ─► wmux ─► mul ─► add0 ─► add1 ─► ... ─► add(L-1) ─► acc ──► o
      │         │       │       └──────── tree ────────┘          (always registered)
      │         │       └ products, K x T x (w + ww) bits
      │         └ selected weights, K x N x ww bits (sparse only)
      └ weight banks, one synchronous read stage (weights from memory only)

A schedule gives the stages per part: ``wmux`` (after the weight multiplexers, sparse only),
``mul`` (after the multipliers) and ``tree`` (spread evenly over the adder-tree levels, the
last one before the accumulator adder, :func:`gen.pipeline.cuts`). Spec strings:
``"wmux=1,mul=1,tree=2"``; ``"auto"`` with a target clock places registers with the
per-layer delay model :data:`ECP5_DELAYS_NS`: the fewest register bits such that every
segment between two registers meets the clock period. The trade-off: each stage adds one
cycle of latency and its register bits (with the global stall, every bit is a flip-flop with
an enable), so auto mode never inserts a stage the clock does not need.

This module is pure Python (no Amaranth): configurations use it before any hardware exists.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

__all__ = [
    "PARTS",
    "MACSchedule",
    "MACShape",
    "ECP5_DELAYS_NS",
    "layer_delays",
    "parse_schedule",
    "auto_schedule",
    "MAX_STAGES",
]

PARTS = ("wmux", "mul", "tree")
MAX_STAGES = 8

#: Per-layer delay model of the MAC on ECP5 (LFE5U-85F, this project's flow, nextpnr seed 1),
#: in ns: a segment between two registers takes ``segment`` plus the sum of its layers.
#: ``wmux_level``: one 2:1 level of the weight multiplexers (LUT + route); ``wmux_fanout``:
#: per doubling of K, the select bits' fan-out; ``mul``: an 8x8..18x18 MULT18X18D used
#: combinationally, routing in and out included; ``add``/``add_per_bit``: one two-operand
#: adder on a carry chain; ``acc``: the accumulator adder with its last/clear multiplexer;
#: ``read``: a synchronous bank read (RAM clock-to-out). Fitted to measured runs (see
#: ``bench/bench_mac_timing.py``).
ECP5_DELAYS_NS: dict[str, float] = {
    "segment": 1.6,
    "wmux_level": 0.75,
    "wmux_fanout": 0.25,
    "mul": 5.0,
    "add": 1.3,
    "add_per_bit": 0.045,
    "acc": 2.2,
    "read": 2.5,
}


@dataclass(frozen=True)
class MACSchedule:
    """Register stages per part of a MAC datapath (the accumulate stage is always present).

    Parameters
    ----------
    wmux, mul, tree : int
        Stages after the weight multiplexers (sparse units only), after the multipliers, and
        inside the adder tree (spread over its levels).
    """

    wmux: int = 0
    mul: int = 1
    tree: int = 0

    def __post_init__(self) -> None:
        for part in PARTS:
            v = getattr(self, part)
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"MAC pipeline {part} must be an integer, not {v!r}")
            if not 0 <= v <= MAX_STAGES:
                raise ValueError(f"MAC pipeline {part} must be in [0, {MAX_STAGES}], not {v}")

    @property
    def stages(self) -> int:
        """Register stages of the datapath, the accumulate stage included."""
        return self.wmux + self.mul + self.tree + 1

    def spec(self, sparse: bool = True) -> str:
        """The canonical spec string (``"wmux=0,mul=1,tree=0"``; dense: no ``wmux``)."""
        parts = PARTS if sparse else PARTS[1:]
        return ",".join(f"{p}={getattr(self, p)}" for p in parts)


@dataclass(frozen=True)
class MACShape:
    """What the scheduler needs to know about one MAC datapath.

    Parameters
    ----------
    terms : int
        Products per output summed per group (N sparse, M dense).
    outputs : int
        K.
    width, weight_width : int
        Activation and weight bits.
    span : int
        Candidates per weight multiplexer (M - N + 1); 0 for the dense baseline.
    memory : bool
        Weights come from banks: the first segment starts at a synchronous bank read, whose
        clock-to-out is slower than a flip-flop's (``read`` in the delay model).
    """

    terms: int
    outputs: int
    width: int
    weight_width: int
    span: int = 0
    memory: bool = False

    @property
    def sparse(self) -> bool:
        return self.span > 0

    @property
    def levels(self) -> int:
        """Adder-tree levels: ceil(log2 terms)."""
        return max(0, (self.terms - 1).bit_length())

    def layers(self) -> list[str]:
        """The layers in order (``acc`` last; registers go after any other)."""
        out = ["wmux"] if self.sparse else []
        out += ["mul"] + [f"add{i}" for i in range(self.levels)] + ["acc"]
        return out

    def cut_bits(self, layer: str) -> int:
        """Bits a register after ``layer`` holds (the sums widen one bit per level)."""
        k, w, ww = self.outputs, self.width, self.weight_width
        if layer == "wmux":
            return k * self.terms * ww + self.terms * w
        p = w + ww
        if layer == "mul":
            return k * self.terms * p
        if layer.startswith("add"):
            lvl = int(layer[3:]) + 1
            return k * math.ceil(self.terms / 2 ** lvl) * (p + lvl)
        raise ValueError(f"no register after layer {layer!r}")


def layer_delays(shape: MACShape, acc_width: int,
                 model: dict[str, float] | None = None) -> dict[str, float]:
    """Modeled delay (ns) of each layer of ``shape`` (see :data:`ECP5_DELAYS_NS`)."""
    p = ECP5_DELAYS_NS if model is None else model
    out: dict[str, float] = {}
    if shape.sparse:
        levels = max(1, (shape.span - 1).bit_length())
        out["wmux"] = p["wmux_level"] * levels + p["wmux_fanout"] * math.log2(shape.outputs)
    out["mul"] = p["mul"]
    for i in range(shape.levels):
        out[f"add{i}"] = p["add"] + p["add_per_bit"] * (shape.width + shape.weight_width + i + 1)
    out["acc"] = p["acc"] + p["add_per_bit"] * acc_width
    if shape.memory:
        out[shape.layers()[0]] += p["read"]
    return out


def _int(part: str, text: str) -> int:
    try:
        return operator.index(int(text))
    except ValueError:
        raise ValueError(f"MAC pipeline {part} must be an integer, not {text!r}") from None


def parse_schedule(spec: object, *, sparse: bool) -> MACSchedule | None:
    """A :class:`MACSchedule` from a spec (``None`` and ``"auto"`` return None).

    Parameters
    ----------
    spec : str, MACSchedule or None
        ``"wmux=1,mul=1,tree=2"`` (parts left out keep their defaults: wmux 0, mul 1,
        tree 0), a :class:`MACSchedule`, ``"auto"`` or None.
    sparse : bool
        Whether the datapath has weight multiplexers (``wmux`` is an error otherwise).

    Raises
    ------
    ValueError, TypeError
        Naming the bad part or value and the valid ones.
    """
    if spec is None or spec == "auto":
        return None
    if isinstance(spec, MACSchedule):
        sched = spec
    elif isinstance(spec, str):
        kw: dict[str, int] = {}
        for item in (s.strip() for s in spec.split(",")):
            part, eq, val = item.partition("=")
            part = part.strip()
            if not eq or part not in PARTS:
                valid = ", ".join(PARTS if sparse else PARTS[1:])
                raise ValueError(f"MAC pipeline spec {spec!r}: {item!r} is not <part>=<stages> "
                                 f"with part one of {valid} (or use 'auto')")
            if part in kw:
                raise ValueError(f"MAC pipeline spec {spec!r} gives {part} twice")
            kw[part] = _int(part, val.strip())
        sched = MACSchedule(**kw)
    else:
        raise TypeError(f"mac_pipeline must be a spec string such as 'mul=1,tree=1', 'auto' "
                        f"or None, not {spec!r}")
    if not sparse and sched.wmux:
        raise ValueError(f"the dense baseline has no weight multiplexers: wmux must be 0, "
                         f"not {sched.wmux}")
    return sched


def auto_schedule(shape: MACShape, target_mhz: float, acc_width: int,
                  model: dict[str, float] | None = None) -> MACSchedule:
    """The schedule with the fewest register bits whose every segment meets ``target_mhz``.

    Segments run from one register to the next; the first starts at the datapath's registered
    input (the selector's output register, the bank read, or the caller's registers), the
    last ends at the accumulator. Dynamic programming over the layer boundaries.

    Raises
    ------
    ValueError
        One layer alone is modeled slower than the period: the message names it.
    """
    if isinstance(target_mhz, bool) or not isinstance(target_mhz, (int, float)):
        raise TypeError(f"target_mhz must be a number of MHz, not {target_mhz!r}")
    if not 1 <= target_mhz <= 1000:
        raise ValueError(f"target_mhz must be in [1, 1000] MHz, not {target_mhz}")
    p = ECP5_DELAYS_NS if model is None else model
    period = 1000.0 / target_mhz
    delays = layer_delays(shape, acc_width, p)
    layers = shape.layers()
    budget = period - p["segment"]
    for name in layers:
        if delays[name] > budget:
            raise ValueError(
                f"target {target_mhz:g} MHz ({period:.2f} ns) is out of reach: the {name} layer "
                f"alone is modeled at {delays[name] + p['segment']:.2f} ns with its registers")
    # best[i] = (bits, cuts) covering layers[:i] with a register after layer i - 1 (i >= 1),
    # or the datapath input (i = 0)
    inf = (math.inf, ())
    best: list[tuple[float, tuple[str, ...]]] = [inf] * (len(layers) + 1)
    best[0] = (0, ())
    for end in range(1, len(layers) + 1):
        name = layers[end - 1]
        cost = 0 if name == "acc" else shape.cut_bits(name)
        for start in range(end):
            seg = sum(delays[layers[i]] for i in range(start, end))
            if seg > budget or best[start][0] == math.inf:
                continue
            cand = (best[start][0] + cost, best[start][1] + (() if name == "acc" else (name,)))
            if cand[0] < best[end][0]:
                best[end] = cand
    cuts = best[len(layers)][1]
    tree = sum(1 for c in cuts if c.startswith("add"))
    sched = MACSchedule(wmux=int("wmux" in cuts), mul=int("mul" in cuts), tree=tree)
    # the tree's stages are spread evenly by the generator (gen.pipeline.cuts); check that
    # this placement meets the period too, else add tree stages until it does
    while not _meets(shape, sched, delays, budget):
        if sched.tree >= shape.levels:
            break
        sched = MACSchedule(wmux=sched.wmux, mul=sched.mul, tree=sched.tree + 1)
    return sched


def tree_cuts(levels: int, stages: int) -> list[int]:
    """Stages after each adder-tree level: evenly spread, the last before the accumulator
    (the placement of :func:`gen.pipeline.cuts`; with no levels, all stack up in front of it)."""
    if levels == 0:
        return []
    out = [0] * levels
    for k in range(1, stages + 1):
        out[max(1, math.ceil(k * levels / stages)) - 1] += 1
    return out


def _meets(shape: MACShape, sched: MACSchedule, delays: dict[str, float],
           budget: float) -> bool:
    counts = dict.fromkeys(shape.layers(), 0)
    if shape.sparse:
        counts["wmux"] = sched.wmux
    counts["mul"] = sched.mul
    for i, c in enumerate(tree_cuts(shape.levels, sched.tree)):
        counts[f"add{i}"] = c
    seg = 0.0
    for name in shape.layers():
        seg += delays[name]
        if seg > budget:
            return False
        if counts[name]:
            seg = 0.0
    return True
