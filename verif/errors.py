"""Why a build or a simulation gave no verdict, as exceptions with one-line messages.

::

    SimError                  the build or the simulation failed (not a mismatch)
    ├── BuildError            Verilator or the C++ compiler rejected the design   bad input
    ├── InterfaceError        the Verilog's ports disagree with the sidecar       bad input
    ├── SimHang               the simulator ran past its wall-clock limit         failing design
    └── SimCrash              the simulator died without writing a result         failing design

``str(exc)`` is one line (the cause); ``exc.log`` is the log to read for the rest. The command
line exits 2 for bad input and 1 for a failing design (:func:`exit_code`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SimError", "BuildError", "InterfaceError", "SimHang", "SimCrash", "exit_code"]


class SimError(RuntimeError):
    """The build or the simulation failed; ``log`` names the file with the details."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log

    def one_line(self) -> str:
        """The cause and, if there is one, where the log is."""
        text = str(self)
        return f"{text} (log: {self.log})" if self.log else text


class BuildError(SimError):
    """Verilator or the C++ compiler failed: a missing file, include or module, a syntax
    error."""


class InterfaceError(SimError):
    """The Verilog's ports (names, directions, widths) disagree with the sidecar."""


class SimHang(SimError):
    """The simulator ran past its wall-clock limit; the message names the last transfer."""


class SimCrash(SimError):
    """The simulator died without writing a result."""


def exit_code(exc: SimError) -> int:
    """2 for bad input (:class:`BuildError`, :class:`InterfaceError`), else 1."""
    return 2 if isinstance(exc, (BuildError, InterfaceError)) else 1
