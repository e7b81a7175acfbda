"""The vector file the testbench replays, and the result file it writes back (typed).

The golden model computes every stimulus and every expected output in the pytest (or CLI)
process and writes a :class:`VectorFile`; the cocotb test inside the simulator reads it, streams
every :class:`Scenario` through the design and writes a :class:`SimRecord` per scenario. Both
files are JSON; payloads travel as hex strings (element 0 at the LSB, as the sidecar says).

A phase with ``reset_after`` pulses ``rst`` right after its last input transfer: the outputs it
produced before must be a prefix of its expected outputs, and nothing in flight may appear
after the reset.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Segment", "Phase", "Scenario", "VectorFile", "ScenarioResult", "ResultFile",
           "IDLE_PATTERNS", "BACKPRESSURE_PATTERNS", "check_pattern"]

#: Idle (input) and back-pressure (output) patterns the regression crosses.
IDLE_PATTERNS = ("none", "cycle:1,1,1,0", "random:0.3")
BACKPRESSURE_PATTERNS = ("none", "cycle:1,1,1,0", "random:0.3")


def check_pattern(spec: str) -> str:
    """Validate a 0/1 pattern spec: ``none``, ``cycle:1,1,1,0`` or ``random:P`` (0 <= P < 1)."""
    if spec in ("none", ""):
        return "none"
    kind, _, arg = spec.partition(":")
    if kind == "cycle":
        bits = arg.split(",")
        if bits and all(b in ("0", "1") for b in bits) and "1" in bits:
            return spec
    elif kind == "random":
        try:
            p = float(arg)
        except ValueError:
            p = -1.0
        if 0.0 <= p < 1.0:
            return spec
    raise ValueError(f"bad pattern {spec!r}: use none, cycle:1,1,1,0 (with at least one 1) "
                     "or random:P with 0 <= P < 1")


@dataclass(frozen=True)
class Segment:
    """Groups from ``first`` on came from tensor ``name``, ``row_groups`` groups per token."""

    first: int
    name: str
    row_groups: int


@dataclass
class Phase:
    """Transfers streamed back to back (then, optionally, a reset).

    ``inputs``/``expected``: hex payloads; ``out_src[k]``: the input transfer whose arrival
    lets output ``k`` appear (latency is measured from it); ``groups``: groups carried.
    """

    inputs: list[str]
    expected: list[str]
    out_src: list[int]
    groups: int
    reset_after: bool = False


@dataclass
class Scenario:
    name: str
    phases: list[Phase]
    idle: str = "none"
    backpressure: str = "none"
    check_latency: bool = False
    timeout: int = 2000
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.idle = check_pattern(self.idle)
        self.backpressure = check_pattern(self.backpressure)


@dataclass
class VectorFile:
    sidecar: str
    seed: int
    scenarios: list[Scenario]

    def write(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(asdict(self)))

    @classmethod
    def read(cls, path: str | os.PathLike) -> VectorFile:
        raw = json.loads(Path(path).read_text())
        return cls(sidecar=raw["sidecar"], seed=int(raw["seed"]), scenarios=[
            Scenario(name=s["name"], idle=s["idle"], backpressure=s["backpressure"],
                     check_latency=s["check_latency"], timeout=s["timeout"],
                     segments=[Segment(**g) for g in s["segments"]],
                     phases=[Phase(**p) for p in s["phases"]])
            for s in raw["scenarios"]])


@dataclass
class ScenarioResult:
    """What one scenario observed: counts, the first mismatches decoded, protocol errors."""

    name: str
    groups: int = 0
    cycles: int = 0
    seconds: float = 0.0
    transfers: int = 0
    checked: int = 0
    mismatches: int = 0
    errors: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)
    latencies: list[int] = field(default_factory=list)

    @property
    def groups_per_second(self) -> float:
        return self.groups / self.seconds if self.seconds else 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.errors


@dataclass
class ResultFile:
    module: str
    seed: int
    scenarios: list[ScenarioResult]

    def write(self, path: str | os.PathLike) -> None:
        tmp = f"{path}.tmp"
        Path(tmp).write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: str | os.PathLike) -> ResultFile:
        raw = json.loads(Path(path).read_text())
        return cls(module=raw["module"], seed=int(raw["seed"]),
                   scenarios=[ScenarioResult(**s) for s in raw["scenarios"]])
