"""Result cache: one directory per (Verilog, sidecar ports, flow, tool versions).

A point is measured again only when its Verilog, its ports, the flow scripts or the tool
versions change; otherwise its stored figures are reused, so a second ``nmsparse report``
with nothing changed takes seconds. Each entry keeps the tool logs and netlists for
inspection: ``<root>/<module>-<key16>/work/``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["point_key", "entry_dir", "load", "store"]


def point_key(verilog: bytes, sidecar: Mapping, flow: str, *, place: bool) -> str:
    """sha256 over the Verilog bytes, the module name and ports, the flow signature and mode."""
    h = hashlib.sha256()
    h.update(verilog)
    h.update(json.dumps({"module": sidecar.get("module"), "ports": sidecar.get("ports")},
                        sort_keys=True).encode())
    h.update(flow.encode())
    h.update(b"place" if place else b"synth-only")
    return h.hexdigest()


def entry_dir(root: str | Path, module: str, key: str) -> Path:
    """Directory of one cache entry."""
    return Path(root) / f"{module}-{key[:16]}"


def load(root: str | Path, module: str, key: str) -> dict | None:
    """The stored measurement, or None when absent or unreadable."""
    f = entry_dir(root, module, key) / "result.json"
    try:
        data = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    return data.get("result")


def store(root: str | Path, module: str, key: str, result: Mapping) -> Path:
    """Store a measurement atomically (write then rename); returns the file."""
    d = entry_dir(root, module, key)
    d.mkdir(parents=True, exist_ok=True)
    f = d / "result.json"
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps({"key": key, "result": result}, indent=1, sort_keys=True))
    tmp.replace(f)
    return f
