"""Stream-protocol proofs (DESIGN.md section 3) of any module, from its Verilog and sidecar.

::

    shipped .v ─► netlist cut (datapath removed) ─┐
    sidecar ─► nmprove_stream.sv (wrapper) ───────┴─► SymbiYosys, smtbmc z3: bmc + k-induction
                 free rst / i__valid / i__payload / o__ready / cut values
                 contract model: L-stage shift register that moves when the output is not
                 stalled; counters of transfers in and out; one tagged token

The wrapper instantiates the DUT (the shipped Verilog, read by Yosys; only its datapath cells
are cut away, see :mod:`verif.formal.netlist`) and asserts, in every reachable state:

- ``latency``: ``o__valid`` is high exactly when a producing transfer (selectors: every transfer;
  MAC units: the ``last`` group of a row) was accepted ``latency`` moving cycles ago and has
  not left yet (a cycle moves unless ``o__valid & !o__ready``);
- ``count``: transfers out never exceed transfers in; in flight = the model's count;
- ``order``: the tagged transfer (any one, chosen by the solver) leaves as output number
  ``k`` when it entered as producing input number ``k``;
- ``hold``: while ``o__valid & !o__ready``, ``o__valid`` and ``o__payload`` stay;
- ``ready``: ``o__ready`` implies ``i__ready`` (full rate; with weights from memory a load
  transfer may wait while groups are in flight, DESIGN.md section 3.1, and load transfers
  make no group), and ``i__ready`` is low while the output is stalled (the pipeline has no
  room);
- ``reset``: after a cycle with ``rst``, ``o__valid`` is low and no earlier transfer ever
  comes out;
- ``freeze``: during a stall every register of the module keeps its value (the control
  registers' values are compared, every other register's enable is low); for the
  selectors (fixed and flexible), every register loads in every moving cycle (the data
  moves with the valid).

A MAC unit with the output skid buffer (``params.skid``, DESIGN.md section 3) gets a model
with one more entry (``kv``, ``kt``) after the last stage: the model moves unless the last stage
and that entry both hold a producing transfer, a stalled output moves into the entry, and the
entry leaves first. ``latency`` then reads "``o__valid`` = last stage or entry", ``ready`` "high
exactly while the model moves" (``i__ready`` depends on registers only), ``freeze`` "every
register keeps its value while both are full and the output is stalled"; the registered stall
enables (registers without a load enable that only compute enables) are control registers.

With ``freeze`` and the stall-free datapath equivalence, an output's payload is the function
of its own input group under any valid/ready pattern. Induction needs the relation between
the module's control registers and the model: it is mined from a random simulation of the
cut netlist and then proven along with the rest (a wrong guess fails, it is never assumed).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from nmsparse.contract.sidecar import Sidecar
from nmsparse.contract.units import is_skid

from . import aig as aigmod
from . import tools
from .equiv import AIG_TAIL
from .netlist import FF_TYPES, Netlist, load_netlist
from .results import Step

__all__ = ["prove_stream", "cut_design", "CutDesign", "PROPERTIES"]

PROPERTIES = ("latency", "count", "order", "hold", "ready", "reset", "freeze", "invariant")


@dataclass
class CutDesign:
    """The DUT with its datapath cut away, and what the wrapper needs to know of it."""

    path: Path
    cut_width: int
    ctrl_names: list[str]  # one per bit of ctrl_q
    en_count: int
    free_running: list[str] = field(default_factory=list)  # data registers without enable
    write_port: list[str] = field(default_factory=list)  # ... whose fan-out only writes memory


def cut_design(sc: Sidecar, work: Path) -> CutDesign:
    """Flatten the module, cut its datapath, expose the control registers and the enables."""
    dut = tools.stage(work, sc.verilog)
    tools.yosys(work, f"read_verilog {dut}\nhierarchy -top {sc.module}\nproc\nflatten\n"
                      "opt\nopt_clean\nwrite_json net.json\n", log="net.log")
    net = load_netlist(work / "net.json", sc.module)
    ctrl = net.cone(net.port_bits("o__valid") + net.port_bits("i__ready"))
    keep = set(ctrl) | net.cone(net.port_bits("o__payload"), through_ff_data=False)
    ffs = net.ffs()
    en_bits: list[int] = []
    free: list[str] = []
    port: list[str] = []
    no_en: list[str] = []
    for name, c in ffs.items():
        if name in ctrl:
            continue
        en = c["connections"].get("EN")
        if en is None:
            no_en.append(name)
            continue
        for b in en:
            if b not in en_bits:
                en_bits.append(b)
    en_cone = net.cone([b for b in en_bits if isinstance(b, int)])
    keep |= en_cone
    for name, c in ffs.items():
        if name in en_cone and c["connections"].get("EN") is not None:
            # a register with an enable of its own that computes enables: the replicas of
            # o.valid's input beside the registered stall enables (StallCopies.close)
            ctrl.add(name)
    for name in no_en:
        c = ffs[name]
        if name in en_cone:
            # a register that only computes enables: the registered stall enables of a unit
            # with the output skid buffer (gen.pipeline.StallCopies), control like o.valid's
            ctrl.add(name)
            continue
        reg = _ff_name(net, c["connections"]["Q"][0], name)
        (port if _writes_memory_only(net, c) else free).append(reg)
    ctrl_bits: list[int] = []
    names: list[str] = []
    for name in sorted(ctrl):
        c = net.cells[name]
        if c["type"] in FF_TYPES:
            for k, b in enumerate(c["connections"]["Q"]):
                ctrl_bits.append(b)
                names.append(f"{_ff_name(net, b, name)}[{k}]")
    cut_bits = net.cut(keep)
    net.add_output("ctrl_q", ctrl_bits)
    net.add_output("ff_en", [b if isinstance(b, int) else b for b in en_bits] or ["1"])
    path = work / "cut.json"
    net.write(path)
    return CutDesign(path, len(cut_bits), names, max(1, len(en_bits)), free, port)


#: memory write-port inputs (Yosys ``$memwr``/``$memwr_v2`` cells, ``$mem_v2`` WR_ ports)
_WRITE_PORTS = {"ADDR", "DATA", "EN", "WR_ADDR", "WR_DATA", "WR_EN"}


def _writes_memory_only(net: Netlist, cell: dict) -> bool:
    """A register whose fan-out ends only in memory write ports (the banks' registered write
    port: address, data, enable)."""
    sinks = net.sinks(cell["connections"]["Q"])
    return bool(sinks) and all(t.startswith("$mem") and "rd" not in t and p in _WRITE_PORTS
                               for t, p in sinks)


def _ff_name(net: Netlist, bit: int, cell: str) -> str:
    for n, info in net.module["netnames"].items():
        if bit in info["bits"] and not n.startswith("$"):
            return n
    return cell


# ----------------------------------------------------------------------------- the model


def _producing(sc: Sidecar) -> str:
    """Verilog condition on ``i_payload`` of a transfer that makes an output (every transfer
    of a unit without a ``last`` field: the selectors)."""
    if "last" not in sc.i.fields:
        return "1'b1"
    last = sc.i.fields["last"]
    return f"i_payload[{last.offset}]"


def _load_bit(sc: Sidecar) -> str:
    """Verilog condition of a load transfer (weights from memory: it writes the banks and
    makes no group; DESIGN.md section 3.1), ``1'b0`` for other units."""
    if "load" in sc.i.fields:
        return f"i_payload[{sc.i.fields['load'].offset}]"
    return "1'b0"


