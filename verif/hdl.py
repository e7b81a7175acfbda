"""What the Verilog says about itself: its ports (read by Verilator) and its build errors.

::

    BuildSources ──verilator --json-only──> V<top>.tree.json ──> {port: HdlPort(dir, width)}
                                                                     │
    Sidecar.ports ─────────────────────────────────── check_ports ───┘──> InterfaceError
                                                                          "o__payload is 52
                                                                          bits in the Verilog
                                                                          but 56 in the
                                                                          sidecar ..."

Verilator reads the ports rather than Yosys: it is the simulator the regression runs, so the
preprocessor, the include and define handling and the SystemVerilog subset are exactly those
of the build (Yosys' frontend needs ``-sv`` and accepts less SystemVerilog; its YoWASP build
also spends a minute or two compiling WebAssembly on first use). ``--json-only`` stops after
elaboration: well under a second for the example selectors, 8 s for the 1.3 MB 16:32 rank
selector (measured on the shared 2-core machine), against the tens of seconds to minutes of
the C++ build it precedes, so a wrong width is reported before that build starts. It runs
only when a build is needed; a reused build checks the ports recorded in its stamp.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from nmsparse.contract import toolchain
from nmsparse.contract.sidecar import STREAM_PORTS, Sidecar

from .errors import BuildError, InterfaceError
from .sources import BuildSources

__all__ = ["HdlPort", "read_ports", "check_ports", "explain_verilator_error", "FRONT_ARGS"]

#: Options shared by the port reader and the build (warnings never stop a user's design).
FRONT_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
_DIRS = {"INPUT": "in", "OUTPUT": "out", "INOUT": "inout"}


@dataclass(frozen=True)
class HdlPort:
    """A port of the Verilog top: ``dir`` is ``in``, ``out`` or ``inout``; ``width`` in bits
    (None when the type is one nmsparse cannot size)."""

    name: str
    dir: str
    width: int | None


def explain_verilator_error(log: str, src: BuildSources) -> str:
    """The first Verilator error of ``log`` as one line, with what to do about it."""
    lines = [ln.strip() for ln in log.splitlines()]
    first = next((ln for ln in lines if ln.startswith("%Error")), None)
    if first is None:
        cxx = next((ln for ln in lines if ": error:" in ln), None)
        return cxx or (lines[-1] if lines else "no output")
    if "Cannot find include file" in first:
        where = ", ".join(map(str, src.include_dirs)) or "none"
        return (f"{first} (searched the include directories: {where}; add the file's "
                "directory to the sidecar's sources.include_dirs or pass -I DIR)")
    if "Cannot find file containing module" in first:
        return (f"{first} (add the file that defines it to the sidecar's sources.files or "
                "pass --source FILE; Verilator also finds <module>.v/.sv in include "
                "directories)")
    if "--top-module" in first and "not found" in first:
        return (f"{first} (the sidecar's \"module\" must be the top module defined in "
                f"{', '.join(f.name for f in src.files)})")
    return first


def _index(node: object, out: dict) -> None:
    if isinstance(node, dict):
        addr = node.get("addr")
        if addr:
            out[addr] = node
        for v in node.values():
            if isinstance(v, (dict, list)):
                _index(v, out)
    elif isinstance(node, list):
        for v in node:
            _index(v, out)


def _range_len(text: str | None) -> int | None:
    if not text:
        return None
    m = re.fullmatch(r"\[?\s*(-?\d+)\s*:\s*(-?\d+)\s*\]?", text)
    return abs(int(m.group(1)) - int(m.group(2))) + 1 if m else None


def _width(addr: str | None, idx: dict, depth: int = 0) -> int | None:
    """Bits of the data type at ``addr`` in Verilator's JSON tree (None if unknown)."""
    node = idx.get(addr) if addr else None
    if node is None or depth > 32:
        return None

    def ref(n: dict) -> str | None:
        for k in ("refDTypep", "subDTypep", "dtypep"):
            v = n.get(k)
            if v and v != "UNLINKED" and v != n.get("addr"):
                return v
        child = n.get("childDTypep") or []
        return child[0].get("addr") if child and isinstance(child[0], dict) else None

    kind = node.get("type")
    if kind == "BASICDTYPE":
        n = _range_len(node.get("range"))
        return n if n is not None else 1
    if kind == "PACKARRAYDTYPE":
        n, sub = _range_len(node.get("declRange")), _width(ref(node), idx, depth + 1)
        return n * sub if n is not None and sub is not None else None
    if kind in ("STRUCTDTYPE", "UNIONDTYPE"):
        if not node.get("packed"):
            return None
        ws = [_width(mem.get("addr"), idx, depth + 1) for mem in node.get("membersp", [])]
        if not ws or any(w is None for w in ws):
            return None
        return sum(ws) if kind == "STRUCTDTYPE" else max(ws)
    if kind in ("REFDTYPE", "ENUMDTYPE", "MEMBERDTYPE", "TYPEDEF"):
        return _width(ref(node), idx, depth + 1)
    return None


