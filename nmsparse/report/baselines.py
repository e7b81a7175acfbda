"""Resource baselines: stored figures of the shipped modules, compared with a tolerance.

``reports/baselines/resources.json`` keeps, per module, the normalized figures of one run and
the tool versions that produced them (as hls4ml does per tool version). A later run that
drifts by more than the tolerance, up or down, is reported, so a change that blows up area or
slows the clock is caught. Regenerate after an intended change with
``nmsparse report --write-baselines reports/baselines/resources.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["KEYS", "TOLERANCE", "make", "compare", "load", "write"]

# (section, key) -> relative tolerance
KEYS: dict[tuple[str, str], float] = {
    ("post_synth", "LUT"): 0.10,
    ("post_synth", "CARRY"): 0.10,
    ("post_synth", "FF"): 0.05,
    ("post_synth", "DSP"): 0.0,
    ("post_place", "COMB"): 0.10,
    ("post_place", "fmax_mhz"): 0.15,
    ("asic", "transistors"): 0.10,
    ("asic", "logic_depth"): 0.15,
}
TOLERANCE = {f"{s}.{k}": t for (s, k), t in KEYS.items()}
_SLACK = 2  # absolute slack for very small counts (a couple of cells)


def make(records: Sequence[Mapping]) -> dict:
    """Baseline document from ``resources.json`` records (failed modules are left out)."""
    tools = next((r["tools"] for r in records if r.get("tools")), None)
    mods = {}
    for r in records:
        if r.get("error") or not r.get("post_synth"):
            continue
        mods[r["module"]] = {f"{s}.{k}": (r.get(s) or {}).get(k) for (s, k) in KEYS}
    return {"tools": tools, "tolerance": TOLERANCE, "modules": mods}


def load(path: str | Path) -> dict:
    """Read a baseline file (``FileNotFoundError``/``ValueError`` name the file)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"baseline file {p} does not exist")
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("modules"), dict):
        raise ValueError(f"{p} has no 'modules' mapping")
    return data


def write(path: str | Path, records: Sequence[Mapping]) -> Path:
    """Write the baseline of ``records`` to ``path``."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(make(records), indent=1, sort_keys=True) + "\n")
    return p


def compare(records: Sequence[Mapping], baseline: Mapping) -> list[str]:
    """Differences beyond tolerance, one line each (empty: everything within tolerance).

    A module in the baseline but not measured, or failed, is a difference too.
    """
    tol = {**TOLERANCE, **(baseline.get("tolerance") or {})}
    got = {r["module"]: r for r in records}
    problems = []
    for module, ref in sorted(baseline["modules"].items()):
        r = got.get(module)
        if r is None:
            problems.append(f"{module}: in the baseline but not measured")
            continue
        if r.get("error"):
            problems.append(f"{module}: measurement failed: {r['error']}")
            continue
        if not r.get("post_synth"):
            problems.append(f"{module}: not measured")
            continue
        for name, want in ref.items():
            section, _, key = name.partition(".")
            have = (r.get(section) or {}).get(key)
            if want is None and have is None:
                continue
            if want is None or have is None:
                problems.append(f"{module}: {name} is {have!r}, baseline {want!r}")
                continue
            t = float(tol.get(name, 0.10))
            if abs(have - want) > max(t * abs(want), 0 if t == 0 else _SLACK):
                problems.append(f"{module}: {name} = {have:g}, baseline {want:g} "
                                f"(tolerance {t:.0%})")
    return problems
