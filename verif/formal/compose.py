"""Compositional datapath proofs: one :class:`Decomposition` per top-k architecture.

::

    netlist ─ expose -cut at the architecture's cut wires ─► pieces, each its own SAT miter
      rank:     keys ─► [beats] ─► popcount/threshold ─► [keep] ─► prefix + compaction ─► o
                 R1 each beats bit = key_a >= key_b for one pair a < b, every pair once
                 R2 keep = (rank < N), rank written over the beats bits, for ALL beats values
                 R3 mask, values, index = the compressed form of keep, whenever |keep| = N
      network:  keys ─► [c_p] ─► [max_p, min_p] ─► ... ─► [keep] ─► compaction ─► o
                 N1 the comparator list, read back from the netlist, selects the top N
                    (0-1 principle, exhaustive over the C(M, N) weight-N vectors)
                 N2 for ALL values of the cut wires (every comparator output, the records
                    (key, index) it sends on, keep): c_p = "lo outranks hi" on the records
                    the read-back list routes to it, max_p/min_p = the exchange by c_p,
                    keep_j = a survivor's record has index j (one SAT miter)
                 N3 as R3 (the compaction from keep)
      radix:    keys ─► [planes] ─► per step: [u, v] ─► count ─► [t_e] ─► [keep] ─► o
                 X1 plane b = bit b of every key;  X2 t_e = (#u_e >= N)
                 X3 u, v = the update rule (key bit, then inverted index bit)
                 X4 keep = last (above | tying);  X5 as R3 (one miter for X1-X4)
      flexible rank (topk_flex): keys ─► [beats] ─► group rank < n, served ─► [keep] ─► o
                 F1 as R1;  F2 keep from the beats for ALL their values and every pattern
                 F3 mask, slots, count, err, echoed pattern for EVERY keep vector

Cut wires are located by name in the emitted Verilog; what each one computes is identified by
simulation and then proven, so a wrong name or a wrong guess makes a step fail, never pass.
Pipeline registers are stripped with the balance check of :mod:`verif.formal.aig`, each cut
input taking the register depth of its cut output, so the composed depth is the latency.

Delay lines in distributed RAM are register chains here: :mod:`verif.formal.delaylines`
rewrites them (and proves the rewrite sound) before these classes see the netlist.

A new architecture plugs in with one subclass: ``arch`` (the sidecar's name; a unit other
than ``topk`` prefixes it, ``"topk_flex.rank"``), and
:meth:`Decomposition.prove` returning its steps (the helpers here build the pieces).
"""

from __future__ import annotations

import math
import random
import re
import time
from pathlib import Path
from typing import ClassVar

from nmsparse.contract.flex import MIN_M_LOG2
from nmsparse.contract.formats import get_format
from nmsparse.contract.sidecar import Sidecar

from . import aig as aigmod
from . import reference, tools
from .equiv import FLOW, counterexample_text, decode_payload
from .results import Step

