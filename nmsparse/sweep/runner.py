"""Run a sweep on Dask: generate, verify a sample, synthesize and place every point, cached.

::

    spec (TOML or flags) ─► grid.expand ─► points ─► estimate ─► prune? ──► recorded, not run
                                                         │
     Dask ◄── generate(point) ◄──────────────────────────┘
       │        └─► hdl/<module>.v/.json on the client; cache key per family
       ├── measure(point, family)   only on a cache miss (same cache as `nmsparse report`)
       └── verify(point)            a deterministic sample, cached by Verilog and seed
     results ─► one table (Parquet + CSV), records.json, an interactive page (sweep.html)

The client owns the cache and the output directory; workers get and return plain data
(:mod:`nmsparse.sweep.tasks`), so the same sweep runs on a local cluster or on a user's
cluster (``scheduler="tcp://host:8786"``) with nothing shared but the network. A measurement
is stored the moment it returns, so an interrupted sweep loses at most the points in flight
and the next run picks up where it stopped. The trade-off: Verilog travels twice (to the
client after generation, back to a worker for each tool run), a few MB per point at most,
against requiring a shared file system.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from nmsparse.contract.progress import Progress, format_seconds
from nmsparse.contract.seeds import DEFAULT_SEED
from nmsparse.contract.sidecar import load_sidecar
from nmsparse.report import cache, families, records, synth

from . import grid, tasks

__all__ = ["SweepSpec", "SweepResult", "load_spec", "run_sweep", "PRUNE_KEYS"]

#: ``[prune]`` keys: estimate bounds outside which a point is recorded but not measured
PRUNE_KEYS = {"max_lut4": ("lut4", max), "max_ff": ("ff", max),
              "max_transistors": ("transistors", max), "min_fmax_mhz": ("fmax_mhz", min)}
_SPEC_KEYS = ("name", "families", "place", "verify", "verify_groups", "seed", "timeout",
              "retries", "output", "cache", "quality")


@dataclass
class SweepSpec:
    """What to sweep and how.

    Parameters
    ----------
    grids : list of Grid
        The union of their points is the sweep.
    name : str
        Names the output directory ``<output>`` (default ``reports/sweep/<name>``).
    families : tuple of str
        Extra FPGA families (``xilinx``, ``nexus``); ECP5 and the ASIC proxy always run.
    place : bool
        Place and route (ECP5, Nexus); False: synthesis only (no Fmax).
    verify : float
        Fraction of the valid points cross-checked against the golden model in simulation
        (a deterministic sample: the same points on every run; at least one when > 0).
    verify_groups : int
        Random groups per stimulus pattern of each verification.
    seed : int
        Seed of the verification stimulus and of the sample.
    timeout : float or None
        Seconds allowed per tool run (None: no limit).
    retries : int
        Extra attempts of a task that timed out or whose worker died.
    prune : dict
        Estimate bounds (:data:`PRUNE_KEYS`): a point outside them is not measured.
    output, cache : Path
        Output directory; measurement cache (default ``reports/.cache``, shared with
        ``nmsparse report``).
    quality : Path or None
        ``quality.json`` whose perplexity per pattern joins the table (default
        ``reports/quality.json`` when it exists).
    """

    grids: list[grid.Grid]
    name: str = "sweep"
    families: tuple[str, ...] = ()
    place: bool = True
    verify: float = 0.1
    verify_groups: int = 64
    seed: int = DEFAULT_SEED
    timeout: float | None = None
    retries: int = 1
    prune: dict = field(default_factory=dict)
    output: Path | None = None
    cache: Path = Path("reports/.cache")
    quality: Path | None = None

    def __post_init__(self) -> None:
        if not 0 <= float(self.verify) <= 1:
            raise ValueError(f"verify must be a fraction in [0, 1], not {self.verify!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) \
                or self.retries < 0:
            raise ValueError(f"retries must be an integer >= 0, not {self.retries!r}")
        if self.timeout is not None and float(self.timeout) <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, not "
                             f"{self.timeout!r}")
        unknown = sorted(set(self.prune) - set(PRUNE_KEYS))
        if unknown:
            raise ValueError(f"unknown [prune] key {', '.join(unknown)}; valid: "
                             f"{', '.join(PRUNE_KEYS)}")
        if isinstance(self.families, str):
            self.families = families.parse_families(self.families)
        else:
            self.families = families.parse_families(",".join(self.families))
        if not self.name or any(c in self.name for c in "/\\"):
            raise ValueError(f"sweep name must be a plain name, not {self.name!r}")
        self.cache = Path(self.cache)
        self.output = Path(self.output) if self.output else Path("reports/sweep") / self.name
        if self.quality is None and Path("reports/quality.json").is_file():
            self.quality = Path("reports/quality.json")


def load_spec(path: str | Path, **overrides: Any) -> SweepSpec:
    """A sweep file: ``[sweep]`` options, ``[[grid]]`` tables, optional ``[prune]``.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        It is not valid TOML, has no grid, or names an unknown option, unit or parameter.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sweep file {p} does not exist")
    try:
        doc = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{p} is not valid TOML: {exc}") from None
    head = doc.get("sweep", {})
    unknown = sorted(set(head) - set(_SPEC_KEYS))
    if unknown:
        raise ValueError(f"{p}: unknown [sweep] option {', '.join(unknown)}; valid: "
                         f"{', '.join(_SPEC_KEYS)}")
    tables = doc.get("grid")
    if not tables or not isinstance(tables, list):
        raise ValueError(f"{p}: no [[grid]] table (each names a unit and its parameter lists)")
    grids = [grid.Grid.from_mapping(t, f"{p}: grid {i + 1}") for i, t in enumerate(tables)]
    for g in grids:
        g.check()
    kw = {k: head[k] for k in _SPEC_KEYS if k in head}
    kw.setdefault("name", p.stem)
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return SweepSpec(grids=grids, prune=dict(doc.get("prune", {})), **kw)


