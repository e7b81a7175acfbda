"""Render ``resources.json`` plus the regression and quality results as Markdown and HTML.

Every figure printed comes from a record; a missing results file shows "not run" and a
failed measurement shows "failed", never a number.
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from nmsparse.contract.patterns import pattern_order

from . import analysis

__all__ = ["Table", "tables", "summary", "markdown", "html_page", "plots", "NOT_RUN",
           "NOT_PLACED", "sweep_tables", "sweep_summary", "sweep_plots"]

NOT_RUN = "not run"
FAILED = "failed"
NOT_PLACED = "not placed"
DASH = "-"


@dataclass
class Table:
    """A titled table of already formatted cells."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""

    def to_markdown(self) -> str:
        out = [f"### {self.title}", ""]
        if self.note:
            out += [self.note, ""]
        if not self.rows:
            return "\n".join(out + ([] if self.note else ["(no modules)"]) + [""])
        out.append("| " + " | ".join(self.columns) + " |")
        out.append("|" + "|".join("---" if i == 0 else "--:" for i in range(len(self.columns)))
                   + "|")
        # a "|" inside a cell (|x| in a cost text) would end the cell: escape it
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows]
        return "\n".join(out + [""])

    def to_html(self) -> str:
        e = html.escape
        out = [f"<h3>{e(self.title)}</h3>"]
        if self.note:
            out.append(f"<p>{e(self.note)}</p>")
        if not self.rows:
            return "\n".join(out + ([] if self.note else ["<p>(no modules)</p>"]))
        out.append("<table><thead><tr>" + "".join(f"<th>{e(c)}</th>" for c in self.columns)
                   + "</tr></thead><tbody>")
        for r in self.rows:
            out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>")
        out.append("</tbody></table>")
        return "\n".join(out)


# ----------------------------------------------------------------------------- formatting
def _fmt(v: object, digits: int = 0) -> str:
    if v is None:
        return DASH
    if isinstance(v, float):
        if math.isnan(v):
            return DASH
        return f"{v:,.{digits}f}" if digits else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _get(rec: Mapping, section: str, key: str):
    sec = rec.get(section)
    return None if not sec else sec.get(key)


def _why(error: str) -> str:
    """The reason of a failed measurement in a few words (the step and the limit or exit
    code), for the summary line; the full message stays in resources.json."""
    first = error.splitlines()[0]
    m = re.search(r": (\S.*?) (did not finish in [\d.]+ s|failed with exit code -?\d+)", first)
    return f"{m.group(1)} {m.group(2)}" if m else first[:80]


def _cell(rec: Mapping, section: str, key: str, digits: int = 0) -> str:
    if rec.get("error"):
        return FAILED
    if not rec.get(section):
        if section == "post_place" and rec.get("place_error"):
            return NOT_PLACED  # place and route did not finish in the time allowed
        return NOT_RUN  # not measured in this run (e.g. --no-place, --cached-only)
    return _fmt(_get(rec, section, key), digits)


def _ratio(a, b, digits: int = 2) -> str:
    if a is None or b is None or b == 0:
        return DASH
    return f"{a / b:.{digits}f}"


def _crosscheck_cells(rec: Mapping, cross: list[dict] | None) -> list[str]:
    if cross is None:
        return [NOT_RUN, NOT_RUN]
    mine = [c for c in cross if c.get("module") == rec["module"]]
    if not mine:
        return [NOT_RUN, NOT_RUN]
    groups = sum(int(c.get("groups") or 0) for c in mine)
    mism = sum(int(c.get("mismatches") or 0) for c in mine)
    return [_fmt(groups), _fmt(mism)]


# ----------------------------------------------------------------------------- tables
_SYNTH = [("LUT4", "post_synth", "LUT"), ("CCU2C", "post_synth", "CARRY"),
          ("PFUMX", "post_synth", "PFUMX"), ("L6MUX", "post_synth", "L6MUX"),
          ("FF", "post_synth", "FF")]


def _topk_table(recs: list[dict], cross) -> Table:
    t = Table(
        "Top-k selectors",
        ["module", "N:M", "fmt", "arch", "LUT4", "CCU2C", "PFUMX", "L6MUX", "FF",
         "COMB (placed)", "Fmax MHz", "transistors", "logic depth", "latency", "comparators",
         "net depth", "index bits/group", "groups checked", "mismatches", "proven",
         "synth+P&R s"],
        note="Post-synthesis ECP5 cells of the module alone (LUT4 ... FF); post-place figures "
             "(COMB, Fmax) of the module in a wrapper that registers every port; ASIC proxy "
             "(transistors, gates on the deepest combinational stage) from Yosys abc -g cmos2.",
    )
    for r in recs:
        t.rows.append([
            r["module"], r["pattern"], _fmt(r["fmt"]), _fmt(r["arch"]),
            *[_cell(r, s, k) for _, s, k in _SYNTH],
            _cell(r, "post_place", "COMB"), _cell(r, "post_place", "fmax_mhz", 1),
            _cell(r, "asic", "transistors"), _cell(r, "asic", "logic_depth"),
            _fmt(r["latency_cycles"]), _fmt(r["comparators"]), _fmt(r["network_depth"]),
            _fmt(r["index_bits_per_group"]), *_crosscheck_cells(r, cross), _proven(r),
            _runtime(r),
        ])
    return t


def _proven(r: Mapping) -> str:
    """What ``nmsparse prove`` proved for the module (reports/proofs.json)."""
    p = r.get("proven")
    return NOT_RUN if p is None else p


def _runtime(r: Mapping, key: str = "runtime_s") -> str:
    rt = r.get(key) or {}
    vals = [v for v in rt.values() if isinstance(v, (int, float))]
    return f"{sum(vals):.1f}" if vals else DASH


