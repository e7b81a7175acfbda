"""Compositional datapath proofs: one :class:`Decomposition` per top-k architecture.

::

    netlist ─ expose -cut at the architecture's cut wires ─► pieces, each its own SAT miter
      rank:     keys ─► [beats] ─► popcount/threshold ─► [keep] ─► prefix + compaction ─► o
                 R1 each beats bit = key_a >= key_b for one pair a < b, every pair once
                 R2 keep = (rank < N), rank written over the beats bits, for ALL beats values
                 R3 mask, values, index = the compressed form of keep, whenever |keep| = N
      network:  keys ─► comparators [c_p] ─► selection muxes ─► index sort ─► o
                 N1 the comparator list, read back from the netlist, selects the top N
                    (0-1 principle, exhaustive over the C(M, N) weight-N vectors)
                 N2 for ALL values of the cut comparator outputs, the netlist equals the
                    reference network of that list: every c_p = "lo outranks hi" on the
                    records routed to it, the outputs = the index-sorted survivors

Cut wires are located by name in the emitted Verilog; what each one computes is identified by
simulation and then proven, so a wrong name or a wrong guess makes a step fail, never pass.
Pipeline registers are stripped with the balance check of :mod:`verif.formal.aig`, each cut
input taking the register depth of its cut output, so the composed depth is the latency.

A new architecture plugs in with one subclass: ``arch`` (the sidecar's name), and
:meth:`Decomposition.prove` returning its steps (the helpers here build the pieces).
"""

from __future__ import annotations

import math
import random
import re
import time
from pathlib import Path
from typing import ClassVar

from nmsparse.contract.formats import get_format
from nmsparse.contract.sidecar import Sidecar

from . import aig as aigmod
from . import reference, tools
from .equiv import FLOW, counterexample_text, decode_payload
from .results import Step

__all__ = ["Decomposition", "DECOMPOSITIONS", "RankDecomposition", "NetworkDecomposition",
           "check_selection_01", "check_sorting_01", "prove_compositional"]

DECOMPOSITIONS: dict[str, type[Decomposition]] = {}


# ------------------------------------------------------------------- 0-1 principle checks