@dataclass
class SweepResult:
    """What a sweep produced: one row per point, the files written, the time taken."""

    rows: list[dict]
    records: list[dict]
    files: dict[str, Path]
    wall_s: float
    measured: int
    cached: int

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.rows if r["status"] in ("failed", "invalid", "mismatch")]


# ----------------------------------------------------------------------------- helpers
def _say(stream: TextIO, msg: str) -> None:
    stream.write(msg + "\n")
    stream.flush()


def _sampled(name: str, fraction: float, seed: int) -> bool:
    """Deterministic sample: the same points are verified on every run of the sweep."""
    if fraction >= 1:
        return True
    if fraction <= 0:
        return False
    h = int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)
    return h / 0xFFFFFFFF < fraction


def _verify_key(verilog: bytes, sidecar: str, seed: int, groups: int) -> str:
    h = hashlib.sha256(verilog)
    h.update(sidecar.encode())
    h.update(f"verify:{seed}:{groups}".encode())
    return h.hexdigest()


def _verify_file(root: Path, name: str, key: str) -> Path:
    return root / "verify" / f"{name}-{key[:16]}.json"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def _store(root: Path, cname: str, key: str, files: Mapping[str, bytes]) -> None:
    """Put a worker's tool outputs into the cache, as ``nmsparse report`` leaves them."""
    work = cache.entry_dir(root, cname, key) / "work"
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("meta.json"):
        stale.unlink()
    # meta.json last: its presence marks a complete measurement
    for rel, data in sorted(files.items(), key=lambda kv: kv[0] == "meta.json"):
        _write_atomic(work / rel, data)
    cache.store(root, cname, key)


def _load(root: Path, module: str, family: str, key: str) -> dict | None:
    if family == "ecp5":
        return cache.load(root, module, key)
    return families.load_cached(root, module, family, key)