def read_ports(src: BuildSources, workdir: Path, timeout: float = 600) -> dict[str, HdlPort]:
    """The ports of ``src.top``, read by ``verilator --json-only`` in ``workdir``.

    Raises
    ------
    BuildError
        Verilator could not read the design (the message is its first error, with a hint).
    """
    exe = toolchain.verilator()
    workdir.mkdir(parents=True, exist_ok=True)
    log = workdir / "ports.log"
    cmd = [exe, "--json-only", "-Mdir", str(workdir), "--prefix", "Vports",
           "--top-module", src.top, *FRONT_ARGS, *src.args()]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True,
                              timeout=timeout, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        raise BuildError(f"reading the ports of {src.top}: Verilator took more than "
                         f"{timeout:.0f} s", log) from None
    log.write_text(" ".join(cmd) + "\n" + proc.stdout + proc.stderr)
    tree = workdir / "Vports.tree.json"
    if proc.returncode != 0 or not tree.is_file():
        raise BuildError(f"Verilator cannot read {src.top}: "
                         f"{explain_verilator_error(proc.stdout + proc.stderr, src)}", log)
    doc = json.loads(tree.read_text())
    idx: dict = {}
    _index(doc, idx)
    mods = [m for m in doc.get("modulesp", []) if m.get("type") == "MODULE"]
    top = next((m for m in mods if m.get("level") == 1), None) or next(
        (m for m in mods if m.get("origName", m.get("name")) == src.top), None)
    if top is None:
        raise BuildError(f"Verilator's output has no top module {src.top}", log)
    ports: dict[str, HdlPort] = {}
    for v in top.get("stmtsp", []):
        if v.get("type") == "VAR" and v.get("isPrimaryIO"):
            name = v.get("verilogName") or v.get("name")
            ports[name] = HdlPort(name, _DIRS.get(v.get("direction", ""), "inout"),
                                  _width(v.get("dtypep"), idx))
    return ports


def check_ports(sc: Sidecar, ports: dict[str, HdlPort], verilog: str = "") -> None:
    """Compare the Verilog's ports with the sidecar's.

    Every stream port must exist with the sidecar's direction and width, and the two must
    list the same ports (an input nmsparse does not know would sit at 0). ``verilog`` names
    the top file in the message.

    Raises
    ------
    InterfaceError
        One line naming the port, what the Verilog has and what the sidecar says.
    """
    side = sc.path.name if sc.path else "the sidecar"
    ctx = f" ({verilog or (sc.verilog.name if sc.path else 'the Verilog')}, {side})"
    for name in STREAM_PORTS:
        if name not in ports:
            have = ", ".join(ports) or "none"
            raise InterfaceError(f"{sc.module}: the Verilog has no port {name}, which the "
                                 f"sidecar lists{ctx}; the Verilog's ports: {have}")
    for name in sc.ports:
        if name not in ports:
            raise InterfaceError(f"{sc.module}: the sidecar lists port {name} but the Verilog "
                                 f"has none{ctx}")
    for name, p in ports.items():
        if name not in sc.ports:
            raise InterfaceError(
                f"{sc.module}: port {name} of the Verilog is not in the sidecar{ctx}: list it "
                "under \"ports\" (the testbench holds inputs it does not drive at 0)")
        sp = sc.ports[name]
        if p.dir != sp.dir:
            word = {"in": "an input", "out": "an output", "inout": "an inout"}
            raise InterfaceError(f"{sc.module}: {name} is {word[p.dir]} in the Verilog but "
                                 f"{word[sp.dir]} in the sidecar{ctx}")
        if p.width is not None and p.width != sp.width:
            raise InterfaceError(f"{sc.module}: {name} is {p.width} bits in the Verilog but "
                                 f"{sp.width} in the sidecar{ctx}")