def _last_bit(sc: Sidecar) -> str:
    if "last" in sc.i.fields:
        return f"i_payload[{sc.i.fields['last'].offset}]"
    return "1'b1"


def _stage(sig: str) -> int:
    """The stage index of a model signal name (``"sv[3]"`` -> 3)."""
    return int(sig[sig.index("[") + 1: -1])


class _Model:
    """Python twin of the wrapper's contract model (for mining), bit-parallel over runs.

    ``skid``: the unit has the output skid buffer (``params.skid``): ``kv`` is its entry, the
    model moves while it and the last stage are not both full (``madv``), and an output that
    stalls moves into it."""

    def __init__(self, latency: int, full: int, skid: bool = False) -> None:
        self.L, self.full, self.skid = latency, full, skid
        self.sv = [0] * latency
        self.sp = [0] * latency
        self.sl = [0] * latency
        self.kv = 0

    def move(self, o_valid: int, o_ready: int) -> int:
        """The cycles the model moves in: not stalled, or with the skid buffer, not full."""
        if self.skid:
            return ~(self.sp[-1] & self.kv) & self.full
        return ~(o_valid & ~o_ready) & self.full

    def step(self, rst: int, i_x: int, prod: int, last: int, move: int,
             o_ready: int = 0) -> None:
        L, full = self.L, self.full
        if self.skid:
            self.kv = (self.kv | self.sp[-1]) & ~o_ready & ~rst & full
        keep = ~move & full
        for arr, new in ((self.sv, i_x), (self.sp, prod), (self.sl, last)):
            shifted = [new] + arr[: L - 1]
            for k in range(L):
                arr[k] = ((shifted[k] & move) | (arr[k] & keep)) & ~rst & full

    def signals(self) -> dict[str, int]:
        out = {}
        for k in range(self.L):
            out[f"sv[{k}]"], out[f"sp[{k}]"], out[f"sl[{k}]"] = self.sv[k], self.sp[k], self.sl[k]
        if self.skid:
            out["kv"], out["madv"] = self.kv, ~(self.sp[-1] & self.kv) & self.full
        return out