def _mac_table(recs: list[dict], cross) -> Table:
    t = Table(
        "MAC units (sparse MAC, sparse linear engine, dense baseline)",
        ["module", "unit", "N:M", "fmt", "K", "LUT4", "CCU2C", "PFUMX", "L6MUX", "FF", "DSP",
         "COMB (placed)", "Fmax MHz", "transistors", "logic depth", "latency", "multipliers",
         "comparators", "groups checked", "mismatches", "proven", "synth+P&R s", "CPU s"],
        note="DSP = MULT18X18D blocks. Latency counts from the group carrying `last` to the "
             "row's output. synth+P&R s: wall seconds; CPU s: user + system seconds of the "
             "tool processes (what the run costs on one core).",
    )
    for r in recs:
        t.rows.append([
            r["module"], r["unit"], r["pattern"], _fmt(r["fmt"]), _fmt(r["outputs"]),
            *[_cell(r, s, k) for _, s, k in _SYNTH], _cell(r, "post_synth", "DSP"),
            _cell(r, "post_place", "COMB"), _cell(r, "post_place", "fmax_mhz", 1),
            _cell(r, "asic", "transistors"), _cell(r, "asic", "logic_depth"),
            _fmt(r["latency_cycles"]), _fmt(r["multipliers"]), _fmt(r["comparators"]),
            *_crosscheck_cells(r, cross), _proven(r), _runtime(r), _runtime(r, "cpu_s"),
        ])
    return t


def _flex_table(recs: list[dict], cross) -> Table:
    t = Table(
        "Runtime-flexible units (pattern per transfer, DESIGN.md section 5)",
        ["module", "unit", "W lanes", "slots", "fmt", "LUT4", "CCU2C", "PFUMX", "L6MUX", "FF",
         "DSP", "COMB (placed)", "Fmax MHz", "transistors", "logic depth", "latency",
         "comparators", "multipliers", "groups checked", "mismatches", "synth+P&R s"],
        note="One unit serves every N:M with M = 4 .. W and N x W/M <= slots, the pattern "
             "changing on any clock; same flow as the tables above.",
    )
    for r in recs:
        t.rows.append([
            r["module"], r["unit"], _fmt(r.get("w")), _fmt(r.get("max_kept")), _fmt(r["fmt"]),
            *[_cell(r, s, k) for _, s, k in _SYNTH], _cell(r, "post_synth", "DSP"),
            _cell(r, "post_place", "COMB"), _cell(r, "post_place", "fmax_mhz", 1),
            _cell(r, "asic", "transistors"), _cell(r, "asic", "logic_depth"),
            _fmt(r["latency_cycles"]), _fmt(r["comparators"]), _fmt(r["multipliers"]),
            *_crosscheck_cells(r, cross), _runtime(r),
        ])
    return t


def _flex_cost_table(records) -> Table:
    t = Table(
        "Cost of flexibility: flexible selector vs the best fixed selectors",
        ["format", "flexible", "fixed (best LUT4)", "fixed copies for W lanes/clock",
         "LUT4 flex / fixed", "FF flex / fixed", "Fmax MHz flex / fixed",
         "transistors flex / fixed"],
        note="Fixed = the fixed top-k selector of that pattern and format with the fewest "
             "LUT4. Copies: W/M fixed selectors take the flexible unit's W lanes per clock; "
             "LUT4, FF and transistors of the fixed side are multiplied by that number, Fmax "
             "is not. Ratios in parentheses: flexible / fixed.",
    )
    for c in analysis.flexibility_cost(records):
        def pair(v, r, digits=0):
            return f"{_fmt(v[0], digits)} / {_fmt(v[1], digits)} ({_fmt(r, 2)})"

        t.rows.append([c.fmt, c.flex, f"{c.fixed} ({c.pattern})", _fmt(c.instances),
                       pair(c.lut, c.lut_ratio), pair(c.ff, c.ff_ratio),
                       pair(c.fmax, c.fmax_ratio, 1), pair(c.transistors, c.transistor_ratio)])
    return t


def _flex_lines(records) -> list[str]:
    """One sentence per format: the widest flexible selector against the best fixed 16:32
    and 8:16 selectors, and the issue's goal for int8."""
    lines = []
    costs = analysis.flexibility_cost(records)
    for fmt in dict.fromkeys(c.fmt for c in costs):
        mine = [c for c in costs if c.fmt == fmt]
        w = max(c.w for c in mine)
        parts = []
        for c in (c for c in mine if c.w == w):
            copies = "" if c.instances == 1 else f"{c.instances} x "
            parts.append(
                f"{_fmt(c.lut_ratio, 2)}x the LUT4, {_fmt(c.ff_ratio, 2)}x the FF, "
                f"{_fmt(c.fmax_ratio, 2)}x the Fmax and {_fmt(c.transistor_ratio, 2)}x the "
                f"transistors of {copies}{c.fixed}")
        if not parts:
            continue
        name = next(c.flex for c in mine if c.w == w)
        line = (f"Cost of flexibility ({fmt}): {name}, one unit for every N:M with M <= {w}, "
                f"takes " + "; ".join(parts) + ".")
        goal = next((c for c in mine if c.w == 32 and c.pattern == "16:32"), None)
        if fmt == "int8" and goal and goal.lut_ratio is not None:
            lut_ok = goal.lut_ratio <= 1.3
            fm_ok = goal.fmax_ratio is not None and goal.fmax_ratio >= 0.9
            line += (f" Goal (<= 1.3x LUT4, >= 0.9x Fmax of the best fixed 16:32): LUT4 "
                     f"{'met' if lut_ok else 'NOT met'} ({goal.lut_ratio:.2f}x), Fmax "
                     f"{'met' if fm_ok else 'NOT met'} ({_fmt(goal.fmax_ratio, 2)}x).")
        lines.append(line)
    return lines


