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

__all__ = ["point_key", "entry_dir", "load", "store", "store_failure", "load_failure",
           "previous_runtime"]


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
                  timeout: float | None, elapsed_s: float) -> Path:
    """Record that measuring the entry failed: ``error`` (the message), ``timeout`` (the
    seconds allowed per tool run when a tool was stopped for taking longer, else None) and
    the wall seconds spent. A later run reports the failure instead of repeating it, unless
    it allows more time than the failed one (see :func:`load_failure`)."""
    d = entry_dir(root, module, key)
    d.mkdir(parents=True, exist_ok=True)
    f = d / "failed.json"
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "error": error, "timeout": timeout,
                               "elapsed_s": round(elapsed_s, 1)}))
    tmp.replace(f)
    return f


def load_failure(root: str | Path, module: str, key: str,
                 timeout: float | None = None, *, any_timeout: bool = False) -> str | None:
    """The stored failure of the entry, if it still holds for a run allowing ``timeout``
    seconds per tool (None: no limit): a tool error always holds (the same inputs fail
    again); a timeout holds when the new allowance is no longer than the old one.
    ``any_timeout``: report a stored timeout whatever the allowance (``--cached-only``)."""
    try:
        rec = json.loads((entry_dir(root, module, key) / "failed.json").read_text())
        if rec.get("key") != key:
            return None
        old = rec.get("timeout")
        if old is not None and not any_timeout and (timeout is None or timeout > old):
            return None
        return str(rec["error"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


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
