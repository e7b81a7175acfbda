"""``nmsparse report``: synthesize, place and route every module, then write the reports.

Writes ``<out>/resources.json`` (one record per module), ``<out>/report.md`` and
``<out>/report.html``, reading ``<out>/crosscheck.json`` and ``<out>/quality.json`` when they
exist (their columns say "not run" otherwise). Results are cached under ``<out>/.cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from nmsparse.contract import toolchain
from nmsparse.contract.progress import Progress

from . import baselines, cache, families, records, render, synth

__all__ = ["add_arguments", "run", "build", "write_reports"]

HEARTBEAT_S = 60.0
"""Seconds between progress lines in a log while long place-and-route jobs run."""


class _Null:
    def write(self, _text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _expected_work(todo: list[records.Point], sources: dict[str, bytes], out_dir: Path,
                   placing: dict[str, bool]) -> tuple[dict[str, float], bool]:
    """Weights for the progress estimate and the order of the jobs: the tool seconds an
    earlier measurement of the same module took (any cached version, else its record in the
    report directory's ``resources.json``, so a cold run has them too; synthesis alone for a
    point not placed), else the Verilog size (relative work) for all. Returns the weights
    and whether they are seconds."""
    committed = _previous_seconds(out_dir / "resources.json")
    seconds = {}
    for p in todo:
        s = cache.previous_runtime(out_dir / ".cache", p.module)
        rec = committed.get(p.module)
        if s is None and rec is not None:
            s = rec[0] + (rec[1] if placing[p.module] else 0.0)
        seconds[p.module] = s
    if all(v is not None for v in seconds.values()):
        return {m: max(1.0, float(v)) for m, v in seconds.items()}, True  # type: ignore[arg-type]
    return {p.module: float(len(sources[p.module])) for p in todo}, False


def _previous_seconds(path: Path) -> dict[str, tuple[float, float]]:
    """``{module: (Yosys, nextpnr CPU seconds)}`` of a report's ``resources.json`` (the
    modules measured there; none if it is absent or unreadable)."""
    try:
        mods = json.loads(path.read_text())["modules"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    out = {}
    for rec in mods if isinstance(mods, list) else []:
        cpu = rec.get("cpu_s") if isinstance(rec, dict) else None
        if isinstance(cpu, dict) and isinstance(cpu.get("yosys"), (int, float)):
            out[rec["module"]] = (float(cpu["yosys"]), float(cpu.get("nextpnr") or 0.0))
    return out


def _jobs(value: str) -> int:
    if value == "auto":
        return max(1, os.cpu_count() or 1)
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs must be a positive integer or 'auto', "
                                         f"not {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be a positive integer, not {n}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", choices=("shipped", "all"), default="shipped",
                        help="shipped: the modules in <hdl>/manifest.json; all: every module "
                             "with a sidecar in <hdl> (default: shipped)")
    parser.add_argument("--hdl", default="hdl", type=Path,
                        help="directory with the Verilog and sidecar JSON (default: hdl)")
    parser.add_argument("-o", "--output", default="reports", type=Path,
                        help="report directory; crosscheck.json and quality.json are read "
                             "from here (default: reports)")
    parser.add_argument("-j", "--jobs", default="auto", type=_jobs,
                        help="points measured in parallel (default: auto = number of CPUs)")
    parser.add_argument("--only", action="append", default=[], metavar="GLOB",
                        help="measure only modules matching this pattern (repeatable)")
    parser.add_argument("--no-place", action="store_true",
                        help="skip place and route (no post-place figures, no Fmax)")
    parser.add_argument("--cached-only", action="store_true",
                        help="run no tool: report the cached measurements (a synthesis-only "
                             "one where no placed one exists), the other modules as 'not run'")
    parser.add_argument("--no-cache", action="store_true",
                        help="measure again even when a cached result exists")
    parser.add_argument("--write-baselines", type=Path, default=None, metavar="FILE",
                        help="also store the figures as resource baselines (e.g. "
                             "reports/baselines/resources.json)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="CPU seconds allowed per tool run (the tool's own CPU time, so a "
                             "loaded machine does not change the verdict; also stopped after "
                             "4x that in wall time; default: none)")
    parser.add_argument("--keep", action="store_true",
                        help="with --only: the other modules of --points keep their records "
                             "from <output>/resources.json (measured by an earlier run, e.g. "
                             "the committed engine sweep), so that a few points are added or "
                             "measured again without the hours of the whole set")
    parser.add_argument("--families", default="", metavar="LIST",
                        help="also measure these FPGA families: xilinx (7-series, post-synthesis "
                             "estimates), nexus (CrossLink-NX place and route); without it, "
                             "their cached results are reported and nothing more is run")


def _say(msg: str) -> None:
    print(msg, flush=True)


def _warm_up(tools: list[str], say=_say) -> None:
    """Compile the WebAssembly of the YoWASP tools once, before running jobs in parallel."""
    say(f"first run on this machine: compiling the WebAssembly of {', '.join(tools)} "
         "to machine code; this takes one to two minutes, once (cached in ~/.cache/YoWASP)")
    for name in tools:
        exe = toolchain.yowasp(name)
        t0 = time.monotonic()
        subprocess.run([exe, "--version"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False)
        say(f"  {name} ready ({time.monotonic() - t0:.0f} s)")


def build(points: list[records.Point], out_dir: Path, *, jobs: int = 1, place: bool = True,
          use_cache: bool = True, timeout: float | None = None,
          progress: bool = True, cached_only: bool = False) -> list[dict]:
    """Measure ``points`` (cached, in parallel) and return their records in order.

    With ``cached_only`` no tool runs: a module without a cached placed result gets its
    synthesis-only one (``place=False``) if cached, else empty figures.
    """
    say = _say if progress else (lambda _m: None)
    cache_root = out_dir / ".cache"
    flows: dict[tuple[bool, tuple[str, ...]], str] = {}
    sources = {p.module: p.verilog.read_bytes() for p in points}
    flow_of = {}
    for p in points:
        kind = (synth.keeps_memories(p.sidecar), synth.uses_primitives(sources[p.module]))
        if kind not in flows:
            flows[kind] = synth.flow_signature(memories=kind[0], primitives=kind[1])
        flow_of[p.module] = flows[kind]
    # a module whose multipliers exceed the device's DSP blocks is synthesized only
    placing = {p.module: place and synth.fits_device(p.sidecar) for p in points}
    # the key of a synthesis-only measurement, and the one of this run's mode
    synth_keys = {p.module: cache.point_key(sources[p.module], p.sidecar, flow_of[p.module],
                                            place=False) for p in points}
    keys = {p.module: cache.point_key(sources[p.module], p.sidecar,
                                      flow_of[p.module],
                                      place=placing[p.module])
            for p in points}
    results: dict[str, dict | None] = {}
    errors: dict[str, str] = {}
    # modules whose place and route did not finish in the time allowed, on this very Verilog
    # and flow: synthesized only, with the reason (<out>/place_timeouts.json, committed)
    timeouts_file = out_dir / cache.PLACE_TIMEOUTS
    known = cache.load_place_timeouts(timeouts_file) if use_cache else {}
    unplaced: dict[str, str] = {}
    todo = []
    for p in points:
        mod = p.module
        hit = cache.load(cache_root, mod, keys[mod]) if use_cache else None
        failed = (cache.failure_record(cache_root, mod, keys[mod], timeout,
                                       any_timeout=cached_only)
                  if hit is None and use_cache else None)
        if hit is None and placing[mod] and use_cache:
            why = cache.known_place_timeout(known, mod, keys[mod], timeout,
                                            any_timeout=cached_only)
            if why is None and failed is not None and failed["stage"] == "place" \
                    and failed["timeout"] is not None:
                why = failed["error"]
                cache.record_place_timeout(timeouts_file, mod, keys[mod], failed["timeout"],
                                           why)
            if why is not None:
                unplaced[mod], placing[mod], keys[mod], failed = why, False, synth_keys[mod], None
                hit = cache.load(cache_root, mod, synth_keys[mod])
        if hit is None and cached_only and placing[mod]:
            # report a synthesis-only measurement (--no-place) rather than none: ASIC and
            # post-synthesis figures, no Fmax
            hit = cache.load(cache_root, mod, synth_keys[mod])
        if hit is not None:
            results[mod] = hit
        elif failed is not None:
            # measured before and failed (a tool error, or a timeout no longer than this
            # run's): reported again, not repeated
            errors[mod] = failed["error"]
        else:
            todo.append(p)
    total, done = len(points), len(results) + len(errors)
    width = max((len(p.module) for p in points), default=10)
    if cached_only:
        say(f"nmsparse report: {total} modules, {len(results)} cached"
            + (f", {len(errors)} failed before" if errors else "")
            + (f", {len(unplaced)} not placed before" if unplaced else "")
            + f", {len(todo)} not run (--cached-only)")
        todo = []
    else:
        say(f"nmsparse report: {total} modules, {len(results)} cached"
            + (f", {len(errors)} failed before (cached; --no-cache or a longer --timeout "
               "tries again)" if errors else "")
            + (f", {len(unplaced)} synthesized only (their place and route did not finish "
               f"in the time allowed before: {timeouts_file}; a longer --timeout or "
               "--no-cache tries again)" if unplaced else "")
            + f", {len(todo)} to measure "
            f"({'synthesis, place and route' if place else 'synthesis only'}, "
            f"{jobs} in parallel)")
    if todo:
        cold = toolchain.wasm_not_compiled()
        if cold:
            _warm_up(cold, say)
    lock = threading.Lock()
    # the longest first (an earlier run's tool seconds, else the Verilog size): better load
    # balance across jobs
    weights, in_seconds = _expected_work(todo, sources, out_dir, placing)
    todo.sort(key=lambda p: -weights[p.module])

    def one(p: records.Point, place: bool | None = None,
            t0: float | None = None) -> tuple[records.Point, dict | None, str | None, float]:
        t0 = time.monotonic() if t0 is None else t0
        place = placing[p.module] if place is None else place
        work = cache.entry_dir(cache_root, p.module, keys[p.module]) / "work"
        try:
            r = synth.measure(p.verilog, p.sidecar, work, place=place,
                              timeout=timeout,
                              source=sources[p.module],
                              on_step=lambda step: steps.__setitem__(p.module, step))
        except synth.SynthesisError as exc:
            dt = time.monotonic() - t0
            cache.store_failure(cache_root, p.module, keys[p.module], str(exc), exc.timeout, dt,
                                stage=exc.stage)
            if exc.stage != "place" or exc.timeout is None:
                return p, None, str(exc), dt
            # place and route ran out of time: recorded, and the point synthesized only
            with lock:
                cache.record_place_timeout(timeouts_file, p.module, keys[p.module],
                                           exc.timeout, str(exc))
                unplaced[p.module] = str(exc)
                keys[p.module] = synth_keys[p.module]
            hit = cache.load(cache_root, p.module, keys[p.module])
            if hit is not None:  # synthesized only before
                return p, hit, None, time.monotonic() - t0
            return one(p, place=False, t0=t0)
        except (ValueError, OSError) as exc:  # not a property of the design: not cached
            return p, None, str(exc), time.monotonic() - t0
        cache.store(cache_root, p.module, keys[p.module])
        if place and known.get(p.module):
            with lock:
                cache.forget_place_timeout(timeouts_file, p.module)
        return p, r, None, time.monotonic() - t0

    if todo:
        running: dict[str, float] = {}
        steps: dict[str, str] = {}
        bar = Progress(len(todo), "measured", total_weight=sum(weights.values()),
                       heartbeat=HEARTBEAT_S, stream=sys.stdout if progress else _Null(),
                       jobs=jobs, unit_seconds=1.0 if in_seconds else None)

        def job(p: records.Point):
            with lock:
                running[p.module] = time.monotonic()
            try:
                return one(p)
            finally:
                with lock:
                    running.pop(p.module, None)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            pending = {pool.submit(job, p) for p in todo}
            while pending:
                finished, pending = wait(pending, timeout=5.0, return_when=FIRST_COMPLETED)
                for fut in finished:
                    p, r, err, dt = fut.result()
                    done += 1
                    if err is None:
                        results[p.module] = r
                        rt = r["runtime_s"]
                        pnr = (f"  P&R {rt['nextpnr']:6.1f} s  Fmax "
                               f"{r['post_place']['fmax_mhz'] or 0:6.1f} MHz"
                               if r.get("post_place") else "")
                        if p.module in unplaced:
                            pnr = "  P&R did not finish: synthesized only"
                        note = (f"[{done:2d}/{total}] {p.module:<{width}}  synth "
                                f"{rt['yosys']:6.1f} s{pnr}  LUT4 {r['post_synth']['LUT']}")
                    else:
                        errors[p.module] = err
                        note = (f"[{done:2d}/{total}] {p.module:<{width}}  FAILED after "
                                f"{dt:.0f} s: {err.splitlines()[0]}")
                    with lock:
                        now = time.monotonic()
                        bar.active = [(weights[m], now - t) for m, t in running.items()]
                    bar.advance(weights[p.module], note, seconds=dt)
                if pending:
                    with lock:
                        now = time.monotonic()
                        busy = ", ".join(f"{m} ({steps.get(m, 'start')} {now - t:.0f} s)"
                                         for m, t in running.items())
                        active = [(weights[m], now - t) for m, t in running.items()]
                    bar.beat(busy, active)
        bar.close()
    return [records.make_record(p, results.get(p.module), error=errors.get(p.module),
                                place_error=unplaced.get(p.module))
            for p in points]


def kept_records(recs: list[dict], points: list[records.Point], previous: Path) -> list[dict]:
    """``recs`` (this run's records) with the records of ``previous`` (an earlier run's
    ``resources.json``) for the other modules of ``points``, in the order of ``points``;
    a module of ``points`` in neither is left out (as a run without it would)."""
    if not previous.is_file():
        raise FileNotFoundError(f"--keep: {previous} does not exist (no earlier records to "
                                f"keep); run without --keep first")
    old = {r["module"]: r for r in json.loads(previous.read_text()).get("modules", [])}
    new = {r["module"]: r for r in recs}
    return [new.get(p.module) or old[p.module] for p in points
            if p.module in new or p.module in old]


def write_reports(recs: list[dict], out_dir: Path) -> tuple[Path, Path, Path]:
    """Write ``resources.json``, ``report.md`` and ``report.html`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tools = next((r["tools"] for r in recs if r.get("tools")), None)
    meta = {"device": synth.DEVICE, "target_mhz": synth.TARGET_MHZ, "seed": synth.SEED,
            "tools": tools, "nexus_device": families.NEXUS_DEVICE,
            "xilinx_family": families.XILINX_FAMILY}
    doc = {"schema": records.SCHEMA, **meta,
           "sections": {
               "post_synth": "Yosys synth_ecp5 of the module kept as one level of hierarchy "
                             "inside its timing wrapper: cell counts of the module alone",
               "post_place": "nextpnr-ecp5 --out-of-context, the module in a timing wrapper "
                             "that registers every port (wrapper_ff registers included)",
               "asic": "Yosys synth -flatten; dffunmap; abc -g cmos2; stat -tech cmos; ltp -noff",
               **families.DESCRIPTIONS,
           },
           "modules": recs}
    res = out_dir / "resources.json"
    res.write_text(json.dumps(doc, indent=1) + "\n")
    cross = records.load_results(out_dir / "crosscheck.json")
    records.attach_proofs(recs, records.load_results(out_dir / "proofs.json"))
    quality = records.load_results(out_dir / "quality.json")
    sweep, lut4_per_dsp = _sweep_results(out_dir)
    md = out_dir / "report.md"
    md.write_text(render.markdown(recs, meta, cross, quality, sweep, lut4_per_dsp))
    page = out_dir / "report.html"
    eng = sweep or recs
    page.write_text(render.html_page(recs, meta, cross, quality,
                                     {**render.plots(recs, quality), **render.sweep_plots(eng)},
                                     sweep, lut4_per_dsp))
    return res, md, page


def _sweep_results(out_dir: Path) -> tuple[list[dict] | None, float | None]:
    """Records of ``<out>/engine_sweep/resources.json`` (the engine sweep, ``make
    engine-sweep``) and the LUT4 count of a DSP block (``<out>/engine_sweep/dsp_lut4.json``),
    where present; a sweep directory's own report reads its own files."""
    d = out_dir if (out_dir / "dsp_lut4.json").is_file() else out_dir / "engine_sweep"
    lut4 = None
    if (d / "dsp_lut4.json").is_file():
        lut4 = json.loads((d / "dsp_lut4.json").read_text()).get("lut4_per_dsp")
    sweep = None
    if d != out_dir and (d / "resources.json").is_file():
        sweep = json.loads((d / "resources.json").read_text()).get("modules")
    return sweep, lut4


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except toolchain.ToolchainError as exc:
        print(f"nmsparse: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    points = records.find_points(args.hdl, args.points, args.only)
    measure_fams = families.parse_families(args.families)
    recs = build(points, args.output, jobs=args.jobs, place=not args.no_place,
                 use_cache=not args.no_cache, timeout=args.timeout,
                 cached_only=args.cached_only)
    fam = families.build(points, args.output, () if args.cached_only else measure_fams,
                         jobs=args.jobs, place=not args.no_place,
                         use_cache=not args.no_cache, timeout=args.timeout)
    for rec in recs:
        records.attach_families(rec, fam.get(rec["module"]))
    failed = [r["module"] for r in recs if r.get("error")]  # of this run
    if getattr(args, "keep", False):
        recs = kept_records(recs, records.find_points(args.hdl, args.points),
                            args.output / "resources.json")
    res, md, page = write_reports(recs, args.output)
    if args.write_baselines is not None:
        _say(f"baselines written to {baselines.write(args.write_baselines, recs)}")
    if failed:
        print(f"nmsparse report: {len(failed)} module(s) failed: {', '.join(failed)}",
              file=sys.stderr)
    _say(f"report written to {md} and {page} (data: {res}) in {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0
