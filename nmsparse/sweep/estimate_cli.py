"""``nmsparse estimate``: LUT4 / FF / Fmax / transistor estimates without running a tool.

Examples::

    nmsparse estimate --unit topk --pattern 8:16 --fmt int8 --arch rank,network
    nmsparse estimate sweeps/dse40.toml                  # every point of a sweep file
    nmsparse estimate --fit                              # refit on the measured data,
                                                         # print the held-out error
    nmsparse estimate --fit reports/resources.json reports/sweep/dse40/records.json

The model and its coefficients: :mod:`nmsparse.sweep.estimate`, ``data/estimate.json``.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

__all__ = ["add_arguments", "run", "default_sources", "error_table"]


def default_sources() -> list[Path]:
    """``reports/resources.json`` and every ``reports/sweep/*/records.json`` that exist."""
    out = [Path("reports/resources.json")] if Path("reports/resources.json").is_file() else []
    out += [Path(p) for p in sorted(glob.glob("reports/sweep/*/records.json"))]
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", type=Path,
                        help="with --fit: measured data (resources.json, sweep records.json "
                             "or sweep tables); else: one sweep file whose points to estimate")
    parser.add_argument("--unit", default=None, help="unit (default topk)")
    parser.add_argument("--pattern", default=None, help="N:M patterns, comma-separated")
    parser.add_argument("--fmt", default=None, help="formats, comma-separated")
    parser.add_argument("--arch", default=None, help="architectures, comma-separated")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                        help="any other parameter of the unit's config; repeatable")
    parser.add_argument("--fit", action="store_true",
                        help="fit the models on measured data (default: reports/resources.json "
                             "and reports/sweep/*/records.json) and print the held-out error")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="with --fit: where to write the coefficients (default: the "
                             "package's data/estimate.json)")
    parser.add_argument("--coefficients", type=Path, default=None,
                        help="coefficients file to estimate with (default: the package's)")


def error_table(heldout: dict) -> str:
    """The held-out error table (Markdown) of a fitted model."""
    names = {"lut4": "LUT4", "ff": "FF", "fmax_mhz": "Fmax", "transistors": "transistors"}
    goals = {"lut4": 15.0, "fmax_mhz": 20.0}
    lines = ["| target | group | points | mean error | median | max (worst point) | goal |",
             "|---|---|--:|--:|--:|--:|---|"]
    for t, name in names.items():
        s = heldout.get("all", {}).get(t, {"n": 0})
        goal = goals.get(t)
        verdict = "-" if goal is None or not s["n"] else (
            f"mean <= {goal:.0f}%: {'met' if s['mean_pct'] <= goal else 'NOT met'}")
        if s["n"]:
            lines.append(f"| {name} | all | {s['n']} | {s['mean_pct']:.1f}% | "
                         f"{s['median_pct']:.1f}% | {s['max_pct']:.1f}% ({s['worst']}) | "
                         f"{verdict} |")
        for g, ts in sorted(heldout.get("groups", {}).items()):
            gs = ts.get(t)
            if gs and gs["n"]:
                lines.append(f"| {name} | {g} | {gs['n']} | {gs['mean_pct']:.1f}% | "
                             f"{gs['median_pct']:.1f}% | {gs['max_pct']:.1f}% | |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from . import estimate

    if args.fit:
        sources = list(args.sources) or default_sources()
        if not sources:
            raise FileNotFoundError("no measured data: run `nmsparse report` or a sweep first, "
                                    "or name resources.json / records.json files")
        t0 = time.perf_counter()
        data = estimate.training_points(sources)
        model = estimate.fit(data, [str(s) for s in sources])
        out = args.output or estimate.DEFAULT_COEFFICIENTS
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(model.to_json())
        print(f"fitted on {len(data)} measured points from {', '.join(map(str, sources))} "
              f"in {time.perf_counter() - t0:.1f} s; coefficients written to {out}")
        print("held-out error (leave-one-out within each group: every point predicted by the "
              "model fitted on the others):")
        print(error_table(model.heldout))
        return 0
    model = (estimate.Model.load(args.coefficients) if args.coefficients
             else estimate.Model.load_default())
    if model is None:
        raise FileNotFoundError("no fitted coefficients: run `nmsparse estimate --fit` first")
    points = _points(args)
    print("| module | group | LUT4 | FF | Fmax MHz | transistors | ms |")
    print("|---|---|--:|--:|--:|--:|--:|")
    invalid = 0
    for p in points:
        if not p.valid:
            invalid += 1
            print(f"| {p.label()} | invalid: {p.error} | | | | | |")
            continue
        t0 = time.perf_counter()
        e = model.predict_config(p.config)
        ms = (time.perf_counter() - t0) * 1000

        def f(k: str, e=e) -> str:
            return f"{e[k]:,.0f}" if k in e else "no model"

        group = e["group"] + (" (pooled)" if e["pooled"] else "")
        print(f"| {p.name} | {group} | {f('lut4')} | {f('ff')} | {f('fmax_mhz')} | "
              f"{f('transistors')} | {ms:.2f} |")
    a = model.heldout.get("all", {})
    bits = [f"{k} {v['mean_pct']:.1f}%" for k, v in a.items() if v.get("n")]
    if bits:
        print(f"model's mean held-out error: {', '.join(bits)} (`nmsparse estimate --fit` "
              "prints the full table)")
    return 1 if invalid and invalid == len(points) else 0


def _points(args: argparse.Namespace):
    from . import grid, runner

    if args.sources:
        if len(args.sources) != 1:
            raise ValueError("give one sweep file to estimate (or --fit with data files)")
        return grid.expand(runner.load_spec(args.sources[0]).grids)
    axes: dict[str, list] = {}
    for key in ("pattern", "fmt", "arch"):
        text = getattr(args, key)
        if text is not None:
            axes[key] = [v.strip() for v in text.split(",") if v.strip()]
    for item in args.param:
        k, vals = grid.parse_param(item)
        axes[k] = vals
    if not axes and args.unit is None:
        raise ValueError("nothing to estimate: give a sweep file or grid flags (e.g. --pattern "
                         "8:16 --arch rank)")
    return grid.expand([grid.Grid(unit=args.unit or "topk", axes=axes)])