def check_selection_01(m: int, n: int, comparators: list[tuple[int, int]],
                       outputs: list[int], block: int = 1 << 22
                       ) -> tuple[bool, int, list[int] | None]:
    """Exhaustive 0-1 check: after the comparators (min to ``lo``, max to ``hi``) the lines
    ``outputs`` hold all N ones of every weight-N 0-1 input, all C(M, N) of them.

    Bit-sliced with NumPy: the lines are split into a low and a high half; for every weight
    k of the low half the vectors are all pairs (low pattern of weight k, high pattern of
    weight N - k), laid out so that each line is a repeat or a tile of one half's bit, packed
    8 vectors per byte. Returns (ok, vectors checked, a failing input or None).
    """
    import numpy as np

    lo_n = m // 2
    hi_n = m - lo_n

    def patterns(bits: int, weight: int) -> np.ndarray:
        v = np.arange(1 << bits, dtype=np.uint32)
        pc = np.zeros(len(v), dtype=np.uint8)
        for b in range(bits):
            pc += ((v >> b) & 1).astype(np.uint8)
        return v[pc == weight]

    checked = 0
    for k in range(max(0, n - hi_n), min(n, lo_n) + 1):
        lows, highs = patterns(lo_n, k), patterns(hi_n, n - k)
        if not len(lows) or not len(highs):
            continue
        step = max(1, block // len(highs))
        for a in range(0, len(lows), step):
            lw = lows[a: a + step]
            cnt = len(lw) * len(highs)
            lines = []
            for j in range(m):
                if j < lo_n:
                    bits = np.repeat(((lw >> j) & 1).astype(np.uint8), len(highs))
                else:
                    bits = np.tile(((highs >> (j - lo_n)) & 1).astype(np.uint8), len(lw))
                lines.append(np.packbits(bits))
            for lo, hi in comparators:
                x, y = lines[lo], lines[hi]
                lines[lo], lines[hi] = x & y, x | y
            ok = np.full(len(lines[0]), 0xFF, dtype=np.uint8)
            for o in outputs:
                ok &= lines[o]
            pad = len(ok) * 8 - cnt
            if pad:
                ok[-1] |= np.uint8((1 << pad) - 1)
            checked += cnt
            if not (ok == 0xFF).all():
                pos = int(np.argmax(ok != 0xFF))
                bit = next(t for t in range(8) if not (int(ok[pos]) >> (7 - t)) & 1)
                t = pos * 8 + bit
                low, high = int(lw[t // len(highs)]), int(highs[t % len(highs)])
                vec = low | (high << lo_n)
                return False, checked, [(vec >> j) & 1 for j in range(m)]
    return checked == math.comb(m, n), checked, None


def check_sorting_01(lines_n: int, comparators: list[tuple[int, int]]) -> bool:
    """Exhaustive 0-1 check (2**lines vectors) that the comparators sort ascending."""
    import numpy as np

    vecs = np.arange(1 << lines_n, dtype=np.uint64)
    lines = [((vecs >> np.uint64(j)) & np.uint64(1)).astype(bool) for j in range(lines_n)]
    for lo, hi in comparators:
        a, b = lines[lo], lines[hi]
        lines[lo], lines[hi] = a & b, a | b
    return all(not (lines[k] & ~lines[k + 1]).any() for k in range(lines_n - 1))


# ------------------------------------------------------------------------ shared helpers

def _top(sc: Sidecar, extra_ports: str, body: str) -> str:
    return f"""module nmprove_cut(input clk, input [{sc.i.width - 1}:0] x,
    output [{sc.o.width - 1}:0] o{extra_ports});
  wire ir, ov;
  {sc.module} dut(.clk(clk), .rst(1'b0), .i__payload(x), .i__valid(1'b1), .i__ready(ir),
    .o__payload(o), .o__valid(ov), .o__ready(1'b1));
{body}
endmodule
"""


def cut_aig(sc: Sidecar, work: Path, wires: list[str], modules: str, top: str
            ) -> aigmod.Aig:
    """AIG of ``top`` (a wrapper around the DUT) with the DUT wires ``wires`` exposed as
    outputs ``dut.<wire>``; :meth:`Aig.cut` then frees their driver nodes."""
    work.mkdir(parents=True, exist_ok=True)
    dut = tools.stage(work, sc.verilog)
    (work / "nmref.v").write_text(modules)
    (work / "nmprove_cut.v").write_text(top)
    sel = " ".join(f"w:dut.{w}" for w in wires)
    script = (f"read_verilog {dut}\nread_verilog nmref.v\nread_verilog nmprove_cut.v\n"
              + FLOW.format(top="nmprove_cut", extra=f"expose {sel}" if wires else ""))
    tools.yosys(work, script, log="cut.log")
    return aigmod.read_aiger(work / "nmprove_cut.aag", work / "nmprove_cut.map")


def _elements(sc: Sidecar, x: int) -> list[int]:
    return sc.i.fields["data"].unpack_lane(x, 0)


def _random_groups(sc: Sidecar, runs: int, rng: random.Random) -> list[int]:
    """Random input payloads whose M keys are distinct (pairs can then be told apart)."""
    f = get_format(sc.fmt)
    out = []
    while len(out) < runs:
        els = [rng.getrandbits(f.width) for _ in range(sc.m)]
        if len({f.key(e) for e in els}) == sc.m:
            out.append(sc.i.fields["data"].pack_lane(els))
    return out


def _transpose(payloads: list[int], width: int) -> list[int]:
    """Bit b of the result's element b, run r = bit b of payloads[r]."""
    out = [0] * width
    for r, p in enumerate(payloads):
        for b in range(width):
            if (p >> b) & 1:
                out[b] |= 1 << r
    return out


def _bind_inputs(g: aigmod.Aig, name: str, words: list[int]) -> dict[int, int]:
    return {lit >> 1: w for lit, w in zip(g.inputs[name], words, strict=True)}


class Decomposition:
    """How one architecture's datapath is proven in pieces; subclasses set ``arch``."""

    arch: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.arch:
            DECOMPOSITIONS[cls.arch] = cls

    def __init__(self, sc: Sidecar, work: Path) -> None:
        if sc.lanes != 1:
            raise ValueError(f"{sc.module}: compositional proofs take one lane, not "
                             f"{sc.lanes}")
        self.sc, self.work = sc, work
        self.f = get_format(sc.fmt)

    def prove(self) -> list[Step]:  # pragma: no cover - abstract
        raise NotImplementedError

    def keys(self, x: int) -> list[int]:
        return [self.f.key(e) for e in _elements(self.sc, x)]

    def outranks(self, keys: list[int], a: int, b: int) -> bool:
        """Element a outranks element b under the rule (larger key; ties: lower index)."""
        return keys[a] > keys[b] or (keys[a] == keys[b] and a < b)


def _solve_diff(cnf: aigmod.Cnf, a: list[int], b: list[int]) -> list[int] | None:
    return cnf.solve([cnf.differ(a, b)])


# --------------------------------------------------------------------------------- rank

class RankDecomposition(Decomposition):
    """``rank``: cut at the comparison bits (``sel_beats``) and the keep bits (``sel_keep``)."""

    arch = "rank"
    cuts = ("sel_beats", "sel_keep")

    def prove(self) -> list[Step]:
        sc, f = self.sc, self.f
        n, m, w = sc.n, sc.m, f.width
        pairs = [(a, b) for a in range(m) for b in range(a + 1, m)]
        iw = sc.o.fields["index"].elem_width
        data = sc.i.fields["data"]
        modules = (_pairs_reference(sc, pairs) + reference.rank_from_beats(m, n)
                   + reference.compaction_reference(m, n, w))
        top = _top(sc, f""", input [{len(pairs) - 1}:0] rb, input [{m - 1}:0] rk,
    output [{len(pairs) - 1}:0] ref_ge, output [{m - 1}:0] ref_keep,
    output [{n * w - 1}:0] ref_vals, output [{n * iw - 1}:0] ref_idx""",
                   f"""  nmref_pairs rp(.i(x), .b(ref_ge));
  nmref_beats rbt(.b(rb), .keep(ref_keep));
  nmref_compact rc(.keep(rk), .x(x[{data.offset + data.width - 1}:{data.offset}]),
    .vals(ref_vals), .idx(ref_idx));""")
        t0 = time.perf_counter()
        g = cut_aig(sc, self.work, list(self.cuts), modules, top)
        t_build = time.perf_counter() - t0
        steps: list[Step] = []
        beats_o, keep_o = g.outputs.get("dut.sel_beats"), g.outputs.get("dut.sel_keep")
        if beats_o is None or keep_o is None or len(beats_o) != len(pairs) \
                or len(keep_o) != m:
            return [Step("datapath.structure", "the rank netlist has the comparison and keep "
                         "cut points", "netlist", False, t_build,
                         f"expected wires sel_beats ({len(pairs)} bits) and sel_keep ({m} "
                         "bits)")]
        if len({lit >> 1 for lit in beats_o + keep_o}) != len(beats_o) + len(keep_o) or any(
                lit >> 1 in g.input_vars or lit < 2 for lit in beats_o + keep_o):
            return [Step("datapath.structure", "the cut bits are distinct gates", "netlist",
                         False, t_build, "two cut bits share a gate, or one is an input or a "
                         "constant: the decomposition does not apply")]
        g2 = g.cut(beats_o)
        g3 = g.cut(keep_o)
        beats_i = [lit >> 1 for lit in beats_o]
        keep_i = [lit >> 1 for lit in keep_o]

        # R1: identify each beats bit by simulation, then prove it
        t0 = time.perf_counter()
        sub1, d1 = g.strip(beats_o)
        rng = random.Random(1)
        groups = _random_groups(sc, 256, rng)
        xs = _transpose(groups, sc.i.width)
        vals = g.evaluate(_bind_inputs(g, "x", xs), beats_o, sub1)
        keys = [self.keys(x) for x in groups]
        sig = {}
        for a, b in pairs:
            sig[sum(1 << r for r, k in enumerate(keys) if k[a] > k[b])] = (a, b)
        full = (1 << len(groups)) - 1
        mapping, unknown = [], []
        for t, v in enumerate(vals):
            p = sig.get(v & full)
            if p is None:
                unknown.append(t)
            mapping.append(p)
        found = [p for p in mapping if p is not None]
        ok_map = not unknown and len(set(found)) == len(pairs)
        detail = (f"{len(pairs)} comparison bits, {d1} register(s) deep" if ok_map else
                  f"bits {unknown[:5]} match no pair 'key_a > key_b' (a < b) on random groups"
                  if unknown else "some pair is compared twice and another never")
        if ok_map:
            cnf = aigmod.Cnf()
            lits = cnf.add_aig(g, beats_o + g.outputs["ref_ge"], subst=sub1)
            dut_b = lits[: len(pairs)]
            ref_b = lits[len(pairs):]
            pos = {p: k for k, p in enumerate(pairs)}
            want = [ref_b[pos[p]] for p in mapping]
            model = _solve_diff(cnf, dut_b, want)
            if model is not None:
                ok_map = False
                x = aigmod.value_of(model, [cnf._last_vars[lit >> 1] for lit in g.inputs["x"]])
                bad = [t for t in range(len(pairs))
                       if aigmod.value_of(model, [dut_b[t]]) != aigmod.value_of(model, [want[t]])]
                a, b = mapping[bad[0]]
                detail = (f"comparison bit {bad[0]} (elements {a}, {b}) is "
                          f"{aigmod.value_of(model, [dut_b[bad[0]]])}, the rule says "
                          f"{aigmod.value_of(model, [want[bad[0]]])} (key_{a} >= key_{b}) for:\n"
                          + "\n".join(f"  input  {t}" for t in decode_payload(sc, "i", x)))
        steps.append(Step("datapath.R1.comparisons",
                          f"each of the {len(pairs)} comparison bits equals key_a >= key_b "
                          "(element a outranks b, lower index wins ties) for one pair a < b, "
                          "every pair once, for all inputs",
                          "identified by simulation, proven by SAT (CaDiCaL)", ok_map,
                          time.perf_counter() - t0 + t_build, detail))
        if not ok_map:
            return steps

        # R2: keep bits from the comparison bits, for every value of them
        t0 = time.perf_counter()
        try:
            sub2, d2 = g2.strip(keep_o, {v: d1 for v in beats_i})
        except aigmod.AigError as exc:
            steps.append(Step("datapath.R2.rank", "keep = rank < N", "register balance",
                              False, time.perf_counter() - t0, str(exc)))
            return steps
        cnf = aigmod.Cnf()
        bind = {}
        rb = g.inputs["rb"]
        pos = {p: k for k, p in enumerate(pairs)}
        for t, p in enumerate(mapping):
            v = cnf.new()
            bind[beats_i[t]] = -v if beats_o[t] & 1 else v  # the wire's value is v
            bind[rb[pos[p]] >> 1] = v
        lits = cnf.add_aig(g2, keep_o + g2.outputs["ref_keep"], bind=bind, subst=sub2)
        dut_k, ref_k = lits[:m], lits[m:]
        bad_j = None
        for j in range(m):
            model = cnf.solve([cnf.xor(dut_k[j], ref_k[j])])
            if model is not None:
                bad_j = j
                break
        detail = f"keep bits {d2} register(s) deep"
        if bad_j is not None:
            beats = {mapping[t]: aigmod.value_of(model, [bind[rb[pos[mapping[t]]] >> 1]])
                     for t in range(len(pairs))}
            detail = (f"keep[{bad_j}] differs for the comparison bits "
                      + ", ".join(f"{a}>={b}:{v}" for (a, b), v in sorted(beats.items())
                                  if bad_j in (a, b)))
        steps.append(Step("datapath.R2.rank",
                          f"keep_j = (#{{i<j: b_ij}} + #{{i>j: not b_ji}} < {n}) for every "
                          f"value of the {len(pairs)} comparison bits (not only consistent "
                          "ones)", f"SAT per keep bit, {m} calls (CaDiCaL)", bad_j is None,
                          time.perf_counter() - t0, detail))
        if bad_j is not None:
            return steps

        # R3: compaction and mask from the keep bits, whenever exactly N are kept
        from pysat.card import CardEnc, EncType

        t0 = time.perf_counter()
        try:
            sub3, d3 = g3.strip(g3.outputs["o"], {v: d2 for v in keep_i})
        except aigmod.AigError as exc:
            steps.append(Step("datapath.R3.compaction", "compaction", "register balance",
                              False, time.perf_counter() - t0, str(exc)))
            return steps
        cnf = aigmod.Cnf()
        bind = {}
        rk = g.inputs["rk"]
        kvars = []
        for j in range(m):
            v = cnf.new()
            kvars.append(v)
            bind[keep_i[j]] = -v if keep_o[j] & 1 else v
            bind[rk[j] >> 1] = v
        x_vars = {}
        for lit in g.inputs["x"]:
            x_vars[lit >> 1] = cnf.new()
        bind.update(x_vars)
        enc = CardEnc.equals(lits=kvars, bound=n, top_id=cnf.nvars, encoding=EncType.seqcounter)
        cnf.clauses += enc.clauses
        cnf.nvars = max(cnf.nvars, enc.nv)
        ref_out = g.outputs["ref_vals"] + g.outputs["ref_idx"]
        lits = cnf.add_aig(g3, g3.outputs["o"] + ref_out, bind=bind, subst=sub3)
        dut_o = lits[: sc.o.width]
        ref_v = lits[sc.o.width: sc.o.width + n * w]
        ref_i = lits[sc.o.width + n * w:]
        want = [None] * sc.o.width
        mf, vf, xf = (sc.o.fields[k] for k in ("mask", "values", "index"))
        for j in range(m):
            want[mf.offset + j] = kvars[j]
        for b in range(n * w):
            want[vf.offset + b] = ref_v[b]
        for b in range(n * iw):
            want[xf.offset + b] = ref_i[b]
        want = [x if x is not None else -1 for x in want]
        model = _solve_diff(cnf, dut_o, want)
        ok = model is None and d3 == sc.latency
        detail = f"outputs {d3} register(s) deep (sidecar latency {sc.latency})"
        if model is not None:
            x = aigmod.value_of(model, [x_vars[lit >> 1] for lit in g.inputs["x"]])
            keep = aigmod.value_of(model, kvars)
            detail = (f"keep = {''.join(str((keep >> j) & 1) for j in range(m))} (element 0 "
                      "first)\n" + counterexample_text(sc, x, aigmod.value_of(model, dut_o),
                                                        aigmod.value_of(model, want)))
        steps.append(Step("datapath.R3.compaction",
                          f"mask = keep, values/index = the kept elements and positions in "
                          f"ascending order, for all data and every keep vector with exactly "
                          f"{n} ones", "SAT with a cardinality constraint (CaDiCaL)", ok,
                          time.perf_counter() - t0, detail))
        steps.append(Step("datapath.lemma", "R1-R3 compose to the rule: the comparison bits "
                          "of any input are those of a strict total order (key descending, "
                          "index ascending), so the ranks are a permutation of 0..M-1 and "
                          f"exactly {n} are kept (R3's condition)", "proof on paper "
                          "(DESIGN.md section 1: rank(j) counts the elements outranking j)",
                          True, 0.0))
        return steps


def _pairs_reference(sc: Sidecar, pairs: list[tuple[int, int]]) -> str:
    """``nmref_pairs(i, b)``: b[p] = key_a >= key_b for the p-th pair (a < b)."""
    data = sc.i.fields["data"]
    f = get_format(sc.fmt)
    lines = [f"module nmref_pairs(input [{sc.i.width - 1}:0] i, output [{len(pairs) - 1}:0] b);"]
    for j in range(sc.m):
        lo = data.offset + j * data.elem_width
        expr, kw = reference.key_expr(sc.fmt, f"x{j}")
        lines.append(f"  wire [{f.width - 1}:0] x{j} = i[{lo + f.width - 1}:{lo}];")
        lines.append(f"  wire [{kw - 1}:0] k{j} = {expr};")
    for p, (a, b) in enumerate(pairs):
        lines.append(f"  assign b[{p}] = k{a} >= k{b};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ network

class NetworkDecomposition(Decomposition):
    """``network``: cut at every selection comparator output (``sel_c<p>``)."""

    arch = "network"

    def comparator_wires(self) -> list[str]:
        text = self.sc.verilog.read_text()
        names = sorted(set(re.findall(r"^\s*wire (sel_c\d+);", text, flags=re.M)),
                       key=lambda s: int(s[5:]))
        return names

    def prove(self) -> list[Step]:
        sc = self.sc
        n, m = sc.n, sc.m
        wires = self.comparator_wires()
        t0 = time.perf_counter()
        if not wires:
            return [Step("datapath.structure", "the network netlist has comparator cut points",
                         "netlist", False, 0.0, "no 1-bit wires sel_c<p> in the Verilog")]
        # pass 1: read the comparator list back (all comparator outputs cut and held at 0)
        g = cut_aig(sc, self.work / "read", wires, "", _top(sc, "", ""))
        missing = [w for w in wires if f"dut.{w}" not in g.outputs]
        if missing:
            return [Step("datapath.structure", "every comparator output is a gate of the "
                         "netlist", "netlist", False, time.perf_counter() - t0,
                         f"comparator wires {missing[:5]} are constant or unconnected: the "
                         "network does not compare there")]
        outs = {w: g.outputs[f"dut.{w}"][0] for w in wires}
        ins = {w: outs[w] >> 1 for w in wires}
        if any(ins[w] not in g.ands for w in wires) or len(set(ins.values())) != len(wires):
            return [Step("datapath.structure", "comparator outputs are distinct gates",
                         "netlist", False, time.perf_counter() - t0,
                         "a sel_c<p> wire is not driven by its own gate")]
        kids = {w: g.ands[ins[w]] for w in wires}
        g = g.cut(list(outs.values()))
        rng = random.Random(2)
        groups = _random_groups(sc, 256, rng)
        xs = _transpose(groups, sc.i.width)
        vals = _bind_inputs(g, "x", xs)
        for w in wires:
            vals[ins[w]] = -1 if outs[w] & 1 else 0  # every comparator wire reads 0
        # the stripped function (no balance check: the cut inputs sit at several depths)
        roots = [k for w in wires for k in kids[w]] + g.outputs["o"]
        sub, _ = g.strip(roots, check=False)
        res = g.evaluate({k: v for k, v in vals.items() if k not in g.latches}, roots, sub)
        cvals = []
        for k, w in enumerate(wires):
            v = res[2 * k] & res[2 * k + 1]
            cvals.append(~v if outs[w] & 1 else v)
        res = cvals + res[2 * len(wires):]
        full = (1 << len(groups)) - 1
        keys = [self.keys(x) for x in groups]
        sig = {}
        for a in range(m):
            for b in range(m):
                if a != b:
                    sig[sum(1 << r for r, k in enumerate(keys) if self.outranks(k, a, b))] = (a, b)
        comps: dict[str, tuple[int, int]] = {}
        unknown = []
        for k, w in enumerate(wires):
            p = sig.get(res[k] & full)
            if p is None:
                unknown.append(w)
            else:
                comps[w] = p
        obits = res[len(wires):]
        idxf = sc.o.fields["index"]
        first = [(ob & 1) for ob in obits]
        o0 = sum(b << k for k, b in enumerate(first))
        survivors = sorted(set(idxf.unpack_lane(o0)))
        # order: a comparator depends on those whose cut inputs are in its cone
        support = {w: _support(g, kids[w][0], set(ins.values()), sub)
                   | _support(g, kids[w][1], set(ins.values()), sub) for w in wires}
        order = sorted(wires, key=lambda w: (len(support[w]), int(w[5:])))
        lst = [comps[w] for w in order if w in comps]
        t_read = time.perf_counter() - t0
        steps = []
        if unknown or len(survivors) != n:
            steps.append(Step("datapath.N1.readback", "comparator list read back",
                              "simulation of the cut netlist", False, t_read,
                              f"comparators {unknown[:5]} match no pair; survivors "
                              f"{survivors}"))
            return steps
        # N1: the read-back list selects the top N (0-1 principle)
        t0 = time.perf_counter()
        # c_p = "line a outranks line b" exchanges the records: the larger goes to b (hi)
        ok, checked, bad = check_selection_01(m, n, lst, survivors)
        steps.append(Step("datapath.N1.selection",
                          f"the {len(lst)} comparators read back from the netlist form a "
                          f"selection network: lines {survivors} receive the {n} largest of "
                          f"every input (0-1 principle, all {checked} weight-{n} 0-1 vectors)",
                          "exhaustive bit-sliced NumPy check", ok, time.perf_counter() - t0
                          + t_read, "" if ok else f"fails on the 0-1 input {bad}"))
        if not ok:
            return steps
        # N2: the netlist is the reference network of that list, for all comparator values
        t0 = time.perf_counter()
        steps.append(self._routing(wires, order, comps, survivors))
        steps[-1].seconds += time.perf_counter() - t0
        steps.append(Step("datapath.lemma", "N1 + N2 compose to the rule: a selection network "
                          "whose comparators exchange records by the strict total order "
                          "'outranks' (key descending, index ascending) delivers the top N "
                          "under that order (0-1 principle), which are exactly the elements of "
                          "rank < N", "proof on paper (Knuth, TAOCP 5.3.4)", True, 0.0))
        return steps

    def _routing(self, wires, order, comps, survivors) -> Step:
        sc, f = self.sc, self.f
        iw = sc.o.fields["index"].elem_width
        kw = f.key_width
        nc = len(order)
        ref = _network_reference(sc, [comps[x] for x in order], survivors)
        top = _top(sc, f", input [{nc - 1}:0] rc, output [{nc - 1}:0] ref_c, "
                       f"output [{sc.o.width - 1}:0] ref_o",
                   "  nmref_network rn(.i(x), .c(rc), .cout(ref_c), .o(ref_o));")
        g0 = cut_aig(sc, self.work / "route", wires, ref, top)
        outs = [g0.outputs[f"dut.{x}"][0] for x in order]
        ins = [lit >> 1 for lit in outs]
        kids = [g0.ands[v] for v in ins]
        g = g0.cut(outs)
        depth: dict[int, int] = {}
        subst: dict[int, int] = {}
        try:
            for k in range(nc):
                s, d = g.strip(list(kids[k]), depth)
                subst.update(s)
                depth[ins[k]] = d or 0
            s, d_o = g.strip(g.outputs["o"], depth)
            subst.update(s)
        except aigmod.AigError as exc:
            return Step("datapath.N2.structure", "routing", "register balance", False, 0.0,
                        str(exc))
        cnf = aigmod.Cnf()
        bind = {}
        for k in range(nc):
            v = cnf.new()
            bind[ins[k]] = -v if outs[k] & 1 else v
            bind[g.inputs["rc"][k] >> 1] = v
        xv = {lit >> 1: cnf.new() for lit in g.inputs["x"]}
        bind.update(xv)
        # each comparator's function is the AND of its gate's inputs, read in the cut graph
        # (upstream comparators at their free values); every use reads the free value
        kid_lits = [x for pair in kids for x in pair]
        lits = cnf.add_aig(g, kid_lits + g.outputs["ref_c"] + g.outputs["o"]
                           + g.outputs["ref_o"], bind=bind, subst=subst)
        c_lits = []
        for k in range(nc):
            a, b = lits[2 * k], lits[2 * k + 1]
            y = cnf.new()
            cnf.clauses += [[-y, a], [-y, b], [y, -a, -b]]
            c_lits.append(-y if outs[k] & 1 else y)
        lits = c_lits + lits[2 * nc:]
        dut_c, ref_c = lits[:nc], lits[nc: 2 * nc]
        dut_o, ref_o = lits[2 * nc: 2 * nc + sc.o.width], lits[2 * nc + sc.o.width:]
        model = _solve_diff(cnf, dut_c + dut_o, ref_c + ref_o)
        ok = model is None and d_o == sc.latency
        detail = (f"{nc} comparators, outputs {d_o} register(s) deep (sidecar latency "
                  f"{sc.latency}); records: key {kw} bits, index {iw} bits")
        if model is not None:
            x = aigmod.value_of(model, [xv[lit >> 1] for lit in g.inputs["x"]])
            cv = aigmod.value_of(model, [abs(bind[v]) for v in ins])
            bad = [order[k] for k in range(nc) if aigmod.value_of(model, [dut_c[k]])
                   != aigmod.value_of(model, [ref_c[k]])]
            detail = (f"with comparator values {cv:0{nc}b} (LSB = first): "
                      + (f"comparators {bad[:4]} differ from the reference cell; "
                         if bad else "")
                      + counterexample_text(sc, x, aigmod.value_of(model, dut_o),
                                            aigmod.value_of(model, ref_o)))
        return Step("datapath.N2.network",
                    "for all inputs and ALL values of the cut comparator outputs, every "
                    "comparator output equals the reference cell ('lo outranks hi', lower "
                    "index wins ties) on the records routed to it, and mask/values/index "
                    "equal the reference network of the read-back list (survivors sorted by "
                    "index, values = the routed raw elements)",
                    f"SAT miter (CaDiCaL), {cnf.nvars} vars", ok, 0.0, detail)


def _support(g: aigmod.Aig, lit: int, candidates: set[int], subst: dict[int, int]) -> set[int]:
    """Input variables among ``candidates`` in the (stripped) cone of ``lit``."""
    seen: set[int] = set()
    out: set[int] = set()
    stack = [lit >> 1]
    while stack:
        v = stack.pop()
        if v in seen or v == 0:
            continue
        seen.add(v)
        if v in candidates:
            out.add(v)
        elif v in subst:
            stack.append(subst[v] >> 1)
        elif v in g.ands:
            stack += [a >> 1 for a in g.ands[v]]
    return out


def _network_reference(sc: Sidecar, comps: list[tuple[int, int]], survivors: list[int]) -> str:
    """``nmref_network(i, c, cout, o)``: records (key, raw, index) per line; comparator p on
    lines (a, b) computes cout[p] = a outranks b, and when c[p] is high the records of a and
    b are exchanged (a no-exchange value of 0, as read back). The survivors are then placed
    by the rule's compaction (slot s = the survivor with s survivors of smaller index)."""
    f = get_format(sc.fmt)
    m, n, w = sc.m, sc.n, f.width
    kw = f.key_width
    iw = sc.o.fields["index"].elem_width
    data = sc.i.fields["data"]
    mf, vf, xf = (sc.o.fields[k] for k in ("mask", "values", "index"))
    nc = len(comps)
    L = [f"module nmref_network(input [{sc.i.width - 1}:0] i, input [{nc - 1}:0] c, "
         f"output [{nc - 1}:0] cout, output [{sc.o.width - 1}:0] o);"]
    cur = {}
    for j in range(m):
        lo = data.offset + j * data.elem_width
        expr, _ = reference.key_expr(sc.fmt, f"x{j}")
        L.append(f"  wire [{w - 1}:0] x{j} = i[{lo + w - 1}:{lo}];")
        L.append(f"  wire [{kw - 1}:0] k0_{j} = {expr};")
        L.append(f"  wire [{w - 1}:0] r0_{j} = x{j};")
        L.append(f"  wire [{iw - 1}:0] n0_{j} = {iw}'d{j};")
        cur[j] = f"0_{j}"
    for p, (a, b) in enumerate(comps):
        A, B = cur[a], cur[b]
        L.append(f"  assign cout[{p}] = (k{A} > k{B}) || (k{A} == k{B} && n{A} < n{B});")
        for line, keep_, other in ((a, A, B), (b, B, A)):
            t = f"{p + 1}_{line}"
            for pre, width in (("k", kw), ("r", w), ("n", iw)):
                L.append(f"  wire [{width - 1}:0] {pre}{t} = c[{p}] ? {pre}{other} : "
                         f"{pre}{keep_};")
            cur[line] = t
    sv = [cur[s] for s in survivors]
    rw = max(1, n.bit_length())
    for s_, S in enumerate(sv):
        terms = [f"{{{{{rw - 1}{{1'b0}}}}, (n{T} < n{S})}}" for T in sv if T != S] or ["0"]
        L.append(f"  wire [{rw}:0] pos{s_} = " + " + ".join(terms) + ";")
    for s in range(n):
        vt = " | ".join(f"({{{w}{{pos{k} == {s}}}}} & r{S})" for k, S in enumerate(sv))
        it = " | ".join(f"({{{iw}{{pos{k} == {s}}}}} & n{S})" for k, S in enumerate(sv))
        L.append(f"  assign o[{vf.offset + (s + 1) * w - 1}:{vf.offset + s * w}] = {vt};")
        L.append(f"  assign o[{xf.offset + (s + 1) * iw - 1}:{xf.offset + s * iw}] = {it};")
    for j in range(m):
        L.append(f"  assign o[{mf.offset + j}] = " + " | ".join(f"(n{S} == {iw}'d{j})"
                                                               for S in sv) + ";")
    used = set(range(mf.offset, mf.offset + m)) | set(range(vf.offset, vf.offset + n * w)) \
        | set(range(xf.offset, xf.offset + n * iw))
    for b in range(sc.o.width):
        if b not in used:
            L.append(f"  assign o[{b}] = 1'b0;")
    L.append("endmodule")
    return "\n".join(L) + "\n"


def prove_compositional(sc: Sidecar, work: Path) -> list[Step]:
    """The steps of ``sc``'s architecture, or one failed step naming the missing class."""
    cls = DECOMPOSITIONS.get(sc.arch)
    if cls is None:
        return [Step("datapath.compositional", "compositional datapath proof", "none",
                     False, 0.0, f"no decomposition for architecture {sc.arch!r} (have: "
                     f"{', '.join(DECOMPOSITIONS)}); add a Decomposition subclass in "
                     "verif/formal/compose.py")]
    return cls(sc, work).prove()