def _client(scheduler: str | None, workers: int | None, stream: TextIO):
    """A Dask client: of the cluster at ``scheduler``, else of a new LocalCluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        _say(stream, f"nmsparse sweep: connecting to the Dask scheduler at {scheduler}")
        return Client(scheduler, timeout="30s"), None
    n = workers or max(1, os.cpu_count() or 1)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=":0", silence_logs=40)
    return Client(cluster), cluster


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if type(exc).__name__ == "KilledWorker":
        text = f"the worker running it died on every attempt ({text})"
    return text


# ----------------------------------------------------------------------------- the run
def run_sweep(spec: SweepSpec, *, client=None, scheduler: str | None = None,
              workers: int | None = None, stream: TextIO | None = None,
              heartbeat: float = 60.0, use_cache: bool = True) -> SweepResult:
    """Run ``spec`` and write its table and page; return the rows.

    Parameters
    ----------
    client : distributed.Client, optional
        Use this client (its cluster stays up afterwards).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default: a LocalCluster
        with ``workers`` workers (one per core), one thread each.
    use_cache : bool
        False measures every point again (the new results still go into the cache).
    """
    from distributed import as_completed

    from . import estimate as est_mod
    from . import table

    stream = stream or sys.stdout
    t0 = time.monotonic()
    out = spec.output
    hdl = out / "hdl"
    hdl.mkdir(parents=True, exist_ok=True)
    root = spec.cache
    fams = ("ecp5", *spec.families)
    points = grid.expand(spec.grids)
    valid = [p for p in points if p.valid]
    model = est_mod.Model.load_default()
    estimates: dict[str, dict | None] = {}
    pruned: dict[str, str] = {}
    for p in valid:
        estimates[p.name] = model.predict_config(p.config) if model else None
        why = _prune_reason(estimates[p.name], spec.prune)
        if why:
            pruned[p.name] = why
    todo = [p for p in valid if p.name not in pruned]
    verify_set = {p.name for p in todo
                  if _sampled(p.name, float(p.options.get("verify", spec.verify)), spec.seed)}
    if todo and float(spec.verify) > 0 and not verify_set and \
            all("verify" not in p.options for p in todo):
        verify_set = {todo[0].name}  # at least one point is cross-checked
    flow = "synthesis + place and route" if spec.place else "synthesis only"
    _say(stream, f"nmsparse sweep {spec.name}: {grid.describe(points)}, {len(pruned)} pruned "
                 f"by estimate, {len(verify_set)} to cross-check; families "
                 f"{', '.join(fams)}; {flow}; output {out}")
    for p in points:
        if not p.valid:
            _say(stream, f"  invalid point {p.label()}: {p.error}")

    own_cluster = None
    if client is None:
        client, own_cluster = _client(scheduler, workers, stream)
    ninfo = len(client.scheduler_info().get("workers", {}))
    _say(stream, f"  Dask: {ninfo} worker(s) at {client.scheduler.address}")
    flows = {f: families.flow_signature(f) for f in fams}
    # ECP5 measurements of MACs read gen/prims/ecp5/ (synth.uses_primitives): keyed with the
    # forms they read
    prim_flows: dict[tuple[str, ...], str] = {}
    state: dict[str, dict] = {p.name: {"point": p, "measured": {}, "errors": {},
                                       "verify": None, "pending": 0, "gen": None}
                              for p in todo}
    bar = Progress(len(todo), "points", stream=stream, heartbeat=heartbeat)
    measured = cached = 0
    futures: dict[Any, tuple[str, str]] = {}
    ac = as_completed()

    def submit(kind: str, name: str, fn, *args, retries: int, **kw) -> None:
        fut = client.submit(fn, *args, key=f"{kind}-{name}-{os.urandom(4).hex()}",
                            pure=False, retries=retries, **kw)
        futures[fut] = (kind, name)
        state[name]["pending"] += 1
        ac.add(fut)

    def finish_if_done(name: str) -> None:
        s = state[name]
        if s["pending"] == 0 and not s.get("done"):
            s["done"] = True
            bar.advance(1.0, _note(s, fams, bar.done + 1, len(todo)))

    try:
        for p in todo:
            submit("generate", p.name, tasks.generate, p.unit, p.params, p.name,
                   retries=int(p.options.get("retries", spec.retries)))
        if not todo:
            bar.close()
        for fut in ac:
            kind, name = futures.pop(fut)
            s = state[name]
            p = s["point"]
            s["pending"] -= 1
            retries = int(p.options.get("retries", spec.retries))
            timeout = p.options.get("timeout", spec.timeout)
            place = bool(p.options.get("place", spec.place))
            try:
                res = fut.result()
            except Exception as exc:  # a task that raised after its retries
                s["errors"][kind] = _error_text(exc)
                finish_if_done(name)
                continue
            if kind == "generate":
                s["gen"] = res
                (hdl / f"{name}.v").write_bytes(res["verilog"])
                (hdl / f"{name}.json").write_text(res["sidecar"])
                sc = load_sidecar(hdl / f"{name}.json")
                s["sidecar"] = sc
                for fam in fams:
                    fplace = place and fam != "xilinx"
                    prims = synth.uses_primitives(res["verilog"]) if fam == "ecp5" else ()
                    if prims and prims not in prim_flows:
                        prim_flows[prims] = synth.flow_signature(primitives=prims)
                    flow = prim_flows[prims] if prims else flows[fam]
                    key = cache.point_key(res["verilog"], sc, flow, place=fplace)
                    s.setdefault("keys", {})[fam] = key
                    hit = _load(root, name, fam, key) if use_cache else None
                    if hit is not None:
                        s["measured"][fam] = hit
                        s.setdefault("cached", set()).add(fam)
                        cached += 1
                        continue
                    submit(f"measure.{fam}", name, tasks.measure, fam, name, res["verilog"],
                           res["sidecar"], place=fplace, timeout=timeout, retries=retries)
                if name in verify_set:
                    vkey = _verify_key(res["verilog"], res["sidecar"], spec.seed,
                                       spec.verify_groups)
                    vfile = _verify_file(root, name, vkey)
                    if use_cache and vfile.is_file():
                        s["verify"] = json.loads(vfile.read_text())
                    else:
                        s["vfile"] = vfile
                        submit("verify", name, tasks.verify, name, res["verilog"],
                               res["sidecar"], seed=spec.seed, groups=spec.verify_groups,
                               retries=retries)
            elif kind.startswith("measure."):
                fam = kind.partition(".")[2]
                if res["error"]:
                    s["errors"][kind] = res["error"]
                else:
                    cname = name if fam == "ecp5" else families.cache_name(name, fam)
                    _store(root, cname, s["keys"][fam], res["files"])
                    again = _load(root, name, fam, s["keys"][fam])
                    s["measured"][fam] = again if again is not None else res["measured"]
                    measured += 1
            elif kind == "verify":
                s["verify"] = res
                if res.get("error") is None:
                    _write_atomic(s["vfile"], json.dumps(res).encode())
            finish_if_done(name)
            if futures:
                busy = sorted({f"{k.partition('.')[0]} {n}" for k, n in futures.values()})
                bar.beat(", ".join(busy[:4]) + (" ..." if len(busy) > 4 else ""))
        bar.close()
    except KeyboardInterrupt:
        bar.close()
        _say(stream, "nmsparse sweep: interrupted; measurements so far are cached, run the "
                     "same command again to resume")
        for fut in list(futures):
            fut.cancel()
        raise
    finally:
        if own_cluster is not None:
            client.close()
            own_cluster.close()

    quality = records.load_results(spec.quality) if spec.quality else None
    recs, rows = [], []
    for p in points:
        s = state.get(p.name)
        rec, row = table.point_rows(p, s, fams, estimates.get(p.name), pruned.get(p.name),
                                    quality, hdl)
        recs.append(rec)
        rows.append(row)
    wall = time.monotonic() - t0
    files = table.write(rows, recs, out, spec=_spec_doc(spec, wall))
    from . import page

    files["html"] = page.write(rows, out / "sweep.html", title=f"nmsparse sweep {spec.name}",
                               meta=_spec_doc(spec, wall))
    result = SweepResult(rows=rows, records=recs, files=files, wall_s=wall, measured=measured,
                         cached=cached)
    _summary(result, stream, spec)
    return result


def _prune_reason(est: Mapping | None, bounds: Mapping[str, float]) -> str | None:
    if not est or not bounds:
        return None
    for key, bound in bounds.items():
        col, kind = PRUNE_KEYS[key]
        v = est.get(col)
        if v is None:
            continue
        if (kind is max and v > bound) or (kind is min and v < bound):
            return f"estimated {col} {v:,.0f} {'>' if kind is max else '<'} {key} {bound:,}"
    return None


def _note(s: dict, fams: Sequence[str], done: int, total: int) -> str:
    p = s["point"]
    ecp5 = s["measured"].get("ecp5") or {}
    bits = []
    if ecp5.get("post_synth"):
        bits.append(f"LUT4 {ecp5['post_synth']['LUT']}")
    if ecp5.get("post_place") and ecp5["post_place"].get("fmax_mhz"):
        bits.append(f"Fmax {ecp5['post_place']['fmax_mhz']:.1f} MHz")
    for fam in fams[1:]:
        if s["measured"].get(fam):
            bits.append(fam)
    cached = s.get("cached") or set()
    if cached and len(cached) == len(fams):
        bits.append("cached")
    if s["verify"] is not None:
        v = s["verify"]
        bits.append("verify error" if v.get("error") else
                    f"verified {v['groups']} groups, {v['mismatches']} mismatches")
    if s["errors"]:
        bits.append("FAILED: " + "; ".join(f"{k}: {_brief(e)}" for k, e in s["errors"].items()))
    return f"[{done}/{total}] {p.name}  " + ", ".join(bits)


def _brief(error: str) -> str:
    """First line of an error and, when the tool's log tail follows, its last line (the
    tool's own message)."""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    if not lines:
        return "?"
    first = lines[0].split(" (log: ")[0]
    if len(lines) == 1:
        return first
    errs = [ln for ln in lines[1:] if "error" in ln.lower()]
    return f"{first}: {(errs or lines[1:])[-1][:160]}"


