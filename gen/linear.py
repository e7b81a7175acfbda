"""The N:M sparse linear engine: top-k selector and sparse MAC in one pipeline.

Weights in the stream (``weights="stream"``, the default)::

    data[M], weights, last ─► selector (P stages) ─► values[N], index[N] ─► MAC ─► acc[K]
              └──── weights, last travel alongside through the same P stages ──┘

Weights from memory (``weights="memory"``, DESIGN.md section 3.1), banks by position::

    data[M], last ─► selector (P stages) ─► mask, values, index ─► [bank read] ─► MAC ─► acc[K]
    load, addr, weights ─► write port of M banks ───────────────────┘  (only the N kept
                                                                          banks are read)
    index ─► one-hot selects (decoded during the read, registered with its data) ─► AND-OR

Weights from memory, banks by kept slot (``banks="lane"``, module ``..._wlane``)::

    data[M], last ─► selector (P stages) ─► values, index ─► bank s read at word
    load, addr, weights ─► write ports of N banks            (index[s] - s)*D + group ─► MAC
                           (a feature goes to each bank whose slot can be given it)

Slot s of ascending indices holds a position in s .. s + M - N, so bank s keeps those M - N + 1
columns and the kept index is its read address: no weight multiplexer at all, for N (M-N+1)/M
copies of the weights (1.5 at 2:4, 4.5 at 8:16). The weight bits read per group are the same
N columns as with banks by position.

In the stream form each group's K x M weights wait beside the selector in a delay line of P
stages (``nmsparse_delay``, :func:`gen.mac.delay_line`), so each group meets its own weights
at the multipliers: P x K x M x weight_width register bits, which grow with K like the MAC
itself (the primitive's ECP5 form keeps all but the last stage in LUT RAM). At 8:16 the
index then decodes to one-hot selects, registered while the weights wait one stage more, and
each weight bit is one AND-OR over its M - N + 1 candidates (``MACShape.decode``); other
patterns take the per-slot trees or the compaction network of :mod:`gen.mac`. From memory,
no weight travels: the kept mask enables the reads of N of the M banks, at the stage where
the selector's result arrives, so only N weight columns are read per group.
``latency = P + MAC stages`` (plus one the bank read and a register on its data from
memory), counted from the transfer of the ``last`` group. One group per clock while the
consumer is ready; a stalled output freezes every stage.

With a static shift (S-PTS, ``shift=eta``, DESIGN.md section 2; stream form only)::

    data[j] ─► d[j] = sat(x[j] - eta_j) ─► selector ... ─► MAC: acc[k] += sum kept W d
                                            weights ─► b[k] = sum_j eta_j W[k, j] ──┘ (+ b[k])

``eta`` is a constant of the module: the subtraction is one adder with a constant and a clamp
on the overflow bit per lane, and the bias of a group one adder tree over its M weights and a
product by the constant (for M distinct eta_j, M constant products), added with the group's
sum. Trade-off: a constant cannot change per layer at run time (one module per eta), but it
costs no multiplier; the result is ``wrap(W prune(d) + W eta)``, bit for bit golden's
``sparse_linear(..., shift=eta)``.

With the run-time shift (``shift="input"``, module ``..._shiftin``, either weight source)::

    data[j], eta[j] ─► d[j] = sat(x[j] - eta[j]) ─► selector ... ─► MAC ─► acc[k] + b[k]
    bias[k] (with last; 0 otherwise) ─► travels with its group ───────────────┘

eta arrives with every transfer (per input channel, so per layer or per channel over all K
alike) and the row's bias ``b = wrap(W eta)`` with its last transfer, computed by the host
once per weight tile; the engine has no multiplier for it. Price: the bias rides every
register stage up to the accumulator's adder (K x acc_width flip-flops per stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from amaranth.hdl import Module, Mux, Signal, Value, signed

from .config import SHIFT_STAGES, LinearConfig
from .mac import (
    CarriedSum,
    MACOutput,
    MACPipe,
    StagedSum,
    build_mac,
    delay_line,
    group_counter,
    lane_banks,
    lane_read_addrs,
    load_port,
    onehot_select,
    register_port,
    uses_primitives,
    valid_stages,
    weight_banks,
)
from .macsched import LANE_ADDR_STAGES, select_copies
from .pipeline import register, tree_or
from .topk import build_selector
from .unit import StreamUnit

__all__ = ["NMLinear"]


class NMLinear(StreamUnit):
    """Sparse linear engine ``nm_linear_<N>_<M>_<fmt>_k<K>[_wmem]``.

    Parameters
    ----------
    config : LinearConfig
        The validated design point (pattern, format, selector architecture and register
        stages, MAC register stages, weight and accumulator widths, K, weight source).

    Raises
    ------
    TypeError
        ``config`` is not a :class:`~gen.config.LinearConfig`.

    Members
    -------
    i : ``In(stream.Signature(...))``
        Payload fields, LSB first: ``data`` (M elements), ``weights`` (K*M signed; element
        ``k*M + j`` is output k's weight of group position j; from memory: the K weights of
        the input feature a load writes), ``last`` (1 bit); from memory also ``load`` (1 bit:
        this transfer writes the banks) and ``addr`` (which feature it writes); with
        ``shift="input"`` then ``eta`` (M elements) and ``bias`` (K signed, read with
        ``last``).
    o : ``Out(stream.Signature(...))``
        Payload field ``acc``: K signed accumulators, one transfer per row.
    """

    config_class = LinearConfig

    def elaborate(self, platform: Any) -> Module:
        m = Module()
        cfg = self._config
        self._out = MACOutput(self, m)
        advance = self._out.advance
        p = self.i.payload
        data = [Value.cast(p.data[j]) for j in range(cfg.m)]
        last = Value.cast(p.last)[0]
        bias = None
        # copies of the one-hot weight selects (weights from memory)
        select: list[list[Value]] | None = None
        copies = self._out.copies()  # one copy of advance per register stage
        in_valid, weights_in = self.i.valid, Value.cast(p.weights)
        if cfg.weights == "memory":  # only compute transfers go down the pipeline
            load = Value.cast(p.load)[0]
            in_valid = self.i.valid & ~load
        shift_valid: list[Value] = []  # the groups in the shift register stage
        # run-time form: the row's bias, taken with its last group (0 with the others), rides
        # along to the accumulator's adder
        row_bias: list[Value] = []
        if cfg.shift_input:
            row_bias = [Mux(last, p.bias[k], 0) for k in range(cfg.outputs)]
        if cfg.shift is not None:
            eta = ([Value.cast(p.eta[j]) for j in range(cfg.m)] if cfg.shift_input
                   else cfg.shift_lanes)
            data = _shift_lanes(m, data, eta, cfg.width)
            adv = copies()
            if cfg.weights == "stream":  # the stream weights' delay covers this stage too
                data, last, row_bias = register(m, adv, (data, last, row_bias), "shift_reg")
            else:
                data, weights_in, last, row_bias = register(
                    m, adv, (data, weights_in, last, row_bias), "shift_reg")
            shift_valid = valid_stages(m, adv, in_valid, SHIFT_STAGES, "shift_valid")[1:]
            in_valid = shift_valid[-1]
        if cfg.weights == "stream":
            m.d.comb += self.i.ready.eq(advance)
            _, values, index, (last, row_bias) = build_selector(
                cfg.selector, m, advance, data, (last, row_bias), enable=copies)
            # the group's K x M weights meet its selection at the MAC: a delay line as long
            # as the selector (and the shift stage), a primitive whose ECP5 form keeps the
            # stages in LUT RAM instead of K x M x weight_width flip-flops per stage
            decode = cfg.mac_shape().decode
            weights = delay_line(m, weights_in, cfg.pipeline + len(shift_valid) + decode,
                                 copies, "sel_wdelay", primitives=uses_primitives(platform))
            valid = valid_stages(m, advance, in_valid, cfg.pipeline, "sel_valid")[-1]
            pipe = MACPipe(m, advance, valid, last, "mac", copies)
            if decode:
                # one-hot selection (gen.macsched.ONEHOT_STREAM_SPAN): the index decodes to
                # one-hot selects, registered (the schedule's wmux = 1) with a copy per
                # SELECT_COPY_OUTPUTS outputs, while the weights wait one stage more; then one
                # AND-OR per weight bit, its data from the delay line's output register
                sel = onehot_select(m, index, m_=cfg.m, name="mac_sel")
                values, row_bias = pipe.cut((values, row_bias), 1, "sel")
                select = [register(m, copies(), sel, f"mac_sel_r{g}")
                          for g in range(select_copies(cfg.outputs))]
                index = None
            wview = cfg.weights_layout()(weights)
            cand = lambda k, j: Value.cast(wview[k * cfg.m + j])  # noqa: E731
            if cfg.shift_lanes is not None:
                bias = _shift_bias(m, cand, cfg.shift_lanes, cfg.outputs)
        else:
            mask, values, index, (last, row_bias) = build_selector(
                cfg.selector, m, advance, data, (last, row_bias), enable=copies)
            chain = valid_stages(m, advance, in_valid, cfg.pipeline, "sel_valid")
            valid = chain[-1]
            read_word = group_counter(m, advance, valid, last, cfg.depth, "mac_group")
            pipe = MACPipe(m, advance, valid, last, "mac", copies)
            # a load waits until no earlier group is still to read the banks (in order)
            ahead = shift_valid + chain[1:]
            if cfg.lane_banks:
                # slot s reads its own bank at its index: each bank's read address into a
                # register of its own first (LANE_ADDR_STAGES), so the route to a bank's
                # block RAMs starts at a flip-flop, not at the selector's output through the
                # address logic (at 8:16 K = 16 that bounded the engine at 152.5 MHz, seed 1)
                raddr = lane_read_addrs(m, n=cfg.n, m_=cfg.m, depth=cfg.depth,
                                        read_word=read_word, index=index)
                values, row_bias, raddr = pipe.cut((values, row_bias, raddr),
                                                   LANE_ADDR_STAGES, "raddr")
                ahead = ahead + [pipe.valid]
            busy = _load_busy(m, ahead, self.i.valid & ~load, copies())
            m.d.comb += self.i.ready.eq(advance & ~(load & busy))
            mask = Value.cast(mask)
            port = load_port(cfg, p, self.i.valid & load & ~busy)
            if cfg.lane_banks:
                # the weights arrive per slot; each bank registers its own write enable and
                # address (the data once, here)
                data_port = _write_port(m, {"write_data": port.pop("write_data")},
                                        registered=bool(ahead))
                # every bank reads on every move (a bubble's data is not used) and loads its
                # data's register on the next, each on copies of the stall enable of its
                # own: no valid bit or shared LUT fans out to block RAMs across the device
                # (at 8:16 K = 16, the read enable `copy & valid` bounded the engine at
                # 144.0 MHz, seed 1, with a selector for 175 MHz)
                rdata = lane_banks(
                    m, n=cfg.n, m_=cfg.m, depth=cfg.depth, outputs=cfg.outputs,
                    weight_width=cfg.weight_width, **port, **data_port, read_addr=raddr,
                    read_en=[copies() for _ in range(cfg.n)],
                    out_enable=[copies() for _ in range(cfg.n)],
                    primitives=uses_primitives(platform), registered=bool(ahead))
                values, row_bias = pipe.cut((values, row_bias), 1, "read")
                values, row_bias = pipe.cut((values, row_bias), 1, "rdreg")
                lanes = [[Value.cast(rdata[s][k]) for k in range(cfg.outputs)]
                         for s in range(cfg.n)]
                return self._finish(m, pipe, values, lambda k, s: lanes[s][k], None, None,
                                    CarriedSum(row_bias) if row_bias else None, platform)
            wport = _write_port(m, port, registered=bool(ahead))
            # the banks' read data into a register of their own (gen.macsched.READ_STAGES)
            rd, oce = copies(), copies()
            rdata = weight_banks(
                m, banks=cfg.m, depth=cfg.depth, outputs=cfg.outputs,
                weight_width=cfg.weight_width, **wport,
                read_word=read_word, read_en=[rd & valid & mask[j] for j in range(cfg.m)],
                out_enable=[oce] * cfg.m, primitives=uses_primitives(platform))
            values, index, row_bias = pipe.cut((values, index, row_bias), 1, "read")
            # while the banks read, the index decodes to the one-hot selects of the weight
            # multiplexers, registered with the read data
            sel = onehot_select(m, index, m_=cfg.m, name="mac_sel")
            rows = [[Value.cast(rdata[j][k]) for k in range(cfg.outputs)] for j in range(cfg.m)]
            values, row_bias = pipe.cut((values, row_bias), 1, "rdreg", enable=oce)
            # a copy of the selects per SELECT_COPY_OUTPUTS outputs, each on its own enable
            select = [register(m, copies(), sel, f"mac_sel_r{g}")
                      for g in range(select_copies(cfg.outputs))]
            index = None
            cand = lambda k, j: rows[j][k]  # noqa: E731
        if row_bias:
            bias = CarriedSum(row_bias)
        return self._finish(m, pipe, values, cand, index, select, bias, platform)

    def _finish(self, m: Module, pipe: MACPipe, values: Sequence[Value], cand: Any,
                index: Sequence[Value] | None, select: list[list[Value]] | None,
                bias: Any, platform: Any) -> Module:
        """The MAC datapath from the selected values and their weight candidates to the
        output (``bias``: the S-PTS bias or the run-time form's row bias, as
        :func:`gen.mac.build_mac` takes it)."""
        cfg = self._config
        schedule = cfg.schedule
        if cfg.weights == "stream" and select is not None:
            # the schedule's wmux stage is the register of the decoded selects, built above
            schedule = replace(schedule, wmux=0)
        outs, out_valid = build_mac(m, pipe, values, cand, schedule, index=index,
                                    m_=cfg.m, outputs=cfg.outputs,
                                    weight_width=cfg.weight_width, acc_width=cfg.acc_width,
                                    bias=bias, primitives=uses_primitives(platform),
                                    select=select)
        self._out.drive(outs, out_valid)
        return m



def _load_busy(m: Module, ahead: Sequence[Value], compute: Value, enable: Value) -> Value:
    """Whether a load must wait: an earlier group may still be to read the banks. From a
    register, so the check is not an OR over every stage's valid bit across the device in
    front of the banks' write enables (at 8:16 K = 16 with lane banks that OR bounded the
    engine at 141.5 MHz, seed 1): loaded with the stages on ``enable`` (a copy of the stall
    enable), set when a stage of ``ahead`` holds a group or ``compute`` (a group at the input)
    is valid. It is never low while a stage holds a group (a stage's group was in the stage
    before it, or at the input, when the stages last moved); it stays high one move after
    the last one has left, so a load right after the pipeline drains waits one cycle more.
    With no stage ahead of the banks (the read is the first register stage), 0."""
    if not ahead:
        return Value.cast(0)
    busy = Signal(name="load_busy")
    with m.If(enable):
        m.d.sync += busy.eq(tree_or([*ahead, compute]))
    return busy


def _write_port(m: Module, port: dict[str, Value], registered: bool) -> dict[str, Value]:
    """The banks' write port of a load. It writes while the load waits for ``o.ready`` too
    (the same word again when the load is taken), so its enable does not wait for the
    output; ``registered``: one cycle later, from registers (the enable cleared by reset),
    which is safe when a register stage lies between the input and the bank read (a group
    after the load reads the banks two cycles after it at the earliest)."""
    return register_port(m, port, "wbank_") if registered else port


def _shift_lanes(m: Module, data: list[Value], eta: Sequence[int | Value],
                 width: int) -> list[Value]:
    """``d[j] = sat(x[j] - eta_j)`` as ``width``-bit patterns (golden.shift_activations);
    ``eta_j`` a constant, or a ``width``-bit pattern (the run-time form's input field)."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    out = []
    for j, (x, e) in enumerate(zip(data, eta, strict=True)):
        if isinstance(e, int) and e == 0:
            out.append(x)
            continue
        sub = e if isinstance(e, int) else Value.cast(e).as_signed()
        diff = Signal(signed(width + 1), name=f"shift_diff{j}")
        m.d.comb += diff.eq(x.as_signed() - sub)  # exact in width + 1 bits
        d = Signal(width, name=f"shift_d{j}")
        # the two top bits differ exactly when x - eta left the range: clamp to its end
        over = diff[width] ^ diff[width - 1]
        m.d.comb += d.eq(Mux(over, Mux(diff[width], lo, hi), diff[:width]))
        out.append(d)
    return out


def _shift_bias(m: Module, cand, eta: tuple[int, ...], outputs: int) -> StagedSum | None:
    """``b[k] = sum_j eta_j W[k, j]`` of one group: per distinct nonzero eta, the sum of its
    weights times that constant (one product per output when eta is per layer), built level
    by level across the MAC's register stages (:class:`gen.mac.StagedSum`)."""
    by_eta: dict[int, list[int]] = {}
    for j, e in enumerate(eta):
        if e:
            by_eta.setdefault(e, []).append(j)
    if not by_eta:
        return None
    terms = [[[cand(k, j).as_signed() for j in js] for js in by_eta.values()]
             for k in range(outputs)]
    return StagedSum(m, terms, list(by_eta), "shift_b")
