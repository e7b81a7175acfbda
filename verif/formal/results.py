"""Proof records: one :class:`Step` per proof obligation, one :class:`ModuleProof` per module.

``reports/proofs.json`` is a list of ``ModuleProof.to_dict()``; the report reads its
``proven`` summary. A step that fails carries the counterexample, decoded field by field.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Step", "ModuleProof", "write_proofs", "read_proofs"]


@dataclass
class Step:
    """One proof obligation.

    Members
    -------
    name : str
        Short identifier, e.g. ``datapath.direct`` or ``stream.kind``.
    claim : str
        What a pass proves, in one sentence.
    method : str
        How (tool, engine, depth).
    passed : bool
    seconds : float
    detail : str
        Counterexample (decoded) or notes.
    """

    name: str
    claim: str
    method: str
    passed: bool
    seconds: float
    detail: str = ""


@dataclass
class ModuleProof:
    """All steps of one module."""

    module: str
    unit: str
    steps: list[Step] = field(default_factory=list)
    datapath: str = ""  # "direct", "compositional" or "" (not a selector / not attempted)

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    def proven(self) -> str:
        """One-line summary for the report: what is proven for this module."""
        parts = []
        names = {s.name.split(".")[0] for s in self.steps if s.passed}
        if "datapath" in names and all(s.passed for s in self.steps
                                       if s.name.startswith("datapath")):
            parts.append(f"datapath ({self.datapath})")
        if "stream" in names and all(s.passed for s in self.steps if s.name.startswith("stream")):
            parts.append("stream")
        failed = [s.name for s in self.steps if not s.passed]
        text = " + ".join(parts) if parts else "nothing"
        return text + (f"; FAILED: {', '.join(failed)}" if failed else "")

    def to_dict(self) -> dict:
        return {"module": self.module, "unit": self.unit, "passed": self.passed,
                "datapath": self.datapath, "proven": self.proven(),
                "seconds": round(self.seconds, 2),
                "steps": [dict(asdict(s), seconds=round(s.seconds, 2)) for s in self.steps]}


def read_proofs(path: str | Path) -> list[dict]:
    """The records of a proofs file ([] when it does not exist or is not a list)."""
    p = Path(path)
    if not p.is_file():
        return []
    try:
        doc = json.loads(p.read_text())
    except (OSError, ValueError):
        return []
    return [r for r in doc if isinstance(r, dict) and "module" in r] if isinstance(doc, list) \
        else []


def write_proofs(path: str | Path, proofs: list[ModuleProof]) -> None:
    """Merge ``proofs`` into the JSON list at ``path`` (records of the same module replaced)."""
    import fcntl

    p = Path(path)
    new = [mp.to_dict() for mp in proofs]
    names = {r["module"] for r in new}
    p.parent.mkdir(parents=True, exist_ok=True)
    # runs on disjoint module sets may share one file: merge under a lock
    with open(p.with_suffix(p.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = [r for r in read_proofs(p) if r.get("module") not in names] + new
        tmp = p.with_suffix(p.suffix + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged, indent=2) + "\n")
        os.replace(tmp, p)
