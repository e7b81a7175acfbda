"""``nmsparse verify``: the full regression on your own modules, from any directory.

::

    nmsparse verify --hdl-dir mydir [--module NAME ...]        every (or the named) sidecar
    nmsparse verify --sidecar mydir/top.json [--source F] [-I DIR] [-D NAME=VALUE]
    nmsparse verify --core mydir/top.core [--core-target default]   FuseSoC CAPI2 core

For each module it runs what ``make test`` runs on the shipped ones
(:func:`verif.regression.run_module`: directed edge cases, random groups under every idle x
back-pressure pattern, a reset mid-stream, exact latency and full throughput, real SmolLM2
activations; MAC units: rows with ``last``, extremes, wrap-around), builds outside the
checkout (``~/.cache/nmsparse/sim_build``, ``--build-dir`` or ``NMSPARSE_BUILD_DIR``) and
resolves relative paths against the directory it is called from.

Output: one line per scenario, then ``<module>: PASS`` or ``<module>: FAIL: <cause>`` (the
decoded first mismatches follow on stderr). Exit code: 0 every module passed, 1 a module
failed (mismatch, protocol error, timeout, hang, crash), 2 bad input (a sidecar that does not
validate, a missing file, a design that does not build, ports that disagree with the
sidecar).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nmsparse.contract.seeds import DEFAULT_SEED

from .sidecar_cli import add_source_arguments

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_argument_group("which design (one of)")
    what.add_argument("--hdl-dir", metavar="DIR",
                      help="a directory of sidecars (<module>.json) and their Verilog; "
                           "every module unless --module picks some")
    what.add_argument("--module", action="append", default=[], metavar="NAME",
                      help="only this module of --hdl-dir (repeatable)")
    what.add_argument("--sidecar", action="append", default=[], metavar="FILE",
                      help="a sidecar file (repeatable)")
    what.add_argument("--core", metavar="FILE",
                      help="a FuseSoC CAPI2 .core: its target's files, include directories "
                           "and vlogdefine parameters; the sidecar is <toplevel>.json beside "
                           "it unless --sidecar names it")
    what.add_argument("--core-target", metavar="NAME",
                      help="target of --core (default: 'default', else the first)")
    src = parser.add_argument_group("extra sources (added to every module)")
    add_source_arguments(src)
    parser.add_argument("--activations", default="default", metavar="FILE",
                        help="activations for the real-data scenario: a .pt/.npy/.safetensors "
                             "file, 'default' (the embedded SmolLM2 capture) or 'none'")
    parser.add_argument("--slow", action="store_true", help="eight times as many groups")
    parser.add_argument("--seed", type=int, default=None,
                        help=f"seed (default $NMSPARSE_SEED, else {DEFAULT_SEED})")
    parser.add_argument("--build-dir", metavar="DIR",
                        help="where to build (default $NMSPARSE_BUILD_DIR, else "
                             "~/.cache/nmsparse/sim_build)")
    parser.add_argument("--sim-timeout", type=float, metavar="SECONDS",
                        help="wall-clock limit of one simulator run (default "
                             "$NMSPARSE_SIM_TIMEOUT, else 1800)")
    parser.add_argument("--json", metavar="FILE", help="write one record per module")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="only the PASS/FAIL line of each module")


def _modules(args: argparse.Namespace):
    """(sidecars, core) selected by the arguments; paths relative to the caller."""
    from nmsparse.contract.sidecar import load_sidecar

    from . import regression, runner
    from .sources import read_core

    if args.module and not args.hdl_dir:
        raise ValueError("--module selects modules of --hdl-dir: pass --hdl-dir DIR too")
    core = read_core(Path(args.core), args.core_target) if args.core else None
    mods = [load_sidecar(Path(p).resolve()) for p in args.sidecar]
    if args.hdl_dir:
        mods += regression.select_modules(runner.hdl_dir(args.hdl_dir), args.module)
    if core is not None and not mods:
        side = core.path.with_name(f"{core.toplevel}.json")
        if not side.is_file():
            raise FileNotFoundError(
                f"{core.path}: no sidecar {side.name} beside the core for toplevel "
                f"{core.toplevel}; pass --sidecar FILE or write one with `nmsparse sidecar "
                f"init`")
        mods = [load_sidecar(side)]
    if not mods:
        raise ValueError("say which design to verify: --hdl-dir DIR [--module NAME], "
                         "--sidecar FILE or --core FILE (the shipped modules: --hdl-dir hdl)")
    return mods, core


def _record(sc, res, cause: str, status: str, seed: int) -> dict:
    rec = {"module": sc.module, "sidecar": str(sc.path), "status": status, "cause": cause,
           "seed": seed}
    if res is not None:
        rec.update(groups=res.groups, mismatches=res.mismatches,
                   build_seconds=round(res.build_seconds, 1),
                   sim_seconds=round(res.sim_seconds, 1),
                   scenarios=[{"name": s.name, "groups": s.groups, "mismatches": s.mismatches,
                               "latencies": s.latencies, "errors": s.errors}
                              for s in res.scenarios])
    return rec


def run(args: argparse.Namespace) -> int:
    from nmsparse.contract import seeds, toolchain

    from . import regression, runner, vectors
    from .errors import SimError, exit_code
    from .sources import sources_for

    seed = seeds.seed(args.seed)
    limit = runner.sim_timeout(args.sim_timeout)
    build_root = (Path(args.build_dir).expanduser().resolve() if args.build_dir
                  else runner.default_build_root())
    mods, core = _modules(args)
    if args.activations == "none":
        acts = None
    elif args.activations == "default":
        acts = "default"
    else:
        acts = vectors.load_activations(Path(args.activations).resolve())
    plans = []
    for sc in mods:  # every source problem is reported before the first build
        src = sources_for(sc, core=core, files=[Path(p) for p in args.source],
                          include_dirs=[Path(p) for p in args.include], defines=args.define)
        src.check()
        plans.append((sc, src))
    print(f"verify: {len(mods)} module(s), seed {seed}, builds in {build_root}")
    if core is not None:
        for note in core.notes:
            print(f"note: {core.path.name}: {note}")
    worst, records = 0, []
    for sc, src in plans:
        t0 = time.perf_counter()
        print(f"{sc.describe()}: {len(src.files)} file(s), "
              f"{len(src.include_dirs)} include dir(s), {len(src.defines)} define(s)",
              flush=True)
        try:
            res = regression.run_module(sc, seed=seed, slow=args.slow, activations=acts,
                                        build_root=build_root, sources=src, timeout=limit,
                                        tag="verify")
        except (SimError, toolchain.ToolchainError) as exc:
            code = exit_code(exc) if isinstance(exc, SimError) else 2
            text = exc.one_line() if isinstance(exc, SimError) else str(exc)
            text = text.removeprefix(f"{sc.module}: ")
            status = "ERROR" if code == 2 else "FAIL"
            print(f"{sc.module}: {status}: {text}", flush=True)
            records.append(_record(sc, None, str(exc), status, seed))
            worst = max(worst, code)
            continue
        if not args.quiet:
            for line in regression.scenario_lines(res):
                print(f"  {line}")
        took = time.perf_counter() - t0
        if res.passed:
            print(f"{sc.module}: PASS ({len(res.scenarios)} scenarios, {res.groups} groups, "
                  f"0 mismatches; build {res.build_seconds:.1f} s, simulation "
                  f"{res.sim_seconds:.1f} s, {took:.1f} s in all)", flush=True)
            records.append(_record(sc, res, "", "PASS", seed))
        else:
            cause = res.cause().removeprefix(f"{sc.module}: ")
            print(f"{sc.module}: FAIL: {cause}", flush=True)
            print(res.failure_text(), file=sys.stderr)
            records.append(_record(sc, res, cause, "FAIL", seed))
            worst = max(worst, 1)
    if args.json:
        out = Path(args.json).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(records, indent=2) + "\n")
    return worst