def mine_invariants(sc: Sidecar, cd: CutDesign, work: Path, runs: int = 64,
                    cycles: int = 48, seed: int = 1) -> list[str]:
    """Verilog conditions relating each control register to the model, true on a random
    simulation of the cut netlist (candidates only: the proof checks them)."""
    script = (f"read_json {cd.path.name}\nhierarchy -top {sc.module}\nproc\nopt_clean\n"
              + AIG_TAIL.replace("{out}", "mine"))
    tools.yosys(work, script, log="mine.log")
    g = aigmod.read_aiger(work / "mine.aag", work / "mine.map")
    rng = random.Random(seed)
    full = (1 << runs) - 1
    L = sc.latency

    def rand(p: float, p_odd: float | None = None) -> int:
        """Bits of ``runs`` runs, each high with ``p`` (the odd runs ``p_odd`` if given)."""
        q = (p, p if p_odd is None else p_odd)
        return sum(1 << r for r in range(runs) if rng.random() < q[r & 1])

    # every stage must fill and drain many times: long runs, and half of them reset rarely
    # (a stage deeper than the gap between resets never fills, and its valid register
    # passes for a copy of any other flag that stays low)
    cycles = max(cycles, 4 * L)
    if "load" in sc.i.fields:
        # weights from memory: the group counter walks the bank words only in long rows, so
        # the odd runs end a row rarely, and run long enough to wrap it (a counter bit that
        # never changes would pass for an invariant the proof then refutes)
        cycles = max(cycles, 4 * int(sc.params.get("depth", 16)))

    state = {v: rng.getrandbits(runs) for v in g.latches}
    model = _Model(L, full, skid=is_skid(sc.params))
    ctrl = g.outputs.get("ctrl_q", [])
    nq = len(ctrl)
    last_off = sc.i.fields["last"].offset if "last" in sc.i.fields else None
    load_off = sc.i.fields["load"].offset if "load" in sc.i.fields else None
    # candidates: (kind, q, a, b): q == a; q == ~a; (a -> q == b)
    sigs = list(model.signals())
    alive_eq = {(q, s, inv) for q in range(nq) for s in sigs for inv in (0, 1)}
    alive_imp = {(q, gsig, s) for q in range(nq) for gsig in sigs if gsig.startswith("sv")
                 for s in sigs}
    for cyc in range(cycles):
        rst = full if cyc == 0 else rand(0.04, 0.004)
        vals = {}
        for lits in g.inputs.values():
            for lit in lits:
                vals[lit >> 1] = rng.getrandbits(runs)
        for lit in g.inputs.get("rst", []):
            vals[lit >> 1] = rst
        for lit in g.inputs.get("i__valid", []):
            vals[lit >> 1] = rand(0.7)
        for lit in g.inputs.get("o__ready", []):
            vals[lit >> 1] = rand(0.6)
        if last_off is not None:
            vals[g.inputs["i__payload"][last_off] >> 1] = (
                rand(0.4, 0.01) if load_off is not None else rand(0.4))
        if load_off is not None:
            vals[g.inputs["i__payload"][load_off] >> 1] = rand(0.2)
        vals.update(state)
        roots = (g.outputs["o__valid"] + g.outputs["i__ready"] + ctrl
                 + [g.latches[v] for v in state])
        res = g.evaluate(vals, roots)
        o_valid, i_ready = res[0] & full, res[1] & full
        qv = [x & full for x in res[2: 2 + nq]]
        nxt = res[2 + nq:]
        if cyc > 0:
            sv = model.signals()
            for q, s, inv in list(alive_eq):
                want = (~sv[s] & full) if inv else sv[s]
                if qv[q] != want:
                    alive_eq.discard((q, s, inv))
            for q, gs, s in list(alive_imp):
                if (qv[q] ^ sv[s]) & sv[gs]:
                    alive_imp.discard((q, gs, s))
        i_valid = vals[g.inputs["i__valid"][0] >> 1] & full
        o_ready = vals[g.inputs["o__ready"][0] >> 1] & full
        move = model.move(o_valid, o_ready)
        i_x = i_valid & i_ready & ~rst & full
        if load_off is not None:  # load transfers make no group
            i_x &= ~vals[g.inputs["i__payload"][load_off] >> 1] & full
        last = vals[g.inputs["i__payload"][last_off] >> 1] & full if last_off is not None \
            else full
        prod = i_x & last if last_off is not None else i_x
        model.step(rst, i_x, prod, last, move, o_ready)
        state = {v: x & full for v, x in zip(state, nxt, strict=True)}
    out = []
    for q in range(nq):
        eqs = sorted((s, inv) for qq, s, inv in alive_eq if qq == q)
        if eqs:
            s, inv = eqs[0]
            out.append(f"ctrl_q[{q}] == {'!' if inv else ''}{s}")
            continue
        # the guard of the same stage first (a flag travels with its own stage's valid;
        # another stage's guard may survive the simulation by chance and not be inductive)
        imps = sorted(((gs, s) for qq, gs, s in alive_imp if qq == q),
                      key=lambda p: (abs(_stage(p[0]) - _stage(p[1])), _stage(p[0]), p))
        if imps:
            gs, s = imps[0]
            out.append(f"!{gs} || ctrl_q[{q}] == {s}")
    return out


