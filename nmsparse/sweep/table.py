"""The sweep's results: one flat row per point, written as Parquet and CSV (+ records JSON).

A row joins the point's parameters (every sidecar parameter is a column, so a new generator
parameter becomes a new column by itself), the measured figures of each family, the
estimates, the cross-check and the model quality of its pattern::

    record (as resources.json)  ──►  row: module, status, unit, pattern, <params...>,
      post_synth, post_place,           lut4 ... fmax_mhz, transistors, xilinx_lut6 ...,
      asic, xilinx, nexus               nexus_fmax_mhz, est_*, verified_groups, mismatches,
                                        ppl, mgroups_per_s, error

``status``: ``ok``, ``failed`` (a tool or task failed; ``error`` says which and why),
``mismatch`` (the cross-check found a difference), ``invalid`` (the generator rejected the
parameters), ``pruned`` (outside the estimate bounds; not measured).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from nmsparse.contract.patterns import pattern_label
from nmsparse.report import analysis, records

__all__ = ["COLUMNS", "point_rows", "write", "read"]

# (column, family section, key) of the measured figures
MEASURED = [
    ("lut4", "post_synth", "LUT"), ("ccu2c", "post_synth", "CARRY"),
    ("pfumx", "post_synth", "PFUMX"), ("l6mux", "post_synth", "L6MUX"),
    ("ff", "post_synth", "FF"), ("dsp", "post_synth", "DSP"),
    ("comb_placed", "post_place", "COMB"), ("ff_placed", "post_place", "FF"),
    ("fmax_mhz", "post_place", "fmax_mhz"),
    ("transistors", "asic", "transistors"), ("logic_depth", "asic", "logic_depth"),
]
FAMILY_COLUMNS = {
    "xilinx": [("xilinx_lut6", "post_synth", "LUT"), ("xilinx_ff", "post_synth", "FF"),
               ("xilinx_carry4", "post_synth", "CARRY4"), ("xilinx_dsp48", "post_synth", "DSP"),
               ("xilinx_muxf7", "post_synth", "MUXF7")],
    "nexus": [("nexus_lut4", "post_synth", "LUT"), ("nexus_ccu2", "post_synth", "CARRY"),
              ("nexus_ff", "post_synth", "FF"), ("nexus_dsp", "post_synth", "DSP"),
              ("nexus_comb_placed", "post_place", "COMB"),
              ("nexus_fmax_mhz", "post_place", "fmax_mhz")],
}
ESTIMATES = ("lut4", "ff", "fmax_mhz", "transistors")
#: the fixed leading columns (parameter columns follow, in the order first seen)
COLUMNS = (["module", "status", "unit", "pattern", "n", "m", "fmt", "arch", "pipeline",
            "lanes", "outputs", "latency", "comparators", "network_depth", "multipliers"]
           + [c for c, _, _ in MEASURED]
           + [c for cols in FAMILY_COLUMNS.values() for c, _, _ in cols]
           + [f"est_{k}" for k in ESTIMATES]
           + ["verified_groups", "mismatches", "ppl", "ppl_vs_dense", "mgroups_per_s",
              "synth_s", "pnr_s", "point", "error"])


def _section(measured: Mapping | None, sec: str, key: str):
    if not measured:
        return None
    s = measured.get(sec)
    return None if not s else s.get(key)


def point_rows(p, s: Mapping | None, fams: Sequence[str], est: Mapping | None,
               pruned: str | None, quality: list[dict] | None,
               hdl: Path) -> tuple[dict, dict]:
    """The record (``resources.json`` shape plus ``xilinx``/``nexus``/``sweep``) and the
    table row of one point."""
    best = analysis.best_quality(quality)
    dense = analysis.dense_ppl(quality)
    row: dict = {c: None for c in COLUMNS}
    row.update(module=p.name, unit=p.unit, point=p.label())
    for k, v in p.params.items():
        if k in ("n", "m", "fmt", "arch", "pipeline", "lanes", "outputs"):
            row[k] = v
    if not p.valid:
        row.update(status="invalid", error=p.error)
        return {"module": p.name, "unit": p.unit, "error": p.error, "status": "invalid",
                "params": dict(p.params)}, row
    cfg_params = p.config.params()
    if pruned or s is None or s.get("sidecar") is None:
        row.update(cfg_params if isinstance(cfg_params, dict) else {})
        row["module"] = p.name
        row["pattern"] = pattern_label(cfg_params.get("n"), cfg_params.get("m"))
        errors = (s or {}).get("errors") or {}
        row["status"] = "pruned" if pruned else "failed"
        row["error"] = pruned or "; ".join(f"{k}: {e}" for k, e in errors.items()) or None
        _estimates(row, est)
        _quality(row, best, dense)
        return {"module": p.name, "unit": p.unit, "params": cfg_params, "status": row["status"],
                "error": row["error"], "estimate": est}, row
    sc = s["sidecar"]
    point = records.Point(module=p.name, verilog=hdl / f"{p.name}.v", sidecar=sc)
    ecp5 = s["measured"].get("ecp5")
    errors = dict(s["errors"])
    ecp5_err = errors.get("measure.ecp5")
    rec = records.make_record(point, ecp5, error=ecp5_err)
    for fam in fams[1:]:
        rec[fam] = s["measured"].get(fam)
    rec["sweep"] = {"point": p.label(), "estimate": est, "verify": s.get("verify"),
                    "errors": errors, "cached": sorted(s.get("cached") or ())}
    for k, v in sc.params.items():
        row.setdefault(k, None)
        if not isinstance(v, (dict, list)):
            row[k] = v
    row.update(module=p.name, pattern=rec["pattern"], latency=rec["latency_cycles"],
               comparators=rec["comparators"], network_depth=rec["network_depth"],
               multipliers=rec["multipliers"])
    for col, sec, key in MEASURED:
        row[col] = _section(ecp5, sec, key)
    for fam, cols in FAMILY_COLUMNS.items():
        for col, sec, key in cols:
            row[col] = _section(s["measured"].get(fam), sec, key)
    _estimates(row, est)
    v = s.get("verify")
    if v is not None and v.get("error") is None:
        row["verified_groups"], row["mismatches"] = v["groups"], v["mismatches"]
        if not v.get("ok", True) and not v["mismatches"] and v.get("errors"):
            errors["verify"] = "; ".join(v["errors"])
    elif v is not None:
        errors["verify"] = v["error"]
    _quality(row, best, dense)
    if row["fmax_mhz"]:
        row["mgroups_per_s"] = round(row["fmax_mhz"] * (rec.get("groups_per_cycle") or 1), 2)
    rt = (ecp5 or {}).get("runtime_s") or {}
    row["synth_s"], row["pnr_s"] = rt.get("yosys"), rt.get("nextpnr")
    if errors:
        row["status"] = "failed"
        row["error"] = "; ".join(f"{k}: {e}" for k, e in errors.items())
    elif row["mismatches"]:
        row["status"] = "mismatch"
        row["error"] = f"{row['mismatches']} mismatches against the golden model"
    else:
        row["status"] = "ok"
    rec["status"] = row["status"]
    return rec, row


def _estimates(row: dict, est: Mapping | None) -> None:
    for k in ESTIMATES:
        v = (est or {}).get(k)
        row[f"est_{k}"] = None if v is None else round(float(v), 1)


def _quality(row: dict, best: Mapping[str, float], dense: float | None) -> None:
    if row["unit"] == "dense_mac":
        row["ppl"] = round(dense, 3) if dense else None
    elif row.get("pattern") in best:
        row["ppl"] = round(best[row["pattern"]], 3)
    if row["ppl"] is not None and dense:
        row["ppl_vs_dense"] = round(row["ppl"] / dense, 4)


def _columns(rows: Sequence[Mapping]) -> list[str]:
    cols = list(COLUMNS)
    for r in rows:
        for k in r:
            if k not in cols:
                cols.insert(cols.index("point"), k)
    return cols


def write(rows: Sequence[Mapping], recs: Sequence[Mapping], out: Path, *,
          spec: Mapping) -> dict[str, Path]:
    """Write ``sweep.parquet``, ``sweep.csv`` and ``records.json`` into ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    cols = _columns(rows)
    data = {c: [r.get(c) for r in rows] for c in cols}
    arrays = {}
    for c, vals in data.items():
        try:
            arrays[c] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c] = pa.array([None if v is None else str(v) for v in vals])
    table = pa.table(arrays)
    table = table.replace_schema_metadata({"nmsparse.sweep": json.dumps(spec)})
    files = {"parquet": out / "sweep.parquet", "csv": out / "sweep.csv",
             "records": out / "records.json"}
    pq.write_table(table, files["parquet"])
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in cols})
    files["csv"].write_text(buf.getvalue())
    files["records"].write_text(json.dumps({"schema": records.SCHEMA, "sweep": spec,
                                            "modules": list(recs)}, indent=1) + "\n")
    return files


def read(path: str | Path) -> list[dict]:
    """Rows of a ``sweep.parquet`` or ``sweep.csv`` (numbers as numbers).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Not a Parquet or CSV file.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"sweep table {p} does not exist")
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    if p.suffix == ".csv":
        rows = []
        with p.open() as fh:
            for r in csv.DictReader(fh):
                rows.append({k: _num(v) for k, v in r.items()})
        return rows
    raise ValueError(f"{p}: a sweep table is .parquet or .csv, not {p.suffix or 'no suffix'}")


def _num(v: str):
    if v == "":
        return None
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v