def _savings_table(records) -> Table:
    t = Table(
        "Sparse vs dense (same M, K and format)",
        ["sparse module", "dense baseline", "N:M", "K", "LUT4 ratio", "COMB ratio (placed)",
         "transistor ratio", "DSP sparse/dense", "multipliers sparse/dense",
         "eff. MACs/cycle @50% (sparse / dense)", "eff. MACs/cycle per 1k transistors "
         "(sparse / dense)"],
        note="Ratios are sparse / dense (below 1 saves area). The linear engine includes its "
             "top-k selector; the sparse MAC takes already compressed values and indices. "
             "Effective MACs/cycle: products with a non-zero activation per clock when half "
             "of the activations are zero.",
    )
    for s in analysis.savings(records):
        t.rows.append([
            s["module"], s["dense"], s["pattern"], _fmt(s["outputs"]),
            _fmt(s["lut_ratio"], 2), _fmt(s["comb_ratio"], 2), _fmt(s["transistor_ratio"], 2),
            f"{_fmt(s['dsp'][0])} / {_fmt(s['dsp'][1])}",
            f"{_fmt(s['multipliers'][0])} / {_fmt(s['multipliers'][1])}",
            f"{_fmt(s['eff_macs_sparse'], 0)} / {_fmt(s['eff_macs_dense'], 0)}",
            f"{_fmt(s['eff_per_ktr_sparse'], 3)} / {_fmt(s['eff_per_ktr_dense'], 3)}",
        ])
    return t


def _family_cell(rec: Mapping, fam: str, section: str, key: str, digits: int = 0) -> str:
    if fam in (rec.get("family_errors") or {}):
        return FAILED
    sec = (rec.get(fam) or {}).get(section)
    if not sec:
        return NOT_RUN
    return _fmt(sec.get(key), digits)


def _families_table(recs: Sequence[dict]) -> Table:
    """Xilinx 7-series (post-synthesis estimates) and Lattice Nexus (placed) per module."""
    t = Table(
        "Second FPGA families: Xilinx 7-series (post-synthesis estimates) and Lattice Nexus",
        ["module", "Xilinx LUT6 (est.)", "Xilinx FF (est.)", "CARRY4 (est.)", "DSP48 (est.)",
         "MUXF7 (est.)", "Nexus LUT4", "Nexus CCU2", "Nexus FF", "Nexus DSP",
         "Nexus COMB (placed)", "Nexus Fmax MHz"],
        note="Xilinx: Yosys synth_xilinx -family xc7 of the module alone; there is no open "
             "Xilinx place and route here, so these are post-synthesis ESTIMATES (LUT6 = "
             "LUT1..LUT6 before Vivado's packing) and there is no Xilinx Fmax. Nexus: Yosys "
             "synth_nexus of the module alone, then nextpnr-nexus on LIFCL-40-9BG400C (seed "
             "1) with the module in a scan wrapper that drives every input from a register "
             "and captures every output (placed COMB includes the wrapper). Measured with "
             "`nmsparse report --families xilinx,nexus`; 'not run' = not measured yet.",
    )
    for r in recs:
        t.rows.append([
            r["module"],
            *[_family_cell(r, "xilinx", "post_synth", k)
              for k in ("LUT", "FF", "CARRY4", "DSP", "MUXF7")],
            *[_family_cell(r, "nexus", "post_synth", k) for k in ("LUT", "CARRY", "FF", "DSP")],
            _family_cell(r, "nexus", "post_place", "COMB"),
            _family_cell(r, "nexus", "post_place", "fmax_mhz", 1),
        ])
    return t


def _crosscheck_table(cross: list[dict] | None) -> Table:
    t = Table("RTL vs golden model (cross-check)",
              ["module", "N:M", "fmt", "arch", "groups", "mismatches", "groups/s", "seed",
               "activations"])
    if cross is None:
        t.note = f"{NOT_RUN}: no crosscheck.json (run `nmsparse crosscheck --json`)."
        return t
    for c in cross:
        t.rows.append([_fmt(c.get("module")), _fmt(c.get("pattern")), _fmt(c.get("fmt")),
                       _fmt(c.get("arch")), _fmt(c.get("groups")), _fmt(c.get("mismatches")),
                       _fmt(c.get("groups_per_second"), 0), _fmt(c.get("seed")),
                       _fmt(c.get("source"))])
    return t


def _hw_cells(q: Mapping, records: Sequence[dict] = ()) -> list[str]:
    """The hardware-cost cells of a quality row: kind and operations, then the measurement."""
    c = analysis.hardware_cost(q, records)
    cost = c.kind + (f": {c.per_token}" if c.per_token else "") + (f" ({c.note})" if c.note
                                                                    else "")
    measured = DASH if c.measured is None else (NOT_RUN if c.measured.startswith(NOT_RUN)
                                                else c.measured)
    return [cost, measured]


def _quality_table(quality: list[dict] | None, records: Sequence[dict] = ()) -> Table:
    t = Table("Model quality (perplexity)",
              ["N:M", "criterion", "mitigation", "weights", "perplexity", "vs dense", "tokens",
               "model", "text", "hardware cost (per token)", "hardware measured"])
    if quality is None:
        t.note = f"{NOT_RUN}: no quality.json (run `nmsparse quality --json`)."
        return t
    costs = analysis.shift_costs(records)
    measured = ("from this report's records: the S-PTS engine against the same engine "
                "without shift (post-synthesis LUT4/CARRY/FF/DSP, placed Fmax, ASIC-proxy "
                "transistors)" if costs else analysis.SPTS_NOT_RUN)
    t.note = ("Hardware cost: what the method adds to the N:M selector and sparse MAC, per "
              "token, with K inputs, O outputs, w activation bits. Measured cells of the "
              f"static shifts: {measured}.")
    dense = analysis.dense_ppl(quality)
    for q in quality:
        ppl = q.get("ppl")
        rel = (f"{(ppl / dense - 1) * 100:+.1f}%" if isinstance(ppl, (int, float)) and dense
               and not analysis.is_dense_quality(q) else DASH)
        t.rows.append([_fmt(q.get("pattern") or "dense"), _fmt(q.get("criterion")),
                       _fmt(q.get("mitigation")), _fmt(q.get("weight_pattern")),
                       _fmt(ppl, 3), rel, _fmt(q.get("tokens")), _fmt(q.get("model")),
                       _fmt(q.get("text")), *_hw_cells(q, records)])
    return t


