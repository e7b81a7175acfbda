"""Multiply-accumulate units: the N:M sparse MAC and the dense baseline, pipelined per schedule.

Both compute K dot products over a row of groups (DESIGN.md section 2) and emit the K
accumulators after the group that carries ``last``::

    values[N], index[N] ─► wmux: per output k and slot s, w = weights[k*M + index[s]]
                           ((M-N+1):1 multiplexer: ascending indices put slot s in s..s+M-N;
                           for large M - N a compaction network, fewer multiplexers)
                   [reg]*  (pre) mul: product = values[s] * w     (N multipliers per output)
                   [reg]*  add0 .. add(L-1): adder tree, kept two-operand adders
                   [reg]*  acc: acc[k] += sum; on last: o.acc[k] = acc[k], acc[k] = 0
                                                        (accumulator and output registers)

The dense baseline multiplies all M elements (M multipliers per output, no multiplexers).
Where the ``[reg]*`` stages go is the configuration's :class:`~gen.macsched.MACSchedule`
(explicit per part, or automatic for a target clock, :mod:`gen.macsched`); the same scheduler
serves the sparse and the dense units, so they are compared at equal care. Products are
signed, sums exact; the accumulator wraps modulo ``2**acc_width`` (two's complement).
``latency = pre + mul + tree + 1`` cycles from the transfer of the ``last`` group to the
earliest output transfer. One group per clock while the consumer is ready; a stalled output
freezes the whole unit (global stall, :mod:`gen.pipeline`). ``rst`` clears the accumulators
and the valid bits: a row in progress is dropped.

With weights from memory (DESIGN.md section 3.1) the candidates of the multiplexers are the
read data of the weight banks instead of the ``weights`` field (:func:`weight_banks`), and the
multiplexers are one-hot AND-ORs whose selects the engine decodes and registers during the
bank read (:func:`onehot_select`; ``build_mac(select=...)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, Value, signed
from amaranth.lib import data
from amaranth.lib.memory import Memory

from nmsparse.contract import units

from .config import DenseMACConfig, SparseMACConfig
from .macsched import (
    MACSchedule,
    dsp_enable_copies,
    dsp_registered,
    tree_cuts,
    weight_select,
    wmux_cut_after,
    wmux_steps,
)
from .pipeline import OutputSkid, StallCopies, register, tree_or
from .unit import StreamUnit

__all__ = ["NMSparseMAC", "DenseMAC", "MACPipe", "StagedSum", "CarriedSum", "build_mac",
           "tree_level", "weight_banks", "lane_banks", "lane_bank_word", "lane_read_addrs",
           "register_port",
           "valid_stages", "onehot_select", "MUL_REG", "WBANK", "DELAY", "delay_line",
           "EmitPlatform",
           "uses_primitives", "MACOutput"]

#: The weight bank with its read data registered twice (gen/prims/nmsparse_wbank.v; an ECP5
#: block RAM with its output register in gen/prims/ecp5/).
WBANK = units.WBANK

#: The delay line (gen/prims/nmsparse_delay.v; a LUT-RAM ring on ECP5 in gen/prims/ecp5/).
DELAY = units.DELAY

#: Bits per :data:`DELAY` instance in :func:`delay_line`, each on a stall-enable copy of its own:
#: on ECP5, 16 LUT RAMs share one pair of pointers and one copy.
DELAY_CHUNK_BITS = 64

#: The registered multiplier module (gen/prims/nmsparse_mul_reg.v, its name from the contract):
#: the last ``pre`` stage, the multiplier and the first ``mul`` stage of a MAC, so that a flow
#: maps all three onto one DSP block with its input and output registers (gen/prims/ecp5/ for
#: ECP5; :func:`gen.macsched.dsp_registered`).
MUL_REG = units.MUL_REG


class EmitPlatform:
    """The ``platform`` the Verilog emitter elaborates with: MACs instantiate
    :data:`MUL_REG` (whose generic Verilog :mod:`gen.emit` appends). Elaborated without it
    (the Amaranth simulator), the same registers and products are built inline."""

    primitives = True


def uses_primitives(platform: Any) -> bool:
    """Whether ``platform`` wants :data:`MUL_REG` instances (see :class:`EmitPlatform`)."""
    return bool(getattr(platform, "primitives", False))

Candidate = Callable[[int, int], Value]
"""``cand(k, j)``: output k's weight of group position j (a signed Value)."""


