"""Build a module with Verilator and replay a vector file through it with cocotb.

One build per design point: the build directory is ``<build_root>/<module>-<hash>`` where the
hash covers the Verilog and the sidecar, so a modified copy of a module never reuses the
original's build, and a file lock makes parallel ``pytest -n`` workers share one build.
Verilator's runtime objects are compiled once and cached for all design points
(:mod:`verif.objcache`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nmsparse.contract import toolchain
from nmsparse.contract.sidecar import Sidecar
from nmsparse.contract.vectors import ResultFile, Scenario, ScenarioResult, VectorFile

__all__ = ["SimResult", "SimError", "default_build_root", "build", "run_vectors", "hdl_dir"]

REPO = Path(__file__).resolve().parent.parent
BUILD_ARGS = [
    "--no-public-flat-rw", "-Wno-fatal", "-Wno-lint", "-Wno-style",
    "--x-assign", "fast", "--x-initial", "fast",
]


class SimError(RuntimeError):
    """The build or the simulation itself failed (not a mismatch); the message says where."""


def hdl_dir(override: str | os.PathLike | None = None) -> Path:
    """The Verilog directory to verify: ``override``, ``$NMSPARSE_HDL_DIR`` or ``hdl/``."""
    if override:
        return Path(override)
    env = os.environ.get("NMSPARSE_HDL_DIR")
    return Path(env) if env else REPO / "hdl"


def default_build_root() -> Path:
    """``$NMSPARSE_BUILD_DIR`` or ``sim_build/`` in the repository."""
    env = os.environ.get("NMSPARSE_BUILD_DIR")
    return Path(env) if env else REPO / "sim_build"


@contextlib.contextmanager
def _environ(**kv: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in kv}
    os.environ.update(kv)
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


def _digest(sc: Sidecar) -> str:
    h = hashlib.sha256()
    h.update(sc.verilog.read_bytes())
    h.update(sc.path.read_bytes())
    h.update(" ".join(BUILD_ARGS).encode())
    return h.hexdigest()[:12]


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def build(sc: Sidecar, build_root: str | os.PathLike | None = None) -> Path:
    """Verilate and compile ``sc``'s module once; return its build directory.

    Raises
    ------
    SimError
        Verilator or the C++ compiler failed; the message ends with the log's tail.
    """
    from filelock import FileLock

    toolchain.setup(verilator=True)
    root = Path(build_root) if build_root else default_build_root()
    bdir = root / f"{sc.module}-{_digest(sc)}"
    bdir.parent.mkdir(parents=True, exist_ok=True)
    stamp = bdir / "nmsparse-build.ok"
    with FileLock(str(bdir) + ".lock"):
        if stamp.is_file():
            return bdir
        from cocotb_tools.runner import VerilatorControlFile, get_runner

        bdir.mkdir(parents=True, exist_ok=True)
        log = bdir / "build.log"
        objcache = Path(__file__).with_name("objcache.py")
        makeflags = os.environ.get("MAKEFLAGS", "")
        makeflags += f" OBJCACHE={objcache}"
        runner = get_runner("verilator")
        t0 = time.perf_counter()
        try:
            with _environ(MAKEFLAGS=makeflags.strip(),
                          NMSPARSE_OBJCACHE=str(root / ".objcache")):
                runner.build(sources=[sc.verilog, VerilatorControlFile(_control_file(sc, bdir))],
                             hdl_toplevel=sc.module, build_dir=bdir,
                             build_args=BUILD_ARGS, log_file=log)
        except (RuntimeError, SystemExit) as exc:
            raise SimError(f"building {sc.module} from {sc.verilog} failed ({exc}); "
                           f"log {log}:\n{_tail(log)}") from None
        stamp.write_text(json.dumps({"module": sc.module, "seconds": time.perf_counter() - t0}))
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

    def failure_text(self, max_reports: int = 3) -> str:
        """The failing scenarios with their first mismatches, decoded field by field."""
        lines = []
        for s in self.scenarios:
            if not s.ok:
                lines.append(f"scenario {s.name!r}: {s.mismatches} of {s.checked} "
                             f"outputs mismatch")
                lines += s.errors
                lines += s.reports[:max_reports]
        if not lines:
            lines.append(f"simulation failed; see {self.log}:\n{_tail(self.log)}")
        return "\n".join(lines) + f"\n(seed {self.seed}; reproduce with NMSPARSE_SEED={self.seed})"


def run_vectors(sc: Sidecar, scenarios: list[Scenario], *, seed: int,
                build_root: str | os.PathLike | None = None, tag: str = "run") -> SimResult:
    """Build ``sc`` (once) and replay ``scenarios`` (see :mod:`verif.cocotb_regression`).

    ``tag`` names the run's directory inside the build directory, so several runs of one
    module (in one process) keep their logs apart.

    Raises
    ------
    SimError
        The build failed, or the simulator died without writing a result.
    """
    from cocotb_tools.runner import get_runner

    t0 = time.perf_counter()
    bdir = build(sc, build_root)
    t1 = time.perf_counter()
    stamp = json.loads((bdir / "nmsparse-build.ok").read_text())
    tdir = bdir / f"{tag}-{os.getpid()}"
    tdir.mkdir(parents=True, exist_ok=True)
    vec = tdir / "vectors.json"
    out = tdir / "result.json"
    log = tdir / "sim.log"
    with suppress_missing():
        out.unlink()
    VectorFile(sidecar=str(sc.path), seed=seed, scenarios=scenarios).write(vec)
    runner = get_runner("verilator")
    ok = True
    try:
        runner.test(test_module="verif.cocotb_regression", hdl_toplevel=sc.module,
                    hdl_toplevel_lang="verilog",
                    build_dir=bdir, test_dir=tdir, seed=seed, log_file=log,
                    results_xml=str(tdir / "results.xml"),
                    extra_env={"NMSPARSE_VECTORS": str(vec), "NMSPARSE_RESULT": str(out),
                               "COCOTB_LOG_LEVEL": "INFO"})
    except (SystemExit, RuntimeError):
        ok = False
    if not out.is_file():
        raise SimError(f"the simulation of {sc.module} ended without a result; log {log}:\n"
                       f"{_tail(log)}")
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