def _spec_doc(spec: SweepSpec, wall: float) -> dict:
    return {"name": spec.name, "families": ["ecp5", *spec.families], "place": spec.place,
            "verify": spec.verify, "verify_groups": spec.verify_groups, "seed": spec.seed,
            "placer_seed": synth.SEED, "device": synth.DEVICE, "target_mhz": synth.TARGET_MHZ,
            "timeout": spec.timeout, "retries": spec.retries, "prune": spec.prune,
            "grids": [{"unit": g.unit, **g.axes, **g.options} for g in spec.grids],
            "wall_s": round(wall, 1)}


def _summary(res: SweepResult, stream: TextIO, spec: SweepSpec) -> None:
    counts: dict[str, int] = {}
    for r in res.rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    _say(stream, f"nmsparse sweep {spec.name}: {len(res.rows)} points ({parts}); "
                 f"{res.measured} tool runs measured, {res.cached} cached; wall "
                 f"{format_seconds(res.wall_s)}")
    fails = res.failures
    if fails:
        _say(stream, f"failures ({len(fails)}):")
        for r in fails:
            _say(stream, f"  {r['module']}: {r['status']}: {_brief(r['error'] or '')}")
    for kind in ("parquet", "csv", "html"):
        if kind in res.files:
            _say(stream, f"  {kind}: {res.files[kind]}")
