"""Result cache: one directory per (Verilog, sidecar ports, flow, tool versions).

A point is measured again only when its Verilog, its ports, the flow scripts or the tool
versions change; otherwise its stored tool outputs are parsed again, so a second
``nmsparse report`` with nothing changed takes seconds. Each entry keeps the raw tool outputs
and logs for inspection: ``<root>/<module>-<key16>/work/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from nmsparse.contract.sidecar import Sidecar

__all__ = ["point_key", "entry_dir", "load", "store", "store_failure",
           "failure_record", "previous_runtime", "PLACE_TIMEOUTS", "load_place_timeouts",
           "known_place_timeout", "record_place_timeout", "forget_place_timeout"]

PLACE_TIMEOUTS = "place_timeouts.json"
"""File in the report directory (committed with ``reports/``) naming the modules whose place
and route did not finish within the time allowed, with the cache key of the exact Verilog
and flow that was tried: a later run, cold or warm, synthesizes them only instead of spending
the same CPU time again (a longer ``--timeout`` or ``--no-cache`` tries again)."""


def point_key(verilog: bytes, sidecar: Sidecar, flow: str, *, place: bool) -> str:
    """sha256 over the Verilog bytes, the module name and ports, the flow signature and mode."""
    h = hashlib.sha256()
    h.update(verilog)
    ports = {name: p.to_dict() for name, p in sidecar.ports.items()}
    h.update(json.dumps({"module": sidecar.module, "ports": ports}, sort_keys=True).encode())
    h.update(flow.encode())
    h.update(b"place" if place else b"synth-only")
    return h.hexdigest()


def entry_dir(root: str | Path, module: str, key: str) -> Path:
    """Directory of one cache entry."""
    return Path(root) / f"{module}-{key[:16]}"


def load(root: str | Path, module: str, key: str) -> dict | None:
    """The stored measurement, parsed again from its raw tool outputs; None when absent,
    incomplete or unreadable (the point is then measured again)."""
    from . import parse, synth

    d = entry_dir(root, module, key)
    try:
        if json.loads((d / "key").read_text()) != key:
            return None
        return synth.collect(d / "work")
    except (OSError, ValueError, KeyError, TypeError, parse.ParseError):
        return None


def store(root: str | Path, module: str, key: str) -> Path:
    """Mark the entry's ``work/`` directory (filled by ``synth.measure``) as complete."""
    d = entry_dir(root, module, key)
    d.mkdir(parents=True, exist_ok=True)
    f = d / "key"
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(key))
    tmp.replace(f)
    (d / "failed.json").unlink(missing_ok=True)
    return f


def store_failure(root: str | Path, module: str, key: str, error: str,
                  timeout: float | None, elapsed_s: float, *, stage: str | None = None) -> Path:
    """Record that measuring the entry failed: ``error`` (the message), ``timeout`` (the
    seconds allowed per tool run when a tool was stopped for taking longer, else None) and
    the wall seconds spent; ``stage``: the step that failed (``"synth"``, ``"place"``). A
    later run reports the failure instead of repeating it, unless it allows more time than
    the failed one (see :func:`failure_record`)."""
    d = entry_dir(root, module, key)
    d.mkdir(parents=True, exist_ok=True)
    f = d / "failed.json"
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "error": error, "timeout": timeout,
                               "elapsed_s": round(elapsed_s, 1), "stage": stage}))
    tmp.replace(f)
    return f


