"""Build a module with Verilator and replay a vector file through it with cocotb.

One build per design point, shared by parallel ``pytest -n`` workers through a file lock::

    <build root>/<module>-<hash of the declared inputs>/     hash: top, file paths, include
        nmsparse-build.ok   {inputs: {file: sha256}, ports}        dirs, defines, port names,
        ports/              verilator --json-only (port check)    build options, Verilator
        Vtop__ver.d         every file Verilator read             version
        <tag>-<pid>/        vectors.json, result.json, sim.log

The stamp hashes every file of Verilator's dependency list (:func:`verif.sources.
read_dependencies`), not only the files the sidecar names; each reuse re-hashes them and
rebuilds when any differs, so an edited `` `include`` file can never hide behind a cached
build. The build root is ``$NMSPARSE_BUILD_DIR`` or ``~/.cache/nmsparse/sim_build``, outside
the checkout; every path is made absolute before the simulator changes directory.
Verilator's runtime objects are compiled once and cached for all design points
(:mod:`verif.objcache`).

Before the (slow) C++ build, the Verilog's ports are read by Verilator and compared with the
sidecar (:mod:`verif.hdl`); a simulation runs under a wall-clock limit and reports its last
progress when it hits it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nmsparse.contract import toolchain
from nmsparse.contract.sidecar import Sidecar
from nmsparse.contract.vectors import ResultFile, Scenario, ScenarioResult, VectorFile

from .errors import BuildError, InterfaceError, SimCrash, SimError, SimHang
from .hdl import FRONT_ARGS, HdlPort, check_ports, explain_verilator_error, read_ports
from .sources import BuildSources, file_hashes, read_dependencies, sources_for

__all__ = ["SimResult", "SimError", "BuildError", "InterfaceError", "SimHang", "SimCrash",
           "default_build_root", "build", "run_vectors", "hdl_dir", "sim_timeout",
           "STAMP"]

REPO = Path(__file__).resolve().parent.parent
BUILD_ARGS = [
    "--no-public-flat-rw", *FRONT_ARGS,
    "--x-assign", "fast", "--x-initial", "fast",
]
STAMP = "nmsparse-build.ok"
_STAMP_VERSION = 2
#: Wall-clock limit of one simulator run, seconds (``NMSPARSE_SIM_TIMEOUT`` overrides it).
DEFAULT_SIM_TIMEOUT = 1800.0


def _abs(p: str | os.PathLike) -> Path:
    """An absolute path: relative ones are relative to the caller's directory."""
    return Path(p).expanduser().resolve()


def hdl_dir(override: str | os.PathLike | None = None) -> Path:
    """The Verilog directory to verify: ``override``, ``$NMSPARSE_HDL_DIR`` or ``hdl/``."""
    if override:
        return _abs(override)
    env = os.environ.get("NMSPARSE_HDL_DIR")
    return _abs(env) if env else REPO / "hdl"


def default_build_root() -> Path:
    """``$NMSPARSE_BUILD_DIR`` or ``~/.cache/nmsparse/sim_build`` (``$NMSPARSE_CACHE``)."""
    env = os.environ.get("NMSPARSE_BUILD_DIR")
    return _abs(env) if env else toolchain.cache_dir() / "sim_build"


def sim_timeout(override: float | None = None) -> float:
    """The wall-clock limit of one simulator run: ``override``, ``$NMSPARSE_SIM_TIMEOUT`` or
    :data:`DEFAULT_SIM_TIMEOUT` seconds.

    Raises
    ------
    ValueError
        A limit that is not a positive number.
    """
    raw: object = override if override is not None else os.environ.get(
        "NMSPARSE_SIM_TIMEOUT", DEFAULT_SIM_TIMEOUT)
    try:
        v = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        v = -1.0
    if not v > 0:
        raise ValueError(f"the simulation timeout must be a positive number of seconds, "
                         f"not {raw!r}")
    return v