class MACPipe:
    """The valid bit and ``last`` flag that travel with a datapath through its stages.

    :meth:`cut` registers a tree of values together with them (``count`` stages, loading on
    ``advance``); the valid bits are cleared by reset, the data registers are not.
    """

    def __init__(self, m: Module, advance: Value, valid: Value, last: Value, name: str,
                 copies: StallCopies | None = None):
        self.m, self.advance, self.valid, self.last, self.name = m, advance, valid, last, name
        self.copies = copies
        self.bias: StagedSum | CarriedSum | None = None
        #: (valid, last, their inputs' valid & last) of the last stage :meth:`cut` made
        self.made: tuple[Value, Value, Value] | None = None

    def enable(self) -> Value:
        """A copy of ``advance`` for one stage (:class:`gen.pipeline.StallCopies`), or
        ``advance`` itself without copies."""
        return self.copies() if self.copies is not None else self.advance

    def cut(self, tree: Any, count: int, tag: str, enable: Value | None = None) -> Any:
        """Register ``tree``, ``last`` and the valid bit ``count`` times; each stage loads on
        its own copy of ``advance`` (``enable``: the one for a single stage)."""
        for stage in range(count):
            adv = enable if enable is not None else self.enable()
            sfx = f"{self.name}_{tag}" + (f"_{stage}" if count > 1 else "")
            ahead = self.valid & self.last
            if self.bias is not None:  # one more level of the bias sum before this register
                self.bias.step()
                tree, self.last, self.bias.state = register(
                    self.m, adv, (tree, self.last, self.bias.state), sfx)
            else:
                tree, self.last = register(self.m, adv, (tree, self.last), sfx)
            self.valid = valid_stages(self.m, adv, self.valid, 1, f"{sfx}_valid")[-1]
            self.made = (self.valid, self.last, ahead)
        return tree

    def ahead(self) -> Value | None:
        """``valid & last`` one stage ahead: the last stage's input, when ``valid`` and
        ``last`` are still that stage's registers (else None)."""
        if self.made is None:
            return None
        valid, last, ahead = self.made
        return ahead if valid is self.valid and last is self.last else None


class StagedSum:
    """``b[k] = sum_g c_g * sum_j x[k][g][j]`` per output k, built one level per register
    stage of the datapath it travels with (:attr:`MACPipe.bias`): the adder trees of each
    group, then the products by the constants ``c_g``, then the sum of the groups.

    Parameters
    ----------
    terms : list (per output) of list (per group) of list of Value
        The signed summands.
    consts : list of int
        The constant of each group.
    """

    def __init__(self, m: Module, terms: list[list[list[Value]]], consts: Sequence[int],
                 name: str):
        self.m, self.consts, self.name = m, list(consts), name
        self.state: Any = [[list(g) for g in row] for row in terms]
        self.phase = 0  # 0: group sums, 1: the groups' products, summed; 2: done
        self.level = 0

    def step(self) -> None:
        """Build one level of logic on :attr:`state` (nothing once it is done)."""
        m, name = self.m, f"{self.name}{self.level}"
        if self.phase == 0:
            if all(len(g) == 1 for g in self.state[0]):
                self.state = [[self._product(g[0], c, f"{name}_k{k}_g{i}")
                               for i, (g, c) in enumerate(zip(row, self.consts, strict=True))]
                              for k, row in enumerate(self.state)]
                self.phase = 1
            else:
                self.state = [[tree_level(m, g, f"{name}_k{k}_g{i}") if len(g) > 1 else g
                               for i, g in enumerate(row)] for k, row in enumerate(self.state)]
        elif self.phase == 1:
            if len(self.state[0]) == 1:
                self.phase = 2
            else:
                self.state = [tree_level(m, row, f"{name}_k{k}")
                              for k, row in enumerate(self.state)]
        self.level += 1

    def _product(self, v: Value, c: int, name: str) -> Value:
        # shifted copies of v, one per set bit of |c|, summed and negated for c < 0: carry
        # chains, not a DSP block used combinationally
        t = Signal(signed(len(v) + Value.cast(c).shape().width + 1), name=name)
        mag = abs(c)
        parts = [v.as_signed() << b for b in range(mag.bit_length()) if mag >> b & 1]
        total = parts[0]
        for q in parts[1:]:
            total = total + q
        self.m.d.comb += t.eq(-total if c < 0 else total)
        return t

    def finish(self) -> list[Value]:
        """The per-output sums, the levels not yet built added combinationally."""
        while self.phase < 2:
            self.step()
        return [row[0] for row in self.state]


class CarriedSum:
    """Per-output terms already complete (the run-time S-PTS bias of :mod:`gen.linear`),
    carried through the MAC's register stages as :class:`StagedSum` is: :attr:`MACPipe.bias`
    takes either."""

    def __init__(self, terms: Sequence[Value]):
        self.state: Any = list(terms)

    def step(self) -> None:
        """Nothing to build: the terms travel as they are."""

    def finish(self) -> list[Value]:
        return list(self.state)


def valid_stages(m: Module, advance: Value, valid: Value, count: int,
                 name: str = "valid") -> list[Value]:
    """``valid`` through ``count`` reset-cleared stages loading on ``advance``; returns the
    input followed by every stage's output (so ``[-1]`` is the delayed bit)."""
    out = [valid]
    for stage in range(count):
        r = Signal(name=f"{name}_s{stage}")
        with m.If(advance):
            m.d.sync += r.eq(out[-1])
        out.append(r)
    return out


