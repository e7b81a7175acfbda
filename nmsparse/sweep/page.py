"""The sweep's interactive page: Pareto plots of area, Fmax and quality, from disk, offline.

One HTML file with plotly.js embedded (no network: it opens from disk on an air-gapped
machine, at the price of ~4 MB per page)::

    ┌ area vs Fmax ───────────┐ ┌ area vs perplexity ─────┐   hover: module, parameters,
    │  o   o  ◉ Pareto front  │ │ ◉                       │   LUT4/FF/Fmax/transistors,
    │ o  ◉      (min area,    │ │    o  ◉                 │   estimate, cross-check
    │  ◉    max Fmax)         │ │  o       o              │
    └─────────────────────────┘ └─────────────────────────┘
    ┌ 3-D: area x Fmax x perplexity ┐  table of every point (status, error)

A point is Pareto-optimal when no other measured point is at least as good in every
objective and better in one: area (the chosen metric, lower), Fmax (higher) and, where the
quality study has the pattern, perplexity (lower). The area metric is selectable (LUT4,
transistors, placed COMB, Xilinx LUT6, Nexus LUT4) with buttons.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["pareto", "write", "AREA_METRICS"]

AREA_METRICS = {"lut4": "LUT4 (ECP5, post-synthesis)", "transistors": "transistors (ASIC proxy)",
                "comb_placed": "COMB (ECP5, placed)", "xilinx_lut6": "LUT6 (Xilinx 7, "
                "post-synthesis estimate)", "nexus_lut4": "LUT4 (Nexus, post-synthesis)"}


def pareto(rows: Sequence[Mapping], objectives: Sequence[tuple[str, str]]) -> set[str]:
    """Modules of ``rows`` that no other row dominates; ``objectives`` are
    ``(column, "min" | "max")``. Rows missing a value are left out."""
    pts = []
    for r in rows:
        vals = [r.get(c) for c, _ in objectives]
        if r.get("status") != "ok" or any(v is None for v in vals):
            continue
        pts.append((r["module"], [v if d == "min" else -v for v, (_, d) in
                                  zip(vals, objectives, strict=True)]))
    front = set()
    for name, a in pts:
        dominated = any(all(x <= y for x, y in zip(b, a, strict=True)) and b != a
                        for _, b in pts)
        if not dominated:
            front.add(name)
    return front


def _hover(r: Mapping) -> str:
    def f(v, digits=0):
        if v is None:
            return "-"
        return f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) \
            else str(v)

    lines = [f"<b>{html.escape(str(r['module']))}</b>", html.escape(str(r.get("point") or "")),
             f"LUT4 {f(r.get('lut4'))}  FF {f(r.get('ff'))}  DSP {f(r.get('dsp'))}",
             f"Fmax {f(r.get('fmax_mhz'), 1)} MHz  latency {f(r.get('latency'))}",
             f"transistors {f(r.get('transistors'))}  depth {f(r.get('logic_depth'))}"]
    if r.get("xilinx_lut6") is not None:
        lines.append(f"Xilinx LUT6 {f(r.get('xilinx_lut6'))} (estimate)  FF "
                     f"{f(r.get('xilinx_ff'))}")
    if r.get("nexus_lut4") is not None:
        lines.append(f"Nexus LUT4 {f(r.get('nexus_lut4'))}  Fmax "
                     f"{f(r.get('nexus_fmax_mhz'), 1)} MHz")
    if r.get("est_lut4") is not None:
        lines.append(f"estimate: LUT4 {f(r.get('est_lut4'))}  Fmax "
                     f"{f(r.get('est_fmax_mhz'), 1)} MHz")
    if r.get("ppl") is not None:
        lines.append(f"perplexity {f(r.get('ppl'), 2)} (pattern {r.get('pattern')})")
    if r.get("verified_groups") is not None:
        lines.append(f"cross-check: {f(r.get('verified_groups'))} groups, "
                     f"{f(r.get('mismatches'))} mismatches")
    return "<br>".join(lines)


def _group(r: Mapping) -> str:
    return f"{r.get('unit')} {r.get('arch') or ''} {r.get('fmt') or ''}".replace("  ", " ").strip()


def _figures(rows: Sequence[Mapping]) -> list[tuple[str, object]]:
    import plotly.graph_objects as go

    ok = [r for r in rows if r.get("status") == "ok"]
    metrics = [m for m in AREA_METRICS if any(r.get(m) is not None for r in ok)] or ["lut4"]
    groups = sorted({_group(r) for r in ok})
    figs: list[tuple[str, object]] = []

    def scatter2d(ycol: str, ylabel: str, ydir: str, title: str):
        fig = go.Figure()
        fronts = {m: pareto(ok, [(m, "min"), (ycol, ydir)]) for m in metrics}
        for g in groups:
            pts = [r for r in ok if _group(r) == g and r.get(ycol) is not None]
            fig.add_trace(go.Scatter(
                x=[r.get(metrics[0]) for r in pts], y=[r[ycol] for r in pts], mode="markers",
                name=g, text=[_hover(r) for r in pts], hoverinfo="text",
                customdata=[[r.get(m) for m in metrics] for r in pts],
                marker={"size": 10, "line": {"width": [3 if r["module"] in
                                                       fronts[metrics[0]] else 0
                                                       for r in pts], "color": "black"}}))
        for m in metrics:
            front = sorted((r for r in ok if r["module"] in fronts[m]), key=lambda r: r[m])
            fig.add_trace(go.Scatter(
                x=[r[m] for r in front], y=[r[ycol] for r in front], mode="lines",
                line={"dash": "dot", "color": "gray", "shape": "hv"},
                name=f"Pareto front ({m})", visible=m == metrics[0], hoverinfo="skip"))
        buttons = []
        n_groups = len(groups)
        for i, m in enumerate(metrics):
            xs = [[r.get(m) for r in ok if _group(r) == g and r.get(ycol) is not None]
                  for g in groups]
            xs += [[r[mm] for r in sorted((r for r in ok if r["module"] in fronts[mm]),
                                          key=lambda r: r[mm])] for mm in metrics]
            vis = [True] * n_groups + [j == i for j in range(len(metrics))]
            buttons.append({"label": AREA_METRICS[m].split(" (")[0] + f" ({m})",
                            "method": "update",
                            "args": [{"x": xs, "visible": vis},
                                     {"xaxis": {"title": {"text": AREA_METRICS[m]},
                                                "type": "log"}}]})
        fig.update_layout(
            title=title, xaxis={"title": {"text": AREA_METRICS[metrics[0]]}, "type": "log"},
            yaxis={"title": {"text": ylabel}}, height=520, hoverlabel={"align": "left"},
            updatemenus=[{"buttons": buttons, "direction": "down", "x": 1.0, "y": 1.15,
                          "xanchor": "right"}] if len(metrics) > 1 else [],
            legend={"font": {"size": 10}})
        return fig

    if any(r.get("fmax_mhz") is not None for r in ok):
        figs.append(("area_fmax", scatter2d("fmax_mhz", "Fmax, MHz (ECP5 LFE5U-85F, placed)",
                                            "max", "Area vs Fmax (ringed: Pareto-optimal)")))
    if any(r.get("ppl") is not None for r in ok):
        figs.append(("area_ppl", scatter2d("ppl", "perplexity of the pattern (lower is better)",
                                           "min", "Area vs model quality (ringed: "
                                           "Pareto-optimal)")))
    if not figs and any(r.get("latency") is not None for r in ok):
        # synthesis-only sweep without quality data: area against latency still shows a front
        figs.append(("area_latency", scatter2d("latency", "latency, cycles", "min",
                                               "Area vs latency (ringed: Pareto-optimal)")))
    three = [r for r in ok if r.get("fmax_mhz") is not None and r.get("ppl") is not None]
    if three:
        front = pareto(three, [("lut4", "min"), ("fmax_mhz", "max"), ("ppl", "min")])
        fig = go.Figure()
        for g in groups:
            pts = [r for r in three if _group(r) == g]
            if not pts:
                continue
            fig.add_trace(go.Scatter3d(
                x=[r.get("lut4") for r in pts], y=[r["fmax_mhz"] for r in pts],
                z=[r["ppl"] for r in pts], mode="markers", name=g,
                text=[_hover(r) for r in pts], hoverinfo="text",
                marker={"size": [8 if r["module"] in front else 4 for r in pts]}))
        fig.update_layout(title="Area x Fmax x quality (large: Pareto-optimal in all three)",
                          height=620, scene={"xaxis": {"title": {"text": "LUT4"},
                                                       "type": "log"},
                                             "yaxis": {"title": {"text": "Fmax, MHz"}},
                                             "zaxis": {"title": {"text": "perplexity"}}})
        figs.append(("area_fmax_ppl", fig))
    return figs


_CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; max-width: 120em; }
table { border-collapse: collapse; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.15em 0.4em; text-align: right; }
td.l, th.l { text-align: left; }
thead { background: #eee; position: sticky; top: 0; }
tr.failed, tr.invalid, tr.mismatch { background: #fdd; }
tr.pruned { color: #888; }
"""

