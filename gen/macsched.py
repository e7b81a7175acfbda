"""Register placement in the MAC datapath: explicit stages per part, or automatic for a clock.

The MAC of every unit (sparse MAC, linear engine, dense baseline) is a chain of combinational
layers; register stages go between them. The accumulate stage (accumulator and output
registers) is always there and ends the chain::

    [read]* ─► wmux ─► (pre) ─► mul ─► add0 ─► ... ─► add(L-1) ─► acc ──► o
      │         │                │       └───── tree ─────┘         (always registered)
      │         │                └ products, K x T x (w + ww) bits
      │         └ selected weights, K x N x ww bits (sparse only; dense: the operands)
      └ weight banks, one synchronous read stage (weights from memory only)

A schedule gives the stages per part: ``pre`` (in front of the multipliers: after the weight
multiplexers of the sparse units, on the operands of the dense baseline), ``mul`` (after the
multipliers) and ``tree`` (spread evenly over the adder-tree levels, the last one before the
accumulator adder, :func:`gen.pipeline.cuts`). Spec strings: ``"pre=1,mul=1,tree=2"``;
``"auto"`` with a target clock places registers with the per-layer delay model
:data:`ECP5_DELAYS_NS`: the fewest register bits such that every segment between two
registers meets the clock period. The trade-off: each stage adds one
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
    "ONEHOT_STREAM_SPAN",
    "stream_decodes",
    "ECP5_DELAYS_NS",
    "layer_delays",
    "parse_schedule",
    "auto_schedule",
    "register_bits",
    "weight_select",
    "compaction_muxes",
    "tree_muxes",
    "tree_cuts",
    "dsp_registered",
    "dsp_enable_copies",
    "dsp_spread",
    "DSP_SPREAD_BASE",
    "DSP_ENABLE_MULTS",
    "DSP_MAX_WIDTH",
    "wmux_steps",
    "wmux_cut_after",
    "READ_STAGES",
    "LANE_ADDR_STAGES",
    "SELECT_COPY_OUTPUTS",
    "select_copies",
    "MAX_STAGES",
]

PARTS = ("wmux", "pre", "mul", "tree")
MAX_STAGES = 8

#: Per-layer delay model of the MAC on ECP5 (LFE5U-85F, this project's flow, nextpnr seed 1),
#: in ns. A segment between two registers takes ``segment`` (clock-to-out and margin) plus
#: the sum of its layers, each counted with the route into it. ``wmux_level``: one 2:1 level
#: of the weight multiplexers; ``wmux_fanout``: per doubling of K (the select bits drive
#: K x weight_width multiplexers); ``dsp``: a MULT18X18D used combinationally (its internal
#: registers are not inferred by synth_ecp5); ``dsp_route``/``fanout``: the route into the DSP
#: column, longer by ``fanout`` per doubling of K because one activation feeds K multipliers;
#: ``route``: a local route; ``add``/``carry_bit``: one carry-chain adder level; ``acc``: the
#: accumulator adder with its clear multiplexer; ``read``, ``bank_out``: below.
#: Calibrated first on fully registered MACs placed with nextpnr (8:16 sparse and 16-wide
#: dense at K = 4, 4-wide dense and 8:16 sparse at K = 16): the DSP segment measured
#: 8.65-10.2 ns (3.93 ns in the DSP, 2.5-4.6 ns of routing in, 1.1-1.7 ns out), which bounded
#: every MAC near 100 MHz in this flow; hence the DSP-registered form. Then, with that form
#: (2026-12-06, seed 1): ``add`` from two adder levels between registers in 7.03 ns
#: (dense_mac_16_int8_k4); ``wmux_stage`` (one stage of the compaction network; the per-slot
#: trees keep ``wmux_level``) from two compaction stages between registers in 7.30 ns
#: (nm_linear_8_16_int8_k4) and 7.87 ns (nm_spmac_16_32_int8_k4), mostly routing:
#: each stage moves every kept column's K x 8 bits across 2^b positions; ``wmux_decode``:
#: the index decode (compare every index with each position, OR the hits). Weights from
#: memory, with the bank's second read register in the block RAM's output register
#: (gen/prims/ecp5/nmsparse_wbank.v): ``read``, the read latch into that register, inside the
#: block RAM (one DP16KD between fabric registers places at 497.5 MHz with it:
#: bench/bench_bram_outreg.py); ``bank_out``: what a segment that starts at the output
#: register takes beyond one that starts at a flip-flop, 3.71 ns (nm_linear_8_16_int8_k4_wmem
#: with no register between bank and AND-OR, two schedules, seed 1: bank to the AND-OR's
#: register in 6.63 and 7.51 ns, of which 0.96 ns clock-to-out and 2.37-2.88 ns the route out
#: of the block-RAM row; the slower one counts).
ECP5_DELAYS_NS: dict[str, float] = {
    "segment": 0.8,
    "wmux_level": 1.4,
    "wmux_stage": 2.8,
    "wmux_decode": 3.0,
    "wmux_andor": 3.0,
    "wmux_fanout": 0.6,
    "dsp": 3.93,
    "dsp_route": 2.6,
    "fanout": 0.5,
    "route": 1.1,
    "add": 2.3,
    "carry_bit": 0.05,
    "acc": 1.6,
    "read": 1.2,
    "bank_out": 3.71,
    "dsp_setup": 0.1,
    "dsp_oreg": 0.2,
    "dsp_spread": 0.9,
}
#: ``wmux_andor``: the one-hot AND-OR multiplexer of the weights from memory (span candidates
#: per bit, three LUT levels; its select bits arrive registered, :func:`weight_select`).
#: ``dsp_setup``/``dsp_oreg``: the multiplier with its operands and product in the DSP's input
#: and output registers (:func:`dsp_registered`): the route into the DSP ends at a register
#: (``dsp_route`` + ``fanout`` + ``dsp_setup``), and the product leaves the output register
#: ``dsp_oreg`` later than a flip-flop's output would (MULT18X18D with REG_OUTPUT: clock-to-P
#: 0.74 ns against 0.52 ns in nextpnr's model; without it 3.86 ns). nextpnr times no path
#: between the DSP's own registers (the multiplier inside the block is not a segment here).
#: 16 products between fabric registers place at 144.0 MHz with the DSP combinational, at
#: 494.1 MHz with its input and output registers (seed 1, bench/bench_dsp_regs.py).
#: ``dsp_spread``: the route of a product out of its DSP block grows with the array, per
#: doubling of the multipliers beyond :data:`DSP_SPREAD_BASE` (the DSP blocks sit in a few
#: rows across the device, the adder tree of an output in one place): with 128 DSP blocks and
#: the product register in the DSP, the product to its output's first adder register took
#: 6.93 and 7.03 ns (dense_mac_16_int8_k8_wmem_skid, nm_linear_8_16_int8_k16_wlane_skid, seed
#: 1: 4.68 and 5.06 ns of it routing), 1.7 ns more than this model gave without it. Then a
#: fabric register after the DSP's (``mul = 2``) takes that route: the two placed at 159.3 and
#: 151.5 MHz, against 144.3 and 142.3 with ``mul = 1`` (the sparse engine 154.3 with its lane
#: banks' addresses and its load check registered as well: README, engine sweep).

#: Cycles from the bank read's address to the MAC datapath with weights from memory: the
#: synchronous read, and a register on its data (an ECP5 block RAM's read data leaves it
#: 5.83 ns after the clock in nextpnr's model: gen/prims/ecp5/ puts that register into the
#: block RAM's output register).
READ_STAGES = 2

#: Weights from memory in banks by kept slot (``banks="lane"``): a register stage in front of
#: the read, holding each bank's read address (the kept index less the slot, and the group's
#: word), so the route to a bank's block RAMs, which may lie across the device, starts at a
#: flip-flop of its own (gen.linear).
LANE_ADDR_STAGES = 1

#: Weights from memory: the registered one-hot selects of the weight multiplexers are kept
#: once per this many outputs (each copy a register of its own, loading on its own copy of the
#: stall enable, so synthesis does not merge them), so a select bit drives at most
#: SELECT_COPY_OUTPUTS x weight_width AND-ORs at any K.
SELECT_COPY_OUTPUTS = 8


def select_copies(outputs: int) -> int:
    """Copies of the one-hot selects (weights from memory) for ``outputs`` outputs."""
    return -(-outputs // SELECT_COPY_OUTPUTS)


#: Multipliers up to which a product's route out of the DSP is the local ``route`` of the delay
#: model; beyond, ``dsp_spread`` per doubling.
DSP_SPREAD_BASE = 32


def dsp_spread(multipliers: int, model: dict[str, float] | None = None) -> float:
    """Modeled extra route (ns) of a product out of its DSP block in an array of
    ``multipliers`` (``dsp_spread`` per doubling beyond :data:`DSP_SPREAD_BASE`)."""
    p = ECP5_DELAYS_NS if model is None else model
    return p["dsp_spread"] * max(0.0, math.log2(max(1, multipliers) / DSP_SPREAD_BASE))


#: Widest operand the DSP-registered multiplier maps onto one MULT18X18D (sign-extended to 18).
DSP_MAX_WIDTH = 17


def dsp_registered(sched: MACSchedule, width: int, weight_width: int) -> bool:
    """Whether the last ``pre`` stage and the first ``mul`` stage of ``sched`` are the operand
    and product registers of the DSP blocks.

    So they are wherever there is a ``pre`` and a ``mul`` stage and both operands fit one
    MULT18X18D: the product is then registered on both sides of the multiplier, and the flow
    maps the three registers and the multiplier (:data:`gen.mac.MUL_REG`) onto a DSP block with
    its input and output registers, which the generic Verilog holds as one operand register
    pair and one product register per multiplier (an activation feeding K multipliers is
    registered K times, as K DSP blocks hold it).
    """
    return (sched.pre >= 1 and sched.mul >= 1
            and max(width, weight_width) <= DSP_MAX_WIDTH)


#: DSP-registered multipliers (:func:`dsp_registered`) load on copies of the stall enable, one
#: per this many multipliers (each copy a flip-flop and a LUT of its own,
#: :class:`gen.pipeline.StallCopies`), so no LUT drives every DSP block of a large array. At
#: 8:16 K = 16 (128 DSP blocks) the limiting paths still cross the device: ``o.ready`` into a
#: copy and on to a DSP block's clock enable (7.1-7.9 ns; with the output skid buffer,
#: ``skid``, every copy is a flip-flop and that path is gone), or a registered product into
#: its output's first adder (4.6-5.2 ns of routing, where this model's ``route`` says 1.1 ns;
#: the model does not price the spread of a large array) (README, engine sweep). With 8
#: multipliers per copy, a copy placed 6.5 ns of routing from one of its DSP blocks bounded
#: the engine with a selector for 175 MHz at 154.4 and 152.8 MHz (placer seeds 2 and 3); with
#: 4, 166.6 MHz at seed 3 (4,764 more transistors in the ASIC proxy).
DSP_ENABLE_MULTS = 4


def dsp_enable_copies(multipliers: int) -> int:
    """Copies of the stall enable that ``multipliers`` DSP-registered multipliers load on."""
    return max(1, -(-multipliers // DSP_ENABLE_MULTS))


@dataclass(frozen=True)
class MACSchedule:
    """Register stages per part of a MAC datapath (the accumulate stage is always present).

    Parameters
    ----------
    pre, mul, tree : int
        Stages in front of the multipliers (after the weight multiplexers of a sparse unit),
        after the multipliers, and inside the adder tree (spread over its levels).
    wmux : int
        Stages inside the weight multiplexers of a sparse unit, spread over their steps
        (:func:`wmux_cut_after`); at most one fewer than the steps. Left out of the spec
        string when 0.
    """

    pre: int = 0
    mul: int = 1
    tree: int = 0
    wmux: int = 0

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
        return self.wmux + self.pre + self.mul + self.tree + 1

    def spec(self) -> str:
        """The canonical spec string, e.g. ``"pre=0,mul=1,tree=0"`` (``wmux=C,`` first when
        it is not 0)."""
        return ",".join(f"{p}={getattr(self, p)}" for p in PARTS
                        if p != "wmux" or self.wmux)


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
    decode : bool
        The linear engine's one-hot selection of weights in the stream
        (:data:`ONEHOT_STREAM_SPAN`): the index decodes to one-hot selects in the datapath,
        registered (``wmux = 1``, the only place for a register), then one AND-OR per weight
        bit, its data from the stream weights' delay line.
    """

    terms: int
    outputs: int
    width: int
    weight_width: int
    span: int = 0
    memory: bool = False
    decode: bool = False

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
        if layer == "in":
            return k * self.terms * ww + self.terms * w
        p = w + ww
        if layer == "mul":
            return k * self.terms * p
        if layer.startswith("add"):
            lvl = int(layer[3:]) + 1
            return k * math.ceil(self.terms / 2 ** lvl) * (p + lvl)
        raise ValueError(f"no register after layer {layer!r}")