def wrapper(sc: Sidecar, cd: CutDesign, invariants: list[str]) -> tuple[str, dict[int, str]]:
    """The formal wrapper (SystemVerilog for ``read_verilog -formal``) and line -> property."""
    L = sc.latency
    iw, ow = sc.i.width, sc.o.width
    cw = max(6, L.bit_length() + 1)  # counts up to L without wrapping
    nq = max(1, len(cd.ctrl_names))
    topk = "last" not in sc.i.fields  # a selector: one output per transfer
    skid = is_skid(sc.params)  # the output skid buffer: kv, kt model its entry
    lines: list[str] = []
    props: dict[int, str] = {}

    def add(text: str, prop: str | None = None) -> None:
        for t in text.split("\n"):
            lines.append(t)
            if prop:
                props[len(lines)] = prop

    decl = " ".join(f"ahead{k} = 0{',' if k < L - 1 else ';'}" for k in range(L))
    shift = "\n".join(f"        ahead{k} <= ahead{k - 1} - o_x;" for k in range(1, L))
    clear = " ".join(f"ahead{k} <= 0;" for k in range(L))
    # with the skid buffer, its entry may leave while the model stands still
    hold_skid = (" else begin\n" + "\n".join(f"        ahead{k} <= ahead{k} - o_x;"
                                             for k in range(L)) + "\n    end") if skid else ""
    add(f"""module nmprove_stream(input clk);
  (* anyseq *) reg rst, i_valid, o_ready, tag_pick;
  (* anyseq *) reg [{iw - 1}:0] i_payload;
  wire i_ready, o_valid;
  wire [{ow - 1}:0] o_payload;
  wire [{nq - 1}:0] ctrl_q;
  wire [{cd.en_count - 1}:0] ff_en;""")
    if cd.cut_width:
        add(f"  (* anyseq *) reg [{cd.cut_width - 1}:0] cut_in;")
    cut = ", .cut_in(cut_in)" if cd.cut_width else ""
    ctrlp = ", .ctrl_q(ctrl_q)" if cd.ctrl_names else ""
    add(f"""  {sc.module} dut(.clk(clk), .rst(rst), .i__payload(i_payload), .i__valid(i_valid),
    .i__ready(i_ready), .o__payload(o_payload), .o__valid(o_valid), .o__ready(o_ready),
    .ff_en(ff_en){ctrlp}{cut});
  reg init = 1'b1;
  always @(posedge clk) init <= 1'b0;
  always @* if (init) assume(rst);
  wire load = {_load_bit(sc)};
  // a group that enters the pipeline (a load transfer writes the banks and makes none)
  wire i_x = i_valid && i_ready && !rst && !load;
  wire prod = i_x && {_producing(sc)};
  wire o_x = o_valid && o_ready && !rst;
  wire stalled = o_valid && !o_ready;
  reg [{L - 1}:0] sv = 0, sp = 0, sl = 0, st = 0;
  reg [{cw - 1}:0] n_in = 0, n_out = 0, tag_ord = 0;
  reg tagged = 1'b0;
  wire tag_now = prod && tag_pick && !tagged;""")
    if skid:  # the skid entry; the model moves unless it and the last stage are both full
        add(f"""  reg kv = 1'b0, kt = 1'b0;
  wire madv = !(sp[{L - 1}] && kv);
  wire move = madv;
  wire out_tag = kv ? kt : st[{L - 1}];
  reg past_frozen = 1'b0;
  always @(posedge clk) begin
    kv <= !rst && (kv || sp[{L - 1}]) && !o_ready;
    kt <= !rst && (kv ? kt : st[{L - 1}]) && !o_ready;
    past_frozen <= !madv && !o_ready;
  end""")
    else:
        add(f"""  wire move = !stalled;
  wire out_tag = st[{L - 1}];""")
    add(f"""  always @(posedge clk) begin
    if (rst) begin
      sv <= 0; sp <= 0; sl <= 0; st <= 0; n_in <= 0; n_out <= 0; tagged <= 1'b0;
    end else begin
      if (move) begin
        sv <= {{sv, i_x}}; sp <= {{sp, prod}}; sl <= {{sl, {_last_bit(sc)}}};
        st <= {{st, tag_now}};
      end
      if (prod) n_in <= n_in + 1'b1;
      if (o_x) n_out <= n_out + 1'b1;
      if (tag_now) begin tagged <= 1'b1; tag_ord <= n_in; end
      else if (o_x && out_tag) tagged <= 1'b0;
    end
  end
  // ahead<k>: producing transfers in the stages above k (nearer the output), kept in
  // registers that shift with the model, so that every relation the induction needs is
  // between neighbouring stages (sums over the whole pipeline were too hard for z3 at L=62)
  reg [{cw - 1}:0] {decl}
  always @(posedge clk) begin
    if (rst) begin
      {clear}
    end else if (move) begin
        ahead0 <= ahead0 + sp[0] - o_x;
{shift}
    end{hold_skid}
  end
  reg [{ow - 1}:0] past_payload;
  reg past_stalled = 1'b0, past_rst = 1'b1;
  reg [{nq - 1}:0] past_ctrl;
  always @(posedge clk) begin
    past_payload <= o_payload; past_stalled <= stalled; past_rst <= rst; past_ctrl <= ctrl_q;
  end
  always @* if (!init) begin""")
    if skid:
        add(f"    assert(o_valid == (sp[{L - 1}] || kv));", "latency")
        add(f"    assert(ahead{L - 1} == kv);", "count")
    else:
        add(f"    assert(o_valid == sp[{L - 1}]);", "latency")
        add(f"    assert(ahead{L - 1} == 0);", "count")
    for k in range(L - 1):
        add(f"    assert(ahead{k} == ahead{k + 1} + sp[{k + 1}]);", "count")
    add("    assert(n_in - n_out == ahead0 + sp[0]);", "count")
    # the model's own invariant (a producing token is a valid one with the producing flag)
    add("    assert(sp == sv);" if topk else "    assert(sp == (sv & sl));", "count")
    add("    if (o_x && out_tag) assert(n_out == tag_ord);", "order")
    add("    assert(tagged == (|st || kt));" if skid else "    assert(tagged == |st);",
        "order")
    add("    assert((st & (st - 1'b1)) == 0 && (st & ~sp) == 0);", "order")
    if skid:  # the skid entry holds at most the tagged token, then alone, and it is next out
        add("    assert(!kt || (kv && st == 0));", "order")
        add("    if (kt) assert(tag_ord == n_out);", "order")
    for k in range(L - 1):
        add(f"    if (st[{k}]) assert(tag_ord - n_out == ahead{k});", "order")
    add(f"    if (st[{L - 1}]) assert(tag_ord == n_out{' + kv' if skid else ''});", "order")
    add("    if (past_stalled && !past_rst) assert(o_valid && o_payload == past_payload);",
        "hold")
    if skid:
        # i_ready depends on registers only: high unless the last stage and the skid entry
        # are both full (then the model stands still); a load may wait as below
        add("    if (madv && (!load || sv == 0)) assert(i_ready);", "ready")
        add("    if (!madv) assert(!i_ready);", "ready")
    else:
        # full rate; a load may wait while groups are in flight (DESIGN.md 3.1), not otherwise
        add("    if (o_ready && (!load || sv == 0)) assert(i_ready);", "ready")
        add("    if (stalled) assert(!i_ready);", "ready")
    add("    if (past_rst) assert(!o_valid);", "reset")
    if skid:  # frozen: both entries full and the output stalled
        if cd.ctrl_names:
            add("    if (past_frozen && !past_rst) assert(ctrl_q == past_ctrl);", "freeze")
        add("    if (!madv && !rst) assert(ff_en == 0);", "freeze")
    else:
        if cd.ctrl_names:
            add("    if (past_stalled && !past_rst) assert(ctrl_q == past_ctrl);", "freeze")
        add("    if (stalled && !rst) assert(ff_en == 0);", "freeze")
    if topk:
        add(f"    if (!stalled) assert(ff_en == {{{cd.en_count}{{1'b1}}}});", "freeze")
    for inv in invariants:
        add(f"    assert({inv});", "invariant")
    add("  end\nendmodule")
    return "\n".join(lines) + "\n", props


