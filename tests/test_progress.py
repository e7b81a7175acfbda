"""The progress bar of the long steps: counts, elapsed time and the estimate of what is left."""

from __future__ import annotations

import io

from nmsparse.contract.progress import Progress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_estimate_uses_the_weights_done_so_far() -> None:
    clock, out = Clock(), io.StringIO()
    bar = Progress(3, "modules", total_weight=10.0, stream=out, heartbeat=30, clock=clock)
    assert "0/3 modules" in bar.bar() and "estimating" in bar.bar()
    clock.t += 20
    bar.advance(2.0, "first done")  # 2 of 10 units in 20 s: 8 units left, about 80 s
    lines = out.getvalue().splitlines()
    assert lines[0] == "first done"
    assert "1/3 modules, 20 s elapsed, ~1 min 20 s left" in lines[1]
    assert lines[1].startswith("[#####.") and lines[1].count("#") == 5  # 2/10 of 24
    clock.t += 10
    bar.beat("b (P&R 10 s)")  # 10 s since the last line < heartbeat: no new line in a log
    assert len(out.getvalue().splitlines()) == 2
    clock.t += 25
    bar.beat("b (P&R 35 s)")
    assert out.getvalue().splitlines()[-1].endswith("running: b (P&R 35 s)")
    clock.t += 5
    bar.advance(8.0)
    assert "3 s" not in bar.bar() and "~0 s left" in bar.bar() and "2/3 modules" in bar.bar()


def test_format_seconds() -> None:
    assert format_seconds(3.2) == "3 s"
    assert format_seconds(245) == "4 min 05 s"
    assert format_seconds(3720) == "1 h 02 min"