def failure_record(root: str | Path, module: str, key: str, timeout: float | None = None, *,
                   any_timeout: bool = False) -> dict | None:
    """The stored failure of the entry, if it still holds for a run allowing ``timeout``
    seconds per tool (None: no limit): a tool error always holds (the same inputs fail
    again); a timeout holds when the new allowance is no longer than the old one.
    ``any_timeout``: report a stored timeout whatever the allowance (``--cached-only``).

    Returns ``error``, ``timeout`` and ``stage`` (the step that failed: ``"place"`` for place
    and route, ``"synth"``; records written before the stage was stored are told by their
    message), or None."""
    try:
        rec = json.loads((entry_dir(root, module, key) / "failed.json").read_text())
        if rec.get("key") != key or not _holds(rec.get("timeout"), timeout, any_timeout):
            return None
        error = str(rec["error"])
        stage = rec.get("stage") or ("place" if "place and route" in error else "synth")
        return {"error": error, "timeout": rec.get("timeout"), "stage": stage}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _holds(old: float | None, timeout: float | None, any_timeout: bool) -> bool:
    """Whether a failure after ``old`` seconds (None: a tool error) holds for a run allowing
    ``timeout`` seconds (None: no limit)."""
    return old is None or any_timeout or (timeout is not None and timeout <= old)


def load_place_timeouts(path: str | Path) -> dict[str, dict]:
    """``{module: {"key", "timeout", "error", "recorded"}}`` of a :data:`PLACE_TIMEOUTS` file;
    empty when it does not exist.

    Raises
    ------
    ValueError
        The file exists but is not such a record.
    """
    f = Path(path)
    if not f.is_file():
        return {}
    try:
        doc = json.loads(f.read_text())
        mods = doc["modules"]
        for name, rec in mods.items():
            if not (isinstance(rec["key"], str) and isinstance(rec["error"], str)
                    and isinstance(rec["timeout"], (int, float))):
                raise TypeError(name)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{f}: not a place-timeout record ({exc!r}); delete it to measure "
                         "every point again") from None
    return dict(mods)


def known_place_timeout(known: dict[str, dict], module: str, key: str,
                        timeout: float | None, *, any_timeout: bool = False) -> str | None:
    """The recorded place-and-route timeout of ``module`` if it was recorded for this very
    ``key`` and still holds for a run allowing ``timeout`` seconds per tool run."""
    rec = known.get(module)
    if rec is None or rec["key"] != key or not _holds(rec["timeout"], timeout, any_timeout):
        return None
    return rec["error"]


def _write_json(f: Path, doc: dict) -> None:
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    tmp.replace(f)


_ABOUT = ("Modules whose nextpnr-ecp5 place and route did not finish in 'timeout' CPU seconds "
          "on the Verilog and flow of 'key' (nmsparse.report.cache.point_key): nmsparse "
          "report synthesizes them only while the key matches (a longer --timeout or "
          "--no-cache tries again). Written by nmsparse report.")


def record_place_timeout(path: str | Path, module: str, key: str, timeout: float,
                         error: str) -> None:
    """Add (or replace) ``module``'s entry in a :data:`PLACE_TIMEOUTS` file."""
    import datetime

    f = Path(path)
    mods = load_place_timeouts(f)
    old = mods.get(module)
    if old and old["key"] == key and old["timeout"] >= timeout:
        return
    mods[module] = {"key": key, "timeout": timeout, "error": error,
                    "recorded": datetime.date.today().isoformat()}
    _write_json(f, {"about": _ABOUT, "modules": mods})


def forget_place_timeout(path: str | Path, module: str) -> None:
    """Drop ``module``'s entry (it placed); the file goes when it is empty."""
    f = Path(path)
    mods = load_place_timeouts(f)
    if module not in mods:
        return
    del mods[module]
    if mods:
        _write_json(f, {"about": _ABOUT, "modules": mods})
    else:
        f.unlink()


def previous_runtime(root: str | Path, module: str) -> float | None:
    """Tool seconds (Yosys + nextpnr) of the newest stored measurement of ``module``, whatever
    its key: an estimate of how long measuring it again takes. None when there is none."""
    best: tuple[float, float] | None = None
    for meta in Path(root).glob(f"{module}-*/work/meta.json"):
        try:
            rt = json.loads(meta.read_text())["runtime_s"]
            total = float(rt.get("yosys") or 0) + float(rt.get("nextpnr") or 0)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        stamp = meta.stat().st_mtime
        if best is None or stamp > best[0]:
            best = (stamp, total)
    return None if best is None else best[1]