def _overview_table(records: Sequence[dict], cross, quality) -> Table:
    """One row per pattern: every selector variant, the linear engine, quality, agreement."""
    pats = sorted({r["pattern"] for r in records if r.get("n") is not None}, key=pattern_order)
    variants = sorted({(r["fmt"], r["arch"]) for r in records if r["unit"] == "topk"},
                      key=lambda v: (str(v[0]) != "int8", str(v[0]), str(v[1])))
    has_linear = any(r["unit"] == "linear" for r in records)
    cols = ["N:M", "index bits/group"]
    cols += [f"top-k {f} {a}: LUT4 / Fmax" for f, a in variants]
    if has_linear:
        cols += ["linear engine: LUT4 / DSP / Fmax", "linear vs dense transistors"]
    cols += ["perplexity (vs dense)", "RTL vs golden mismatches"]
    t = Table("Overview by pattern", cols,
              note="LUT4 post-synthesis, Fmax in MHz post-route on LFE5U-85F; linear engine "
                   "= top-k selector + sparse MAC (int8, K outputs) against dense_mac of the "
                   "same M and K.")
    sav = {(s["unit"], s["pattern"]): s for s in analysis.savings(records)}
    best, dense = analysis.best_quality(quality), analysis.dense_ppl(quality)
    for pat in pats:
        rs = [r for r in records if r["pattern"] == pat]
        row = [pat, _fmt(next((r["index_bits_per_group"] for r in rs), None))]
        for f, a in variants:
            r = next((r for r in rs if r["unit"] == "topk" and r["fmt"] == f
                      and r["arch"] == a), None)
            row.append(DASH if r is None else
                       f"{_cell(r, 'post_synth', 'LUT')} / {_cell(r, 'post_place', 'fmax_mhz')}")
        if has_linear:
            r = next((r for r in rs if r["unit"] == "linear"), None)
            row.append(DASH if r is None else
                       f"{_cell(r, 'post_synth', 'LUT')} / {_cell(r, 'post_synth', 'DSP')} / "
                       f"{_cell(r, 'post_place', 'fmax_mhz')}")
            sv = sav.get(("linear", pat))
            row.append(_fmt(sv["transistor_ratio"], 2) if sv else DASH)
        if quality is None:
            row.append(NOT_RUN)
        elif pat in best:
            rel = f" ({(best[pat] / dense - 1) * 100:+.1f}%)" if dense else ""
            row.append(f"{best[pat]:.2f}{rel}")
        else:
            row.append(DASH)
        if cross is None:
            row.append(NOT_RUN)
        else:
            mine = [c for c in cross if c.get("pattern") == pat]
            row.append(_fmt(sum(int(c.get("mismatches") or 0) for c in mine)) if mine
                       else NOT_RUN)
        t.rows.append(row)
    return t


def tables(records: Sequence[dict], cross: list[dict] | None,
           quality: list[dict] | None) -> list[Table]:
    """All tables of the report, in order."""
    topk = [r for r in records if r["unit"] == "topk"]
    flex = [r for r in records if r.get("flexible")]
    mac = [r for r in records if r["unit"] != "topk" and not r.get("flexible")]
    out = [_overview_table(records, cross, quality)]
    if flex:
        out.append(_flex_cost_table(records))
    out += [_topk_table(topk, cross), _mac_table(mac, cross)]
    if flex:
        out.append(_flex_table(flex, cross))
    return out + [_savings_table(records), _families_table(records),
                  _crosscheck_table(cross), _quality_table(quality, records)]


# ----------------------------------------------------------------------------- engine sweep
def _pair(a: object, b: object) -> str:
    return f"{a} / {b}"


def _fmax_cell(p: analysis.EnginePoint) -> str:
    if p.fmax is not None:
        return f"{p.fmax:.1f}"
    if not p.fits:
        return f"does not fit ({p.multipliers} DSP > {analysis.DSP_CAPACITY})"
    return NOT_RUN if p.transistors is None else DASH


def _eng(v: float | None, scale: float = 1.0, digits: int = 0) -> str:
    return DASH if v is None else _fmt(v / scale, digits)


def _sweep_table(pairs: Sequence[analysis.EnginePair], lut4_per_dsp: float | None) -> Table:
    t = Table(
        "Sparse linear engine vs dense baseline across K (int8)",
        ["N:M", "weights", "K", "LUT4 sparse / dense", "CCU2C", "DSP", "FF", "target MHz",
         "Fmax MHz", "transistors", "transistor ratio", "eff. GMAC/s per 1k transistors",
         "eff. MACs/cycle per 1k transistors", "synth+P&R CPU s"],
        note="Pairs: nm_linear_<N>_<M>_int8_k<K> (selector included) against "
             "dense_mac_<M>_int8_k<K>, same MAC scheduler and target clock (target MHz: "
             "150, or with weights from memory and the skid buffer the highest clock from "
             "175 MHz down to 150 in 5 MHz steps that its delay models reach; "
             "gen.config.SWEEP_TARGETS_MHZ) (and, in pairs "
             "named ..._skid, the same output skid buffer: DESIGN.md 3); weights from "
             "memory: both read their own banks, transistors exclude the bank macros (the "
             "same bits as dense by position; with lane banks N (M-N+1) / M times them: see "
             "the memory table). Effective MACs at 50% activation sparsity: "
             "N x K per clock sparse, M x K / 2 dense. Points whose multipliers exceed the "
             f"{analysis.DSP_CAPACITY} MULT18X18D of the LFE5U-85F are synthesized but not "
             "placed (no Fmax); their ASIC figures stand. CPU s: user + system seconds of "
             "the Yosys and nextpnr processes (one core each; the wall time on a shared "
             "machine is longer).",
    )
    for q in pairs:
        s, d = q.sparse, q.dense
        e = q.eff_per_ktr
        c = q.eff_per_cycle_ktr
        t.rows.append([
            s.pattern, s.weights, _fmt(s.k), _pair(_eng(s.lut), _eng(d.lut)),
            _pair(_eng(s.carry), _eng(d.carry)), _pair(_eng(s.dsp), _eng(d.dsp)),
            _pair(_eng(s.ff), _eng(d.ff)), _pair(_eng(s.target_mhz), _eng(d.target_mhz)),
            _pair(_fmax_cell(s), _fmax_cell(d)),
            _pair(_eng(s.transistors), _eng(d.transistors)), _fmt(q.ratio("transistors"), 2),
            _pair(_eng(e[0], 1e9, 3), _eng(e[1], 1e9, 3)),
            _pair(_eng(c[0], 1, 3), _eng(c[1], 1, 3)),
            _pair(_eng(s.cpu_s, 1, 1), _eng(d.cpu_s, 1, 1)),
        ])
    return t


