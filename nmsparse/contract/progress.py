"""A progress bar for the long steps (synthesis and place and route, cross-checks, sweeps,
model-quality runs): items done of the total, elapsed time and an estimate of what is left.

On a terminal the bar redraws one line in place; in a log (CI, ``make ... | tee``) it prints a
line per finished item and a heartbeat line at most every ``heartbeat`` seconds, so the log
stays readable. Items may carry a *weight* (e.g. the expected seconds of a point): the
estimate is then the remaining weight at the rate measured so far. When the caller reports
each finished item's own seconds and what is running (``jobs`` in parallel), the estimate is
per item instead: the queued weight and the running items' unfinished part at the seconds
per unit of weight the finished items took, spread over the jobs (so one long item does not
make the estimate grow with the time it runs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(s: float) -> str:
    """``3 s``, ``4 min 05 s``, ``1 h 02 min``."""
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


class Progress:
    """Progress of ``total`` items (or of a total weight).

    Parameters
    ----------
    total : int
        Number of items.
    what : str
        What the items are (``"modules"``, ``"groups"``, ...), for the text.
    total_weight : float, optional
        Sum of the item weights (default: one per item).
    stream : text file
        Where to write (default ``sys.stdout``).
    heartbeat : float
        Seconds between heartbeat lines in a log.
    clock : callable
        Time source (seconds); for tests.
    jobs : int
        Items that run at the same time (for the per-item estimate).
    unit_seconds : float, optional
        Seconds per unit of weight expected before any item has finished (weights that are
        an earlier run's seconds: 1.0), so that the first estimate does not wait for the
        first item; the finished items' own rate replaces it.
    """

    WIDTH = 24

    def __init__(self, total: int, what: str, *, total_weight: float | None = None,
                 stream: TextIO | None = None, heartbeat: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, jobs: int = 1,
                 unit_seconds: float | None = None) -> None:
        if total < 0:
            raise ValueError(f"total must be >= 0, not {total}")
        self.total, self.what = total, what
        self.total_weight = float(total if total_weight is None else total_weight)
        self.stream = stream or sys.stdout
        self.heartbeat = heartbeat
        self.clock = clock
        self.t0 = clock()
        self.done = 0
        self.done_weight = 0.0
        self._last_beat = self.t0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.jobs = max(1, jobs)
        self.item_seconds = 0.0  # own seconds of the finished items that reported them
        self.item_weight = 0.0
        self.active: list[tuple[float, float]] = []  # (weight, seconds so far) of running items
        self.unit_seconds = unit_seconds

    @property
    def elapsed(self) -> float:
        return self.clock() - self.t0

    def remaining(self) -> float | None:
        """Estimated seconds left, or None before the first item finished (without
        ``unit_seconds``)."""
        left = max(0.0, self.total_weight - self.done_weight)
        if self.item_weight > 0:
            per_unit = self.item_seconds / self.item_weight
        elif self.unit_seconds is not None:
            per_unit = self.unit_seconds
        elif self.done_weight > 0:
            return left * self.elapsed / self.done_weight
        else:
            return None
        running = [max(0.0, w * per_unit - s) for w, s in self.active]
        queued = max(0.0, left - sum(w for w, _ in self.active)) * per_unit
        return max(max(running, default=0.0), (queued + sum(running)) / self.jobs)

    def bar(self) -> str:
        frac = self.done_weight / self.total_weight if self.total_weight else 1.0
        full = round(self.WIDTH * min(1.0, frac))
        left = self.remaining()
        eta = "estimating" if left is None else f"~{format_seconds(left)} left"
        return (f"[{'#' * full}{'.' * (self.WIDTH - full)}] {self.done}/{self.total} "
                f"{self.what}, {format_seconds(self.elapsed)} elapsed, {eta}")

    def _write(self, text: str, *, final: bool = True) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def advance(self, weight: float = 1.0, note: str = "",
                seconds: float | None = None) -> None:
        """One item finished (``note``: a line about it, printed above the bar; ``seconds``:
        how long it ran itself)."""
        self.done += 1
        self.done_weight += weight
        if seconds is not None:
            self.item_seconds += seconds
            self.item_weight += weight
        if note:
            self._write(note)
        self._write(self.bar(), final=not self.tty)
        self._last_beat = self.clock()

    def beat(self, running: str = "",
             active: list[tuple[float, float]] | None = None) -> None:
        """Redraw (terminal) or, at most every ``heartbeat`` seconds, print (log) the bar
        with what is running (``active``: its items' weights and seconds so far)."""
        if active is not None:
            self.active = list(active)
        now = self.clock()
        text = self.bar() + (f"; running: {running}" if running else "")
        if self.tty:
            self._write(text, final=False)
        elif now - self._last_beat >= self.heartbeat:
            self._write(text)
            self._last_beat = now

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
