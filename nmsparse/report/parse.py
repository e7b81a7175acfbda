"""Parsers for the outputs of Yosys and nextpnr (ECP5; Xilinx 7-series and Nexus at the end).

Every parser takes the text a tool wrote and returns plain numbers under one normalized key
set, so the rest of the report never looks at tool-specific names:

==============  =========================================  ================================
key             post-synthesis (``synth_ecp5``, ``stat``)   post-place (nextpnr ``--report``)
==============  =========================================  ================================
``LUT``         ``LUT4`` cells                              -
``CARRY``       ``CCU2C`` cells (2 bits of carry chain)     -
``COMB``        -                                           ``TRELLIS_COMB`` (LUT4 or carry half)
``FF``          ``TRELLIS_FF``                              ``TRELLIS_FF``
``DSP``         ``MULT18X18D``                              ``MULT18X18D``
``PFUMX``       ``PFUMX`` (LUT5 muxes)                      -
``L6MUX``       ``L6MUX21`` (LUT6 muxes)                    -
``fmax_mhz``    -                                           achieved Fmax of the clock
==============  =========================================  ================================

ASIC proxy: ``transistors`` (``stat -tech cmos``) and ``logic_depth`` (``ltp -noff``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

__all__ = [
    "ParseError",
    "yosys_cell_counts",
    "ecp5_synth_resources",
    "nextpnr_resources",
    "critical_path",
    "cmos_transistors",
    "ltp_depth",
    "yosys_version",
    "xilinx_synth_resources",
    "nexus_synth_resources",
    "nextpnr_nexus_resources",
]

# synth_ecp5 cell type -> normalized key
ECP5_SYNTH_CELLS: dict[str, str] = {
    "LUT4": "LUT",
    "CCU2C": "CARRY",
    "TRELLIS_FF": "FF",
    "MULT18X18D": "DSP",
    "PFUMX": "PFUMX",
    "L6MUX21": "L6MUX",
    "DP16KD": "BRAM",
    "TRELLIS_DPR16X4": "LUTRAM",
}
# nextpnr utilization bel type -> normalized key
ECP5_PLACE_CELLS: dict[str, str] = {
    "TRELLIS_COMB": "COMB",
    "TRELLIS_FF": "FF",
    "MULT18X18D": "DSP",
    "ALU54B": "ALU54",
    "DP16KD": "BRAM",
    "TRELLIS_RAMW": "LUTRAM",
}


class ParseError(ValueError):
    """A tool output does not have the expected shape; the message says what is missing."""


def _load_json(text: str, what: str) -> Mapping:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ParseError(f"{what} is not a JSON object")
    return data


def yosys_cell_counts(stat_json: str, module: str | None = None) -> dict[str, int]:
    """Cell counts by type from ``stat -json``.

    Parameters
    ----------
    stat_json : str
        The text Yosys wrote with ``tee -o FILE stat -json``.
    module : str, optional
        Read this module's counts; default: the ``design`` totals (the whole flattened design).

    Returns
    -------
    dict[str, int]
        ``{cell_type: count}``; Yosys' leading backslash on names is removed.
    """
    data = _load_json(stat_json, "Yosys stat output")
    if module is None:
        entry = data.get("design")
        if entry is None:
            mods = data.get("modules") or {}
            if len(mods) != 1:
                raise ParseError("Yosys stat output has no 'design' totals and not exactly "
                                 "one module")
            entry = next(iter(mods.values()))
    else:
        mods = {k.lstrip("\\"): v for k, v in (data.get("modules") or {}).items()}
        if module not in mods:
            raise ParseError(f"Yosys stat output has no module {module!r} (has {sorted(mods)})")
        entry = mods[module]
    cells = entry.get("num_cells_by_type")
    if cells is None:
        raise ParseError("Yosys stat output has no 'num_cells_by_type'")
    return {str(k).lstrip("\\"): int(v) for k, v in cells.items()}


def ecp5_synth_resources(stat_json: str, module: str | None = None) -> dict[str, int]:
    """Post-synthesis ECP5 resources, normalized keys (``LUT``, ``CARRY``, ``FF``, ``DSP``,
    ``PFUMX``, ``L6MUX``, ``BRAM``, ``LUTRAM``) and ``cells`` (all cells).

    Keys absent from the netlist are 0; a cell type not in the table is kept under its own name
    so nothing is silently dropped.
    """
    counts = yosys_cell_counts(stat_json, module)
    out = {key: 0 for key in ECP5_SYNTH_CELLS.values()}
    for cell, n in counts.items():
        out[ECP5_SYNTH_CELLS.get(cell, cell)] = out.get(ECP5_SYNTH_CELLS.get(cell, cell), 0) + n
    out["cells"] = sum(counts.values())
    return out


def nextpnr_resources(report_json: str, clock: str | None = None) -> dict[str, float | int | None]:
    """Post-place resources and timing from nextpnr's ``--report`` JSON.

    Parameters
    ----------
    report_json : str
        The report text.
    clock : str, optional
        Clock net whose Fmax to return; default: the slowest clock in the report.

    Returns
    -------
    dict
        ``COMB``, ``FF``, ``DSP``, ``ALU54``, ``BRAM``, ``LUTRAM`` (used bels),
        ``fmax_mhz`` (achieved, MHz; None when the design has no register-to-register path)
        and ``target_mhz`` (the constraint the placer and router worked towards).
    """
    data = _load_json(report_json, "nextpnr report")
    util = data.get("utilization")
    if not isinstance(util, Mapping):
        raise ParseError("nextpnr report has no 'utilization'")
    out: dict[str, float | int | None] = {key: 0 for key in ECP5_PLACE_CELLS.values()}
    for bel, key in ECP5_PLACE_CELLS.items():
        if bel in util:
            out[key] = int(util[bel]["used"])
    fmax = data.get("fmax") or {}
    if clock is not None:
        matches = {k: v for k, v in fmax.items() if k == clock or k.endswith("$" + clock)}
        if not matches:
            raise ParseError(f"nextpnr report has no clock {clock!r} (has {sorted(fmax)})")
        fmax = matches
    if fmax:
        slowest = min(fmax.values(), key=lambda v: float(v["achieved"]))
        out["fmax_mhz"] = round(float(slowest["achieved"]), 2)
        out["target_mhz"] = round(float(slowest["constraint"]), 2)
    else:
        out["fmax_mhz"] = None
        out["target_mhz"] = None
    return out


# a netlist cell name -> the design signal it came from: synthesis appends the mapped cell
# type and a path through the cells (``sel_l14_s0$2768_TRELLIS_FF_Q``, ``..._LUT4_Z_D``)
_CELL_SUFFIX = re.compile(r"(\$|_TRELLIS_|_LUT4_|_CCU2C_|_PFUMX_|_L6MUX21_|_MULT18X18D_|"
                          r"_DP16KD_|_TRELLIS_DPR16X4_|\$CCU2_).*$")


def _signal_of(cell: str) -> str:
    name = (cell[4:] if cell.startswith("dut.") else cell).lstrip("\\")
    return _CELL_SUFFIX.sub("", name) or name


def critical_path(report_json: str) -> dict | None:
    """The worst register-to-register path of nextpnr's ``--report`` JSON: ``source`` and
    ``sink`` (the design signals of its first and last cells, synthesis' suffixes removed),
    ``ns`` (total), ``logic_ns``, ``routing_ns`` (the rest: clock-to-out and setup count as
    logic) and ``cells`` (logic cells on the path). None when the report has no path."""
    data = _load_json(report_json, "nextpnr report")
    paths = data.get("critical_paths") or []
    best = None
    for p in paths:
        steps = p.get("path") or []
        if not steps:
            continue
        total = sum(float(st.get("delay", 0)) for st in steps)
        if best is None or total > best[0]:
            best = (total, steps)
    if best is None:
        return None
    total, steps = best
    routing = sum(float(st.get("delay", 0)) for st in steps if st.get("type") == "routing")
    return {"source": _signal_of(steps[0]["from"]["cell"]),
            "sink": _signal_of(steps[-1]["to"]["cell"]),
            "ns": round(total, 2), "logic_ns": round(total - routing, 2),
            "routing_ns": round(routing, 2),
            "cells": sum(1 for st in steps if st.get("type") == "logic")}


_TRANSISTORS = re.compile(r"Estimated number of transistors:\s*([0-9]+)")


def cmos_transistors(stat_output: str) -> int:
    """Estimated transistor count from ``stat -tech cmos`` (text or ``-json`` output)."""
    text = stat_output.lstrip()
    if text.startswith("{"):
        data = _load_json(text, "Yosys stat output")
        entry = data.get("design")
        if entry is None:
            mods = list((data.get("modules") or {}).values())
            entry = mods[0] if len(mods) == 1 else {}
        value = entry.get("estimated_num_transistors")
        if value is None:
            raise ParseError("Yosys stat output has no 'estimated_num_transistors' "
                             "(was it run with -tech cmos?)")
        return int(str(value).rstrip("+"))
    found = _TRANSISTORS.findall(stat_output)
    if not found:
        raise ParseError("no 'Estimated number of transistors' in the Yosys stat output")
    return int(found[-1])


_LTP = re.compile(r"Longest topological path in \S+ \(length=([0-9]+)\)")


def ltp_depth(ltp_output: str) -> int:
    """Logic depth in gates of the longest combinational path, from ``ltp -noff``.

    With ``-noff`` flip-flops cut the paths, so this is the deepest combinational stage
    (input-to-register, register-to-register or register-to-output). The maximum over all
    modules in the output is returned.
    """
    found = _LTP.findall(ltp_output)
    if not found:
        raise ParseError("no 'Longest topological path' line in the ltp output")
    return max(int(v) for v in found)


_YOSYS_VERSION = re.compile(r"Yosys ([0-9][^ ]*)(?: \(git sha1 ([0-9a-f]+))?")


def yosys_version(text: str) -> str | None:
    """``"0.70 (28ba3cb92)"`` from a Yosys banner or the ``creator`` of its JSON output."""
    m = _YOSYS_VERSION.search(text)
    if m is None:
        return None
    return f"{m.group(1)} ({m.group(2)})" if m.group(2) else m.group(1)


# ----------------------------------------------------------------------------- second families
# Xilinx 7-series (``synth_xilinx -family xc7``, post-synthesis only) and Lattice Nexus
# (``synth_nexus``, nextpnr-nexus): the same normalized keys where the meaning is the same
# (``LUT``, ``FF``, ``DSP``, ``CARRY``, ``COMB``, ``fmax_mhz``), plus the family's own cells.

#: synth_xilinx cell type -> normalized key (every LUT size counts as one ``LUT``)
XILINX_SYNTH_CELLS: dict[str, str] = {
    **{f"LUT{k}": "LUT" for k in range(1, 7)},
    **{ff: "FF" for ff in ("FDRE", "FDSE", "FDCE", "FDPE")},
    "CARRY4": "CARRY4",
    "MUXF7": "MUXF7",
    "MUXF8": "MUXF8",
    "DSP48E1": "DSP",
    "SRL16E": "SRL",
    "SRLC32E": "SRL",
    "RAMB18E1": "BRAM",
    "RAMB36E1": "BRAM",
    "INV": "INV",
}
#: synth_nexus cell type -> normalized key
NEXUS_SYNTH_CELLS: dict[str, str] = {
    "LUT4": "LUT",
    "CCU2": "CARRY",
    "WIDEFN9": "WIDEFN9",
    **{ff: "FF" for ff in ("FD1P3IX", "FD1P3JX", "FD1P3BX", "FD1P3DX")},
    **{dsp: "DSP" for dsp in ("MULT9X9", "MULT18X18", "MULT18X36", "MULT36X36",
                             "MULTPREADD9X9", "MULTPREADD18X18", "MULTADDSUB18X18")},
    "EBR_CORE": "BRAM",
    "DPR16X4": "LUTRAM",
}
#: nextpnr-nexus utilization bel type -> normalized key
NEXUS_PLACE_CELLS: dict[str, str] = {
    "OXIDE_COMB": "COMB",
    "OXIDE_FF": "FF",
    "MULT9_CORE": "MULT9",
    "MULT18_CORE": "MULT18",
    "OXIDE_EBR": "BRAM",
    "SEIO33_CORE": "IO",
}
_IGNORED_CELLS = ("VHI", "VLO", "GND", "VCC")


def _normalized(counts: Mapping[str, int], table: Mapping[str, str]) -> dict[str, int]:
    out = {key: 0 for key in table.values()}
    for cell, n in counts.items():
        if cell in _IGNORED_CELLS:
            continue
        key = table.get(cell, cell)
        out[key] = out.get(key, 0) + n
    out["cells"] = sum(n for c, n in counts.items() if c not in _IGNORED_CELLS)
    return out


def xilinx_synth_resources(stat_json: str, module: str | None = None) -> dict[str, int]:
    """Post-synthesis Xilinx 7-series resources of ``module`` from ``stat -json``.

    ``LUT`` (LUT1..LUT6, i.e. 6-input LUT sites before packing), ``FF`` (FDRE/FDSE/FDCE/FDPE),
    ``CARRY4``, ``MUXF7``, ``MUXF8``, ``DSP`` (DSP48E1), ``SRL``, ``BRAM``, ``INV`` (inverters
    Vivado folds into LUTs), ``cells``. Post-synthesis estimates: there is no open Xilinx
    place and route here, so no Fmax.
    """
    return _normalized(yosys_cell_counts(stat_json, module), XILINX_SYNTH_CELLS)


def nexus_synth_resources(stat_json: str, module: str | None = None) -> dict[str, int]:
    """Post-synthesis Lattice Nexus resources of ``module`` from ``stat -json``: ``LUT``
    (LUT4), ``CARRY`` (CCU2, 2 bits of carry chain), ``WIDEFN9`` (LUT5 muxes), ``FF``,
    ``DSP`` (multiplier primitives), ``BRAM``, ``LUTRAM``, ``cells``."""
    return _normalized(yosys_cell_counts(stat_json, module), NEXUS_SYNTH_CELLS)


def nextpnr_nexus_resources(report_json: str) -> dict[str, float | int | None]:
    """Post-place Nexus resources and timing from nextpnr-nexus ``--report`` JSON: ``COMB``
    (OXIDE_COMB: LUT4 or carry half), ``FF``, ``MULT9``, ``MULT18``, ``BRAM``, ``IO``,
    ``fmax_mhz`` (slowest clock; None without register paths) and ``target_mhz``."""
    data = _load_json(report_json, "nextpnr-nexus report")
    util = data.get("utilization")
    if not isinstance(util, Mapping):
        raise ParseError("nextpnr-nexus report has no 'utilization'")
    out: dict[str, float | int | None] = {key: 0 for key in NEXUS_PLACE_CELLS.values()}
    for bel, key in NEXUS_PLACE_CELLS.items():
        if bel in util:
            out[key] = int(util[bel]["used"])
    fmax = data.get("fmax") or {}
    if fmax:
        slowest = min(fmax.values(), key=lambda v: float(v["achieved"]))
        out["fmax_mhz"] = round(float(slowest["achieved"]), 2)
        out["target_mhz"] = round(float(slowest["constraint"]), 2)
    else:
        out["fmax_mhz"] = out["target_mhz"] = None
    return out
