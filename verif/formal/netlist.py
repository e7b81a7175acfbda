"""The flattened Yosys netlist of a module (``write_json``), its cones and its cut.

::

    shipped .v ─yosys proc; flatten; opt─► netlist JSON ─► cones of o__valid / i__ready
                                                         ─► cut: every cell outside the
                                                            control cone and the output
                                                            registers' cone is removed; its
                                                            outputs become free inputs
                                                            (``cut_in``)

Cutting replaces logic by unconstrained values, so a safety property proven on the cut
netlist holds for the shipped one (an over-approximation). The datapath is thus out of the
stream proofs, which stay small at every N:M; its function is the business of
:mod:`verif.formal.equiv` and :mod:`verif.formal.compose`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Netlist", "FF_TYPES", "load_netlist"]

#: Flip-flop cell types of Yosys' internal library (word level) and their data port.
FF_TYPES = {"$dff", "$dffe", "$sdff", "$sdffe", "$sdffce", "$adff", "$adffe", "$aldff",
            "$aldffe", "$dffsr", "$dffsre", "$ff"}


@dataclass
class Netlist:
    """One flattened module of a Yosys JSON document."""

    doc: dict
    top: str

    @property
    def module(self) -> dict:
        return self.doc["modules"][self.top]

    @property
    def cells(self) -> dict[str, dict]:
        return self.module["cells"]

    def port_bits(self, name: str) -> list:
        return self.module["ports"][name]["bits"]

    def drivers(self) -> dict[int, str]:
        """Net bit -> name of the cell whose output drives it."""
        out: dict[int, str] = {}
        for cname, c in self.cells.items():
            for port, bits in c["connections"].items():
                if c["port_directions"].get(port) == "output":
                    for b in bits:
                        if isinstance(b, int):
                            out[b] = cname
        return out

    def ffs(self) -> dict[str, dict]:
        return {n: c for n, c in self.cells.items() if c["type"] in FF_TYPES}

    def cone(self, bits: Iterable, through_ff_data: bool = True) -> set[str]:
        """Cells in the transitive fan-in of ``bits``; with ``through_ff_data=False`` the
        walk enters flip-flops only through their control ports (clock, enable, reset)."""
        drv = self.drivers()
        seen: set[str] = set()
        stack = [b for b in bits if isinstance(b, int)]
        done_bits: set[int] = set()
        while stack:
            b = stack.pop()
            if b in done_bits:
                continue
            done_bits.add(b)
            cname = drv.get(b)
            if cname is None or cname in seen:
                continue
            seen.add(cname)
            c = self.cells[cname]
            for port, pbits in c["connections"].items():
                if c["port_directions"].get(port) != "input":
                    continue
                if c["type"] in FF_TYPES and port == "D" and not through_ff_data:
                    continue
                stack += [x for x in pbits if isinstance(x, int)]
        return seen

    def sinks(self, bits: Iterable) -> set[tuple[str, str]]:
        """Where the fan-out of ``bits`` ends, walking forward through combinational cells:
        (cell type, port) of every flip-flop or memory input reached, ("port", name) of
        every module output."""
        readers: dict[int, list[tuple[str, str]]] = {}
        for cname, c in self.cells.items():
            for port, pbits in c["connections"].items():
                if c["port_directions"].get(port) == "input":
                    for b in pbits:
                        if isinstance(b, int):
                            readers.setdefault(b, []).append((cname, port))
        outs = {b: name for name, p in self.module["ports"].items()
                if p["direction"] == "output" for b in p["bits"] if isinstance(b, int)}
        found: set[tuple[str, str]] = set()
        stack = [b for b in bits if isinstance(b, int)]
        done: set[int] = set()
        while stack:
            b = stack.pop()
            if b in done:
                continue
            done.add(b)
            if b in outs:
                found.add(("port", outs[b]))
            for cname, port in readers.get(b, []):
                c = self.cells[cname]
                if c["type"] in FF_TYPES or c["type"].startswith("$mem"):
                    found.add((c["type"], port))
                    continue
                for op, pbits in c["connections"].items():
                    if c["port_directions"].get(op) == "output":
                        stack += [x for x in pbits if isinstance(x, int)]
        return found

    def cut(self, keep: set[str]) -> list[int]:
        """Remove every cell not in ``keep``; the bits they drove into kept cells or output
        ports become the new input port ``cut_in``. Returns those bits."""
        drv = self.drivers()
        needed: list[int] = []
        seen: set[int] = set()

        def want(bits: Iterable) -> None:
            for b in bits:
                if isinstance(b, int) and b not in seen and drv.get(b) is not None \
                        and drv[b] not in keep:
                    seen.add(b)
                    needed.append(b)

        for cname in keep:
            c = self.cells[cname]
            for port, bits in c["connections"].items():
                if c["port_directions"].get(port) == "input":
                    want(bits)
        for p in self.module["ports"].values():
            if p["direction"] == "output":
                want(p["bits"])
        self.module["cells"] = {n: c for n, c in self.cells.items() if n in keep}
        if needed:
            self.module["ports"]["cut_in"] = {"direction": "input", "bits": needed}
        return needed

    def add_output(self, name: str, bits: list) -> None:
        self.module["ports"][name] = {"direction": "output", "bits": list(bits)}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.doc))


def load_netlist(path: Path, top: str) -> Netlist:
    doc = json.loads(path.read_text())
    if top not in doc["modules"]:
        raise ValueError(f"{path}: no module {top!r} (has {', '.join(doc['modules'])})")
    return Netlist(doc, top)