_SBY = """[options]
mode {mode}
depth {depth}
multiclock off

[engines]
smtbmc z3

[script]
read_json cut.json
read_verilog -formal nmprove_stream.sv
prep -top nmprove_stream

[files]
cut.json
nmprove_stream.sv
"""

_FAIL = re.compile(r"(?:Assert failed|failed assertion).*?nmprove_stream\.sv:(\d+)\.")


def prove_stream(sc: Sidecar, work: Path) -> list[Step]:
    """Cut, mine, and prove the stream properties by k-induction (its base case is the
    bounded check of the same depth; a pass holds for every depth)."""
    work.mkdir(parents=True, exist_ok=True)
    if sc.latency < 1:
        return [Step("stream.protocol", "stream contract", "SymbiYosys", False, 0.0,
                     "latency 0 (combinational) modules are not covered by this wrapper")]
    t0 = time.perf_counter()
    cd = cut_design(sc, work)
    steps = []
    if cd.free_running:
        steps.append(Step("stream.structure", "every data register has a load enable",
                          "netlist", False, 0.0,
                          f"registers without enable (they cannot hold under a stall): "
                          f"{', '.join(cd.free_running[:5])}"))
    if cd.write_port:
        steps.append(Step("stream.write_port", "the registers without enable feed only the "
                          "banks' write ports: under a stall they write the load word the source "
                          "presents, which stream rule 2 (amaranth.lib.stream: a producer keeps "
                          "a valid payload unchanged until its transfer) makes the word it then "
                          "transfers (their write enable is low while an earlier group is still "
                          "to read the banks, DESIGN.md section 3.1, so a load written early "
                          "waits only for the output)",
                          "netlist walk of their fan-out; the rest on paper", True, 0.0,
                          f"{', '.join(cd.write_port)}: fan-out ends only in memory write "
                          "ports"))
    mined = mine_invariants(sc, cd, work)
    t_prep = time.perf_counter() - t0
    # k-induction at depth 2 first (with the mined invariants it mostly closes there, and
    # its base case is short); if the contract still fails the step, depth L + 3
    runs = [("prove", INDUCTION_DEPTH)]
    if sc.latency + 3 > INDUCTION_DEPTH:
        runs.append(("prove", sc.latency + 3))
    claim = (f"valid/ready contract: latency {sc.latency} in moving cycles, nothing lost, "
             "duplicated or "
             "reordered (counters + tagged token), payload and valid held under stall, "
             "i__ready = full rate and low under stall, reset clears, registers frozen under "
             "stall")
    for attempt, (mode, depth) in enumerate(runs):
        invariants = mined
        text, props = wrapper(sc, cd, invariants)
        (work / "nmprove_stream.sv").write_text(text)
        (work / f"{mode}.sby").write_text(_SBY.format(mode=mode, depth=depth))
        ok, log, secs = tools.sby(work, f"{mode}.sby")
        dropped, rounds = 0, 0
        # Houdini: a mined invariant the induction step refutes is only a wrong guess: drop
        # it and prove the rest again (the contract's properties are never dropped), at most
        # HOUDINI_ROUNDS times (each round is a whole induction run)
        while not ok and "DONE (UNKNOWN" in log and rounds < HOUDINI_ROUNDS:
            rounds += 1
            bad = _refuted_invariants(log, text, props)
            if not bad:
                break
            invariants = [inv for inv in invariants if inv not in bad]
            dropped += len(bad)
            text, props = wrapper(sc, cd, invariants)
            (work / "nmprove_stream.sv").write_text(text)
            ok, log, more = tools.sby(work, f"{mode}.sby")
            secs += more
        detail = (f"cut: {cd.cut_width} datapath bits free, {len(cd.ctrl_names)} control "
                  f"registers, {len(invariants)} mined invariants"
                  + (f" ({dropped} more refuted by induction and dropped)" if dropped else ""))
        if not ok and attempt + 1 < len(runs) and "DONE (UNKNOWN" in log:
            t_prep += secs  # the induction did not close at this depth: try the next one
            continue
        if not ok:
            detail = _failure(sc, work, mode, log, props) + "\n" + detail
        steps.append(Step(f"stream.{mode}", claim,
                          f"SymbiYosys smtbmc z3, k-induction (unbounded), depth {depth}", ok,
                          secs + t_prep, detail))
        break
    return steps


