"""Delay lines in distributed RAM (``gen.pipeline.ram_delay``) inside the datapath proofs.

A delay line is a ``2**a``-word memory written at ``wa`` on every write enable and read
asynchronously at ``ra``, both addresses advancing together. The datapath proofs strip
register chains (:meth:`verif.formal.aig.Aig.strip`); a memory is not one. So the proofs run on
a rewritten netlist in which each memory is the register chain it stands for::

    shipped .v ─yosys proc; flatten; memory_collect─► JSON
        each $mem_v2 ─► c registers on its write data, loading on its write enable
        ─yosys write_verilog─► <module>.v (the DUT of equiv.py and compose.py)

and one step per memory proves, by SAT on the netlist (never from the generator's data), the
facts that make the rewrite sound:

- (D1) the memory has one write port and one asynchronous read port of the same width,
  ``SIZE = 2**ABITS`` words; every bit of the write enable is the same signal;
- (D2) both addresses are functions of flip-flops only (no input, no memory word);
- (D3) ``wa - ra = c (mod SIZE)`` in the initial state, with ``1 <= c <= SIZE``, and every
  transition (any input, reset included) preserves it: so it holds in every reachable state;
- (D4) with ``rst`` low the next write address is ``wa + we``: one write per address, in order.

From D1-D4 (on paper): the last ``c`` writes since the last reset went to ``wa - 1, ...,
wa - c``, distinct addresses, the ``c``-th to ``ra``; once ``c`` writes have happened since the
last reset, the read data is the write data of ``c`` writes before, the output of the chain.
A transfer's data reaches a delay line only after it entered the pipeline, which is after the
last reset (the stream proof: reset clears the pipeline), so every output transfer reads
the delay line in that regime.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path

from nmsparse.contract.sidecar import Sidecar

from . import aig as aigmod
from . import tools
from .equiv import AIG_TAIL
from .results import Step

__all__ = ["MEMORY_DECL", "has_delay_lines", "rewrite"]


#: A memory declaration in emitted Verilog (``reg [w:0] name [d:0];``), group 1 its name.
MEMORY_DECL = re.compile(r"^\s*reg\s+\[\d+:0\]\s+(\S+)\s+\[\d+:0\]\s*;", re.M)


def has_delay_lines(sc: Sidecar) -> bool:
    """Whether the module's Verilog declares a memory."""
    return bool(MEMORY_DECL.search(sc.verilog.read_text()))


def _int(p: str) -> int:
    return int(p, 2) if set(p) <= {"0", "1"} else -1


_PRE = """read_verilog {src}
hierarchy -top {top}
proc
flatten
opt_expr -mux_undef
opt_clean
memory_collect
opt_clean
write_json pre.json
"""

_POST_V = "read_json dut.json\nwrite_verilog -noattr {top}.v\n"

_LEMMA = """read_json lemma.json
hierarchy -top {top}
setundef -undriven -expose
""" + AIG_TAIL.replace("{out}", "lemma")


class DelayLineError(ValueError):
    """A memory that is not a delay line of the expected shape (the message says why)."""


def _rewrite_json(doc: dict, top: str) -> tuple[dict, dict, list[dict]]:
    """(rewritten doc, lemma doc with address/enable outputs, one record per memory)."""
    mod = doc["modules"][top]
    mems = []
    lemma_ports = {}
    for name in sorted(n for n, c in mod["cells"].items() if c["type"] == "$mem_v2"):
        c = mod["cells"].pop(name)
        p = {k: _int(v) for k, v in c["parameters"].items() if k not in ("INIT", "MEMID")}
        conn = c["connections"]
        memid = c["parameters"].get("MEMID", name).lstrip("\\")
        if p["WR_PORTS"] != 1 or p["RD_PORTS"] != 1:
            raise DelayLineError(f"memory {memid}: {p['WR_PORTS']} write and {p['RD_PORTS']}"
                                 " read ports (a delay line has one of each)")
        if p["RD_CLK_ENABLE"] != 0:
            raise DelayLineError(f"memory {memid}: the read port is synchronous (a delay "
                                 "line reads asynchronously)")
        if p["WR_CLK_ENABLE"] != 1 or p["WR_CLK_POLARITY"] != 1:
            raise DelayLineError(f"memory {memid}: the write port is not clocked on the "
                                 "rising edge")
        size, abits, width = p["SIZE"], p["ABITS"], p["WIDTH"]
        if size != 1 << abits or p["OFFSET"] != 0:
            raise DelayLineError(f"memory {memid}: {size} words at offset {p['OFFSET']} with "
                                 f"{abits} address bits (a delay line uses all 2**ABITS)")
        if conn["RD_EN"] != ["1"] or conn["RD_ARST"] != ["0"] or conn["RD_SRST"] != ["0"]:
            raise DelayLineError(f"memory {memid}: the read port has an enable or a reset")
        rec = {"memid": memid, "size": size, "width": width, "abits": abits,
               "wa": conn["WR_ADDR"], "ra": conn["RD_ADDR"], "we": conn["WR_EN"],
               "wd": conn["WR_DATA"], "rd": conn["RD_DATA"], "clk": conn["WR_CLK"]}
        mems.append(rec)
        k = len(mems) - 1
        lemma_ports[f"nmdl{k}_wa"] = rec["wa"]
        lemma_ports[f"nmdl{k}_ra"] = rec["ra"]
        lemma_ports[f"nmdl{k}_we"] = rec["we"]
    return doc, lemma_ports, mems