def _select_weights(m: Module, index: Sequence[Value], cand: Candidate, *, m_: int,
                    outputs: int, weight_width: int, name: str, after: Sequence[int] = (),
                    cut: Callable[[Any, str], Any] | None = None) -> list[list[Value]]:
    """``w[k][s] = cand(k, index[s])`` through (M-N+1):1 multiplexers on ``index[s] - s``.

    Steps: the offsets, then one 2:1 level per offset bit (a binary tree, not
    ``word_select``: that emits a barrel shifter over all words, several times the logic
    before optimisation). ``cut(tree, tag)`` registers ``tree`` after each step in ``after``.
    """
    n = len(index)
    span = m_ - n + 1
    sel_width = max(1, (span - 1).bit_length())
    offsets = []
    for s, idx in enumerate(index):
        off = Signal(sel_width, name=f"{name}_off{s}")
        m.d.comb += off.eq(Value.cast(idx) - s)  # index relative to the slot's first candidate
        offsets.append(off)
    words = [[[cand(k, s + c) for c in range(span)] for s in range(n)] for k in range(outputs)]
    sel: list[Value] = offsets
    step = 0
    for level in range(sel_width + 1):
        if level:
            words = [[[Mux(sel[s][level - 1], ws[i + 1], ws[i])
                       for i in range(0, len(ws) - 1, 2)] + ([ws[-1]] if len(ws) % 2 else [])
                      for s, ws in enumerate(row)] for row in words]
        if step in after and cut is not None:
            words, sel = cut((words, sel), f"wmux{step}")
        step += 1
    out = []
    for k in range(outputs):
        row = []
        for s in range(n):
            w = Signal(signed(weight_width), name=f"{name}_w{k}_{s}")
            m.d.comb += w.eq(words[k][s][0])
            row.append(w)
        out.append(row)
    return out


def _compact_weights(m: Module, index: Sequence[Value], cand: Candidate, *, m_: int,
                     outputs: int, weight_width: int, name: str, after: Sequence[int] = (),
                     cut: Callable[[Any, str], Any] | None = None) -> list[list[Value]]:
    """``w[k][s] = cand(k, index[s])`` through a compaction network (for large M - N).

    Each kept column j moves down by its count d_j of dropped columns before it, one bit per
    stage, LSB first (2^b at stage b): kept columns never collide, and column j ends at
    j - d_j = its slot. Stage b keeps only the positions that can still reach a slot. The
    control (kept bit and d_j per position) comes from the indices once and is shared by
    all K outputs; see :func:`gen.macsched.compaction_muxes` for the multiplexer count.
    Steps: the decode, then one per stage; ``cut(tree, tag)`` registers ``tree`` after each
    step in ``after``.
    """
    n = len(index)
    drop = m_ - n
    bits = max(1, drop.bit_length())
    valid: list[Value] = []
    dist: list[Value] = []
    for j in range(m_):
        hits = [(s, Value.cast(index[s]) == j)
                for s in range(max(0, j - drop), min(j, n - 1) + 1)]
        v = Signal(name=f"{name}_keep{j}")
        d = Signal(bits, name=f"{name}_drop{j}")
        m.d.comb += v.eq(tree_or([h for _, h in hits]) if hits else 0)
        # slot s holding j means j - s dropped columns before it
        terms = [h.replicate(bits) & Const(j - s, bits) for s, h in hits]
        m.d.comb += d.eq(tree_or(terms) if terms else 0)
        valid.append(v)
        dist.append(d)
    cols = [[cand(k, j) for k in range(outputs)] for j in range(m_)]
    if 0 in after and cut is not None:
        valid, dist, cols = cut((valid, dist, cols), "wmux0")
    width = m_
    for b in range(bits):
        shift = 1 << b
        keep = min(m_, n + ((drop >> (b + 1)) << (b + 1)))  # positions that can reach a slot
        nv, nd, nc = [], [], []
        for p in range(keep):
            stay = valid[p] & ~dist[p][b]
            src = p + shift
            if src >= width:
                nv.append(stay)
                nd.append(dist[p])
                nc.append(cols[p])
                continue
            move = Signal(name=f"{name}_s{b}_mv{p}")
            m.d.comb += move.eq(valid[src] & dist[src][b])
            v = Signal(name=f"{name}_s{b}_v{p}")
            d = Signal(bits, name=f"{name}_s{b}_d{p}")
            m.d.comb += [v.eq(move | stay), d.eq(Mux(move, dist[src], dist[p]))]
            row = []
            for k in range(outputs):
                w = Signal(signed(weight_width), name=f"{name}_s{b}_w{k}_{p}")
                m.d.comb += w.eq(Mux(move, cols[src][k], cols[p][k]))
                row.append(w)
            nv.append(v)
            nd.append(d)
            nc.append(row)
        valid, dist, cols, width = nv, nd, nc, keep
        if b + 1 in after and cut is not None:
            valid, dist, cols = cut((valid, dist, cols), f"wmux{b + 1}")
    return [[cols[s][k] for s in range(n)] for k in range(outputs)]


def onehot_select(m: Module, index: Sequence[Value], *, m_: int,
                  name: str = "mac_sel") -> list[Value]:
    """The select bits of the one-hot weight multiplexers: bit c of slot s is
    ``index[s] == s + c`` (ascending indices put slot s in s .. s + M - N), N x (M-N+1) bits
    shared by all K outputs; exactly one is set per slot."""
    span = m_ - len(index) + 1
    out = []
    for s, idx in enumerate(index):
        sel = Signal(span, name=f"{name}{s}")
        m.d.comb += sel.eq(Cat(*(Value.cast(idx) == s + c for c in range(span))))
        out.append(sel)
    return out