@contextlib.contextmanager
def _environ(**kv: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in kv}
    for k, v in kv.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _control_file(sc: Sidecar, bdir: Path) -> Path:
    """A Verilator control file that makes only the top-level ports visible to cocotb.

    cocotb's runner verilates with ``--public-flat-rw`` (every signal public), which blocks
    most of Verilator's optimizations: the large rank selectors then take minutes to compile.
    ``--no-public-flat-rw`` plus this file keeps the ports, all the testbench touches.
    """
    lines = ["`verilator_config"]
    lines += [f'public_flat_rw -module "{sc.module}" -var "{port}"' for port in sc.ports]
    p = bdir / "ports.vlt"
    p.write_text("\n".join(lines) + "\n")
    return p


def runtime_key() -> str:
    """What a built simulator binary links at run time: cocotb's library directory (the
    binary's RUNPATH points into the environment that built it) and cocotb's version. Part
    of every build directory's name, so a cache shared by several checkouts never hands one
    environment a binary that links another (perhaps deleted) one."""
    import cocotb
    import cocotb_tools.config

    return f"{cocotb_tools.config.libs_dir}|{cocotb.__version__}"


def _digest(sc: Sidecar, src: BuildSources) -> str:
    """Hash of the declared inputs (paths, not contents: contents live in the stamp)."""
    h = hashlib.sha256()
    h.update(runtime_key().encode())
    h.update(src.key().encode())
    h.update(" ".join(sorted(sc.ports)).encode())
    h.update(" ".join(BUILD_ARGS).encode())
    h.update(toolchain.VERILATOR_VERSION.encode())
    return h.hexdigest()[:12]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _read_stamp(bdir: Path) -> dict | None:
    try:
        stamp = json.loads((bdir / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) and stamp.get("version") == _STAMP_VERSION else None


def stale_inputs(bdir: Path) -> list[str] | None:
    """Inputs of the build in ``bdir`` that changed since it was built (``[]``: none);
    None when there is no valid build."""
    stamp = _read_stamp(bdir)
    if stamp is None:
        return None
    old = stamp.get("inputs") or {}
    if not old:
        return None
    new = file_hashes(Path(p) for p in old)
    return [p for p in old if new[p] != old[p]]


def _stamp_ports(stamp: dict) -> dict[str, HdlPort]:
    return {n: HdlPort(n, d, w) for n, (d, w) in (stamp.get("ports") or {}).items()}


def build(sc: Sidecar, build_root: str | os.PathLike | None = None, *,
          sources: BuildSources | None = None) -> Path:
    """Verilate and compile ``sc``'s module once; return its build directory.

    A build is reused only while every file Verilator read is unchanged; otherwise it is
    rebuilt in place (under the lock). The Verilog's ports are checked against the sidecar
    on every call (read by Verilator before a build, from the stamp after).

    Parameters
    ----------
    sources : BuildSources, optional
        What to compile; default: the sidecar's (:func:`verif.sources.sources_for`).

    Raises
    ------
    FileNotFoundError
        A source file or include directory does not exist.
    BuildError
        Verilator or the C++ compiler failed; the message is the first error, with a hint.
    InterfaceError
        The Verilog's ports disagree with the sidecar.
    """
    from filelock import FileLock

    toolchain.setup(verilator=True)
    src = sources if sources is not None else sources_for(sc)
    src.check()
    root = _abs(build_root) if build_root else default_build_root()
    bdir = root / f"{sc.module}-{_digest(sc, src)}"
    bdir.parent.mkdir(parents=True, exist_ok=True)
    stamp_file = bdir / STAMP
    verilog = src.files[0].name if len(src.files) == 1 else None
    with FileLock(str(bdir) + ".lock"):
        if stale_inputs(bdir) == []:
            stamp = _read_stamp(bdir) or {}
            check_ports(sc, _stamp_ports(stamp), verilog or "")
            return bdir
        from cocotb_tools.runner import VerilatorControlFile, get_runner

        with contextlib.suppress(FileNotFoundError):
            stamp_file.unlink()
        bdir.mkdir(parents=True, exist_ok=True)
        ports = read_ports(src, bdir / "ports")
        check_ports(sc, ports, verilog or "")
        log = bdir / "build.log"
        objcache = Path(__file__).with_name("objcache.py")
        makeflags = os.environ.get("MAKEFLAGS", "")
        makeflags += f" OBJCACHE={objcache}"
        runner = get_runner("verilator")
        t0 = time.perf_counter()
        try:
            # one object cache for all build roots (entries are keyed by command and source)
            with _environ(MAKEFLAGS=makeflags.strip(),
                          NMSPARSE_OBJCACHE=str(toolchain.cache_dir() / "objcache")):
                runner.build(sources=[*src.files, VerilatorControlFile(_control_file(sc, bdir))],
                             includes=list(src.include_dirs), hdl_toplevel=sc.module,
                             build_dir=bdir, build_args=[*BUILD_ARGS, *src.define_args()],
                             log_file=log, always=True)
        except (RuntimeError, SystemExit) as exc:
            text = log.read_text(errors="replace") if log.is_file() else str(exc)
            raise BuildError(f"building {sc.module} failed: "
                             f"{explain_verilator_error(text, src)}", log) from None
        deps = read_dependencies(bdir, exclude=[toolchain.verilator_root(), bdir])
        stamp_file.write_text(json.dumps({
            "version": _STAMP_VERSION, "module": sc.module,
            "seconds": time.perf_counter() - t0, "verilator": toolchain.VERILATOR_VERSION,
            "inputs": file_hashes(deps),
            "ports": {n: [p.dir, p.width] for n, p in ports.items()},
        }, indent=1))
    return bdir


@dataclass
class SimResult:
    """Summary written by the cocotb test (:mod:`verif.cocotb_regression`)."""

    module: str
    seed: int
    scenarios: list[ScenarioResult]
    passed: bool
    log: Path
    build_seconds: float
    sim_seconds: float

    @property
    def mismatches(self) -> int:
        return sum(s.mismatches for s in self.scenarios)

    @property
    def groups(self) -> int:
        return sum(s.groups for s in self.scenarios)

    @property
    def errors(self) -> list[str]:
        return [e for s in self.scenarios for e in s.errors]

    def cause(self) -> str:
        """Why it failed, in one line ("" when it passed)."""
        for s in self.scenarios:
            if s.errors:
                return s.errors[0]
            if s.mismatches:
                first = s.reports[0].splitlines()[0] if s.reports else ""
                return (f"scenario {s.name!r}: {s.mismatches} of {s.checked} outputs mismatch"
                        + (f" (first: {first.split(': ', 1)[-1]})" if first else ""))
        return "" if self.passed else f"the simulation failed; see {self.log}"

    def failure_text(self, max_reports: int = 3) -> str:
        """The failing scenarios with their first mismatches, decoded field by field."""
        lines = []
        for s in self.scenarios:
            if not s.ok:
                lines.append(f"scenario {s.name!r}: " + (
                    f"{s.mismatches} of {s.checked} outputs mismatch" if s.mismatches
                    else f"{len(s.errors)} error(s)"))
                lines += s.errors
                lines += s.reports[:max_reports]
        if not lines:
            lines.append(f"simulation failed; see {self.log}:\n{_tail(self.log)}")
        return "\n".join(lines) + f"\n(seed {self.seed}; reproduce with NMSPARSE_SEED={self.seed})"


def _progress_text(path: Path) -> str:
    try:
        p = json.loads(path.read_text())
    except (OSError, ValueError):
        return "no progress was recorded (the simulator stopped before the first scenario)"
    text = f"last progress recorded: scenario {p['scenario']!r}"
    if p.get("phases", 1) > 1:
        text += f" [phase {p['phase'] + 1}]"
    text += (f", cycle {p['cycle']}: {p['accepted']} of {p['inputs']} input transfers "
             "accepted")
    if p.get("last_in") is not None:
        text += f" (the last at cycle {p['last_in']})"
    text += f", {p['outputs']} output transfers"
    if p.get("last_out") is not None:
        text += f" (the last at cycle {p['last_out']})"
    return text


def run_vectors(sc: Sidecar, scenarios: list[Scenario], *, seed: int,
                build_root: str | os.PathLike | None = None, tag: str = "run",
                sources: BuildSources | None = None,
                timeout: float | None = None) -> SimResult:
    """Build ``sc`` (once) and replay ``scenarios`` (see :mod:`verif.cocotb_regression`).

    ``tag`` names the run's directory inside the build directory, so several runs of one
    module (in one process) keep their logs apart. ``timeout`` is the wall-clock limit of
    the simulator in seconds (:func:`sim_timeout`).

    Raises
    ------
    BuildError, InterfaceError
        The design cannot be built, or its ports disagree with the sidecar (bad input).
    SimHang
        The simulator ran past the wall-clock limit; the message names the last transfer.
    SimCrash
        The simulator died without writing a result.
    """
    from cocotb_tools.runner import get_runner

    limit = sim_timeout(timeout)
    t0 = time.perf_counter()
    bdir = build(sc, build_root, sources=sources)
    t1 = time.perf_counter()
    stamp = _read_stamp(bdir) or {}
    tdir = bdir / f"{tag}-{os.getpid()}"
    tdir.mkdir(parents=True, exist_ok=True)
    vec, out, log = tdir / "vectors.json", tdir / "result.json", tdir / "sim.log"
    fatal, progress = tdir / "fatal.json", tdir / "progress.json"
    for stale in (out, fatal, progress):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    VectorFile(sidecar=str(sc.path), seed=seed, scenarios=scenarios).write(vec)
    runner = get_runner("verilator")
    # the coreutils watchdog kills a simulator stuck inside the model's evaluation too,
    # where no Python code of the testbench runs any more
    watchdog = shutil.which("timeout")
    prefix = f"{watchdog} -s KILL {limit:.0f}" if watchdog else None
    ok = True
    ts = time.perf_counter()
    try:
        with _environ(SIM_CMD_PREFIX=prefix):
            runner.test(test_module="verif.cocotb_regression", hdl_toplevel=sc.module,
                        hdl_toplevel_lang="verilog",
                        build_dir=bdir, test_dir=tdir, seed=seed, log_file=log,
                        results_xml=str(tdir / "results.xml"),
                        extra_env={"NMSPARSE_VECTORS": str(vec), "NMSPARSE_RESULT": str(out),
                                   "NMSPARSE_FATAL": str(fatal),
                                   "NMSPARSE_PROGRESS": str(progress),
                                   "COCOTB_LOG_LEVEL": "INFO"})
    except (SystemExit, RuntimeError):
        ok = False
    elapsed = time.perf_counter() - ts
    if fatal.is_file():
        raise InterfaceError(json.loads(fatal.read_text())["message"], log)
    if not out.is_file():
        if elapsed >= limit - 1:
            raise SimHang(f"{sc.module}: the simulation was stopped after {limit:.0f} s "
                          f"(wall clock; --sim-timeout / NMSPARSE_SIM_TIMEOUT): "
                          f"{_progress_text(progress)}", log)
        text = log.read_text(errors="replace") if log.is_file() else ""
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        why = next((ln for ln in lines if ln.startswith("%Error") or "Error:" in ln
                    or "Assertion" in ln), lines[-1] if lines else "no output")
        raise SimCrash(f"{sc.module}: the simulation ended without a result ({why}); "
                       f"{_progress_text(progress)}", log)
    data = ResultFile.read(out)
    res = SimResult(module=sc.module, seed=seed, scenarios=data.scenarios, passed=ok, log=log,
                    build_seconds=float(stamp.get("seconds", 0.0)) if t1 - t0 > 1 else 0.0,
                    sim_seconds=time.perf_counter() - t1)
    if res.mismatches or res.errors:
        res.passed = False
    return res


@contextlib.contextmanager
def suppress_missing() -> Iterator[None]:
    with contextlib.suppress(FileNotFoundError):
        yield
