"""Selector QoR: every top-k architecture at 8:16 and 16:32 (int8, bf16) at its auto pipeline,
measured in one run on the report's flow, next to the anchors and goals of the QoR issue.

    .venv/bin/python bench/bench_qor.py                 # measure (cached in reports/.cache)
    .venv/bin/python bench/bench_qor.py --cached-only   # the table from the cache, no tool run
    .venv/bin/python bench/bench_qor.py --patterns 2:4,4:8,8:16 --jobs 2

Each point is generated with ``pipeline="auto"`` for the clock the shipped selectors of that
point are scheduled for (``gen.config.SELECTOR_TARGET_MHZ``: the QoR goal clock, 200 MHz where
there is none; ``--target-mhz`` sets one clock for all), every architecture with its own
calibrated delay model, and measured exactly as ``nmsparse report`` measures (ECP5 LFE5U-85F,
port-registering wrapper, nextpnr ``--out-of-context``, seed 1), sharing its cache: a point
whose Verilog equals a shipped module's is not measured twice. Columns: LUT4, CCU2C, FF post-
synthesis (module alone); COMB and Fmax post-place (wrapper included); groups/s = Fmax x one
group per clock; COMB x ns per group (area-time); the delay model's predicted Fmax and its
error against the measurement; the tool time; the critical path (the registers it runs
between, as named in the Verilog, its delay and the share of routing). Writes
``reports/qor.md`` (``--out``) and prints it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gen.arch import ARCHITECTURES  # noqa: E402
from gen.config import DEFAULT_TARGET_MHZ, SELECTOR_TARGET_MHZ, TopKConfig  # noqa: E402
from gen.emit import emit  # noqa: E402
from nmsparse.contract.patterns import parse_pattern  # noqa: E402
from nmsparse.contract.sidecar import load_sidecar  # noqa: E402
from nmsparse.report import records  # noqa: E402
from nmsparse.report.analysis import figure  # noqa: E402
from nmsparse.report.cli import build  # noqa: E402

#: Goals of the QoR issue: (min Fmax MHz, max LUT4, max FF, max COMB); None: no goal.
GOALS = {
    ("8:16", "int8"): (200.0, 1200, 900, 2400),
    ("16:32", "int8"): (175.0, 4500, 3000, 8000),
    ("8:16", "bf16"): (175.0, 2400, None, None),
    ("16:32", "bf16"): (150.0, 6500, None, None),
}
#: The issue's anchor rows (measured on the same flow by the session that filed it, seed 1;
#: the pipelined bitonic sorter is not a generator of this tree): LUT4, FF, Fmax.
ANCHORS = [
    ("8:16", "int8", "rank as shipped before (pipeline 2)", 1497, 258, 82.0),
    ("8:16", "int8", "network as shipped before", 2194, 401, 41.0),
    ("8:16", "int8", "fully pipelined bitonic sorter", 2313, 1899, 142.0),
    ("16:32", "int8", "rank as shipped before", 4410, 1726, 98.0),
    ("16:32", "int8", "fully pipelined bitonic sorter", 7890, 5872, 126.0),
    ("8:16", "bf16", "rank as shipped before", 2841, 450, 91.0),
    ("16:32", "bf16", "rank as shipped before", 6125, 2622, 92.0),
]


def _fmt(v, nd: int = 0) -> str:
    if v is None:
        return "-"
    return f"{v:,.{nd}f}"


def verdict(pattern: str, fmt: str, lut, ff, comb, fmax) -> str:
    goal = GOALS.get((pattern, fmt))
    if goal is None:
        return "-"
    if fmax is None:
        return "not measured"
    g_f, g_lut, g_ff, g_comb = goal
    misses = []
    if fmax < g_f:
        misses.append(f"Fmax {fmax:.0f} < {g_f:.0f}")
    if g_lut is not None and lut is not None and lut > g_lut:
        misses.append(f"LUT4 {lut:,} > {g_lut:,}")
    if g_ff is not None and ff is not None and ff > g_ff:
        misses.append(f"FF {ff:,} > {g_ff:,}")
    if g_comb is not None and comb is not None and comb > g_comb:
        misses.append(f"COMB {comb:,} > {g_comb:,}")
    return "PASS" if not misses else "FAIL: " + ", ".join(misses)


def limit(rec: dict) -> str:
    """The measured critical path: from which register to which, its delay and how much of
    it is routing (nextpnr's report; signal names as in the Verilog)."""
    cp = (rec.get("post_place") or {}).get("critical_path")
    if not cp:
        err = rec.get("error")
        if err and "did not finish" in err:
            return "place and route " + err[err.index("did not finish"):].split(" (")[0]
        return f"failed: {err.splitlines()[0]}" if err else "-"
    return (f"{cp['source']} -> {cp['sink']}: {cp['ns']:.2f} ns ({cp['routing_ns']:.2f} "
            f"routing, {cp['cells']} cells)")


def _emit(configs: list[TopKConfig], hdl: Path) -> list[records.Point]:
    """Generate ``configs`` into ``hdl``: the points to measure."""
    points = []
    for cfg in configs:
        emit(cfg, hdl)
        sc = load_sidecar(hdl / f"{cfg.name}.json")
        points.append(records.Point(cfg.name, hdl / f"{cfg.name}.v", sc))
    return points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patterns", default="8:16,16:32")
    ap.add_argument("--fmts", default="int8,bf16")
    ap.add_argument("--archs", default=",".join(sorted(ARCHITECTURES)))
    ap.add_argument("--target-mhz", type=float, default=None,
                    help="one clock for every point (default: the point's goal clock)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--cached-only", action="store_true",
                    help="run no tool: the table from cached measurements only")
    ap.add_argument("--timeout", type=float, default=1200.0,
                    help="CPU seconds per tool run, as the report allows (0: no limit); a "
                         "point stopped by it shows '-' and the reason in the critical-path "
                         "column")
    ap.add_argument("--build", type=Path, default=REPO / "build" / "bench_qor")
    ap.add_argument("--cache", type=Path, default=REPO / "reports",
                    help="report directory whose .cache is shared (default reports/)")
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "qor.md")
    ap.add_argument("--scaling", default="32:64",
                    help="patterns (int8, rank and radix) synthesized only, to show how area "
                         "grows with M ('' for none)")
    args = ap.parse_args(argv)

    configs = []
    for pat in args.patterns.split(","):
        n, m = parse_pattern(pat)
        for fmt in args.fmts.split(","):
            target = args.target_mhz or SELECTOR_TARGET_MHZ.get((n, m, fmt),
                                                                DEFAULT_TARGET_MHZ)
            for arch in args.archs.split(","):
                configs.append(TopKConfig(n=n, m=m, fmt=fmt, arch=arch, pipeline="auto",
                                          target_mhz=target))
    hdl = args.build / "hdl"
    hdl.mkdir(parents=True, exist_ok=True)
    points = _emit(configs, hdl)
    timeout = args.timeout or None
    recs = build(points, args.cache, jobs=args.jobs, cached_only=args.cached_only,
                 timeout=timeout)
    scaling = [TopKConfig(n=n, m=m, fmt="int8", arch=arch, pipeline="auto",
                          target_mhz=args.target_mhz or 175.0)
               for pat in filter(None, args.scaling.split(","))
               for n, m in [parse_pattern(pat)] for arch in ("rank", "radix")]
    spoints = _emit(scaling, hdl)
    srecs = build(spoints, args.cache, jobs=args.jobs, place=False,
                  cached_only=args.cached_only, timeout=timeout) if spoints else []

    head = ["N:M", "fmt", "architecture", "target MHz", "stages", "LUT4", "CCU2C", "COMB", "FF",
            "Fmax MHz", "predicted MHz (error)", "Mgroups/s", "COMB x ns/group",
            "synth+P&R s", "critical path (nextpnr)", "goal"]
    rows = []
    for cfg, r in zip(configs, recs, strict=True):
        lut = figure(r, "post_synth", "LUT")
        carry = figure(r, "post_synth", "CARRY")
        ff = figure(r, "post_synth", "FF")
        comb = figure(r, "post_place", "COMB")
        fmax = figure(r, "post_place", "fmax_mhz")
        pred = cfg.predicted_fmax_mhz
        err = f"{pred:.0f} ({(pred - fmax) / fmax:+.0%})" if fmax and pred else _fmt(pred)
        rt = r.get("runtime_s") or {}
        secs = sum(v for v in rt.values() if isinstance(v, int | float)) if rt else None
        pat = f"{cfg.n}:{cfg.m}"
        rows.append([pat, cfg.fmt, cfg.arch, f"{cfg.target_mhz:g}", str(cfg.pipeline),
                     _fmt(lut), _fmt(carry),
                     _fmt(comb), _fmt(ff), _fmt(fmax, 1), err,
                     _fmt(fmax, 0) if fmax else "-",
                     _fmt(comb * 1000 / fmax, 0) if comb and fmax else "-",
                     _fmt(secs, 0), limit(r), verdict(pat, cfg.fmt, lut, ff, comb, fmax)])
    for pat, fmt, what, lut, ff, fmax in ANCHORS:
        if pat in args.patterns.split(",") and fmt in args.fmts.split(","):
            rows.append([pat, fmt, f"anchor: {what}", "-", "-", _fmt(lut), "-", "-", _fmt(ff),
                         _fmt(fmax, 0), "-", _fmt(fmax, 0), "-", "-", "-", "anchor"])
    if spoints:
        scale = ["", "Area against M (synthesis only, no place and route; int8, "
                 f"`pipeline=\"auto\"` for {args.target_mhz or 175:g} MHz):", "",
                 "| N:M | architecture | stages | LUT4 | CCU2C | LUT4 + 2 CCU2C | FF | "
                 "transistors | Yosys s |", "|---|---|---|---|---|---|---|---|---|"]
        for cfg, r in zip(configs + scaling, recs + srecs, strict=True):
            if cfg.fmt != "int8" or cfg.arch not in ("rank", "radix"):
                continue
            lut = figure(r, "post_synth", "LUT")
            carry = figure(r, "post_synth", "CARRY")
            rt = (r.get("runtime_s") or {}).get("yosys")
            both = lut + 2 * carry if lut is not None and carry is not None else None
            scale.append(f"| {cfg.n}:{cfg.m} | {cfg.arch} | {cfg.pipeline} | {_fmt(lut)} | "
                         f"{_fmt(carry)} | {_fmt(both)} | "
                         f"{_fmt(figure(r, 'post_synth', 'FF'))} | "
                         f"{_fmt(figure(r, 'asic', 'transistors'))} | {_fmt(rt)} |")
    else:
        scale = []
    lines = ["# Selector QoR (bench/bench_qor.py)", "",
             "ECP5 LFE5U-85F, nextpnr-ecp5 --out-of-context, seed 1; every point "
             "`pipeline=\"auto\"` for its target clock with its architecture's delay model. "
             "\"-\": not measured in this run "
             "(see reports/report.md for timeouts). Goals: "
             + "; ".join(f"{p} {f}: >= {g[0]:g} MHz, <= {g[1]:,} LUT4"
                         + (f", <= {g[2]:,} FF" if g[2] else "")
                         + (f", <= {g[3]:,} COMB" if g[3] else "")
                         for (p, f), g in GOALS.items()) + ".", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += scale
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