#: most re-runs of the induction after dropping refuted invariants
HOUDINI_ROUNDS = 16
#: the first induction depth tried (then the latency + 3)
INDUCTION_DEPTH = 2
_ASSERT = re.compile(r"^\s*assert\((.*)\);\s*$")


def _refuted_invariants(log: str, text: str, props: dict[int, str]) -> set[str]:
    """The mined invariants among the assertions an induction step failed on (empty when
    only properties of the contract failed: those are never dropped). An induction step
    that breaks a contract property and a mined invariant together starts in a state the
    invariant was meant to exclude; dropping the invariant only weakens the assumptions, so
    a later pass is still a proof."""
    lines = text.split("\n")
    out = set()
    for m in _FAIL.finditer(log):
        n = int(m.group(1))
        if props.get(n) != "invariant":
            continue
        hit = _ASSERT.match(lines[n - 1])
        if hit is not None:
            out.add(hit.group(1))
    return out


def _failure(sc: Sidecar, work: Path, mode: str, log: str, props: dict[int, str]) -> str:
    """Which property failed, and the trace around it decoded with the sidecar's fields."""
    failed = sorted({props.get(int(m.group(1)), f"line {m.group(1)}")
                     for m in _FAIL.finditer(log)})
    step = "induction step" if "DONE (UNKNOWN" in log else "base case: a real trace"
    text = [f"{mode}: property {', '.join(failed) or '?'} failed ({step})"]
    # smtbmc runs the base case and the induction step side by side and writes one trace
    # each (trace.vcd, trace_induct.vcd); the one that did not decide may be cut short when
    # sby stops it, so take the trace of the case that failed, not merely the newest file
    induct = "induction" in step
    vcds = sorted((p for p in (work / mode).rglob("*.vcd") if ("induct" in p.name) == induct),
                  key=lambda p: p.stat().st_mtime)
    if vcds:
        text.append(trace_text(sc, vcds[-1]))
    return "\n".join(text)


