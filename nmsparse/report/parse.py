"""Parsers for the outputs of Yosys and nextpnr-ecp5.

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
    "cmos_transistors",
    "ltp_depth",
    "yosys_version",
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