def _onehot_weights(m: Module, select: Sequence[Sequence[Value]], cand: Candidate, *,
                    outputs: int, weight_width: int, name: str) -> list[list[Value]]:
    """``w[k][s] = OR_c (select[s][c] AND cand(k, s + c))``: one AND-OR per weight bit over
    the slot's candidates (:func:`onehot_select`), no register inside it. ``select``: copies of
    the slots' select bits, the outputs shared out among them in order (copy
    ``k * len(select) // outputs`` serves output k)."""
    out = []
    for k in range(outputs):
        row = []
        for s, sel in enumerate(select[k * len(select) // outputs]):
            terms = [Value.cast(cand(k, s + c)).as_unsigned()
                     & sel[c].replicate(weight_width) for c in range(len(sel))]
            w = Signal(signed(weight_width), name=f"{name}_w{k}_{s}")
            m.d.comb += w.eq(tree_or(terms))
            row.append(w)
        out.append(row)
    return out


def tree_level(m: Module, vals: list[Value], name: str) -> list[Value]:
    """One level of the adder tree: pairwise sums as kept signals (one bit wider)."""
    nxt = []
    for i in range(0, len(vals) - 1, 2):
        v = vals[i] + vals[i + 1]
        # keep: one two-operand adder (a carry chain) per partial sum, not one multi-operand
        # adder whose carry-save expansion into LUTs makes mapping slow and large
        s = Signal(v.shape(), name=f"{name}_p{i // 2}", attrs={"keep": 1})
        m.d.comb += s.eq(v)
        nxt.append(s)
    if len(vals) % 2:
        nxt.append(vals[-1])
    return nxt


def build_mac(m: Module, pipe: MACPipe, values: Sequence[Value], cand: Candidate,
              schedule: MACSchedule, *, index: Sequence[Value] | None, m_: int, outputs: int,
              weight_width: int, acc_width: int, name: str = "mac",
              bias: StagedSum | CarriedSum | None = None,
              primitives: bool = False,
              select: Sequence[Sequence[Value]] | None = None) -> tuple[list[Value], Value]:
    """The MAC datapath from (values, weights) to the output registers.

    Parameters
    ----------
    pipe : MACPipe
        Valid bit and ``last`` of the group at the datapath's input.
    values : list of Value
        N kept elements (sparse, with ``index``) or M elements (dense, ``index`` None).
    cand : callable
        ``cand(k, j)``: output k's weight of group position j.
    schedule : MACSchedule
        Register stages per part.
    bias : StagedSum, optional
        One signed term per output added to the accumulator with this group (the S-PTS
        bias of :mod:`gen.linear`), built level by level across the same register stages.
    select : list of list of Value, optional
        In place of ``index`` (weights from memory): copies of the registered one-hot select
        bits of each slot (:func:`onehot_select`), the outputs shared out among the copies in
        order; the weights then pass one AND-OR per bit.
    primitives : bool
        Where the schedule registers the DSP's operands and product
        (:func:`gen.macsched.dsp_registered`), build each product as a :data:`MUL_REG`
        instance holding the last ``pre`` stage and the first ``mul`` stage (one operand
        register pair and one product register per multiplier, as a DSP block has them),
        the instances loading on :func:`gen.macsched.dsp_enable_copies` copies of the stall
        enable; otherwise the same stages and product inline (equal cycle for cycle).

    Returns
    -------
    outs, out_valid
        The K output registers and their valid bit.
    """
    vals = [Value.cast(v).as_signed() for v in values]
    pipe.bias = bias
    if select is not None:
        if schedule.wmux > 1:
            raise ValueError(f"MAC pipeline wmux={schedule.wmux}: the one-hot weight "
                             f"selection has one place for a register (before the AND-OR)")
        if schedule.wmux:  # the read data of all banks into the fabric, the selects along
            table = [[cand(k, j) for j in range(m_)] for k in range(outputs)]
            select = [register(m, pipe.enable(), list(s), f"{name}_wmux_sel{g}")
                      for g, s in enumerate(select)]
            table, vals = pipe.cut((table, vals), 1, "wmux")
            cand = lambda k, j: table[k][j]  # noqa: E731
        w = _onehot_weights(m, select, cand, outputs=outputs, weight_width=weight_width,
                            name=f"{name}_wmux")
    elif index is not None:
        select = (_select_weights if weight_select(len(index), m_) == "tree"
                  else _compact_weights)
        steps = len(wmux_steps(len(index), m_))
        carry = [vals]

        def cut(tree: Any, tag: str) -> Any:
            # a register inside the weight selection: the activations travel along
            tree, carry[0] = pipe.cut((tree, carry[0]), 1, tag)
            return tree

        w = select(m, index, cand, m_=m_, outputs=outputs, weight_width=weight_width,
                   name=f"{name}_wmux", after=wmux_cut_after(steps, schedule.wmux), cut=cut)
        vals = carry[0]
    else:
        if schedule.wmux:
            raise ValueError(f"MAC pipeline wmux={schedule.wmux}: the dense baseline has no "
                             f"weight selection")
        w = [[cand(k, j) for j in range(len(vals))] for k in range(outputs)]
    in_dsp = primitives and dsp_registered(schedule, max(len(v) for v in vals), weight_width)
    n_pre = schedule.pre - in_dsp
    act = None
    if in_dsp:
        # the last pre stage and the first mul stage are the registers inside each multiplier
        # (DSP block); the blocks load on copies of the stall enable, so no enable fans out to
        # every DSP block of the array. Multipliers of one activation share a copy, so that
        # its K operand registers, on one enable, stay one register where synthesis merges
        # them (the generic form, an ASIC flow)
        count = outputs * len(vals)
        copies = [pipe.enable() for _ in range(dsp_enable_copies(count))]
        per = -(-count // len(copies))
    if in_dsp and n_pre >= 1:
        vals, w = pipe.cut((vals, w), n_pre - 1, "pre")
        rep: dict[tuple[int, int], Value] = {}
        for t, v in enumerate(vals):
            for k in range(outputs):
                g = (t * outputs + k) // per
                if (t, g) not in rep:
                    r = Signal(Value.cast(v).shape(), name=f"{name}_pre_a{t}_g{g}",
                               reset_less=True)
                    with m.If(copies[g]):
                        m.d.sync += r.eq(v)
                    rep[(t, g)] = r
        w = pipe.cut(w, 1, "pre")
        act = lambda k, t: rep[(t, (t * outputs + k) // per)]  # noqa: E731
    else:
        vals, w = pipe.cut((vals, w), n_pre, "pre")
    if in_dsp:
        pipe.cut([], 1, "dspin", enable=copies[0])
    prods = []
    for k in range(outputs):
        row = []
        for t, v in enumerate(vals):
            p = Signal(signed(len(v) + weight_width), name=f"{name}_prod{k}_{t}")
            if in_dsp:
                m.submodules[f"{name}_mul{k}_{t}"] = Instance(
                    MUL_REG, p_A_WIDTH=len(v), p_B_WIDTH=weight_width, i_clk=ClockSignal(),
                    i_ce=copies[(t * outputs + k) // per],
                    i_a=act(k, t) if act is not None else v, i_b=w[k][t], o_p=p)
            else:
                m.d.comb += p.eq(v * w[k][t])
            row.append(p)
        prods.append(row)
    if in_dsp:
        pipe.cut([], 1, "dspout", enable=copies[0])
    prods = pipe.cut(prods, schedule.mul - in_dsp, "mul")
    levels = max(0, (len(vals) - 1).bit_length())
    if levels == 0:
        prods = pipe.cut(prods, schedule.tree, "tree")
    for lvl, count in enumerate(tree_cuts(levels, schedule.tree)):
        prods = [tree_level(m, row, f"{name}{k}_sum{lvl}") for k, row in enumerate(prods)]
        prods = pipe.cut(prods, count, f"add{lvl}")
    sums = [row[0] for row in prods]
    if bias is not None:
        extra = bias.finish()
        pipe.bias = None
        biased = []
        for k, (sm, b) in enumerate(zip(sums, extra, strict=True)):
            # keep: the accumulator loop stays one two-operand adder
            s = Signal(signed(acc_width), name=f"{name}_biased{k}", attrs={"keep": 1})
            m.d.comb += s.eq(sm + b)  # wraps to acc_width, as the accumulator does
            biased.append(s)
        sums = biased
    return _accumulate(m, pipe, sums, acc_width, name)


def _accumulate(m: Module, pipe: MACPipe, sums: list[Value], acc_width: int,
                name: str) -> tuple[list[Value], Value]:
    """Accumulation until ``last``, and the output registers (loaded on ``advance``)."""
    advance, valid, last = pipe.advance, pipe.valid, pipe.last
    outs = []
    out_valid = Signal(name=f"{name}_out_valid")
    with m.If(advance):
        m.d.sync += out_valid.eq(valid & last)
    # each output's accumulator and its output register load on copies of their own: the
    # accumulator's clock enable is one LUT (copy, valid) driving acc_width flip-flops, the
    # output register's the copy itself
    advs = [(pipe.enable(), pipe.enable()) for _ in sums]
    if pipe.copies is not None:
        pipe.copies.close(valid & last, ahead=pipe.ahead())
    for k, total_sum in enumerate(sums):
        adv, adv_out = advs[k]
        acc = Signal(signed(acc_width), name=f"{name}_acc{k}")
        out = Signal(signed(acc_width), name=f"{name}_acc{k}_out", reset_less=True)
        total = Signal(signed(acc_width), name=f"{name}_acc{k}_next")
        m.d.comb += total.eq(acc + total_sum)  # wraps to acc_width
        with m.If(adv & valid):
            m.d.sync += acc.eq(Mux(last, 0, total))
        # the output register loads on every move (a flip-flop on its clock enables, no
        # LUT of valid and last fanning out to them): while out_valid is low its value is
        # not read, and a result it holds leaves (or goes into the skid buffer) in the move
        # that overwrites it
        with m.If(adv_out):
            m.d.sync += out.eq(total)
        outs.append(out)
    return outs, out_valid


def _bank(m: Module, name: str, *, depth: int, layout: data.ArrayLayout, write_en: Value,
          write_addr: Value, write_data: Value, read_en: Value, read_addr: Value,
          out_enable: Value, primitives: bool) -> Value:
    """One weight bank: a write port, a synchronous read port (its data held while
    ``read_en`` is low) and the read data registered once more on ``out_enable``; with
    ``primitives`` a :data:`WBANK` instance (a block RAM's output register, gen/prims/),
    else an ``amaranth.lib.memory`` read port and a register. Returns the registered data."""
    q = Signal(layout, name=f"{name}_q")
    if primitives:
        addr_width = max(1, (depth - 1).bit_length())
        m.submodules[name] = Instance(
            WBANK, p_WIDTH=layout.size, p_ADDR_WIDTH=addr_width, p_DEPTH=depth,
            i_clk=ClockSignal(), i_we=write_en, i_waddr=write_addr[:addr_width],
            i_wdata=write_data, i_re=read_en, i_raddr=read_addr[:addr_width],
            i_oce=out_enable, o_q=q)
        return q
    mem = Memory(shape=layout, depth=depth, init=[])
    m.submodules[name] = mem
    wp = mem.write_port()
    rp = mem.read_port()
    m.d.comb += [
        wp.addr.eq(write_addr),
        wp.data.eq(write_data),
        wp.en.eq(write_en),
        rp.addr.eq(read_addr),
        rp.en.eq(read_en),
    ]
    with m.If(out_enable):
        m.d.sync += q.eq(rp.data)
    return q


def delay_line(m: Module, value: Value, stages: int, enable: Callable[[], Value], name: str,
               *, primitives: bool) -> Value:
    """``value`` delayed by ``stages`` register stages that load on a stall enable: bit for
    bit ``register(m, advance, value, name, stages)``. In slices of :data:`DELAY_CHUNK_BITS`
    bits, each on a copy of the enable of its own (``enable()``); with ``primitives`` each
    slice is a :data:`DELAY` instance (whose ECP5 form keeps the stages in a LUT-RAM ring),
    else the same flip-flops inline."""
    v = Value.cast(value)
    if stages == 0:
        return v
    parts: list[Value] = []
    for c, lo in enumerate(range(0, len(v), DELAY_CHUNK_BITS)):
        x = v[lo:lo + DELAY_CHUNK_BITS]
        ce = enable()
        if primitives:
            q = Signal(len(x), name=f"{name}{c}_q")
            m.submodules[f"{name}{c}"] = Instance(
                DELAY, p_WIDTH=len(x), p_DEPTH=stages, i_clk=ClockSignal(), i_ce=ce, i_d=x,
                o_q=q)
            parts.append(q)
        else:
            parts.append(register(m, ce, x, f"{name}{c}", stages))
    return Cat(*parts)


def weight_banks(m: Module, *, banks: int, depth: int, outputs: int, weight_width: int,
                 write_en: Value, write_bank: Value, write_word: Value, write_data: Value,
                 read_word: Value, read_en: Sequence[Value], out_enable: Sequence[Value],
                 primitives: bool = False, name: str = "wbank") -> list[Any]:
    """M weight banks, one per group position (DESIGN.md 3.1, ``banks: position``), their
    read data registered.

    Bank j, word g holds the K weights of input feature ``g*M + j`` (output k's weight at
    element k). One write port (``write_en`` with ``write_bank``/``write_word``) and one
    synchronous read port per bank: all banks read word ``read_word``; bank j only when
    ``read_en[j]`` is high, else its read data holds. The read data is registered once more
    when ``out_enable[j]`` is high (:func:`_bank`). Returns the K-element views of that
    registered data, one per bank.
    """
    layout = data.ArrayLayout(signed(weight_width), outputs)
    return [_bank(m, f"{name}{j}", depth=depth, layout=layout,
                  write_en=write_en & (write_bank == j), write_addr=write_word,
                  write_data=write_data, read_en=read_en[j], read_addr=read_word,
                  out_enable=out_enable[j], primitives=primitives)
            for j in range(banks)]


def lane_bank_word(column: Value, word: Value, depth: int, width: int) -> Value:
    """Word of a lane bank (:func:`lane_banks`) holding column offset ``column`` of group
    word ``word``: ``column * depth + word`` (bit concatenation when ``depth`` is a power of
    two), ``width`` bits."""
    qb = max(1, (depth - 1).bit_length())
    if depth == 1 << qb:
        return Cat(word[:qb], column)[:width]
    return (column * depth + word)[:width]


def _lane_geometry(n: int, m_: int, depth: int) -> tuple[int, int, int]:
    """Of a lane bank (:func:`lane_banks`): columns M - N + 1, address bits, column bits."""
    span = m_ - n + 1
    return span, max(1, (span * depth - 1).bit_length()), max(1, (span - 1).bit_length())


def lane_read_addrs(m: Module, *, n: int, m_: int, depth: int, read_word: Value,
                    index: Sequence[Value], name: str = "wlane") -> list[Value]:
    """Read address of each lane bank (:func:`lane_banks`) for a group: bank s reads word
    ``(index[s] - s)*D + read_word``."""
    _, width, cbits = _lane_geometry(n, m_, depth)
    out = []
    for s in range(n):
        rcol = Signal(cbits, name=f"{name}{s}_rcol")
        m.d.comb += rcol.eq(Value.cast(index[s]) - s)
        out.append(lane_bank_word(rcol, read_word, depth, width))
    return out


def register_port(m: Module, port: dict[str, Value], prefix: str) -> dict[str, Value]:
    """A bank write port one cycle later, from registers named ``<prefix><key>``: the write
    enable cleared by reset, the address and data reset-less."""
    out = {}
    for key, value in port.items():
        reg = Signal(Value.cast(value).shape(), name=f"{prefix}{key}",
                     reset_less=key != "write_en")
        m.d.sync += reg.eq(value)
        out[key] = reg
    return out


def lane_banks(m: Module, *, n: int, m_: int, depth: int, outputs: int, weight_width: int,
               write_en: Value, write_bank: Value, write_word: Value, write_data: Value,
               read_addr: Sequence[Value], read_en: Sequence[Value],
               out_enable: Sequence[Value],
               primitives: bool = False, registered: bool = False,
               name: str = "wlane") -> list[Any]:
    """N weight banks, one per kept slot (DESIGN.md 3.1, ``banks: lane``), their read data
    registered: no weight multiplexer after them.

    Ascending kept indices put slot s at a group position ``s + c``, ``0 <= c <= M - N``, so
    bank s holds those M - N + 1 columns: word ``c*D + g`` (:func:`lane_bank_word`) the K
    weights of input feature ``g*M + s + c``. A load of position j writes every bank s with
    ``s <= j <= s + M - N`` (up to min(N, M - N + 1) banks at once); a group's slot s reads
    word ``read_addr[s]`` of bank s (:func:`lane_read_addrs`), all N banks each group, bank s
    on ``read_en[s]`` and its data's register on ``out_enable[s]``.
    Storage: N (M - N + 1) / M copies of the weights, for a read of N weight columns per group
    without the (M - N + 1):1 multiplexer of every weight bit.

    ``registered``: the write port one cycle later (as :func:`gen.linear._write_port`), each
    bank's write enable and word address computed in front of a register of its own, so the
    route to a bank starts at a flip-flop, not at logic shared by banks across the device
    (the shared form bounded nm_linear_8_16_int8_k16_wlane_skid at 151.5 MHz, seed 1: the
    write address's LUTs to a bank 45 columns away, 4.15 ns of routing).
    """
    span, width, cbits = _lane_geometry(n, m_, depth)
    layout = data.ArrayLayout(signed(weight_width), outputs)
    words = span * depth
    out = []
    for s in range(n):
        wcol = Signal(cbits, name=f"{name}{s}_wcol")
        m.d.comb += wcol.eq(write_bank - s)
        # the columns of bank s: positions s .. s + M - N (no comparison where it is constant)
        holds = Const(1)
        if s > 0:
            holds = holds & (write_bank >= s)
        if s + span - 1 < (1 << len(write_bank)) - 1:
            holds = holds & (write_bank <= s + span - 1)
        we, wa = write_en & holds, lane_bank_word(wcol, write_word, depth, width)
        if registered:
            reg = register_port(m, {"write_en": we, "write_addr": wa}, f"{name}{s}_")
            we, wa = reg["write_en"], reg["write_addr"]
        out.append(_bank(
            m, f"{name}{s}", depth=words, layout=layout, write_en=we,
            write_addr=wa, write_data=write_data,
            read_en=read_en[s], read_addr=read_addr[s],
            out_enable=out_enable[s], primitives=primitives))
    return out


class MACOutput:
    """The output end of a MAC unit: the global stall ``advance``, the stall-enable copies
    and the output stream, with or without the output skid buffer (``config.skid``,
    :class:`gen.pipeline.OutputSkid`): ``advance = ~o.valid | o.ready``, or ``~pv | ~skid``
    with every copy a flip-flop."""

    def __init__(self, unit: StreamUnit, m: Module):
        self.m, self.o = m, unit.o
        self.skid = OutputSkid(m, unit.o) if unit.config.skid else None
        if self.skid is not None:
            self.advance = self.skid.advance
        else:
            self.advance = Signal(name="advance")
            m.d.comb += self.advance.eq(~unit.o.valid | unit.o.ready)

    def copies(self) -> StallCopies:
        """The source of the stall-enable copies (one per register stage)."""
        return StallCopies(self.m, self.o.ready, registered=self.skid is not None)

    def drive(self, outs: list[Value], out_valid: Value) -> None:
        """The output registers ``outs`` (valid ``out_valid``) onto ``o``."""
        fields = [self.o.payload.acc[k] for k in range(len(outs))]
        if self.skid is not None:
            self.skid.drive(out_valid, outs, fields)
            return
        self.m.d.comb += self.o.valid.eq(out_valid)
        for out, field in zip(outs, fields, strict=True):
            self.m.d.comb += field.eq(out)


class NMSparseMAC(StreamUnit):
    """N:M sparse MAC ``nm_spmac_<N>_<M>_<fmt>_k<K>``.

    Parameters
    ----------
    config : SparseMACConfig
        The validated design point (pattern, format, weight and accumulator widths, K, and
        the register stages of the datapath).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.SparseMACConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``values`` (N signed elements), ``index`` (N strictly
        ascending indices in [0, M), as the selector emits them), ``weights`` (K*M signed;
        element ``k*M + j`` is output k's weight of group position j), ``last`` (1 bit:
        this group ends the row).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = SparseMACConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        out = MACOutput(self, m)
        advance = out.advance
        m.d.comb += self.i.ready.eq(advance)
        p = self.i.payload
        pipe = MACPipe(m, advance, self.i.valid, Value.cast(p.last)[0], "mac", out.copies())
        weights = p.weights
        outs, out_valid = build_mac(
            m, pipe, [p.values[s] for s in range(cfg.n)],
            lambda k, j: Value.cast(weights[k * cfg.m + j]), cfg.schedule,
            index=[Value.cast(p.index[s]) for s in range(cfg.n)], m_=cfg.m,
            outputs=cfg.outputs, weight_width=cfg.weight_width, acc_width=cfg.acc_width,
            primitives=uses_primitives(platform))
        out.drive(outs, out_valid)
        return m


class DenseMAC(StreamUnit):
    """Dense baseline MAC ``dense_mac_<M>_<fmt>_k<K>[_wmem]``: the same dot product, all M kept.

    Parameters
    ----------
    config : DenseMACConfig
        The validated design point (group size, format, widths, K, register stages, and
        where the weights come from).

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (M signed elements), ``weights`` (K*M; with
        weights from memory: the K weights of one input feature to load), ``last``; with
        weights from memory also ``load`` and ``addr`` (DESIGN.md section 3.1).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = DenseMACConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        out = MACOutput(self, m)
        advance = out.advance
        p = self.i.payload
        values = [p.data[j] for j in range(cfg.m)]
        last = Value.cast(p.last)[0]
        copies = out.copies()
        if cfg.weights == "stream":
            m.d.comb += self.i.ready.eq(advance)
            pipe = MACPipe(m, advance, self.i.valid, last, "mac", copies)
            weights = p.weights
            cand = lambda k, j: Value.cast(weights[k * cfg.m + j])  # noqa: E731
        else:
            # nothing sits between the input and the bank read: a load never races a read
            m.d.comb += self.i.ready.eq(advance)
            load = Value.cast(p.load)[0]
            compute = self.i.valid & ~load
            read_word = group_counter(m, advance, compute, last, cfg.depth, "mac_group")
            # every bank reads on every move, bubbles and loads included (their data is not
            # used), and loads its read data's register on the next: each bank on copies of
            # the stall enable of its own, flip-flops with skid, so no valid bit or LUT fans
            # out from the input to block RAMs across the device (at K = 8 with 16 banks that
            # path bounded dense_mac_16_int8_k8_wmem_skid at 162.6 MHz, seed 1)
            rd = [copies() for _ in range(cfg.m)]
            oce = [copies() for _ in range(cfg.m)]
            # the read data into a register of its own, the banks' (gen.macsched.READ_STAGES)
            rdata = weight_banks(
                m, banks=cfg.m, depth=cfg.depth, outputs=cfg.outputs,
                weight_width=cfg.weight_width, **load_port(cfg, p, self.i.valid & load),
                read_word=read_word, read_en=rd, out_enable=oce,
                primitives=uses_primitives(platform))
            pipe = MACPipe(m, advance, compute, last, "mac", copies)
            values = pipe.cut(values, 1, "read")
            values = pipe.cut(values, 1, "rdreg")
            rows = [[Value.cast(rdata[j][k]) for k in range(cfg.outputs)] for j in range(cfg.m)]
            cand = lambda k, j: rows[j][k]  # noqa: E731
        outs, out_valid = build_mac(m, pipe, values, cand, cfg.schedule, index=None, m_=cfg.m,
                                    outputs=cfg.outputs, weight_width=cfg.weight_width,
                                    acc_width=cfg.acc_width, primitives=uses_primitives(platform))
        out.drive(outs, out_valid)
        return m


def load_port(cfg: Any, p: Any, write_en: Value) -> dict[str, Value]:
    """Write-port connections of :func:`weight_banks` from a load transfer's payload: ``addr``
    = (word << index_width) | bank; words at or beyond the depth are ignored."""
    addr = Value.cast(p.addr)
    bank, word = addr[: cfg.index_width], addr[cfg.index_width:]
    in_range = word < cfg.depth
    return {"write_en": write_en & in_range, "write_bank": bank,
            "write_word": word[: max(1, (cfg.depth - 1).bit_length())],
            "write_data": Value.cast(p.weights)}


def group_counter(m: Module, advance: Value, valid: Value, last: Value, depth: int,
                  name: str) -> Value:
    """Word of the group about to read the banks: 0 at the start of a row, one more per group
    (modulo ``depth``), back to 0 after the ``last`` group; cleared by reset."""
    g = Signal(range(max(2, depth)), name=name)
    with m.If(advance & valid):
        with m.If(last | (g == depth - 1)):
            m.d.sync += g.eq(0)
        with m.Else():
            m.d.sync += g.eq(g + 1)
    return g
