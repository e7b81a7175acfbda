"""``nmsparse crosscheck``: stream your activations through the RTL and compare with golden masks.

Every top-k selector of the requested pattern and format in the HDL directory (all
architectures and lane counts unless ``--arch`` picks one), and every runtime-flexible
selector that serves the pattern (DESIGN.md section 5; driven with that pattern on every
transfer of W lanes), is built with Verilator and driven by the cocotb testbench; each
group's ``mask``, ``values`` and ``index`` must equal the golden model's bit for bit.
Prints groups checked, mismatches (0 is the only pass) and groups per second; ``--json FILE``
keeps one record per module. Exit code: 0 pass, 1 any mismatch,
protocol error, timeout or hang, 2 bad input (a sidecar that does not validate, a design
that does not build, ports that disagree with the sidecar). ``--source``, ``-I`` and ``-D``
add files, include directories and defines to every module's own (sidecar ``sources``);
relative paths are relative to the directory it is called from.

Example::

    nmsparse crosscheck --pattern 8:16 --fmt bf16 --activations acts.pt \\
        --json reports/crosscheck.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from nmsparse.contract.seeds import DEFAULT_SEED

__all__ = ["add_arguments", "run", "select_modules", "write_records"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pattern", required=True,
                        help="N:M pattern, e.g. 8:16, or a comma-separated list (2:4,8:16)")
    parser.add_argument("--fmt", required=True,
                        help="element format of the selector: int4, int8, int16, fp16, bf16, "
                             "fp32, or a comma-separated list (int8,bf16)")
    parser.add_argument("-j", "--jobs", type=int, default=1,
                        help="modules built and simulated in parallel (default 1)")
    parser.add_argument("--activations", required=True, metavar="FILE",
                        help="activations [..., K] as .pt (tensor or dict of tensors), .npy or "
                             ".safetensors; 'default' = the embedded SmolLM2-135M-Instruct "
                             "Linear-layer inputs. Floats are cast to a float format or "
                             "quantized per token for an integer format")
    parser.add_argument("--arch", help="only the selectors of this architecture (e.g. network)")
    parser.add_argument("--hdl-dir", help="directory of Verilog + sidecar JSON to verify "
                                          "(default: $NMSPARSE_HDL_DIR or the shipped hdl/)")
    parser.add_argument("--limit", type=int, metavar="G", help="check at most G groups")
    parser.add_argument("--json", metavar="FILE",
                        help="write/update a JSON list of records (one per module checked)")
    parser.add_argument("--seed", type=int, default=None,
                        help="simulator seed (default $NMSPARSE_SEED, else "
                             f"{DEFAULT_SEED})")
    parser.add_argument("--build-dir", help="where to build (default $NMSPARSE_BUILD_DIR, "
                                            "else ~/.cache/nmsparse/sim_build)")
    parser.add_argument("--sim-timeout", type=float, metavar="SECONDS",
                        help="wall-clock limit of one simulator run (default "
                             "$NMSPARSE_SIM_TIMEOUT, else 1800)")
    from .sidecar_cli import add_source_arguments

    add_source_arguments(parser.add_argument_group("extra sources (added to every module)"))


def _serves(sc, n: int, m: int) -> bool:
    """A flexible selector that serves ``n:m`` (M a power of two up to its W lanes)."""
    from nmsparse.contract import flex

    return m & (m - 1) == 0 and flex.serves(n, m.bit_length() - 1, sc.w, sc.max_kept)


def select_modules(hdl_dir: Path, n: int, m: int, fmt: str, arch: str | None):
    """Top-k selectors of ``hdl_dir`` for ``n:m`` and ``fmt`` (and ``arch`` if given)."""
    from nmsparse.contract.sidecar import list_modules

    mods = list_modules(hdl_dir)
    point = [sc for sc in mods if sc.unit == "topk" and sc.n == n and sc.m == m
             and sc.fmt == fmt]
    chosen = [sc for sc in point if arch is None or sc.arch == arch]
    chosen += [sc for sc in mods if sc.unit == "topk_flex" and sc.fmt == fmt
               and (arch is None or sc.arch == arch) and _serves(sc, n, m)]
    if not chosen:
        have = sorted({f"{sc.pattern} {sc.fmt}" + (f" {sc.arch}" if sc.arch else "")
                       for sc in mods if sc.unit == "topk"})
        what = f"{n}:{m} {fmt}" + (f" arch {arch}" if arch else "")
        unlabelled = [sc.module for sc in point if not sc.arch]
        why = ""
        if arch and unlabelled:
            why = (f"; {', '.join(unlabelled)} {'has' if len(unlabelled) == 1 else 'have'} no "
                   "params.arch, so --arch cannot select it: add \"arch\": \"<label>\" to "
                   "its sidecar's params, or drop --arch")
        raise FileNotFoundError(
            f"no top-k selector for {what} in {hdl_dir}"
            + (f"; it has: {', '.join(have)}" if have else " (no top-k selectors at all)")
            + why)
    return chosen


def write_records(path: str | Path, records: list[dict]) -> None:
    """Merge ``records`` into the JSON list at ``path`` (same module and source replaced)."""
    p = Path(path)
    old: list = []
    if p.is_file():
        try:
            old = json.loads(p.read_text())
        except (OSError, ValueError):
            old = []
        if not isinstance(old, list):
            old = []
    keys = {(r["module"], r.get("source"), r.get("pattern")) for r in records}
    merged = [r for r in old if not (isinstance(r, dict) and (
        r.get("module"), r.get("source"), r.get("pattern")) in keys)]
    merged += records
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, p)


def _check_one(job: tuple) -> tuple[dict, str, str, int]:
    """One module of the cross-check (runs in a worker process when ``--jobs`` > 1).

    Returns its record, the line to print, the failure text (empty on a pass) and an exit
    code (0 pass, 1 mismatch, 2 bad input).
    """
    from nmsparse.contract import toolchain
    from nmsparse.contract.vectors import Scenario

    from . import runner, vectors
    from .errors import SimError, exit_code

    sc, src, activations, limit, seed, build_root, timeout, hdl, (n, m) = job
    t0 = time.perf_counter()
    acts = vectors.load_activations(activations)
    if sc.flexible:  # the same pattern on every transfer of W lanes
        from .flexvec import flex_topk_phase

        lim = None if limit is None else -(-limit * m // sc.w)  # the same number of groups
        bits, labels = vectors.activation_groups(acts, sc.w, sc.fmt, limit=lim)
        t = bits.shape[0]
        phase = flex_topk_phase(sc, bits, [m.bit_length() - 1] * t, [n] * t)
    else:
        bits, labels = vectors.activation_groups(acts, sc.m, sc.fmt, limit=limit)
        phase = vectors.topk_phase(sc, bits)
    scen = [Scenario("crosscheck", [phase], check_latency=True, segments=labels)]
    try:
        res = runner.run_vectors(sc, scen, seed=seed, build_root=build_root, tag="crosscheck",
                                 sources=src, timeout=timeout)
    except toolchain.ToolchainError as exc:
        return {}, "", f"nmsparse: error: {exc}", 2
    except SimError as exc:
        return {}, "", f"nmsparse: error: {exc.one_line()}", exit_code(exc)
    rec = res.scenarios[0]
    bad = not rec.ok or not res.passed
    line = (f"{sc.module}: {rec.groups} groups checked, {rec.mismatches} mismatches, "
            f"{rec.groups_per_second:.0f} groups/s (latency {sc.latency}, "
            f"{time.perf_counter() - t0:.1f} s with build) "
            + (f"FAIL: {res.cause()}" if bad else "PASS"))
    source = "default" if activations == "default" else str(Path(activations))
    record = {
        "module": sc.module, "pattern": f"{n}:{m}", "fmt": sc.fmt, "arch": sc.arch,
        "lanes": sc.lanes, "flexible": sc.flexible, "groups": rec.groups,
        "mismatches": rec.mismatches,
        "errors": rec.errors, "groups_per_second": round(rec.groups_per_second, 1),
        "seed": seed, "source": source, "hdl_dir": str(hdl),
    }
    return record, line, res.failure_text() if bad else "", 1 if bad else 0


def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from nmsparse.contract import seeds
    from nmsparse.contract.formats import get_format
    from nmsparse.contract.patterns import parse_pattern
    from nmsparse.contract.progress import Progress

    from . import runner, vectors
    from .sources import sources_for

    pats = [parse_pattern(p) for p in _list(args.pattern)]
    fmts = [get_format(f).name for f in _list(args.fmt)]
    if not pats or not fmts:
        raise ValueError(f"--pattern and --fmt need at least one value, not {args.pattern!r} "
                         f"and {args.fmt!r}")
    if args.limit is not None and args.limit <= 0:
        raise ValueError(f"--limit must be a positive number of groups, not {args.limit}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, not {args.jobs}")
    seed = seeds.seed(args.seed)
    hdl = runner.hdl_dir(args.hdl_dir)  # relative to the caller's directory
    if not hdl.is_dir():
        raise FileNotFoundError(f"HDL directory {hdl} does not exist")
    acts = vectors.load_activations(args.activations)
    for _n, m in pats:  # bad activations fail here, once, before any build
        for fmt in fmts:
            vectors.activation_groups(acts, m, fmt, limit=args.limit)
    mods = [(sc, (n, m)) for n, m in pats for fmt in fmts
            for sc in select_modules(hdl, n, m, fmt, args.arch)]
    for w, fmt in {(sc.w, sc.fmt) for sc, _ in mods if sc.flexible}:  # W-lane transfers
        vectors.activation_groups(acts, w, fmt, limit=args.limit)
    timeout = runner.sim_timeout(args.sim_timeout)
    build_root = (Path(args.build_dir).expanduser().resolve() if args.build_dir
                  else runner.default_build_root())
    activations = args.activations if args.activations == "default" else \
        str(Path(args.activations).resolve())
    jobs = []
    for sc, pat in mods:
        src = sources_for(sc, files=[Path(p) for p in args.source],
                          include_dirs=[Path(p) for p in args.include], defines=args.define)
        src.check()
        jobs.append((sc, src, activations, args.limit, seed, build_root, timeout, hdl, pat))
    source = "default" if args.activations == "default" else str(Path(args.activations))
    print(f"crosscheck: {', '.join(f'{n}:{m}' for n, m in pats)} x {', '.join(fmts)} from "
          f"{source}, {len(mods)} module(s) in {hdl}, seed {seed}, {args.jobs} in parallel",
          flush=True)
    bar = Progress(len(jobs), "modules checked", heartbeat=60.0)
    records, worst = [], 0
    if args.jobs == 1 or len(jobs) == 1:
        outcomes = map(_check_one, jobs)
        pool = None
    else:  # spawn: a fresh interpreter per worker (no forked torch threads)
        pool = ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn"))
        outcomes = pool.map(_check_one, jobs)
    try:
        for record, line, failure, code in outcomes:
            if failure:
                print(failure, file=sys.stderr, flush=True)
            if code == 2:
                return 2
            bar.advance(note=line)
            records.append(record)
            worst = max(worst, code)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if args.json:
        write_records(args.json, records)
    return worst