def compaction_muxes(n: int, m: int) -> int:
    """2:1 multiplexers per weight bit of the compaction network (:func:`gen.mac`): stage b
    moves every kept column down by 2^b when bit b of its count of dropped columns before it
    is set (LSB first, collision-free); only positions that can still reach a slot are kept."""
    drop = m - n
    bits = max(1, drop.bit_length())
    width, total = m, 0
    for b in range(bits):
        rest = (drop >> (b + 1)) << (b + 1)  # the largest shift still to come
        out = min(m, n + rest)
        total += sum(1 for p in range(out) if p + (1 << b) < width)
        width = out
    return total


def tree_muxes(n: int, m: int) -> int:
    """2:1 multiplexers per weight bit of the per-slot (M-N+1):1 multiplexer trees."""
    return n * (m - n)


#: The linear engine with weights in the stream selects them by one-hot AND-ORs, as from
#: memory, where it would otherwise take the compaction network, up to this many candidates
#: per slot (M - N + 1: 8:16's 9; 2:4 and 4:8 keep their per-slot trees): after the
#: selector the index decodes to one-hot selects, registered, while the weights wait one stage
#: more in their delay line. Measured at 8:16 K = 4 against the compaction network (both
#: with the delay line, seed 1): 438,716 against 490,238 transistors, 3 cycles less latency,
#: 174.1 against 154.2 MHz, place and route in 69.6 against 119.8 CPU s; at 16:32 the 17-way
#: AND-OR is a crossbar that did not route.
ONEHOT_STREAM_SPAN = 9


