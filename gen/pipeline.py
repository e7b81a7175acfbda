"""The stall pipeline shared by every unit, and small structural building blocks.

Every unit is a chain of combinational layers with register stages between some of them.
All stages move together (a global stall)::

    advance = ~o.valid | o.ready          (P >= 1; with P = 0: i.ready = o.ready)
    i.ready = advance
    on advance: stage[k] <= stage[k-1], valid[k] <= valid[k-1]

so a group is accepted on every clock while the consumer is ready (full throughput), and a
stalled consumer freezes every stage: nothing is lost, duplicated or reordered. ``o.valid``
comes straight from a register, so it never depends on ``o.ready``. Data registers have no
reset; the valid bits (and the accumulators of the MAC units) are cleared by ``rst``.

Datapath values travel as *trees*: nested lists, tuples and dicts of Amaranth values (``None``
for an unused slot); :func:`register` clocks a whole tree at once and passes constants through.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from amaranth.hdl import Cat, ClockSignal, Const, Module, Mux, ResetSignal, Signal, Value

__all__ = [
    "Deferred",
    "RAM_DELAY_DEPTH",
    "ram_delay",
    "Stepper",
    "probe_live_bits",
    "tree_bits",
    "stall_control",
    "stall_enables",
    "StallCopies",
    "OutputSkid",
    "skid_next",
    "register",
    "valid_chain",
    "tree_reduce",
    "tree_sum",
    "tree_or",
    "popcount_bits",
    "add_bits",
    "lt_const",
    "prefix_counts",
]


def tree_bits(tree: Any) -> int:
    """Bits a register stage would hold for ``tree`` (constants and ``None`` cost nothing)."""
    total = 0

    def count(v: Value) -> None:
        nonlocal total
        v = Value.cast(v)
        if not isinstance(v, Const):
            total += len(v)

    _map(count, tree)
    return total


def probe_live_bits(layers: int, build: Callable[[Module, Stepper], Any]) -> list[int]:
    """Bits a register after each of ``layers`` layers would hold: ``build(m, step)`` runs
    once as a dry run (nothing registered, the tree's width recorded at every ``step``) and
    is elaborated like any other module. What :mod:`gen.schedule` places registers by."""
    from amaranth.hdl import Fragment

    probe: list[int] = []
    m = Module()
    step = Stepper(m, Signal(), [0] * layers, "probe", probe=probe)
    build(m, step)
    step.finish()
    Fragment.get(m, None)
    return probe


class Deferred:
    """A tree that skips the stage registers (:meth:`Stepper.defer`): it is delayed in one
    piece, in distributed RAM, when the architecture fetches it back."""

    def __init__(self, tree: Any, min_bits: int | None = None) -> None:
        self.tree, self.stages, self.min_bits = tree, 0, min_bits


class Stepper:
    """Walks the layers of a datapath and inserts the scheduled register stages.

    ``step(tree)`` after layer ``k`` returns the tree through ``cuts[k]`` register stages
    (loading on ``advance``), or unchanged; :meth:`finish` checks that every layer was
    passed. With ``probe`` (a list), nothing is registered and the live bits after each
    layer are appended to it instead (a dry run for the scheduler).

    :meth:`defer` and :meth:`fetch` move a wide tree that no layer in between touches (the
    raw elements on their way to the compaction) past the stages in a 16-deep LUT RAM per
    slice (:func:`ram_delay`) instead of flip-flops; deferred bits are not live bits.

    ``enable``: a source of copies of ``advance`` (:func:`stall_enables`), one per register
    stage and delay RAM, so that no single net drives every clock enable.
    """

    def __init__(self, m: Module, advance: Value, cuts: Sequence[int], name: str, *,
                 probe: list[int] | None = None, enable: Callable[[], Value] | None = None):
        self.m, self.advance, self.name = m, advance, name
        self.enable = enable
        self.cuts = list(cuts)
        self.probe = probe
        self.layer = 0
        self._deferred: list[Deferred] = []
        self._fetches = 0

    def __call__(self, tree: Any) -> Any:
        if self.layer >= len(self.cuts):
            raise AssertionError(f"{self.name}: more layers built than the {len(self.cuts)} "
                                 "scheduled")
        count = self.cuts[self.layer]
        self.layer += 1
        if self.probe is not None:
            self.probe.append(tree_bits(tree))
        elif count:
            adv = self.enable() if self.enable is not None else self.advance
            tree = register(self.m, adv, tree, f"{self.name}_l{self.layer}", count)
            for d in self._deferred:
                d.stages += count
        return tree

    def defer(self, tree: Any, min_bits: int | None = None) -> Deferred:
        """Take ``tree`` out of the stage registers until :meth:`fetch`; ``min_bits``
        overrides :data:`RAM_DELAY_MIN_BITS` (the flip-flops a RAM must save)."""
        d = Deferred(tree, min_bits)
        self._deferred.append(d)
        return d

    def fetch(self, d: Deferred) -> Any:
        """``d``'s tree delayed by the register stages passed since :meth:`defer`."""
        self._deferred.remove(d)
        if self.probe is not None:
            return d.tree
        self._fetches += 1
        adv = self.enable() if self.enable is not None else self.advance
        return ram_delay(self.m, adv, d.tree, d.stages,
                         f"{self.name}_dl{self._fetches}", min_bits=d.min_bits)

    def finish(self) -> None:
        if self.layer != len(self.cuts):
            raise AssertionError(f"{self.name}: {self.layer} layers built, "
                                 f"{len(self.cuts)} scheduled")
        if self._deferred:
            raise AssertionError(f"{self.name}: {len(self._deferred)} deferred trees never "
                                 "fetched")


#: Depth of one delay RAM: 16 words is one LUT-RAM cell (DPR16X4 on ECP5, RAM16X1D /
#: RAM32M on Xilinx); deeper memories would be inferred as block RAM, whose clock-to-out
#: path is far slower. Longer delays chain several RAMs.
RAM_DELAY_DEPTH = 16
#: Below this many stages a delay is cheaper in flip-flops than in a RAM with its pointers.
RAM_DELAY_MIN = 2
#: ... and below this many flip-flops saved (bits x stages) too: small delay lines stay in
#: flip-flops, which every proof of :mod:`verif.formal` handles (the 2:4 and most 4:8
#: selectors).
RAM_DELAY_MIN_BITS = 384


def ram_delay(m: Module, advance: Value, tree: Any, count: int, name: str, *,
              min_bits: int | None = None) -> Any:
    """``tree`` delayed by ``count`` stall-pipeline stages, equivalent bit for bit to
    ``register(m, advance, tree, name, count)``: from :data:`RAM_DELAY_MIN` stages and
    :data:`RAM_DELAY_MIN_BITS` flip-flops saved on, a
    :data:`RAM_DELAY_DEPTH`-deep distributed RAM written at ``wp`` on every ``advance`` and
    read asynchronously at ``wp - count`` (both pointers reset with ``rst``; the RAM's
    contents never reach a valid output before they are written after reset)."""
    leaves: list[Value] = []

    def collect(v: Value) -> Value:
        v = Value.cast(v)
        if not isinstance(v, Const):
            leaves.append(v)
        return v

    _map(collect, tree)
    bits = sum(len(v) for v in leaves)
    floor = RAM_DELAY_MIN_BITS if min_bits is None else min_bits
    if count < RAM_DELAY_MIN or bits * count < floor:
        return register(m, advance, tree, name, count) if count else tree
    flat: Value = Cat(*leaves)
    seg = 0
    left = count
    while left > 0:
        c = min(RAM_DELAY_DEPTH, left)
        flat = _ram16(m, advance, flat, c, f"{name}_r{seg}")
        left -= c
        seg += 1
    pos = 0

    def split(v: Value) -> Value:
        nonlocal pos
        v = Value.cast(v)
        if isinstance(v, Const):
            return v
        r = flat[pos:pos + len(v)]
        pos += len(v)
        return r.as_signed() if v.shape().signed else r

    return _map(split, tree)


def _ram16(m: Module, advance: Value, x: Value, count: int, name: str) -> Value:
    from amaranth.lib.memory import Memory

    depth = RAM_DELAY_DEPTH
    aw = (depth - 1).bit_length()
    mem = Memory(shape=len(x), depth=depth, init=[])
    m.submodules[name] = mem
    wr = mem.write_port()
    rd = mem.read_port(domain="comb")
    wp = Signal(aw, name=f"{name}_wp")
    rp = Signal(aw, name=f"{name}_rp", init=(-count) % depth)
    m.d.comb += [wr.addr.eq(wp), wr.data.eq(x), wr.en.eq(advance), rd.addr.eq(rp)]
    with m.If(advance):
        m.d.sync += [wp.eq(wp + 1), rp.eq(rp + 1)]
    out = Signal(len(x), name=f"{name}_q")
    m.d.comb += out.eq(rd.data)
    return out


def stall_control(m: Module, i: Any, o: Any, stages: int) -> Value:
    """Handshake of a unit whose output follows its input through ``stages`` registers.

    Returns ``advance`` (high when every stage loads). With ``stages = 0`` the unit is
    combinational: ``i.ready = o.ready`` and ``o.valid = i.valid``.
    """
    return stall_enables(m, i, o, stages)[0]


def stall_enables(m: Module, i: Any, o: Any, stages: int) -> tuple[Value, Callable[[], Value]]:
    """:func:`stall_control`, and a source of copies of ``advance`` for the register stages.

    ``advance`` reaches every flip-flop's clock enable: one net from ``o.ready`` to
    hundreds of loads, the slowest path of a fast unit. Each call of the returned function
    gives a copy that drives one stage only: ``~o.valid' | o.ready``, where ``o.valid'`` is a
    flip-flop of its own that follows ``o.valid`` exactly (same input, same reset; loaded on
    its own copy, so synthesis, which merges identical flip-flops, keeps it apart). Bit for
    bit the same unit: every copy equals ``advance`` in every cycle.
    """
    advance = Signal()
    if stages == 0:
        m.d.comb += i.ready.eq(o.ready)
        m.d.comb += o.valid.eq(i.valid)
        # no register uses the clock: reference it so that the module still has the
        # clk and rst ports every unit has (DESIGN.md section 3)
        ports = Signal(2, name="clk_rst_unused")
        m.d.comb += ports.eq(Cat(ClockSignal(), ResetSignal()))
        return advance, lambda: advance
    m.d.comb += advance.eq(~o.valid | o.ready)
    m.d.comb += i.ready.eq(advance)
    before = valid_chain(m, advance, i.valid, stages - 1)
    last = Signal(name=f"valid_s{stages - 1}")
    with m.If(advance):
        m.d.sync += last.eq(before)
    m.d.comb += o.valid.eq(last)
    return advance, StallCopies(m, o.ready, name="", before=before)


def skid_next(full: Value, skid: Value, ready: Value) -> Value:
    """The skid buffer's next state (:class:`OutputSkid`): it holds a result after a cycle
    in which the output offered one (``full``: the output register's valid, or the buffer's
    own ``skid``) and the consumer was not ready."""
    return (full | skid) & ~ready


#: Registered stall-enable copies per replica of ``o.valid``'s input (:meth:`StallCopies.close`).
BEFORE_FANOUT = 8


class StallCopies:
    """Copies of ``advance = ~o.valid | o.ready``, one per register stage (:func:`stall_enables`).

    Each call returns a copy ``~shadow | o.ready``, ``shadow`` a flip-flop of its own that
    loads what ``o.valid``'s register loads (``before``), on its own copy: same input, same
    reset as ``o.valid``, so every copy equals ``advance`` in every cycle. ``before`` is given
    here when it is known (the selectors), or later to :meth:`close` by a unit whose output
    valid register is built last (the MACs and the linear engine).

    ``registered``: the unit has an :class:`OutputSkid`, whose ``advance = ~pv | ~skid`` is
    known one cycle ahead, so each copy is a flip-flop itself (loading that next value from
    ``shadow``, a copy of the skid bit and ``o.ready``): no path runs from ``o.ready`` to a
    clock enable, and a copy's fan-out is one net from a flip-flop.
    """

    def __init__(self, m: Module, ready: Value, name: str = "stall",
                 before: Value | None = None, registered: bool = False):
        self.m, self.ready, self.before = m, ready, before
        self.registered = registered
        self.prefix = f"{name}_" if name else ""
        self._copies: list[tuple[Value, Value, Value | None]] = []

    def __call__(self) -> Value:
        n = len(self._copies)
        shadow = Signal(name=f"{self.prefix}adv{n}_valid")
        skid: Signal | None = None
        if self.registered:
            # skid: this copy's twin of OutputSkid.skid (same input, same reset)
            skid = Signal(name=f"{self.prefix}adv{n}_skid")
            adv = Signal(name=f"{self.prefix}adv{n}", init=1)
            self.m.d.sync += skid.eq(skid_next(shadow, skid, self.ready))
        else:
            adv = Signal(name=f"{self.prefix}adv{n}")
            self.m.d.comb += adv.eq(~shadow | self.ready)
        self._copies.append((adv, shadow, skid))
        if self.before is not None:
            self._load(adv, shadow, skid, self.before)
        return adv

    def _load(self, adv: Value, shadow: Value, skid: Value | None, before: Value) -> None:
        if skid is None:
            with self.m.If(adv):
                self.m.d.sync += shadow.eq(before)
            return
        nxt = Signal(name=f"{shadow.name}_next")
        self.m.d.comb += nxt.eq(Mux(adv, before, shadow))
        self.m.d.sync += shadow.eq(nxt)
        # advance in the next cycle: the output register will be free or the skid buffer empty
        self.m.d.sync += adv.eq(~nxt | ~skid_next(shadow, skid, self.ready))

    def close(self, before: Value, ahead: Value | None = None) -> None:
        """``before``: what ``o.valid``'s register loads when the unit advances.

        ``ahead``: when ``before`` is the output of a register stage (loading on ``advance``,
        cleared by reset), that stage's input. With registered copies, ``before`` is then made
        again beside every :data:`BEFORE_FANOUT` copies: a flip-flop loading ``ahead`` on the
        first copy of its group, equal to ``before`` in every cycle. So no one net runs from
        the last stage's valid bit to every copy across the device.
        """
        if self.before is not None:
            raise ValueError("these copies were given o.valid's input when they were made")
        for n, (adv, shadow, skid) in enumerate(self._copies):
            source = before
            if ahead is not None and self.registered and len(self._copies) > BEFORE_FANOUT:
                if n % BEFORE_FANOUT == 0:
                    replica = Signal(name=f"{self.prefix}before{n // BEFORE_FANOUT}")
                    with self.m.If(adv):
                        self.m.d.sync += replica.eq(ahead)
                source = replica
            self._load(adv, shadow, skid, source)


class OutputSkid:
    """A one-entry skid buffer between a unit's output register and its ``o`` stream.

    The unit's last register stage (``pv``, its valid bit, and the payload given to
    :meth:`drive`) is followed by one more entry (``skid`` and its payload copy)::

        o.valid   = pv | skid
        o.payload = skid ? held : payload
        skid     <= o.valid & ~o.ready        (held loads the payload when pv & ~skid)
        advance   = ~pv | ~skid

    When the output stalls, the unit still moves in that cycle (the stalled result goes into
    ``held``) and freezes from the next one while both entries are full; ``advance`` and
    ``i.ready`` depend on registers only, so the stall enables can be flip-flops
    (:class:`StallCopies` with ``registered=True``). Nothing is lost, duplicated or
    reordered; latency and full rate are unchanged. Cost: one payload register and a 2:1
    multiplexer per output bit.
    """

    def __init__(self, m: Module, o: Any):
        self.m, self.o = m, o
        self.pv = Signal(name="out_pv")
        self.skid = Signal(name="out_skid")
        self.advance = Signal(name="advance")
        m.d.comb += self.advance.eq(~self.pv | ~self.skid)
        m.d.sync += self.skid.eq(skid_next(self.pv, self.skid, o.ready))

    def drive(self, valid: Value, payload: Sequence[Value], fields: Sequence[Value]) -> None:
        """``valid``: the output register's valid bit; ``payload[k]`` its values, driven
        onto ``fields[k]`` of ``o.payload``."""
        m = self.m
        m.d.comb += self.pv.eq(valid)
        m.d.comb += self.o.valid.eq(self.pv | self.skid)
        # the buffer loads the payload while it is empty and the output register full
        load = Signal(name="out_hold")
        m.d.comb += load.eq(self.pv & ~self.skid)
        for k, (out, field) in enumerate(zip(payload, fields, strict=True)):
            held = Signal.like(out, name=f"out_held{k}", reset_less=True)
            with m.If(load):
                m.d.sync += held.eq(out)
            m.d.comb += field.eq(Mux(self.skid, held, out))


def _map(fn: Callable[[Value], Any], tree: Any) -> Any:
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_map(fn, v) for v in tree)
    return fn(tree)


