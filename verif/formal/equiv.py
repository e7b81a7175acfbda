"""Datapath equivalence of a top-k selector with the rule, for all inputs.

::

    i__payload ─┬─► DUT (shipped Verilog, o__ready = 1, rst = 0) ── strip L registers ─► o
                └─► nmref_topk (reference.py, combinational) ────────────────────────────► o'
                         miter: o != o'  ──► CNF ──► CaDiCaL: UNSAT = equal for every input

The pipeline is *stripped*: with the consumer always ready every register loads on every
clock, and :meth:`Aig.strip` checks that every path from ``i__payload`` to ``o__payload``
crosses exactly ``latency`` registers (the sidecar's figure) before replacing them by wires.
Then the stripped function is what comes out ``latency`` cycles after a transfer in, and
the stream proof (:mod:`verif.formal.stream`) covers stalls. Direct equivalence is cheap up
to M = 8; 8:16 and 16:32 are proven compositionally (:mod:`verif.formal.compose`).
"""

from __future__ import annotations

import time
from pathlib import Path

from nmsparse.contract.formats import get_format
from nmsparse.contract.sidecar import Sidecar

from . import aig as aigmod
from . import reference, tools
from .results import Step

__all__ = ["miter_aig", "prove_direct", "prove_key", "decode_payload", "FLOW", "AIG_TAIL"]

#: Yosys, from a flat netlist to ``{out}.aag`` + ``{out}.map`` + ``{out}.ports.json`` (the output
#: ports' constant bits, which the AIGER map leaves out: :func:`verif.formal.aig.read_aiger`
#: reads them back). Every AIGER flow of the proofs ends with it.
AIG_TAIL = """opt -fast
techmap
opt -fast
dffunmap
aigmap
opt_clean
select o:*
write_json -selected {out}.ports.json
select -clear
write_aiger -ascii -map {out}.map {out}.aag
"""

# Yosys: flatten, fold the tied-off handshake into constants, plain gates, AIGER.
FLOW = """hierarchy -top {top}
proc
flatten
opt_clean
{extra}
""" + AIG_TAIL.replace("{out}", "{top}")


def miter_aig(work: Path, sources: list[str], top: str, extra: str = "") -> aigmod.Aig:
    """AIG of module ``top`` read from the Verilog ``sources`` (names relative to ``work``)."""
    script = "".join(f"read_verilog {s}\n" for s in sources)
    script += FLOW.format(top=top, extra=extra)
    tools.yosys(work, script, log=f"{top}.log")
    return aigmod.read_aiger(work / f"{top}.aag", work / f"{top}.map")


def decode_payload(sc: Sidecar, port: str, payload: int) -> list[str]:
    """Field-by-field lines of one payload of ``port`` (``"i"`` or ``"o"``), every lane."""
    from verif.tb import decode

    p = sc.i if port == "i" else sc.o
    lanes = sc.lanes if sc.unit == "topk" else 1
    out = []
    for lane in range(lanes):
        tag = f" lane {lane}" if lanes > 1 else ""
        for k, v in decode(p, payload, lane, sc.fmt).items():
            out.append(f"{k}{tag}: {v}")
    return out


def _wrapper(sc: Sidecar) -> str:
    return f"""module nmprove_miter(input clk, input [{sc.i.width - 1}:0] x, input v,
    output [{sc.o.width - 1}:0] dut_o, output [{sc.o.width - 1}:0] ref_o);
  wire ir, ov;
  {sc.module} dut(.clk(clk), .rst(1'b0), .i__payload(x), .i__valid(v), .i__ready(ir),
    .o__payload(dut_o), .o__valid(ov), .o__ready(1'b1));
  nmref_topk r(.i(x), .o(ref_o));
endmodule
"""


def counterexample_text(sc: Sidecar, x: int, got: int, want: int) -> str:
    """The decoded input, expected (reference) and actual (DUT) outputs of a mismatch."""
    lines = [f"counterexample for {sc.module}:"]
    lines += [f"  input  {t}" for t in decode_payload(sc, "i", x)]
    exp, act = decode_payload(sc, "o", want), decode_payload(sc, "o", got)
    for e, a in zip(exp, act, strict=True):
        name = e.split(":")[0]
        lines.append(f"  expected {e}")
        lines.append(f"  actual   {a}" + ("   <-- differs" if e != a else ""))
        del name
    return "\n".join(lines)