def _chain(mod: dict, rec: dict, c: int, nxt: int, tag: str) -> int:
    """Replace memory ``rec`` by ``c`` enabled registers in module ``mod``; returns the next
    free net number."""
    d = rec["wd"]
    for s in range(c):
        last = s == c - 1
        q = rec["rd"] if last else list(range(nxt, nxt + rec["width"]))
        if not last:
            nxt += rec["width"]
            mod["netnames"][f"nmprove_{tag}_s{s + 1}"] = {"hide_name": 0, "bits": q,
                                                           "attributes": {}}
        mod["cells"][f"nmprove_{tag}_ff{s + 1}"] = {
            "hide_name": 0, "type": "$dffe",
            "parameters": {"WIDTH": format(rec["width"], "032b"), "CLK_POLARITY": "1",
                           "EN_POLARITY": "1"},
            "attributes": {},
            "port_directions": {"CLK": "input", "EN": "input", "D": "input", "Q": "output"},
            "connections": {"CLK": rec["clk"], "EN": rec["we"][:1], "D": d, "Q": q}}
        d = q
    return nxt


def _value(bits: list[int]) -> int:
    return sum(int(b) << k for k, b in enumerate(bits))


def _lemma(work: Path, top: str, mems: list[dict]) -> list[tuple[int | None, str]]:
    """Check D1 (enable), D2, D3, D4 for every memory; (c or None, failure text) each."""
    g = aigmod.read_aiger(work / "lemma.aag", work / "lemma.map")
    inits = aigmod.read_aiger_inits(work / "lemma.aag")
    latch_vars = set(g.latches)
    gc = g.cut([v << 1 for v in latch_vars])
    rst = [lit >> 1 for lit in g.inputs.get("rst", [])]
    out = []
    for k, rec in enumerate(mems):
        wa, ra, we = (g.outputs[f"nmdl{k}_{s}"] for s in ("wa", "ra", "we"))
        size = rec["size"]
        # D2: the cone of the addresses holds no input and no latch-free path from one
        support = aigmod.support_vars(gc, wa + ra)
        bad = support - latch_vars
        if bad:
            out.append((None, f"the address of {rec['memid']} depends on "
                              f"{', '.join(sorted(g.name_of(v) for v in bad)[:4])}, not only "
                              "on flip-flops"))
            continue
        # initial value of the offset
        if any(v not in inits for v in support):
            miss = sorted(g.name_of(v) for v in support if v not in inits)
            out.append((None, f"address flip-flops of {rec['memid']} without an initial "
                              f"value: {', '.join(miss[:4])}"))
            continue
        vals = {v: -1 if inits[v] else 0 for v in support}
        bits = [x & 1 for x in gc.evaluate(vals, wa + ra)]
        c = (_value(bits[:len(wa)]) - _value(bits[len(wa):])) % size or size
        cnf = aigmod.Cnf()
        cur = cnf.add_aig(gc, wa + ra + we)
        vars0 = dict(cnf._last_vars)
        a0, r0, e0 = cur[:len(wa)], cur[len(wa):len(wa) + len(ra)], cur[len(wa) + len(ra):]
        # D1: every enable bit equals bit 0
        diff_en = cnf.or_([cnf.xor(e0[0], e) for e in e0[1:]]) if len(e0) > 1 else None
        if diff_en is not None and cnf.solve([diff_en]) is not None:
            out.append((None, f"the write enable bits of {rec['memid']} differ for some "
                              "state"))
            continue
        # next-state of each address flip-flop, over the same state and inputs
        sup = sorted(support)
        nx = cnf.add_aig(gc, [g.latches[v] for v in sup], bind=vars0)
        vars1 = dict(cnf._last_vars)
        a1_r1 = cnf.add_aig(gc, wa + ra, bind={v: lit for v, lit in zip(sup, nx,
                                                                            strict=True)})
        a1, r1 = a1_r1[:len(wa)], a1_r1[len(wa):]
        off0 = _sub(cnf, a0, r0)
        off1 = _sub(cnf, a1, r1)
        cbits = [1 if (c >> b) & 1 else -1 for b in range(len(wa))]
        # D3: offset = c now and differs next (any input)
        same0 = [cnf.xor(x, y) for x, y in zip(off0, cbits, strict=True)]
        for s in same0:
            cnf.clauses.append([-s])
        if cnf.solve([cnf.differ(off1, cbits)]) is not None:
            out.append((None, f"{rec['memid']}: a transition from wa - ra = {c} leaves it "
                              "(the read and write addresses do not advance together)"))
            continue
        # D4: with rst low, next wa = wa + we
        inc = _add_bit(cnf, a0, e0[0])
        rst_low = [-vars1[v] for v in rst if v in vars1]  # absent: rst cannot matter
        if cnf.solve([cnf.differ(a1, inc), *rst_low]) is not None:
            out.append((None, f"{rec['memid']}: with rst low the write address does not "
                              "advance by exactly the write enable"))
            continue
        out.append((c, ""))
    return out


