"""``nmsparse sweep``: a design-space sweep on Dask, from a TOML file or from flags.

Examples::

    nmsparse sweep sweeps/small.toml                       # a sweep file
    nmsparse sweep --unit topk --pattern 2:4,4:8 --fmt int8,bf16 --arch rank,network \\
        --param pipeline=0,1,2 --name selectors            # the same grid from flags
    nmsparse sweep sweeps/small.toml --scheduler tcp://10.0.0.5:8786   # a user's cluster

Exit code: 0 when every valid point was measured (and cross-checked where sampled), 1 when
a point failed or mismatched, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run", "spec_from_args"]


def _list(text: str) -> list:
    from .grid import parse_value

    return [parse_value(v) for v in text.split(",") if v.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", type=Path, default=None,
                        help="sweep file (TOML: [sweep] options, [[grid]] tables, [prune])")
    g = parser.add_argument_group("grid from flags (without a sweep file)")
    g.add_argument("--unit", default=None,
                   help="unit of the grid: topk, spmac, linear, dense_mac (default topk)")
    g.add_argument("--pattern", default=None, help="N:M patterns, comma-separated")
    g.add_argument("--fmt", default=None, help="formats, comma-separated")
    g.add_argument("--arch", default=None, help="top-k architectures, comma-separated")
    g.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2",
                   help="any other parameter of the unit's config (pipeline, lanes, outputs, "
                        "weight_width, ...); repeatable")
    parser.add_argument("--name", default=None, help="sweep name (default: the file's stem)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output directory (default reports/sweep/<name>)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="measurement cache, shared with `nmsparse report` "
                             "(default reports/.cache)")
    parser.add_argument("--families", default=None, metavar="LIST",
                        help="extra FPGA families: xilinx (post-synthesis estimate), nexus "
                             "(place and route); ECP5 always runs")
    parser.add_argument("--no-place", action="store_true",
                        help="synthesis only: no place and route, no Fmax")
    parser.add_argument("--verify", type=float, default=None, metavar="FRACTION",
                        help="fraction of the points cross-checked in simulation (default 0.1)")
    parser.add_argument("--verify-groups", type=int, default=None, metavar="G",
                        help="random groups per stimulus pattern of a cross-check (default 64)")
    parser.add_argument("--seed", type=int, default=None, help="stimulus and sample seed")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="CPU seconds allowed per tool run (the tool's own CPU time, so a "
                             "loaded machine does not change the verdict; also stopped after "
                             "4x that in wall time; default: none)")
    parser.add_argument("--retries", type=int, default=None,
                        help="extra attempts of a task that timed out or lost its worker "
                             "(default 1)")
    parser.add_argument("--prune", action="append", default=[], metavar="KEY=VALUE",
                        help="skip points whose estimate is out of bounds: max_lut4, max_ff, "
                             "max_transistors, min_fmax_mhz; repeatable")
    parser.add_argument("--quality", type=Path, default=None,
                        help="quality.json joined by pattern (default reports/quality.json)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="Dask scheduler of a running cluster (tcp://HOST:8786); default: "
                             "a local cluster")
    parser.add_argument("--workers", type=int, default=None,
                        help="workers of the local cluster (default: one per core)")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure every point again (results still stored)")


def spec_from_args(args: argparse.Namespace):
    """The :class:`~nmsparse.sweep.runner.SweepSpec` the command line describes."""
    from . import grid, runner

    prune = {}
    for item in args.prune:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--prune must look like KEY=VALUE, not {item!r}")
        try:
            prune[key.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--prune {key}: {value!r} is not a number") from None
    over = {"name": args.name, "output": args.output, "cache": args.cache,
            "families": args.families, "verify": args.verify,
            "verify_groups": args.verify_groups, "seed": args.seed, "timeout": args.timeout,
            "retries": args.retries, "quality": args.quality}
    if args.no_place:
        over["place"] = False
    flag_axes = any(v is not None for v in (args.unit, args.pattern, args.fmt, args.arch)) \
        or args.param
    if args.file is not None:
        if flag_axes:
            raise ValueError("give either a sweep file or grid flags (--unit, --pattern, "
                             "--fmt, --arch, --param), not both")
        spec = runner.load_spec(args.file, **over)
        spec.prune.update(prune)
        return runner.SweepSpec(**{**spec.__dict__})
    if not flag_axes:
        raise ValueError("nothing to sweep: give a sweep file or grid flags (e.g. --unit topk "
                         "--pattern 2:4,4:8 --arch rank,network)")
    axes: dict[str, list] = {}
    for key in ("pattern", "fmt", "arch"):
        text = getattr(args, key)
        if text is not None:
            axes[key] = [v.strip() for v in text.split(",") if v.strip()]
    for item in args.param:
        k, vals = grid.parse_param(item)
        axes[k] = vals
    g = grid.Grid(unit=args.unit or "topk", axes=axes)
    g.check()
    kw = {k: v for k, v in over.items() if v is not None}
    kw.setdefault("name", "sweep")
    if args.no_place:
        kw["place"] = False
    return runner.SweepSpec(grids=[g], prune=prune, **kw)


def run(args: argparse.Namespace) -> int:
    from nmsparse.contract import toolchain

    from . import runner

    spec = spec_from_args(args)
    try:
        res = runner.run_sweep(spec, scheduler=args.scheduler, workers=args.workers,
                               use_cache=not args.no_cache)
    except toolchain.ToolchainError as exc:
        print(f"nmsparse: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if args.scheduler and "connect" in str(exc).lower():
            print(f"nmsparse: error: cannot reach the Dask scheduler {args.scheduler}: {exc}",
                  file=sys.stderr)
            return 2
        raise
    bad = [r for r in res.rows if r["status"] in ("failed", "mismatch")]
    return 1 if bad else 0