def prove_direct(sc: Sidecar, work: Path) -> list[Step]:
    """Direct SAT equivalence of the stripped pipeline with :func:`reference.topk_reference`.

    Returns two steps: the register-balance check (latency) and the equivalence.
    """
    work.mkdir(parents=True, exist_ok=True)
    dut = tools.stage(work, sc.verilog)
    (work / "nmref_topk.v").write_text(reference.topk_reference(sc))
    (work / "nmprove_miter.v").write_text(_wrapper(sc))
    t0 = time.perf_counter()
    g = miter_aig(work, [dut, "nmref_topk.v", "nmprove_miter.v"], "nmprove_miter")
    t_syn = time.perf_counter() - t0
    dut_o, ref_o = g.outputs["dut_o"], g.outputs["ref_o"]
    steps = []
    t0 = time.perf_counter()
    try:
        subst, depth = g.strip(dut_o)
        ok = depth == sc.latency
        detail = (f"every path i__payload -> o__payload crosses {depth} registers"
                  + ("" if ok else f", but the sidecar says latency {sc.latency}"))
    except aigmod.AigError as exc:
        subst, ok, detail = {}, False, str(exc)
    steps.append(Step("datapath.pipeline",
                      f"with o__ready high, o__payload is a function of the i__payload of "
                      f"exactly {sc.latency} cycles before (balanced pipeline)",
                      "register depth of every AIG gate (Yosys aigmap)", ok,
                      time.perf_counter() - t0 + t_syn, detail))
    if not ok:
        return steps
    t0 = time.perf_counter()
    cnf = aigmod.Cnf()
    lits = cnf.add_aig(g, dut_o + ref_o, subst=subst)
    a, b = lits[: len(dut_o)], lits[len(dut_o):]
    x_lits = [cnf._last_vars[lit >> 1] for lit in g.inputs["x"]]
    diff = cnf.differ(a, b)
    model = cnf.solve([diff])
    secs = time.perf_counter() - t0
    claim = ("for every input group, mask, values and index equal the rule of DESIGN.md "
             "section 1 (reference written from the sidecar)")
    method = f"miter to CNF ({cnf.nvars} vars, {len(cnf.clauses)} clauses), CaDiCaL 1.9.5"
    if model is None:
        steps.append(Step("datapath.direct", claim, method, True, secs))
    else:
        x = aigmod.value_of(model, x_lits)
        got, want = aigmod.value_of(model, a), aigmod.value_of(model, b)
        steps.append(Step("datapath.direct", claim, method, False, secs,
                          counterexample_text(sc, x, got, want)))
    return steps


def prove_key(fmt: str, work: Path) -> Step:
    """The Verilog key of the references equals ``Format.key`` on every bit pattern.

    Exhaustive for widths up to 16 bits (bit-parallel evaluation of the key's AIG).
    """
    f = get_format(fmt)
    work.mkdir(parents=True, exist_ok=True)
    (work / "nmref_key.v").write_text(reference.key_reference(fmt))
    t0 = time.perf_counter()
    g = miter_aig(work, ["nmref_key.v"], "nmref_key")
    w = f.width
    if w > 16:
        return Step(f"key.{fmt}", f"the reference key of {fmt} equals Format.key",
                    "exhaustive evaluation", False, time.perf_counter() - t0,
                    f"{w}-bit format: 2**{w} patterns are too many to enumerate here")
    total = 1 << w
    # input bit b of pattern t is bit b of t: one Python int per input bit
    values = {}
    for b, lit in enumerate(g.inputs["x"]):
        period = 1 << (b + 1)
        block = ((1 << (1 << b)) - 1) << (1 << b)
        values[lit >> 1] = sum(block << (r * period) for r in range(total // period))
    bits = g.evaluate(values, g.outputs["k"])
    full = (1 << total) - 1
    keys = [f.key(t) for t in range(total)]
    wrong = 0
    for b, got in enumerate(bits):
        want = int("".join("1" if (keys[t] >> b) & 1 else "0" for t in reversed(range(total))),
                   2)
        wrong |= (got & full) ^ want
    bad = []
    while wrong and len(bad) < 4:
        t = (wrong & -wrong).bit_length() - 1
        bad.append(t)
        wrong &= wrong - 1
    if any(k >> len(bits) for k in keys):
        bad.append(max(range(total), key=lambda t: keys[t]))
    detail = "" if not bad else "; ".join(
        f"pattern 0x{t:x} ({f.describe(t)}): reference key differs from Format.key "
        f"{f.key(t)}" for t in bad)
    return Step(f"key.{fmt}", f"the reference key of {fmt} equals Format.key on all "
                f"{total} bit patterns", "exhaustive bit-parallel evaluation", not bad,
                time.perf_counter() - t0, detail)