def register(m: Module, advance: Value, tree: Any, name: str, count: int = 1) -> Any:
    """``count`` register stages for every value in ``tree``, loading when ``advance`` is high.

    Constants pass through unregistered. Returns a tree of the same structure.
    """
    for stage in range(count):
        loads: list = []

        def reg(v: Value, stage: int = stage, loads: list = loads) -> Value:
            v = Value.cast(v)
            if isinstance(v, Const):
                return v
            r = Signal(v.shape(), name=f"{name}_s{stage}", reset_less=True)
            loads.append(r.eq(v))
            return r

        tree = _map(reg, tree)
        if loads:
            with m.If(advance):
                m.d.sync += loads
    return tree


def valid_chain(m: Module, advance: Value, valid: Value, count: int, name: str = "valid") -> Value:
    """``valid`` delayed by ``count`` stages (cleared by reset), loading on ``advance``."""
    for stage in range(count):
        r = Signal(name=f"{name}_s{stage}")
        with m.If(advance):
            m.d.sync += r.eq(valid)
        valid = r
    return valid


def tree_reduce(op: Callable[[Value, Value], Value], values: Sequence[Value]) -> Value:
    """Balanced binary tree of ``op`` over ``values`` (depth ceil(log2 len))."""
    vals = list(values)
    if not vals:
        raise ValueError("tree_reduce needs at least one value")
    while len(vals) > 1:
        nxt = [op(vals[i], vals[i + 1]) for i in range(0, len(vals) - 1, 2)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_sum(values: Sequence[Value], m: Module | None = None, name: str = "sum") -> Value:
    """Balanced adder tree; every level widens by one bit, so the sum never overflows.

    With ``m``, every partial sum is a named signal with the ``keep`` attribute: synthesis
    then maps each one to its own two-operand adder (a carry chain on FPGAs) instead of
    merging the whole tree into one multi-operand adder, whose carry-save expansion into
    LUT logic takes LUT mapping minutes on wide trees and needs more LUTs.
    """
    if m is None:
        return tree_reduce(operator.add, values)
    count = 0

    def add(a: Value, b: Value) -> Value:
        nonlocal count
        v = a + b
        s = Signal(v.shape(), name=f"{name}_p{count}", attrs={"keep": 1})
        count += 1
        m.d.comb += s.eq(v)
        return s

    return tree_reduce(add, values)


def tree_or(values: Sequence[Value]) -> Value:
    """Balanced OR tree."""
    return tree_reduce(operator.or_, values)


# Bit-level arithmetic for the short counts of the rank selector. Written as explicit
# AND/OR/XOR logic (full-adder compressor trees) so synthesis maps it to plain LUTs: many tiny
# `+` cells in series would each become a carry-chain primitive and slow mapping down badly.


def _wire(m: Module, v: Value, name: str) -> Signal:
    """``v`` as a named 1-bit signal: keeps shared subexpressions shared in every backend."""
    s = Signal(name=name)
    m.d.comb += s.eq(v)
    return s


def _fa(m: Module, a: Value, b: Value, c: Value, name: str) -> tuple[Value, Value]:
    """Full adder: (sum, carry), both as signals."""
    return (_wire(m, a ^ b ^ c, f"{name}_s"),
            _wire(m, (a & b) | (a & c) | (b & c), f"{name}_c"))


def _ha(m: Module, a: Value, b: Value, name: str) -> tuple[Value, Value]:
    """Half adder: (sum, carry), both as signals."""
    return _wire(m, a ^ b, f"{name}_s"), _wire(m, a & b, f"{name}_c")


def popcount_bits(m: Module, bits: Sequence[Value], name: str = "pop") -> list[Value]:
    """Number of set bits as a list of result bits, LSB first (Wallace/Dadda compressor tree)."""
    columns: list[list[Value]] = [[Value.cast(b) for b in bits]]
    out: list[Value] = []
    k = 0
    while k < len(columns):
        col = columns[k]
        while len(col) > 1:
            if len(col) == 2:
                a, b = col.pop(0), col.pop(0)
                s, c = _ha(m, a, b, f"{name}_{k}_{len(col)}")
            else:
                a, b, cc = col.pop(0), col.pop(0), col.pop(0)
                s, c = _fa(m, a, b, cc, f"{name}_{k}_{len(col)}")
            col.append(s)
            if k + 1 == len(columns):
                columns.append([])
            columns[k + 1].append(c)
        out.append(col[0] if col else Const(0, 1))
        k += 1
    return out


def add_bits(m: Module, a: Sequence[Value], b: Sequence[Value], width: int,
             name: str = "add") -> list[Value]:
    """``a + b`` truncated to ``width`` bits, as explicit ripple logic (bits LSB first)."""
    out: list[Value] = []
    carry: Value | None = None
    for k in range(width):
        x = a[k] if k < len(a) else None
        y = b[k] if k < len(b) else None
        terms = [t for t in (x, y, carry) if t is not None]
        if not terms:
            out.append(Const(0, 1))
            carry = None
        elif len(terms) == 1:
            out.append(terms[0])
            carry = None
        elif len(terms) == 2:
            s, carry = _ha(m, terms[0], terms[1], f"{name}_{k}")
            out.append(s)
        else:
            s, carry = _fa(m, *terms, f"{name}_{k}")
            out.append(s)
    return out


def lt_const(bits: Sequence[Value], c: int) -> Value:
    """``value(bits) < c`` for an unsigned value given as bits (LSB first), as plain logic."""
    if c <= 0:
        return Const(0, 1)
    if c >= 1 << len(bits):
        return Const(1, 1)
    lt: Value = Const(0, 1)  # value of the bits below k < c's bits below k
    for k, b in enumerate(bits):
        if (c >> k) & 1:
            lt = ~b | lt  # c has 1: less if b = 0, else decided below
        else:
            lt = ~b & lt  # c has 0: less only if b = 0 and less below
    return lt


def prefix_counts(m: Module, bits: Sequence[Value], width: int,
                  name: str = "pre") -> list[list[Value]]:
    """Exclusive prefix counts of ``bits`` (Sklansky, log depth), each ``width`` result bits."""
    inc: list[list[Value]] = [[Value.cast(b)] for b in bits]
    k = len(inc)
    d = 1
    while d < k:
        nxt = list(inc)
        for i in range(k):
            if i & d:
                src = (i & ~(d - 1)) - 1  # last index of the previous block of size d
                nxt[i] = add_bits(m, inc[i], inc[src], width, f"{name}_{d}_{i}")
        inc = nxt
        d <<= 1
    zero = [Const(0, 1)] * width
    return [zero] + [(v + [Const(0, 1)] * width)[:width] for v in inc[:-1]]