def stream_decodes(n: int, m: int) -> bool:
    """Whether the linear engine with weights in the stream selects N:M's weights by one-hot
    AND-ORs (:attr:`MACShape.decode`): where the stream form would otherwise take the
    compaction network, up to :data:`ONEHOT_STREAM_SPAN` candidates per slot (8:16)."""
    return weight_select(n, m) == "compaction" and m - n + 1 <= ONEHOT_STREAM_SPAN


def weight_select(n: int, m: int, memory: bool = False) -> str:
    """How the weights reach the N slots.

    With weights from memory ``"onehot"``: the index decodes to one select bit per slot and
    candidate while the banks read (the decode is registered with the read data), and each
    weight bit is one AND-OR over the M - N + 1 candidates, no register inside it (one there
    would hold every candidate column, K x (M-N+1) x N weights); one may go before it
    (:func:`wmux_steps`). In the stream the
    weights arrive with the index, so the select is decoded in the datapath:
    ``"compaction"`` where the network needs fewer multiplexers than the trees, else
    ``"tree"`` (the trees are shallower and win for small M - N). The linear engine takes
    one-hot AND-ORs in the stream too where :func:`stream_decodes`."""
    if memory:
        return "onehot"
    return "compaction" if compaction_muxes(n, m) < tree_muxes(n, m) else "tree"