def read_vcd(path: Path) -> dict[str, list[int | None]]:
    """Top-level signals of a smtbmc VCD trace: name -> value per time step."""
    ids: dict[str, str] = {}
    scope: list[str] = []
    values: dict[str, list] = {}
    cur: dict[str, int | None] = {}
    times: list[int] = []
    body = False
    for raw in path.read_text().split("\n"):
        t = raw.strip()
        if not t:
            continue
        if not body:
            if t.startswith("$scope"):
                scope.append(t.split()[2])
            elif t.startswith("$upscope"):
                scope.pop()
            elif t.startswith("$var"):
                p = t.split()
                if len(scope) == 1:
                    ids[p[3]] = p[4]
            elif t.startswith("$enddefinitions"):
                body = True
            continue
        if t[0] == "#":
            if times:
                for n in ids.values():
                    values.setdefault(n, []).append(cur.get(n))
            times.append(int(t[1:]))
        elif t[0] in "01xz" and len(t) > 1 and t[1:] in ids:
            cur[ids[t[1:]]] = int(t[0]) if t[0] in "01" else None
        elif t[0] == "b":
            v, ident = t[1:].split()
            if ident in ids:
                cur[ids[ident]] = int(v, 2) if set(v) <= {"0", "1"} else None
    for n in ids.values():
        values.setdefault(n, []).append(cur.get(n))
    return values