__all__ = ["Decomposition", "DECOMPOSITIONS", "RankDecomposition", "NetworkDecomposition",
           "RadixDecomposition", "FlexRankDecomposition", "decomposition",
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

    def compaction_step(self, g: aigmod.Aig, keep_o: list[int], d_keep: int | None,
                        name: str) -> Step:
        """Mask, values and index from the cut keep bits ``keep_o`` (at register depth
        ``d_keep``), for all data and every keep vector with exactly N ones; ``g`` holds the
        reference ``nmref_compact`` fed by the input ``rk``."""
        from pysat.card import CardEnc, EncType

        sc, f = self.sc, self.f
        n, m, w = sc.n, sc.m, f.width
        iw = sc.o.fields["index"].elem_width
        g3 = g.cut(keep_o)
        keep_i = [lit >> 1 for lit in keep_o]
        t0 = time.perf_counter()
        try:
            sub3, d3 = g3.strip(g3.outputs["o"], {v: d_keep for v in keep_i})
        except aigmod.AigError as exc:
            return Step(name, "compaction", "register balance", False,
                        time.perf_counter() - t0, str(exc))
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
        return Step(name, f"mask = keep, values/index = the kept elements and positions in "
                    f"ascending order, for all data and every keep vector with exactly {n} "
                    "ones", "SAT with a cardinality constraint (CaDiCaL)", ok,
                    time.perf_counter() - t0, detail)

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
        beats_i = [lit >> 1 for lit in beats_o]

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
        steps.append(self.compaction_step(g, keep_o, d2, "datapath.R3.compaction"))
        if not steps[-1].passed:
            return steps
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
    for j in range(data.count):
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
        steps += self._cells(wires, order, comps, survivors)
        if not steps[-1].passed:
            return steps
        steps.append(Step("datapath.lemma", "N1-N3 compose to the rule: every cell sends its "
                          "two records on exchanged or not (N2), so the lines always hold a "
                          "permutation of the elements' (key, index) records and the survivors' "
                          f"indices are {n} distinct positions (N3's condition); the cells "
                          "exchange by the strict total order 'outranks' (key descending, index "
                          "ascending), so a selection network delivers the top N under that "
                          "order (0-1 principle, N1), which are exactly the elements of rank < N",
                          "proof on paper (Knuth, TAOCP 5.3.4)", True, 0.0))
        return steps

    def _cells(self, wires, order, comps, survivors) -> list[Step]:
        """N2 (every comparator, record and keep bit from its cut inputs) and N3 (the
        compaction from the keep bits)."""
        sc, f = self.sc, self.f
        m, n, w = sc.m, sc.n, f.width
        iw = sc.o.fields["index"].elem_width
        kw = f.key_width
        rw = kw + iw
        t0 = time.perf_counter()
        text = sc.verilog.read_text()
        have = set(re.findall(rf"^\s*wire \[{rw - 1}:0\] (sel_c\d+_(?:max|min));", text,
                              flags=re.M))
        # the reference routing of the read-back list: the record source of every line
        # (("in", j): element j's own record; ("w", name): the cut record wire name)
        cur: dict[int, tuple | None] = {j: ("in", j) for j in range(m)}
        plan = []
        for p, wire in enumerate(order):
            a, b = comps[wire]
            if cur[a] is None or cur[b] is None:
                return [Step("datapath.N2.structure", "every comparator reads live records",
                             "netlist", False, time.perf_counter() - t0,
                             f"{wire} (lines {a}, {b}) reads a line whose record the netlist "
                             "dropped")]
            mx = f"{wire}_max" if f"{wire}_max" in have else None
            mn = f"{wire}_min" if f"{wire}_min" in have else None
            plan.append((p, cur[a], cur[b], mx, mn))
            cur[b] = ("w", mx) if mx else None
            cur[a] = ("w", mn) if mn else None
        surv = [cur[s] for s in survivors]
        if any(x is None for x in surv):
            return [Step("datapath.N2.structure", "every survivor line holds a record",
                         "netlist", False, time.perf_counter() - t0,
                         f"survivor lines {survivors}: no record wire on some of them")]
        recs = [x for pl in plan for x in pl[3:] if x]
        slot = {name: t for t, name in enumerate(recs)}
        nc, nr = len(order), len(recs)
        ref = _cells_reference(sc, plan, surv, slot, nc) + reference.compaction_reference(m, n, w)
        data = sc.i.fields["data"]
        top = _top(sc, f""", input [{nc - 1}:0] rc, input [{nr * rw - 1}:0] rr,
    input [{m - 1}:0] rk, output [{nc - 1}:0] ref_c, output [{nr * rw - 1}:0] ref_r,
    output [{m - 1}:0] ref_keep, output [{n * w - 1}:0] ref_vals,
    output [{n * iw - 1}:0] ref_idx""",
                   f"""  nmref_cells rn(.i(x), .c(rc), .r(rr), .cout(ref_c), .rout(ref_r),
    .keep(ref_keep));
  nmref_compact rcp(.keep(rk), .x(x[{data.offset + data.width - 1}:{data.offset}]),
    .vals(ref_vals), .idx(ref_idx));""")
        # in topological order (a cut input's register depth is known before it is read)
        names = [x for p_, _a, _b, mx, mn in plan for x in (order[p_], mx, mn) if x] \
            + ["sel_keep"]
        g0 = cut_aig(sc, self.work / "cells", names, ref, top)
        outs = {x: g0.outputs.get(f"dut.{x}") for x in names}
        want_w = {**{x: 1 for x in order}, **{x: rw for x in recs}, "sel_keep": m}
        bad = [x for x in names if outs[x] is None or len(outs[x]) != want_w[x]]
        if bad:
            return [Step("datapath.N2.structure", "the network netlist has its record and keep "
                         "cut points", "netlist", False, time.perf_counter() - t0,
                         f"wires {bad[:4]} missing or of another width")]
        # cut every wire bit driven by a gate of its own; the others (a constant, a copy of
        # an earlier cut bit) stay functions of the cut bits and are checked the same way
        cut_lits, owner = [], {}
        for x in names:
            for lit in outs[x]:
                v = lit >> 1
                if v in g0.ands and v not in owner:
                    owner[v] = x
                    cut_lits.append(lit)
        g = g0.cut(cut_lits)
        depth: dict[int, int] = {}
        subst: dict[int, int] = {}

        def fn_roots(x: str) -> list[int]:
            return [r for lit in outs[x] for r in (g0.ands[lit >> 1] if lit >> 1 in owner
                                                    and lit >> 1 not in depth else (lit,))]
        try:
            for x in names:
                roots = fn_roots(x)
                sub, d = g.strip(roots, depth)
                subst.update(sub)
                for lit in outs[x]:
                    if lit >> 1 in owner and lit >> 1 not in depth:
                        depth[lit >> 1] = d or 0
        except aigmod.AigError as exc:
            return [Step("datapath.N2.structure", "records", "register balance", False,
                         time.perf_counter() - t0, f"at {x}: {exc}")]
        # the reference reads the cut values: its inputs are the DUT wires' literals
        for k, x in enumerate(order):
            subst[g.inputs["rc"][k] >> 1] = outs[x][0]
        for x in recs:
            for b in range(rw):
                subst[g.inputs["rr"][slot[x] * rw + b] >> 1] = outs[x][b]
        cnf = aigmod.Cnf()
        xv = {lit >> 1: cnf.new() for lit in g.inputs["x"]}
        dut_roots: list[int] = []
        # a cut bit's function is the AND of its gate's inputs; a bit left whole is its literal
        # (a bit on a gate cut for another bit of its own wire is that gate's function; a
        # bit on a gate cut for an earlier wire, such as an index bit that is its
        # comparator's output, is that wire's cut value: both are its value in the netlist)
        done: dict[int, int] = {}
        plan_bits = []
        for x in names:
            for lit in outs[x]:
                v = lit >> 1
                if owner.get(v) == x:
                    if v not in done:
                        done[v] = len(dut_roots)
                        dut_roots += list(g0.ands[v])
                    plan_bits.append(("and", lit, done[v]))
                else:
                    plan_bits.append(("lit", lit, len(dut_roots)))
                    dut_roots.append(lit)
        ref_roots = g.outputs["ref_c"] + g.outputs["ref_r"] + g.outputs["ref_keep"]
        # the reference's outputs in the order of names: c (order), records (recs), keep
        ref_by_name = {x: [g.outputs["ref_c"][k]] for k, x in enumerate(order)}
        ref_by_name.update({x: g.outputs["ref_r"][slot[x] * rw: (slot[x] + 1) * rw]
                            for x in recs})
        ref_by_name["sel_keep"] = g.outputs["ref_keep"]
        ref_flat = [r for x in names for r in ref_by_name[x]]
        lits = cnf.add_aig(g, dut_roots + ref_roots, bind=xv, subst=subst)
        dut_l, ref_l = lits[: len(dut_roots)], lits[len(dut_roots):]
        pos = {r: k for k, r in enumerate(ref_roots)}
        dut_bits = []
        for kind, lit, at in plan_bits:
            if kind == "and":
                y = cnf.and_(dut_l[at], dut_l[at + 1])
                dut_bits.append(-y if lit & 1 else y)
            else:
                dut_bits.append(dut_l[at])
        ref_bits = [ref_l[pos[r]] for r in ref_flat]
        model = _solve_diff(cnf, dut_bits, ref_bits)
        d_keep = depth.get(outs["sel_keep"][0] >> 1)
        detail = (f"{nc} comparators, {nr} record wires ({rw} bits: key {kw}, index {iw}), "
                  f"{len(cut_lits)} cut bits; keep {d_keep} register(s) deep")
        if model is not None:
            at, diff = 0, []
            for x in names:
                k = len(outs[x])
                dv = aigmod.value_of(model, dut_bits[at: at + k])
                rv = aigmod.value_of(model, ref_bits[at: at + k])
                if dv != rv:
                    diff.append(f"{x}: netlist {dv:#x}, reference {rv:#x}")
                at += k
            xin = aigmod.value_of(model, [xv[lit >> 1] for lit in g.inputs["x"]])
            detail = ("for the input and cut values of the counterexample: "
                      + "; ".join(diff[:4]) + "\n"
                      + "\n".join(f"  input  {t}" for t in decode_payload(sc, "i", xin))
                      + "\n" + detail)
        steps = [Step("datapath.N2.cells",
                      "for all inputs and ALL values of the cut wires (comparator outputs, the "
                      "records after every comparator, keep): each comparator output = 'lo "
                      "outranks hi' (key descending, lower index wins ties) on the records the "
                      "read-back list routes to it, each record = the exchange by that "
                      "comparator, and keep bit j = some survivor line's record has index j",
                      f"SAT miter (CaDiCaL), {cnf.nvars} vars", model is None,
                      time.perf_counter() - t0, detail)]
        if model is None:
            steps.append(self.compaction_step(g0, outs["sel_keep"], d_keep,
                                              "datapath.N3.compaction"))
        return steps


class RadixDecomposition(Decomposition):
    """``radix``: cut at the key bit planes (``sel_plane<b>``), every step's threshold bit
    (``sel_thr<e>``) and per-element state (``sel_s<e>_u<j>``, ``sel_s<e>_v<j>``), and the keep
    bits (``sel_keep``)."""

    arch = "radix"

    def prove(self) -> list[Step]:
        sc, f = self.sc, self.f
        n, m, w = sc.n, sc.m, f.width
        kw = f.key_width
        iw = sc.o.fields["index"].elem_width
        nsteps = kw + iw
        data = sc.i.fields["data"]
        planes = [f"sel_plane{b}" for b in range(kw)]
        thr = [f"sel_thr{e}" for e in range(nsteps)]
        uw = {(e, j): f"sel_s{e}_u{j}" for e in range(1, nsteps) for j in range(m)}
        vw = {(e, j): f"sel_s{e}_v{j}" for e in range(1, nsteps) for j in range(m)}
        wires = planes + thr + list(uw.values()) + list(vw.values()) + ["sel_keep"]
        mods = [f"module nmref_planes(input [{sc.i.width - 1}:0] i, "
                f"output [{kw * m - 1}:0] p);"]
        for j in range(m):
            lo = data.offset + j * data.elem_width
            expr, _ = reference.key_expr(sc.fmt, f"x{j}")
            mods.append(f"  wire [{w - 1}:0] x{j} = i[{lo + w - 1}:{lo}];")
            mods.append(f"  wire [{kw - 1}:0] k{j} = {expr};")
            for b in range(kw):
                mods.append(f"  assign p[{b * m + j}] = k{j}[{b}];")
        mods.append("endmodule")
        cw = max(1, m.bit_length())
        mods.append(f"module nmref_thr(input [{m - 1}:0] u, output t);")
        mods.append(f"  wire [{cw}:0] c = " + " + ".join(
            f"{{{{{cw}{{1'b0}}}}, u[{j}]}}" for j in range(m)) + ";")
        mods.append(f"  assign t = c >= {n};\nendmodule")
        modules = "\n".join(mods) + "\n" + reference.compaction_reference(m, n, w)
        top = _top(sc, f""", input [{nsteps * m - 1}:0] ru, input [{m - 1}:0] rk,
    output [{kw * m - 1}:0] ref_p, output [{nsteps - 1}:0] ref_t,
    output [{n * w - 1}:0] ref_vals, output [{n * iw - 1}:0] ref_idx""",
                   "  nmref_planes rp(.i(x), .p(ref_p));\n"
                   + "".join(f"  nmref_thr rt{e}(.u(ru[{(e + 1) * m - 1}:{e * m}]), "
                             f".t(ref_t[{e}]));\n" for e in range(nsteps))
                   + f"  nmref_compact rc(.keep(rk), .x(x[{data.offset + data.width - 1}:"
                   f"{data.offset}]), .vals(ref_vals), .idx(ref_idx));")
        t0 = time.perf_counter()
        g0 = cut_aig(sc, self.work, wires, modules, top)
        t_build = time.perf_counter() - t0
        missing = [x for x in wires if f"dut.{x}" not in g0.outputs]
        if missing:
            return [Step("datapath.structure", "the radix netlist has its cut points",
                         "netlist", False, t_build, f"wires {missing[:5]} are not in the netlist"
                         " (constant, unconnected or renamed)")]
        lit = {x: g0.outputs[f"dut.{x}"] for x in wires}
        # the cut nodes in dependency order: planes, then per step u/v and the threshold
        plane = {(b, j): lit[planes[b]][j] for b in range(kw) for j in range(m)}
        order: list[list[int]] = [[plane[b, j] for b in range(kw) for j in range(m)]]
        u_of = {(0, j): plane[kw - 1, j] for j in range(m)}
        v_of: dict[tuple[int, int], int | None] = {(0, j): None for j in range(m)}
        for e in range(nsteps):
            if e:
                for j in range(m):
                    u_of[e, j], v_of[e, j] = lit[uw[e, j]][0], lit[vw[e, j]][0]
                # v first: the netlist may compute u from the named v (u = A | (v & bit))
                order.append([lit[vw[e, j]][0] for j in range(m)] + [u_of[e, j]
                                                                     for j in range(m)])
            order.append([lit[thr[e]][0]])
        order.append(lit["sel_keep"])
        cut_lits = [x for grp in order for x in grp]
        # a plane bit may be an input bit itself (|x| and x share their LSB): such bits
        # are not cut, their value is the input's
        fixed = {x for x in cut_lits if x >> 1 not in g0.ands}
        gates = [x for x in cut_lits if x not in fixed]
        vs = [x >> 1 for x in gates]
        if len(set(vs)) != len(vs) or any(x >> 1 not in g0.input_vars and x > 1
                                          for x in fixed):
            return [Step("datapath.structure", "the cut bits are distinct gates", "netlist",
                         False, t_build, "two cut bits share a gate, or one is a register "
                         "output: the decomposition does not apply")]
        kids = {v: g0.ands[v] for v in vs}
        g = g0.cut(gates)
        depth: dict[int, int] = {}
        subst: dict[int, int] = {}
        t0 = time.perf_counter()
        at: int | None = None  # the cut bit whose cone is being stripped
        try:
            for grp in order:
                for at in grp:
                    if at not in fixed:
                        s_, d = g.strip(list(kids[at >> 1]), depth)
                        subst.update(s_)
                        depth[at >> 1] = d or 0
            at = None
            s_, d_o = g.strip(g.outputs["o"], depth)
            subst.update(s_)
        except aigmod.AigError as exc:
            where = next((nm for nm in wires if at in lit[nm]), "the outputs")
            return [Step("datapath.structure", "register balance of the radix pieces",
                         "register depth of every AIG gate", False, t_build,
                         f"{exc} (in the cone of {where})")]
        # X1-X4: every cut bit equals its reference over the cut bits it reads
        cnf = aigmod.Cnf()
        bind: dict[int, int] = {}
        val: dict[int, int] = {}  # cut literal -> CNF literal of the wire's value
        xv = {q >> 1: cnf.new() for q in g.inputs["x"]}
        bind.update(xv)
        for x in cut_lits:
            if x in fixed:
                val[x] = (1 if x & 1 else -1) if x < 2 else (-xv[x >> 1] if x & 1
                                                             else xv[x >> 1])
                continue
            v = cnf.new()
            bind[x >> 1] = -v if x & 1 else v
            val[x] = v
        for e in range(nsteps):
            for j in range(m):
                bind[g.inputs["ru"][e * m + j] >> 1] = val[u_of[e, j]]
        kid_lits = [k for x in gates for k in kids[x >> 1]]
        refs = g.outputs["ref_p"] + g.outputs["ref_t"]
        out = cnf.add_aig(g, kid_lits + refs, bind=bind, subst=subst)
        dut: dict[int, int] = {x: val[x] for x in fixed}
        for k, x in enumerate(gates):
            y = cnf.and_(out[2 * k], out[2 * k + 1])
            dut[x] = -y if x & 1 else y
        ref_p = out[2 * len(gates): 2 * len(gates) + kw * m]
        ref_t = out[2 * len(gates) + kw * m:]
        pairs: list[tuple[str, int, int]] = []  # (what, dut, reference)
        for b in range(kw):
            for j in range(m):
                pairs.append((f"plane {b} element {j} (key bit {b})", dut[plane[b, j]],
                              ref_p[b * m + j]))
        for e in range(nsteps):
            pairs.append((f"threshold of step {e}", dut[lit[thr[e]][0]], ref_t[e]))
            if e:
                t = val[lit[thr[e - 1]][0]]
                for j in range(m):
                    x, y = val[u_of[e - 1, j]], v_of[e - 1, j]
                    yv = 1 if y is None else val[y]
                    if e < kw:
                        bit = val[plane[kw - 1 - e, j]]
                    else:
                        bb = iw - 1 - (e - kw)
                        bit = -1 if (j >> bb) & 1 else 1
                    tie = cnf.and_(yv, -cnf.xor(x, t))
                    above = cnf.and_(x, -cnf.and_(yv, t))
                    # the cut v_e (proven = tie just below) stands for C in u
                    pairs.append((f"u of element {j} at step {e}", dut[u_of[e, j]],
                                  cnf.or_([above, cnf.and_(val[lit[vw[e, j]][0]], bit)])))
                    pairs.append((f"v of element {j} at step {e}", dut[lit[vw[e, j]][0]], tie))
        t = val[lit[thr[nsteps - 1]][0]]
        for j in range(m):
            x, yv = val[u_of[nsteps - 1, j]], val[v_of[nsteps - 1, j]]
            keep = cnf.or_([cnf.and_(x, -cnf.and_(yv, t)), cnf.and_(yv, -cnf.xor(x, t))])
            pairs.append((f"keep of element {j}", dut[lit["sel_keep"][j]], keep))
        model = _solve_diff(cnf, [p[1] for p in pairs], [p[2] for p in pairs])
        steps = []
        detail = (f"{kw} key planes, {nsteps} steps ({kw} key bits, {iw} index bits), "
                  f"{len(pairs)} cut bits; keep {depth[lit['sel_keep'][0] >> 1]} register(s)"
                  " deep")
        if model is not None:
            bad = [p[0] for p in pairs if aigmod.value_of(model, [p[1]])
                   != aigmod.value_of(model, [p[2]])]
            xval = aigmod.value_of(model, [xv[q >> 1] for q in g.inputs["x"]])
            detail = (f"differs from the reference: {', '.join(bad[:4])}\n"
                      + "\n".join(f"  input  {t_}" for t_ in decode_payload(sc, "i", xval)))
        steps.append(Step("datapath.X1-X4.steps",
                          "for all inputs and ALL values of the other cut bits: plane b of "
                          "element j = bit b of key(x_j) (X1); each step's threshold t_e = "
                          f"(#ones of u_e >= {n}) (X2); u_e,j = A | (C & bit) and v_e,j = C "
                          "with C = v & (u == t_(e-1)), A = u & ~(v & t_(e-1)), bit = key "
                          "bit (steps < key width) or inverted index bit (X3); keep_j = the "
                          "last A | C (X4)", f"one SAT miter (CaDiCaL), {cnf.nvars} vars",
                          model is None, time.perf_counter() - t0 + t_build, detail))
        if model is not None:
            return steps
        steps.append(self.compaction_step(g0, lit["sel_keep"],
                                          depth[lit["sel_keep"][0] >> 1],
                                          "datapath.X5.compaction"))
        if d_o != sc.latency and steps[-1].passed:
            steps[-1].passed = False
            steps[-1].detail += f"; outputs {d_o} deep, sidecar latency {sc.latency}"
        steps.append(Step("datapath.lemma", "X1-X5 compose to the rule: with extended keys "
                          "(key, inverted index), all distinct, after step e A = the elements "
                          "whose first e+1 extended-key bits exceed those of the N-th largest "
                          "extended key T and C = those equal to them (induction on e: t_e is "
                          "bit e of T because #A + #(C with bit e set) >= N exactly when T has "
                          "it); after the last bit C = {the element of T}, so keep = A | C = "
                          f"the {n} largest extended keys = rank < {n}, exactly {n} ones (X5's "
                          "condition)", "proof on paper (radix select, MSB first)", True, 0.0))
        return steps


class FlexRankDecomposition(Decomposition):
    """Runtime-flexible ``rank`` (DESIGN.md section 5): cut at the W(W-1)/2 comparison bits
    (``fsel_beats``) and the W keep bits (``fsel_keep``)."""

    arch = "topk_flex.rank"

    def _ok(self, ml: str, n: str) -> str:
        """Verilog: the pattern (m_log2 = ``ml``, N = ``n``) is served (contract.flex)."""
        sc = self.sc
        lw = sc.w.bit_length() - 1
        return (f"(({ml}) >= {MIN_M_LOG2} && ({ml}) <= {lw} && ({n}) != 0 && ({n}) < "
                f"(32'd1 << ({ml})) && ({n}) * (32'd{sc.w} >> ({ml})) <= {sc.max_kept})")

    def _references(self, pairs: list[tuple[int, int]]) -> str:
        sc, f = self.sc, self.f
        W, S, w = sc.w, sc.max_kept, f.width
        lw = W.bit_length() - 1
        fi, fo = sc.i.fields, sc.o.fields
        mlw, nw = fi["m_log2"].elem_width, fi["n"].elem_width
        pos = {p: t for t, p in enumerate(pairs)}
        L = [f"module nmref_fkeep(input [{len(pairs) - 1}:0] b, input [{mlw - 1}:0] ml, "
             f"input [{nw - 1}:0] n, output [{W - 1}:0] keep);",
             f"  wire ok = {self._ok('ml', 'n')};"]
        for j in range(W):
            terms = []
            for i in range(W):
                if i == j:
                    continue
                h = (i ^ j).bit_length() - 1
                beat = f"b[{pos[i, j]}]" if i < j else f"~b[{pos[j, i]}]"
                terms.append(f"{{{{{lw}{{1'b0}}}}, ((ml > {h}) & {beat})}}")
            L.append(f"  wire [{lw}:0] r{j} = " + " + ".join(terms) + ";")
            L.append(f"  assign keep[{j}] = ok && (r{j} < n);")
        L.append("endmodule")
        data = fi["data"]
        L.append(f"module nmref_fout(input [{W - 1}:0] keep, input [{sc.i.width - 1}:0] i, "
                 f"output [{sc.o.width - 1}:0] o);")
        ml = f"i[{fi['m_log2'].offset + mlw - 1}:{fi['m_log2'].offset}]"
        nn = f"i[{fi['n'].offset + nw - 1}:{fi['n'].offset}]"
        L.append(f"  wire [{mlw - 1}:0] ml = {ml};")
        L.append(f"  wire [{nw - 1}:0] n = {nn};")
        L.append(f"  wire ok = {self._ok('ml', 'n')};")
        rw = lw + 1
        for j in range(W):
            lo = data.offset + j * data.elem_width
            L.append(f"  wire [{w - 1}:0] x{j} = i[{lo + w - 1}:{lo}];")
            terms = [f"{{{{{rw}{{1'b0}}}}, keep[{q}]}}" for q in range(j)] or ["0"]
            L.append(f"  wire [{rw}:0] before{j} = " + " + ".join(terms) + ";")
        used: set[int] = set()

        def put(field: str, k: int, expr: str) -> None:
            fl = fo[field]
            lo = fl.offset + k * fl.elem_width
            L.append(f"  assign o[{lo + fl.elem_width - 1}:{lo}] = {expr};")
            used.update(range(lo, lo + fl.elem_width))

        for j in range(W):
            put("mask", j, f"keep[{j}]")
        iw = fo["index"].elem_width
        for s_ in range(S):
            put("values", s_, " | ".join(f"({{{w}{{keep[{j}] && before{j} == {s_}}}}} & x{j})"
                                         for j in range(W)))
            put("index", s_, " | ".join(f"({{{iw}{{keep[{j}] && before{j} == {s_}}}}} & "
                                        f"{iw}'d{j})" for j in range(W)))
        cwid = fo["count"].elem_width
        put("count", 0, f"ok ? n * (32'd{W} >> ml) : {cwid}'d0")
        put("m_log2", 0, "ml")
        put("n", 0, "n")
        put("err", 0, "~ok")
        for b in range(sc.o.width):
            if b not in used:
                L.append(f"  assign o[{b}] = 1'b0;")
        L.append("endmodule")
        return _pairs_reference(sc, pairs) + "\n".join(L) + "\n"

    def prove(self) -> list[Step]:
        sc = self.sc
        W = sc.w
        pairs = [(a, b) for a in range(W) for b in range(a + 1, W)]
        fi = sc.i.fields
        mlw, nw = fi["m_log2"].elem_width, fi["n"].elem_width
        top = _top(sc, f""", input [{len(pairs) - 1}:0] rb, input [{W - 1}:0] rk,
    output [{len(pairs) - 1}:0] ref_ge, output [{W - 1}:0] ref_keep,
    output [{sc.o.width - 1}:0] ref_o""", f"""  nmref_pairs rp(.i(x), .b(ref_ge));
  nmref_fkeep rfk(.b(rb), .ml(x[{fi['m_log2'].offset + mlw - 1}:{fi['m_log2'].offset}]),
    .n(x[{fi['n'].offset + nw - 1}:{fi['n'].offset}]), .keep(ref_keep));
  nmref_fout rfo(.keep(rk), .i(x), .o(ref_o));""")
        t0 = time.perf_counter()
        g = cut_aig(sc, self.work, ["fsel_beats", "fsel_keep"], self._references(pairs), top)
        t_build = time.perf_counter() - t0
        beats_o, keep_o = g.outputs.get("dut.fsel_beats"), g.outputs.get("dut.fsel_keep")
        if beats_o is None or keep_o is None or len(beats_o) != len(pairs) \
                or len(keep_o) != W or len({q >> 1 for q in beats_o + keep_o}) != \
                len(beats_o) + len(keep_o) or any(q >> 1 not in g.ands
                                                  for q in beats_o + keep_o):
            return [Step("datapath.structure", "the flexible rank netlist has its cut points",
                         "netlist", False, t_build, f"expected {len(pairs)} distinct gates "
                         f"fsel_beats and {W} fsel_keep")]
        steps = []

        def miter(name: str, claim: str, gg: aigmod.Aig, dut: list[int], ref: list[int],
                  depth: dict[int, int], bind_pairs: list[tuple[int, int]],
                  want_depth: int | None = None, per_bit: bool = False
                  ) -> tuple[Step, int | None]:
            t1 = time.perf_counter()
            try:
                sub, d = gg.strip(dut, depth)
            except aigmod.AigError as exc:
                return Step(name, claim, "register balance", False, time.perf_counter() - t1,
                            str(exc)), None
            cnf = aigmod.Cnf()
            bind = {}
            for dv, rv in bind_pairs:  # a cut gate and the reference input it feeds
                v = cnf.new()
                bind[dv >> 1] = -v if dv & 1 else v
                bind[rv >> 1] = v
            xv = {q >> 1: cnf.new() for q in gg.inputs["x"]}
            bind.update(xv)
            lits = cnf.add_aig(gg, dut + ref, bind=bind, subst=sub)
            a, b = lits[:len(dut)], lits[len(dut):]
            if per_bit:  # one call per output bit: each search stays inside one cone
                found = cnf.solve_each([[x_] for x_ in [cnf.xor(x_, y_) for x_, y_ in
                                                        zip(a, b, strict=True)]])
                model = None if found is None else found[1]
            else:
                model = _solve_diff(cnf, a, b)
            ok = model is None and (want_depth is None or d == want_depth)
            detail = f"{d} register(s) deep" + ("" if want_depth is None else
                                                f" (sidecar latency {want_depth})")
            if model is not None:
                x = aigmod.value_of(model, [xv[q >> 1] for q in gg.inputs["x"]])
                bad = [k for k in range(len(a)) if aigmod.value_of(model, [a[k]])
                       != aigmod.value_of(model, [b[k]])]
                cut = "".join(str(aigmod.value_of(model, [bind[dv >> 1]]) ^ (dv & 1))
                              for dv, _ in bind_pairs)
                detail = (f"bits {bad[:6]} differ; cut bits {cut or '-'}\n"
                          + "\n".join(f"  input  {t_}" for t_ in decode_payload(sc, "i", x)))
            how = f", {len(a)} calls" if per_bit else ""
            return Step(name, claim, f"SAT miter (CaDiCaL), {cnf.nvars} vars{how}", ok,
                        time.perf_counter() - t1, detail), d

        st, d1 = miter("datapath.F1.comparisons", f"comparison bit t of the {len(pairs)} "
                       "equals key_a >= key_b for the t-th pair a < b (a outranks b, lower "
                       "index wins ties), for all inputs", g, beats_o, g.outputs["ref_ge"],
                       {}, [], per_bit=True)
        st.seconds += t_build
        steps.append(st)
        if not st.passed:
            return steps
        g2 = g.cut(beats_o)
        st, d2 = miter("datapath.F2.group_rank", "keep_j = served(m_log2, n) & (#{i in j's "
                       "group of 2**m_log2 lanes: i outranks j} < n), the order read from "
                       "the comparison bits, for ALL their values and every pattern (served "
                       "or not)", g2, keep_o, g.outputs["ref_keep"],
                       {q >> 1: d1 or 0 for q in beats_o},
                       list(zip(beats_o, g.inputs["rb"], strict=True)), per_bit=True)
        steps.append(st)
        if not st.passed:
            return steps
        g3 = g.cut(keep_o)
        st, _ = miter("datapath.F3.compaction", "mask = keep, slot s = the value and lane of "
                      "the kept lane with s kept lanes before it (0 beyond), count = N x W/M "
                      "when served else 0, err = not served, m_log2 and n echoed: for all "
                      "data, every pattern and EVERY keep vector", g3, g3.outputs["o"],
                      g.outputs["ref_o"], {q >> 1: d2 or 0 for q in keep_o},
                      list(zip(keep_o, g.inputs["rk"], strict=True)), sc.latency)
        steps.append(st)
        if not st.passed:
            return steps
        steps.append(Step("datapath.lemma", "F1-F3 compose to DESIGN.md section 5: the "
                          "comparison bits of any input are those of a strict total order "
                          "(key descending, index ascending), so inside each group the ranks "
                          "are a permutation and keep is the rule of section 1 per group "
                          "(n per group when served, none otherwise)",
                          "proof on paper (rank(j) counts the lanes outranking j)", True, 0.0))
        return steps


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


def _cells_reference(sc: Sidecar, plan: list, surv: list, slot: dict[str, int],
                     nc: int) -> str:
    """``nmref_cells(i, c, r, cout, rout, keep)``: the cells of the read-back network on
    cut values. Line records are (key, index); element j's own record is (key of x_j, j); a
    cut record wire t is ``r[t]`` (key in the low bits, then the index). Comparator p
    (``plan``: p, source of lo, source of hi, its max and min wires) computes cout[p] = lo
    outranks hi and, with its cut value c[p] high, sends lo's record to hi (max) and hi's to
    lo (min); keep[j] = a survivor's record has index j."""
    f = get_format(sc.fmt)
    m = sc.m
    kw = f.key_width
    iw = sc.o.fields["index"].elem_width
    rw = kw + iw
    data = sc.i.fields["data"]
    nr = len(slot)
    lines = [f"module nmref_cells(input [{sc.i.width - 1}:0] i, input [{nc - 1}:0] c, "
             f"input [{nr * rw - 1}:0] r, output [{nc - 1}:0] cout, "
             f"output [{nr * rw - 1}:0] rout, output [{m - 1}:0] keep);"]
    for j in range(m):
        lo = data.offset + j * data.elem_width
        expr, _ = reference.key_expr(sc.fmt, f"x{j}")
        lines.append(f"  wire [{f.width - 1}:0] x{j} = i[{lo + f.width - 1}:{lo}];")
        lines.append(f"  wire [{kw - 1}:0] kin{j} = {expr};")

    def rec(src: tuple) -> tuple[str, str]:
        if src[0] == "in":
            return f"kin{src[1]}", f"{iw}'d{src[1]}"
        t = slot[src[1]] * rw
        return f"r[{t + kw - 1}:{t}]", f"r[{t + rw - 1}:{t + kw}]"

    for p, a, b, mx, mn in plan:
        (ka, na), (kb, nb) = rec(a), rec(b)
        lines.append(f"  assign cout[{p}] = ({ka} > {kb}) || ({ka} == {kb} && {na} < {nb});")
        for name, hi, lo_ in ((mx, (ka, na), (kb, nb)), (mn, (kb, nb), (ka, na))):
            if name:
                t = slot[name] * rw
                lines.append(f"  assign rout[{t + rw - 1}:{t}] = c[{p}] ? {{{hi[1]}, {hi[0]}}} "
                             f": {{{lo_[1]}, {lo_[0]}}};")
    for j in range(m):
        lines.append(f"  assign keep[{j}] = "
                     + " | ".join(f"({rec(src)[1]} == {iw}'d{j})" for src in surv) + ";")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _key(sc: Sidecar) -> str:
    return sc.arch if sc.unit == "topk" else f"{sc.unit}.{sc.arch}"


def decomposition(sc: Sidecar) -> type[Decomposition] | None:
    """The decomposition class of ``sc``'s unit and architecture, if there is one."""
    return DECOMPOSITIONS.get(_key(sc))


def prove_compositional(sc: Sidecar, work: Path) -> list[Step]:
    """The steps of ``sc``'s architecture, or one failed step naming the missing class."""
    key = _key(sc)
    cls = DECOMPOSITIONS.get(key)
    if cls is None:
        return [Step("datapath.compositional", "compositional datapath proof", "none",
                     False, 0.0, f"no decomposition for architecture {key!r} (have: "
                     f"{', '.join(DECOMPOSITIONS)}); add a Decomposition subclass in "
                     "verif/formal/compose.py")]
    return cls(sc, work).prove()