def _headline_table(pairs: Sequence[analysis.EnginePair], lut4_per_dsp: float | None) -> Table:
    how = (f"one MULT18X18D = {lut4_per_dsp:g} LUT4 (the same signed 8 x 8 product synthesized "
           "with synth_ecp5 -nodsp, bench/bench_dsp_lut4.py)" if lut4_per_dsp
           else "not run: no reports/engine_sweep/dsp_lut4.json (bench/bench_dsp_lut4.py)")
    t = Table(
        "Throughput per area: effective MACs/s at 50% sparsity",
        ["N:M", "weights", "K", "Fmax MHz sparse / dense", "eff. GMAC/s sparse / dense",
         "per 1k transistors", "gain", "per 1k LUT4-eq.", "gain"],
        note="Effective MACs/s = N x K x Fmax (sparse; the dense baseline M x K x Fmax / 2 "
             "useful), per 1k transistors (ASIC proxy) and per 1k LUT4 equivalents = LUT4 + "
             f"2 x CCU2C + DSP blocks, {how}. Gain = sparse / dense. Only placed points "
             "(an Fmax) have a figure. Neither counts the weight banks (block RAMs or macros; "
             f"{analysis.LANE_LABEL} stores N (M-N+1) / M copies of the weights: see the "
             "memory table).",
    )
    for q in pairs:
        s, d = q.sparse, q.dense
        if s.fmax is None and d.fmax is None:
            continue
        tr = q.eff_per_ktr
        lut = [p.eff_macs_per_s / le * 1e3 if p.eff_macs_per_s and le else None
               for p in (s, d) for le in [p.lut4_equivalents(lut4_per_dsp)]]
        t.rows.append([
            s.pattern, s.weights, _fmt(s.k), _pair(_fmax_cell(s), _fmax_cell(d)),
            _pair(_eng(s.eff_macs_per_s, 1e9, 2), _eng(d.eff_macs_per_s, 1e9, 2)),
            _pair(_eng(tr[0], 1e9, 3), _eng(tr[1], 1e9, 3)), _ratio(tr[0], tr[1]),
            _pair(_eng(lut[0], 1e9, 3), _eng(lut[1], 1e9, 3)), _ratio(lut[0], lut[1]),
        ])
    return t


def _break_even_table(records: Sequence[dict]) -> Table:
    t = Table(
        "Break-even K: where the engine (selector included) becomes smaller than dense",
        ["N:M", "weights", "metric", "sparse: c0 + c1 K", "dense: c0 + c1 K", "break-even K",
         "measured ratio by K", "smallest measured K below 1", "worst fit residual"],
        note="Least-squares lines through the measured points of each engine: c0 = the parts "
             "paid once (the selector, control), c1 = the parts paid per output (multipliers, "
             "weight multiplexers, adders, accumulators, and in the stream form the weights "
             "carried through the selector stages). Break-even K = (c0 sparse - c0 dense) / "
             "(c1 dense - c1 sparse); 'never' when c1 sparse >= c1 dense.",
    )
    for metric in ("transistors", "lut"):
        for b in analysis.break_even(records, metric):
            name = "transistors" if metric == "transistors" else "LUT4"
            t.rows.append([
                b.pattern, b.weights, name, f"{b.sparse[0]:,.0f} + {b.sparse[1]:,.0f} K",
                f"{b.dense[0]:,.0f} + {b.dense[1]:,.0f} K",
                "never" if b.k_star is None else f"{b.k_star:.1f}",
                ", ".join(f"K={k}: {r:.2f}" for k, r in sorted(b.ratios.items())),
                _fmt(b.first_measured), f"{b.worst_residual * 100:.1f}%",
            ])
    return t


def _memory_table(pairs: Sequence[analysis.EnginePair]) -> Table:
    t = Table(
        "Weights from memory: bits read per group and the bank layout",
        ["N:M", "weights", "K", "weight bits read per group sparse / dense", "read ratio",
         "banks x words x bits", "bits stored", "stored vs dense", "DP16KD sparse / dense",
         "LUT RAM (DPR16X4) sparse / dense"],
        note="memory: M banks, one per group position: bank j, word g holds the K weights of "
             "input feature g*M + j (DESIGN.md section 3.1); the kept mask enables the reads: "
             "N of the M banks per group (the dense baseline reads all M, the same banks), and "
             "an (M-N+1):1 multiplexer per weight bit gives each kept slot its weights. "
             f"{analysis.LANE_LABEL}: N banks, one per kept slot, each with the M-N+1 columns "
             "its slot can be given (N (M-N+1) / M copies of the weights), read at the kept "
             "index: the same N columns per group, no multiplexer. Transistors (the other "
             "tables) exclude the bank macros in both layouts: compare the bits stored here.",
    )
    for q in pairs:
        s, d = q.sparse, q.dense
        if s.source != "memory":
            continue
        stored = s.weight_bits_stored
        banks = s.weight_banks
        words = stored // (banks * s.k * 8) if stored else None
        t.rows.append([
            s.pattern, s.weights, _fmt(s.k), _pair(_eng(s.weight_bits_per_group),
                                                   _eng(d.weight_bits_per_group)),
            _fmt(_ratio_num(s.weight_bits_per_group, d.weight_bits_per_group), 2),
            f"{banks} x {_fmt(words)} x {s.k * 8}", _eng(stored),
            _fmt(_ratio_num(stored, d.weight_bits_stored), 2),
            _pair(_eng(s.bram), _eng(d.bram)), _pair(_eng(s.lutram), _eng(d.lutram)),
        ])
    return t