def wmux_steps(n: int, m: int, model: dict[str, float] | None = None,
               memory: bool = False, decode: bool = False) -> list[float]:
    """Modeled delay (ns) of each step of the weight selection of N:M, in order; registers
    (``MACSchedule.wmux``) can go between steps. Per-slot trees: the offsets ``index - s``,
    then one 2:1 level per select bit; compaction: the index decode (three levels: the
    compare of every index with each position, and the ORs of its hits: ``wmux_decode``),
    then one stage per bit of the dropped-column count (:func:`gen.mac`); one-hot (weights
    from memory): the read data's route out of the bank, then the AND-OR (a register between
    them, ``wmux = 1``, holds the read data of all M banks in the fabric); ``decode`` (the
    stream engine's one-hot selection): the index decode, then the AND-OR (the register
    between them, ``wmux = 1``, holds the decoded selects)."""
    p = ECP5_DELAYS_NS if model is None else model
    if decode:
        return [p["wmux_decode"], p["wmux_andor"]]
    kind = weight_select(n, m, memory)
    if kind == "onehot":  # the route out of the bank's output register, then the AND-OR
        return [p["bank_out"], p["wmux_andor"]]
    if kind == "tree":
        return [0.0] + [p["wmux_level"]] * max(1, (m - n).bit_length())
    return [p["wmux_decode"]] + [p["wmux_stage"]] * max(1, (m - n).bit_length())