def _sub(cnf: aigmod.Cnf, a: list[int], b: list[int]) -> list[int]:
    """CNF literals of ``a - b`` modulo ``2**len(a)`` (ripple borrow)."""
    return _add(cnf, a, [-x for x in b], carry_in=1)


def _add_bit(cnf: aigmod.Cnf, a: list[int], bit: int) -> list[int]:
    return _add(cnf, a, [bit] + [-1] * (len(a) - 1), carry_in=-1)


def _add(cnf: aigmod.Cnf, a: list[int], b: list[int], carry_in: int) -> list[int]:
    """Ripple-carry sum of two vectors of CNF literals (1 = true, -1 = false)."""
    out, cy = [], carry_in
    for x, y in zip(a, b, strict=True):
        s = cnf.xor(cnf.xor(x, y), cy)
        m1, m2, m3 = cnf.and_(x, y), cnf.and_(x, cy), cnf.and_(y, cy)
        cy = cnf.or_([m1, m2, m3])
        out.append(s)
    return out


def rewrite(sc: Sidecar, work: Path) -> tuple[Sidecar, list[Step]]:
    """The module with every delay line as a register chain, and the steps that justify it.

    Returns ``(sc', steps)``: ``sc'`` reads the rewritten Verilog (same module name, ports and
    sidecar); if a step failed, the proofs must not use ``sc'`` (it is ``sc`` then).
    """
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    src = tools.stage(work, sc.verilog, name="orig_" + sc.verilog.name)
    tools.yosys(work, _PRE.format(src=src, top=sc.module), log="pre.log")
    doc = json.loads((work / "pre.json").read_text())
    claim = ("every distributed-RAM delay line is the register chain it stands for (D1-D4 of "
             "verif/formal/delaylines.py), once as many writes as its depth have happened "
             "since reset")
    method = "Yosys memory_collect, SAT on one transition (CaDiCaL) + argument on paper"
    try:
        doc, ports, mems = _rewrite_json(doc, sc.module)
    except DelayLineError as exc:
        return sc, [Step("datapath.delay_lines", claim, method, False,
                         time.perf_counter() - t0, str(exc))]
    mod = doc["modules"][sc.module]
    lemma_doc = json.loads(json.dumps(doc))
    for name, bits in ports.items():
        lemma_doc["modules"][sc.module]["ports"][name] = {"direction": "output", "bits": bits}
    (work / "lemma.json").write_text(json.dumps(lemma_doc))
    tools.yosys(work, _LEMMA.format(top=sc.module), log="lemma.log")
    results = _lemma(work, sc.module, mems)
    fails = [why for m, (c, why) in zip(mems, results, strict=True)
             if c is None]
    if fails:
        return sc, [Step("datapath.delay_lines", claim, method, False,
                         time.perf_counter() - t0, "\n".join(fails))]
    nxt = 1 + max((b for n in mod["netnames"].values() for b in n["bits"]
                   if isinstance(b, int)), default=1)
    for k, (rec, (c, _)) in enumerate(zip(mems, results, strict=True)):
        nxt = _chain(mod, rec, c, nxt, f"dl{k}")
    (work / "dut.json").write_text(json.dumps(doc))
    tools.yosys(work, _POST_V.format(top=sc.module), log="post.log")
    side = work / sc.path.name
    shutil.copy(sc.path, side)
    if sc.path.stem != sc.module:
        shutil.copy(work / f"{sc.module}.v", work / f"{sc.path.stem}.v")
    new = dataclasses.replace(sc, path=side, sources=None)
    depths = ", ".join(f"{m['memid']} ({m['width']} bits, {c} writes)"
                       for m, (c, _) in zip(mems, results, strict=True))
    return new, [Step("datapath.delay_lines", claim, method, True,
                      time.perf_counter() - t0, f"{len(mems)} delay line(s): {depths}")]