def _ratio_num(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def sweep_tables(records: Sequence[dict], lut4_per_dsp: float | None = None) -> list[Table]:
    """The engine-vs-dense tables (headline, K sweep, break-even, memory) of ``records``."""
    pairs = analysis.engine_pairs(records)
    if not pairs:
        return []
    out = [_headline_table(pairs, lut4_per_dsp), _sweep_table(pairs, lut4_per_dsp),
           _break_even_table(records)]
    if any(q.sparse.source == "memory" for q in pairs):
        out.append(_memory_table(pairs))
    return out


def sweep_summary(records: Sequence[dict], goal_k: int = 16, goal_ratio: float = 0.68,
                  goal_pattern: str = "8:16") -> list[str]:
    """Sentences on the engine vs dense: the K = 16 goal and the break-even K per pattern."""
    lines = []
    pairs = analysis.engine_pairs(records)
    points = analysis.engine_points(records)
    for q in pairs:
        s, d = q.sparse, q.dense
        if s.pattern != goal_pattern or s.k != goal_k:
            continue
        r = q.ratio("transistors")
        if r is None:
            continue
        def mhz(p: analysis.EnginePoint) -> str:
            cell = _fmax_cell(p)
            return f"{cell} MHz" if p.fmax is not None else (
                cell if not p.fits else "not placed")
        fm = f"Fmax {mhz(s)} vs {mhz(d)}" if s.fmax or d.fmax else "no Fmax"
        # a dense array too large for the device is compared with the clock of the largest
        # placed dense array of the same M and weight source (a smaller K: the same lanes,
        # fewer outputs, so a clock the K = goal_k array is not expected to exceed)
        proxy = None
        if d.fmax is None:
            placed = [p for p in points if not p.sparse and p.fmax and p.m == d.m
                      and p.fmt == d.fmt and p.weights == d.weights and p.k < d.k]
            proxy = max(placed, key=lambda p: p.k, default=None)
        ref = d.fmax if d.fmax is not None else (proxy.fmax if proxy else None)
        ok_area = r <= goal_ratio
        ok_fmax = s.fmax is not None and ref is not None and s.fmax >= ref
        if proxy is not None:
            fm += (f" (dense K = {d.k} does not fit the device; {proxy.module}, the largest "
                   f"placed dense array of M = {d.m}, runs at {proxy.fmax:.1f} MHz)")
        verdict = ("goal met" + (f" (Fmax against {proxy.module})" if proxy else "")
                   if ok_area and ok_fmax else
                   "goal not met" + (f" (area {r:.2f} > {goal_ratio})" if not ok_area else "")
                   + ("" if ok_fmax or ref is None or s.fmax is None
                      else " (Fmax below dense)")
                   + (" (engine not placed: Fmax not compared)" if s.fmax is None else "")
                   + (" (dense not placed: Fmax not compared)" if ref is None else ""))
        lines.append(f"{s.module} ({s.weights} weights) vs {d.module}: {r:.2f}x the "
                     f"transistors, {fm}; goal <= {goal_ratio}x at no lower Fmax: {verdict}.")
    for b in analysis.break_even(records):
        k = ("never (per-output cost not below dense)" if b.k_star is None else
             "smaller than dense at every K (the fitted lines cross below K = 1)"
             if b.k_star < 1 else f"K = {b.k_star:.1f}")
        lines.append(f"Break-even {b.pattern} ({b.weights} weights, transistors): {k}; measured "
                     + ", ".join(f"{r:.2f}x at K={kk}" for kk, r in sorted(b.ratios.items()))
                     + ".")
    return lines


# ----------------------------------------------------------------------------- summary
def summary(records: Sequence[dict], cross: list[dict] | None,
            quality: list[dict] | None) -> list[str]:
    """A few sentences drawn from the figures (each names the numbers it rests on)."""
    lines: list[str] = []
    ok = [r for r in records if not r.get("error") and r.get("post_synth")]
    failed = [f"{r['module']} ({_why(r['error'])})" for r in records if r.get("error")]
    missing = [r["module"] for r in records if not r.get("error") and not r.get("post_synth")]
    unplaced = [f"{r['module']} ({_why(r['place_error'])})" for r in ok
                if r.get("place_error")]
    lines.append(f"{len(ok)} of {len(records)} modules measured"
                 + (f"; failed: {', '.join(failed)}" if failed else "")
                 + (f"; not run: {', '.join(missing)}" if missing else "")
                 + (f"; synthesized only, {NOT_PLACED}: {', '.join(unplaced)}"
                    if unplaced else "") + ".")
    fb = [r["module"] for r in ok if r.get("synth_fallback")]
    if fb:
        lines.append(f"ECP5 LUT mapping by classic ABC (`abc -lut 4:7`) because Yosys 0.70's "
                     f"ABC9 step failed on them (an assertion, not a design error): "
                     f"{', '.join(fb)}.")
    lines += _flex_lines(ok)
    for c in analysis.arch_comparisons(ok):
        clock = (f"every architecture scheduled for {c.target_mhz:g} MHz"
                 if c.target_mhz else "the architectures scheduled differently")
        parts = [f"{a} {_fmt(fx, 0)} MHz, {_fmt(cb, 0)} COMB, {_fmt(ff, 0)} FF, "
                 f"{_fmt(tr, 0)} transistors"
                 for a, tr, fx, cb, ff in zip(c.archs, c.transistors, c.fmax, c.comb, c.ff,
                                              strict=True)]
        lines.append(f"Top-k {c.pattern} {c.fmt} ({clock}): " + "; ".join(parts)
                     + f". Smallest: {c.smallest}; fastest: {c.fastest or 'not placed'}.")
    for s in analysis.savings(ok):
        if s["transistor_ratio"] is not None:
            lines.append(
                f"{s['module']} vs {s['dense']}: {s['transistor_ratio']:.2f}x the transistors, "
                f"{_fmt(s['lut_ratio'], 2)}x the LUT4, {_fmt(s['mult_ratio'], 2)}x the "
                f"multipliers for the same useful MACs/cycle at 50% sparsity.")
    if cross is None:
        lines.append(f"RTL vs golden cross-check: {NOT_RUN}.")
    else:
        g, mm, runs = analysis.crosscheck_totals(cross)
        lines.append(f"RTL vs golden cross-check: {g:,} groups over {runs} runs, "
                     f"{mm:,} mismatches.")
    best = analysis.best_quality(quality)
    cost = analysis.selector_cost(ok)
    dense = analysis.dense_ppl(quality)
    if quality is None or not best:
        lines.append(f"Model quality: {NOT_RUN}; the quality-per-area trade-off needs "
                     "`reports/quality.json`.")
        if cost:
            cheapest = min(cost.items(), key=lambda kv: kv[1][1])
            lines.append(f"Cheapest int8 selector per input feature: {cheapest[0]} "
                         f"({cheapest[1][0]}, {cheapest[1][1]:,.0f} transistors per feature).")
        return lines
    pts = analysis.quality_vs_cost(ok, quality)
    front = analysis.pareto_front(pts)
    dtxt = f" (dense {dense:.3f})" if dense else ""
    for q in pts:
        rel = f", {(q.ppl / dense - 1) * 100:+.1f}% vs dense" if dense else ""
        lines.append(f"{q.pattern}: perplexity {q.ppl:.3f}{rel}; int8 selector {q.cost:,.0f} "
                     f"transistors per input feature ({q.arch}).")
    if front:
        lines.append("Pareto-optimal patterns (no other pattern is both cheaper per feature "
                     "and better in perplexity)" + dtxt + ": "
                     + ", ".join(q.pattern for q in front) + ".")
        bq = min(pts, key=lambda q: q.ppl)
        lines.append(f"Best quality: {bq.pattern}; cheapest selection per feature: "
                     f"{pts[0].pattern}.")
    return lines


# ----------------------------------------------------------------------------- plots
def plots(records: Sequence[dict], quality: list[dict] | None) -> dict[str, bytes]:
    """PNG plots: ``area_vs_m``, ``fmax_vs_m``, ``ppl_vs_area`` (missing data -> no plot)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: dict[str, bytes] = {}
    ok = [r for r in records if not r.get("error") and r["unit"] == "topk"]

    def series(metric: Callable[[Mapping], float | None]):
        s: dict[str, list[tuple[int, float]]] = {}
        for r in ok:
            v = metric(r)
            if v is not None:
                s.setdefault(f"{r['arch']} {r['fmt']}", []).append((r["m"], v))
        return {k: sorted(v) for k, v in sorted(s.items())}

    ms = sorted({r["m"] for r in ok})

    def m_axis(ax) -> None:
        ax.set_xscale("log", base=2)
        ax.set_xticks(ms, [str(m) for m in ms])
        ax.set_xlabel("M (group size; N = M/2)")

    def png(fig) -> bytes:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    lut = series(lambda r: _get(r, "post_synth", "LUT"))
    tr = series(lambda r: _get(r, "asic", "transistors"))
    if lut or tr:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, data, label in ((axes[0], lut, "LUT4 (ECP5, post-synthesis)"),
                                (axes[1], tr, "transistors (ASIC proxy)")):
            for name, pts in data.items():
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
            ax.set_yscale("log")
            m_axis(ax)
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle("Top-k selector area vs M")
        out["area_vs_m"] = png(fig)
    fmax = series(lambda r: _get(r, "post_place", "fmax_mhz"))
    if fmax:
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, pts in fmax.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        m_axis(ax)
        ax.set_ylabel("Fmax, MHz (LFE5U-85F, post-route)")
        ax.set_title("Top-k selector Fmax vs M")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        out["fmax_vs_m"] = png(fig)
    pts = analysis.quality_vs_cost(records, quality)
    if pts:
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([q.cost for q in pts], [q.ppl for q in pts], "o")
        for q in pts:
            ax.annotate(q.pattern, (q.cost, q.ppl), textcoords="offset points", xytext=(5, 5))
        front = analysis.pareto_front(pts)
        ax.step([q.cost for q in front], [q.ppl for q in front], where="post", alpha=0.5,
                label="Pareto front")
        dense = analysis.dense_ppl(quality)
        if dense:
            ax.axhline(dense, linestyle="--", color="gray", label=f"dense {dense:.2f}")
        ax.set_xlabel("int8 top-k selector transistors per input feature (cheapest arch)")
        ax.set_ylabel("perplexity (lower is better)")
        ax.set_title("Quality vs selection cost across patterns")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        out["ppl_vs_area"] = png(fig)
    return out


def sweep_plots(records: Sequence[dict]) -> dict[str, bytes]:
    """PNG plots against K per pattern, sparse vs dense: ``engine_area_vs_k`` (transistors,
    LUT4 equivalents not needed) and ``engine_eff_vs_k`` (effective MACs per area)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = analysis.engine_pairs(records)
    pats = sorted({q.sparse.pattern for q in pairs}, key=pattern_order)
    if not pats or len({q.sparse.k for q in pairs}) < 2:
        return {}

    def png(fig) -> bytes:
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    def curves(pat: str, value: Callable[[analysis.EnginePoint], float | None]):
        out: dict[str, list[tuple[int, float]]] = {}
        for q in pairs:
            if q.sparse.pattern != pat:
                continue
            for kind, pt in (("sparse", q.sparse), ("dense", q.dense)):
                v = value(pt)
                if v is not None:
                    out.setdefault(f"{kind}, {pt.weights} weights", []).append((pt.k, v))
        return {k: sorted(set(v)) for k, v in sorted(out.items())}

    style = {"sparse": "-", "dense": "--"}

    def draw(ax, data, ylabel: str, log: bool = True) -> None:
        for name, pts in data.items():
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style[name.split(",")[0]],
                    marker="o", label=name)
        ax.set_xscale("log", base=2)
        ks = sorted({p[0] for pts in data.values() for p in pts})
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("K (outputs)")
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if data:
            ax.legend(fontsize=7)

    out: dict[str, bytes] = {}
    fig, axes = plt.subplots(1, len(pats), figsize=(4.2 * len(pats), 3.8), squeeze=False)
    for ax, pat in zip(axes[0], pats, strict=True):
        draw(ax, curves(pat, lambda p: p.transistors), "transistors (ASIC proxy)")
        ax.set_title(f"{pat} engine vs dense {pat.split(':')[1]}")
    fig.suptitle("Area against K")
    out["engine_area_vs_k"] = png(fig)
    fig, axes = plt.subplots(2, len(pats), figsize=(4.2 * len(pats), 7.2), squeeze=False)
    for col, pat in enumerate(pats):
        draw(axes[0][col], curves(pat, lambda p: p.eff_macs_per_cycle / p.transistors * 1e3
                                  if p.transistors else None),
             "eff. MACs/cycle per 1k transistors", log=False)
        axes[0][col].set_title(f"{pat}: all points (ASIC proxy)")
        draw(axes[1][col], curves(pat, lambda p: p.eff_macs_per_s / p.transistors * 1e3 / 1e9
                                  if p.eff_macs_per_s and p.transistors else None),
             "eff. GMAC/s per 1k transistors", log=False)
        axes[1][col].set_title(f"{pat}: placed points (measured Fmax)")
    fig.suptitle("Effective MACs at 50% sparsity per area, against K")
    out["engine_eff_vs_k"] = png(fig)
    return out