def wmux_cut_after(steps: int, cuts: int) -> list[int]:
    """Steps (0-based) after which the ``cuts`` weight-selection registers go: the first
    after step 0 (the offsets or the index decode, whose few bits fan out to every
    multiplexer), the others evenly spread over the rest.

    Raises
    ------
    ValueError
        More cuts than gaps between the ``steps`` steps.
    """
    if not 0 <= cuts <= steps - 1:
        raise ValueError(f"MAC pipeline wmux={cuts}: the weight selection has {steps} steps, "
                         f"so at most {steps - 1} stages fit between them")
    if cuts == 0:
        return []
    return [0] + [(k * (steps - 1)) // cuts for k in range(1, cuts)]


def _shape_steps(shape: MACShape, p: dict[str, float]) -> list[float]:
    """:func:`wmux_steps` of a sparse shape."""
    return wmux_steps(shape.terms, shape.terms + shape.span - 1, p, shape.memory, shape.decode)


def layer_delays(shape: MACShape, acc_width: int,
                 model: dict[str, float] | None = None) -> dict[str, float]:
    """Modeled delay (ns) of each layer of ``shape`` (see :data:`ECP5_DELAYS_NS`)."""
    p = ECP5_DELAYS_NS if model is None else model
    lg_k = math.log2(shape.outputs)
    out: dict[str, float] = {}
    if shape.sparse:  # the weight selection uncut (MACSchedule.wmux cuts it: _segments)
        steps = _shape_steps(shape, p)
        out["wmux"] = sum(steps) + p["wmux_fanout"] * lg_k
    spread = dsp_spread(shape.outputs * shape.terms, p)
    out["mul"] = p["dsp_route"] + p["fanout"] * lg_k + p["dsp"] + p["route"] + spread
    # the same multiplier with its operands and product registered in the DSP
    # (dsp_registered): the route into its input registers, and out of its output register
    out["dspin"] = p["dsp_route"] + p["fanout"] * lg_k + p["dsp_setup"]
    out["dspout"] = p["dsp_oreg"] + p["route"] + spread
    for i in range(shape.levels):
        bits = shape.width + shape.weight_width + i + 1
        out[f"add{i}"] = p["add"] + p["carry_bit"] * bits
    out["acc"] = p["acc"] + p["carry_bit"] * acc_width
    return out


def _int(part: str, text: str) -> int:
    try:
        return operator.index(int(text))
    except ValueError:
        raise ValueError(f"MAC pipeline {part} must be an integer, not {text!r}") from None


def parse_schedule(spec: object) -> MACSchedule | None:
    """A :class:`MACSchedule` from a spec (``None`` and ``"auto"`` return None).

    Parameters
    ----------
    spec : str, MACSchedule or None
        ``"pre=1,mul=1,tree=2"`` (parts left out keep their defaults: pre 0, mul 1,
        tree 0), a :class:`MACSchedule`, ``"auto"`` or None.

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
                raise ValueError(f"MAC pipeline spec {spec!r}: {item!r} is not <part>=<stages> "
                                 f"with part one of {', '.join(PARTS)} (or use 'auto')")
            if part in kw:
                raise ValueError(f"MAC pipeline spec {spec!r} gives {part} twice")
            kw[part] = _int(part, val.strip())
        sched = MACSchedule(**kw)
    else:
        raise TypeError(f"mac_pipeline must be a spec string such as 'mul=1,tree=1', 'auto' "
                        f"or None, not {spec!r}")
    return sched


def auto_schedule(shape: MACShape, target_mhz: float, acc_width: int,
                  model: dict[str, float] | None = None) -> MACSchedule:
    """The schedule with the fewest register bits whose every segment meets ``target_mhz``.

    Segments run from one register to the next; the first starts at the datapath's registered
    input (the selector's output register, the bank read, or the caller's registers), the
    last ends at the accumulator. The search covers exactly what the generator builds: a
    ``pre`` and a ``mul`` stage or not, and 0..L tree stages spread evenly over the L levels;
    ties go to fewer stages (less latency).

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
    budget = period - p["segment"]
    for name in shape.layers():
        if name == "wmux":
            continue  # the weight selection can be cut (MACSchedule.wmux)
        if name == "mul":  # the fastest form of the multiplier: registered in the DSP
            name = "dspin"
        if delays[name] > budget:
            raise ValueError(
                f"target {target_mhz:g} MHz ({period:.2f} ns) is out of reach: the "
                f"{'route into the DSP input registers' if name == 'dspin' else name + ' layer'}"
                f" alone is modeled at {delays[name] + p['segment']:.2f} ns with its "
                f"registers")
    best: tuple[int, int, MACSchedule] | None = None
    gaps = (len(_shape_steps(shape, p)) - 1
            if shape.sparse else 0)
    for wmux in range(gaps + 1):
        for pre in (0, 1, 2):
            for mul in (0, 1, 2):
                for tree in range(shape.levels + 1):
                    sched = MACSchedule(pre=pre, mul=mul, tree=tree, wmux=wmux)
                    if not _meets(shape, sched, delays, budget, p):
                        continue
                    key = (register_bits(shape, sched), sched.stages, sched)
                    if best is None or key[:2] < best[:2]:
                        best = key
    if best is None:
        raise ValueError(f"target {target_mhz:g} MHz ({period:.2f} ns) is out of reach: no "
                         f"placement of registers meets it in the delay model (the weight "
                         f"selection's slowest step with its fan-out, or the route into the "
                         f"DSP, alone exceeds the period)")
    return best[2]


def register_bits(shape: MACShape, sched: MACSchedule) -> int:
    """Data register bits of a schedule (the accumulate stage excluded: every schedule has
    it). The ``pre`` stage of the dense baseline holds its operands."""
    bits = 0
    # a register inside the weight selection holds about every candidate column (with
    # decode: the activations and the selects only; the weights wait in their delay line)
    table = 0 if shape.decode else shape.outputs * (shape.terms + shape.span - 1)
    bits += sched.wmux * (table * shape.weight_width + shape.terms * shape.width)
    if shape.memory or shape.decode:  # the one-hot selects travel along (their copies)
        bits += sched.wmux * select_copies(shape.outputs) * shape.terms * shape.span
    if sched.pre:
        first = "wmux" if shape.sparse else "in"
        if dsp_registered(sched, shape.width, shape.weight_width):
            # one operand register pair per multiplier (the DSP's input registers)
            bits += (sched.pre - 1) * shape.cut_bits(first)
            bits += shape.outputs * shape.terms * (shape.width + shape.weight_width)
        else:
            bits += sched.pre * shape.cut_bits(first)
    bits += sched.mul * shape.cut_bits("mul")
    cuts = tree_cuts(shape.levels, sched.tree)
    for i, c in enumerate(cuts):
        bits += c * shape.cut_bits(f"add{i}")
    if shape.levels == 0:
        bits += sched.tree * shape.cut_bits("mul")
    return bits


def tree_cuts(levels: int, stages: int) -> list[int]:
    """Stages after each adder-tree level: evenly spread, the last before the accumulator
    (the placement of :func:`gen.pipeline.cuts`; with no levels, all stack up in front of it)."""
    if levels == 0:
        return []
    out = [0] * levels
    for k in range(1, stages + 1):
        out[max(1, math.ceil(k * levels / stages)) - 1] += 1
    return out


def _segments(shape: MACShape, sched: MACSchedule, delays: dict[str, float],
              p: dict[str, float]) -> list[tuple[float, int]]:
    """The datapath as (modeled delay, registers after it) pieces, input to accumulator."""
    lg_k = math.log2(shape.outputs)
    in_dsp = dsp_registered(sched, shape.width, shape.weight_width)
    chain: list[tuple[float, int]] = []
    if shape.sparse:
        steps = _shape_steps(shape, p)
        if shape.decode:
            # the index decode into the select registers (wmux = 1), then one AND-OR, its
            # selects from those registers (a copy per SELECT_COPY_OUTPUTS outputs) and its
            # data from the delay line's output register
            fan = p["wmux_fanout"] * math.log2(min(shape.outputs, SELECT_COPY_OUTPUTS))
            chain.append((steps[0], 1))
            chain.append((steps[1] + fan, sched.pre - in_dsp))
        elif shape.memory:
            # one AND-OR, its data from the bank's output register (or from the fabric
            # register behind it, wmux = 1), its selects from flip-flops (a copy of them per
            # SELECT_COPY_OUTPUTS outputs): the slower of the two
            fan = p["wmux_fanout"] * math.log2(min(shape.outputs, SELECT_COPY_OUTPUTS))
            if sched.wmux:
                chain.append((steps[0], 1))
            data = 0.0 if sched.wmux else steps[0]
            chain.append((steps[1] + max(fan, data), sched.pre - in_dsp))
        else:
            after = set(wmux_cut_after(len(steps), sched.wmux))
            fan = p["wmux_fanout"] * lg_k  # the select bits drive K x weight_width muxes
            run, muxes = 0.0, False  # step 0 (offsets, decode) drives no multiplexer select
            for i, d in enumerate(steps):
                run += d
                muxes = muxes or i > 0
                if i in after:
                    chain.append((run + fan * muxes, 1))
                    run, muxes = 0.0, False
            chain.append((run + fan * muxes, sched.pre - in_dsp))
    else:  # the operands arrive registered (from memory: in the bank's output register)
        chain.append((p["bank_out"] if shape.memory else 0.0, sched.pre - in_dsp))
    if in_dsp:  # into the input registers; the output register; the route out of it
        chain += [(delays["dspin"], 1), (0.0, 1), (delays["dspout"], sched.mul - 1)]
    else:
        chain.append((delays["mul"], sched.mul))
    cuts = tree_cuts(shape.levels, sched.tree)
    for i in range(shape.levels):
        chain.append((delays[f"add{i}"], cuts[i]))
    if shape.levels == 0:
        chain.append((0.0, sched.tree))
    chain.append((delays["acc"], 1))
    if shape.memory:  # the bank read into its output register (READ_STAGES)
        chain.insert(0, (p["read"], 1))
    return chain


def _meets(shape: MACShape, sched: MACSchedule, delays: dict[str, float],
           budget: float, p: dict[str, float]) -> bool:
    if shape.sparse:
        steps = len(_shape_steps(shape, p))
        if sched.wmux > steps - 1 or (shape.decode and sched.wmux != 1):
            return False
    elif sched.wmux:
        return False
    seg = 0.0
    for delay, count in _segments(shape, sched, delays, p):
        seg += delay
        if seg > budget:
            return False
        if count:
            seg = 0.0
    return True
