"""Register-to-register delays of a placed design, grouped by register stage, from nextpnr's SDF.

    .venv/bin/python bench/sta.py design.sdf          # worst delay per (source, sink) stage

nextpnr reports one critical path per clock; calibrating a delay model needs the delay of
every register segment. This is a small static timing analysis over the routed SDF
(``nextpnr-ecp5 --sdf``): cell IOPATHs and INTERCONNECT delays (slow corner, the third figure
of each triple), paths launched at a clock pin (flip-flop CLK -> Q, LUT-RAM write clock ->
read data) and captured at a SETUPHOLD check (setup included). Registers are grouped by their
name as the generator writes it: ``L<K>`` = ``<lane>_l<K>_s<i>`` (the stage after layer K,
1-based), ``DL<K>`` = ``<lane>_dl<K>`` (a LUT-RAM delay line), ``last`` = the module's output
register, ``valid`` = its valid chain, ``in`` / ``out`` = the timing wrapper's port registers,
everything else ``other``.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

__all__ = ["parse_sdf", "segments", "group_of"]

_TRIPLE = re.compile(r"\((-?[\d.]+):(-?[\d.]+):(-?[\d.]+)\)")


def _slow(text: str) -> float:
    m = _TRIPLE.search(text)
    return float(m.group(3)) / 1000.0 if m else 0.0  # ps -> ns


def _unescape(name: str) -> str:
    return name.replace("\\", "")


def parse_sdf(path: str | Path):
    """(edges, launches, captures): combinational edges ``(a, b, ns)``, launch points
    ``{pin: clock-to-out ns}``, capture points ``{pin: setup ns}``; a pin is ``inst/port``."""
    edges: list[tuple[str, str, float]] = []
    launches: dict[str, float] = {}
    captures: dict[str, float] = {}
    inst = ""
    for line in Path(path).read_text().splitlines():
        s = line.strip()
        if s.startswith("(INSTANCE"):
            inst = _unescape(s[len("(INSTANCE"):].rstrip(")").strip())
        elif s.startswith("(INTERCONNECT"):
            parts = s.split()
            edges.append((_unescape(parts[1]), _unescape(parts[2]), _slow(s)))
        elif s.startswith("(IOPATH"):
            parts = s.split()
            src, dst = parts[1], parts[2]
            d = _slow(s)
            if src in ("CLK", "WCK") or src.startswith("(posedge"):
                launches[f"{inst}/{dst}"] = max(launches.get(f"{inst}/{dst}", 0.0), d)
            else:
                edges.append((f"{inst}/{src}", f"{inst}/{dst}", d))
        elif s.startswith("(SETUPHOLD") or s.startswith("(SETUP "):
            m = re.match(r"\((?:SETUPHOLD|SETUP) \((?:posedge|negedge) (\S+?)\)", s)
            if m:
                pin = f"{inst}/{m.group(1)}"
                captures[pin] = max(captures.get(pin, 0.0), _slow(s[m.end():]))
    return edges, launches, captures


_STAGE = re.compile(r"(?:^|\.)(\w+?)_l(\d+)_s\d+")
_DELAY = re.compile(r"(?:^|\.)(\w+?)_dl(\d+)")


def group_of(pin: str) -> str:
    """The register stage a launch or capture pin belongs to (see the module docstring).
    Clock-enable and reset inputs are sinks of their own (``CE``, ``LSR``): the stall and
    reset nets."""
    inst, port = pin.rsplit("/", 1)
    if port in ("CE", "LSR", "WRE"):
        return "CE" if port != "LSR" else "LSR"
    m = _STAGE.search(inst)
    if m:
        return f"L{m.group(2)}"
    m = _DELAY.search(inst)
    if m:
        return f"DL{m.group(2)}"
    if inst.startswith("dut."):
        if "o__payload" in inst:
            return "last"
        if "valid" in inst:
            return "valid"
        return "other"
    if inst.startswith(("i__payload", "i__valid")):
        return "in"
    if inst.startswith("o__"):
        return "out"
    return "other"


def segments(path: str | Path) -> dict[str, float]:
    """``{"<source>-><sink>": worst ns}`` over every register-to-register path."""
    edges, launches, captures = parse_sdf(path)
    succ: dict[str, list[tuple[str, float]]] = defaultdict(list)
    indeg: dict[str, int] = defaultdict(int)
    for a, b, d in edges:
        succ[a].append((b, d))
        indeg[b] += 1
        indeg.setdefault(a, 0)
    arrival: dict[str, dict[str, float]] = defaultdict(dict)
    for pin, d in launches.items():
        g = group_of(pin)
        arrival[pin][g] = max(arrival[pin].get(g, 0.0), d)
        indeg.setdefault(pin, 0)
    ready = [p for p, k in indeg.items() if k == 0]
    while ready:
        p = ready.pop()
        arr = arrival.get(p)
        for q, d in succ.get(p, ()):
            if arr:
                tgt = arrival[q]
                for g, t in arr.items():
                    if t + d > tgt.get(g, -1.0):
                        tgt[g] = t + d
            indeg[q] -= 1
            if indeg[q] == 0:
                ready.append(q)
    worst: dict[str, float] = {}
    for pin, setup in captures.items():
        sink = group_of(pin)
        for g, t in arrival.get(pin, {}).items():
            key = f"{g}->{sink}"
            worst[key] = max(worst.get(key, 0.0), round(t + setup, 3))
    return dict(sorted(worst.items(), key=lambda kv: -kv[1]))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    for path in argv:
        seg = segments(path)
        print(path)
        for k, v in seg.items():
            print(f"  {k:16s} {v:6.3f} ns")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