# ----------------------------------------------------------------------------- documents
def _header(meta: Mapping) -> list[str]:
    tools = meta.get("tools") or {}
    return [
        f"Device: Lattice ECP5 {meta.get('device')} (nextpnr-ecp5 --out-of-context, target "
        f"{meta.get('target_mhz')} MHz, seed {meta.get('seed')}); ASIC proxy: Yosys "
        "`synth -flatten; abc -g cmos2; stat -tech cmos`, depth from `ltp -noff`.",
        "Tools: " + (", ".join(f"{k} {v}" for k, v in sorted(tools.items())) or DASH) + ".",
        "Fmax is measured on the module inside a wrapper that registers every port, so "
        "input-to-register and register-to-output logic is timed; the wrapper's registers "
        "are included in the post-place counts only.",
    ]


def _engine_records(records: Sequence[dict], sweep: Sequence[dict] | None) -> Sequence[dict]:
    """The records of the engine-vs-dense section: the sweep's when there is one."""
    return sweep if sweep else records


def markdown(records: Sequence[dict], meta: Mapping, cross, quality,
             sweep: Sequence[dict] | None = None, lut4_per_dsp: float | None = None) -> str:
    """The whole Markdown report (``sweep``: the records of ``reports/engine_sweep``, if any)."""
    eng = _engine_records(records, sweep)
    out = ["# nmsparse: resources and results", ""]
    out += [" ".join(_header(meta)), "", "## Summary", ""]
    out += [f"- {s}" for s in summary(records, cross, quality) + sweep_summary(eng)]
    out += ["", "## Tables", ""]
    for t in tables(records, cross, quality):
        out.append(t.to_markdown())
    extra = sweep_tables(eng, lut4_per_dsp)
    if extra:
        src = "reports/engine_sweep (`make engine-sweep`)" if sweep else "this run"
        out += ["## Sparse linear engine vs dense baseline across K", "",
                f"Measured points of {src}.", ""]
        out += [t.to_markdown() for t in extra]
    out += ["Plots: see report.html (area vs M, Fmax vs M, perplexity vs area"
            + (", engine area and effective MACs per area vs K" if extra else "") + ").", ""]
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 110em; }
table { border-collapse: collapse; font-size: 0.85em; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #eee; }
img { max-width: 100%; margin: 0.5em 0 1.5em 0; }
"""


def html_page(records: Sequence[dict], meta: Mapping, cross, quality,
              pngs: Mapping[str, bytes] | None = None, sweep: Sequence[dict] | None = None,
              lut4_per_dsp: float | None = None) -> str:
    """The whole HTML report with the PNG plots embedded (base64)."""
    eng = _engine_records(records, sweep)
    e = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
           "<title>nmsparse: resources and results</title>", f"<style>{_CSS}</style>",
           "</head><body>", "<h1>nmsparse: resources and results</h1>"]
    out += [f"<p>{e(h)}</p>" for h in _header(meta)]
    out.append("<h2>Summary</h2><ul>")
    out += [f"<li>{e(s)}</li>" for s in summary(records, cross, quality) + sweep_summary(eng)]
    out.append("</ul><h2>Plots</h2>")
    titles = {"area_vs_m": "Area vs M per architecture", "fmax_vs_m": "Fmax vs M",
              "ppl_vs_area": "Perplexity vs selection cost (Pareto view)"}
    if analysis.engine_pairs(eng):
        titles.update(engine_area_vs_k="Sparse engine vs dense: area against K",
                      engine_eff_vs_k="Sparse engine vs dense: effective MACs per area "
                                      "against K")
    pngs = pngs or {}
    for key, title in titles.items():
        if key in pngs:
            b64 = base64.b64encode(pngs[key]).decode()
            out.append(f"<h3>{e(title)}</h3><img alt='{e(title)}' "
                       f"src='data:image/png;base64,{b64}'>")
        else:
            out.append(f"<h3>{e(title)}</h3><p>{NOT_RUN}: no data for this plot.</p>")
    out.append("<h2>Tables</h2>")
    for t in tables(records, cross, quality):
        out.append(t.to_html())
    extra = sweep_tables(eng, lut4_per_dsp)
    if extra:
        out.append("<h2>Sparse linear engine vs dense baseline across K</h2>")
        out += [t.to_html() for t in extra]
    out.append("</body></html>")
    return "\n".join(out)