_TABLE_COLS = ["module", "status", "unit", "pattern", "fmt", "arch", "pipeline", "lanes",
               "outputs", "latency", "lut4", "ff", "dsp", "fmax_mhz", "transistors",
               "xilinx_lut6", "nexus_lut4", "nexus_fmax_mhz", "est_lut4", "est_fmax_mhz",
               "verified_groups", "mismatches", "ppl", "error"]


def _table(rows: Sequence[Mapping]) -> str:
    cols = [c for c in _TABLE_COLS if any(r.get(c) is not None for r in rows)]
    e = html.escape
    out = ["<table><thead><tr>" + "".join(
        f"<th class='{'l' if c in ('module', 'status', 'error') else ''}'>{e(c)}</th>"
        for c in cols) + "</tr></thead><tbody>"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            text = "" if v is None else (f"{v:,.1f}" if isinstance(v, float) else str(v))
            if c == "error" and text:
                text = text.splitlines()[0][:160]
            cells.append(f"<td class='{'l' if c in ('module', 'status', 'error') else ''}'>"
                         f"{e(text)}</td>")
        out.append(f"<tr class='{e(str(r.get('status')))}'>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def write(rows: Sequence[Mapping], path: str | Path, *, title: str = "nmsparse sweep",
          meta: Mapping | None = None) -> Path:
    """Write the page to ``path`` (plotly.js embedded) and return the path."""
    from plotly.offline import get_plotlyjs

    p = Path(path)
    e = html.escape
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    meta = dict(meta or {})
    head = (f"{len(rows)} points: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
            + (f"; wall time {meta['wall_s']:.0f} s" if meta.get("wall_s") is not None else ""))
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{e(title)}</title>",
             f"<style>{_CSS}</style>", f"<script type='text/javascript'>{get_plotlyjs()}</script>",
             "</head><body>", f"<h1>{e(title)}</h1>", f"<p>{e(head)}</p>"]
    if meta:
        parts.append("<details><summary>sweep specification</summary><pre>"
                     + e(json.dumps(meta, indent=1)) + "</pre></details>")
    parts.append("<p>Fmax: nextpnr-ecp5 --85k --out-of-context, seed "
                 f"{e(str(meta.get('placer_seed', 1)))}, module inside a wrapper that registers "
                 "every port; Xilinx figures are post-synthesis estimates (no place and "
                 "route); perplexity: the best criterion of the pattern in quality.json.</p>")
    figs = _figures(rows)
    if not figs:
        parts.append("<p>No measured point to plot.</p>")
    for name, fig in figs:
        parts.append(f"<div id='{name}'>" + fig.to_html(full_html=False, include_plotlyjs=False,
                                                       div_id=f"plot_{name}") + "</div>")
    fails = [r for r in rows if r["status"] in ("failed", "invalid", "mismatch")]
    if fails:
        parts.append(f"<h2>Failures ({len(fails)})</h2><ul>")
        parts += [f"<li><b>{e(r['module'])}</b> ({e(r['status'])}): "
                  f"<pre>{e(str(r.get('error') or ''))}</pre></li>" for r in fails]
        parts.append("</ul>")
    parts += ["<h2>Every point</h2>", _table(rows), "</body></html>"]
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(parts))
    return p