def trace_text(sc: Sidecar, vcd: Path, max_steps: int = 12) -> str:
    """The counterexample trace, cycle by cycle, payloads decoded field by field."""
    from .equiv import decode_payload

    v = read_vcd(vcd)
    steps = len(v.get("clk", v.get("rst", [])))
    # the samples alternate clock phases; keep one per cycle (clk low)
    clk = v.get("clk") or [0] * steps
    rows = [k for k in range(steps) if clk[k] in (0, None)] or list(range(steps))
    lines = [f"  trace ({len(rows)} cycles), cycle: rst i_valid i_ready o_valid o_ready"]
    for c, k in enumerate(rows[-max_steps:]):
        def g(name: str, k: int = k) -> str:
            x = v.get(name, [None] * steps)[k]
            return "?" if x is None else str(x)
        lines.append(f"  {c:3d}: {g('rst')} {g('i_valid')} {g('i_ready')} {g('o_valid')} "
                     f"{g('o_ready')}")
        if v.get("i_valid", [0] * steps)[k] and v.get("i_ready", [0] * steps)[k] \
                and v.get("i_payload", [None] * steps)[k] is not None:
            lines += [f"       in  {t}" for t in decode_payload(sc, "i", v["i_payload"][k])]
        if v.get("o_valid", [0] * steps)[k] and v.get("o_payload", [None] * steps)[k] \
                is not None:
            lines += [f"       out {t}" for t in decode_payload(sc, "o", v["o_payload"][k])]
    return "\n".join(lines)
