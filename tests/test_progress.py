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


def test_per_item_estimate_does_not_grow_while_a_long_item_runs() -> None:
    """With each item's own seconds and what is running, the estimate is what the running
    and queued items still need, over the jobs: a last item that runs long no longer makes
    it grow with the elapsed time (the report said "~1 h 52 min left" for a point that
    ended 80 s later)."""
    clock, out = Clock(), io.StringIO()
    bar = Progress(3, "modules", total_weight=300.0, stream=out, clock=clock, jobs=2)
    clock.t += 100
    bar.active = [(100.0, 60.0)]  # b runs (a just finished)
    bar.advance(100.0, seconds=100.0)  # 1 s per unit; b has 40 s to go, c (queued) 100 s
    assert bar.remaining() == max(40.0, (100.0 + 40.0) / 2)
    clock.t += 500
    bar.beat("b (P&R 560 s)", [(100.0, 560.0), (100.0, 400.0)])  # b, c: past their weight
    assert bar.remaining() == 0.0 and "~0 s left" in bar.bar()
    clock.t += 10
    bar.active = [(100.0, 570.0)]
    bar.advance(100.0, seconds=410.0)  # c ends; b still runs, past its weight
    assert bar.remaining() == 0.0 and "2/3 modules" in bar.bar()
    # without per-item seconds the rate-based estimate is kept
    legacy = Progress(2, "m", total_weight=2.0, stream=io.StringIO(), clock=clock)
    clock.t += 30
    legacy.advance(1.0)
    assert legacy.remaining() == 30.0


def test_weights_in_seconds_give_an_estimate_before_the_first_item_ends() -> None:
    """Weights that are an earlier run's seconds (a cold report reads them from the committed
    resources.json) estimate from the start; the first finished item's rate replaces them."""
    clock = Clock()
    bar = Progress(3, "modules", total_weight=160.0, stream=io.StringIO(), clock=clock,
                   jobs=2, unit_seconds=1.0)
    assert bar.remaining() == max(0.0, 160.0 / 2)  # nothing runs yet: the whole weight
    clock.t += 10
    bar.beat("a, b", [(100.0, 10.0), (40.0, 10.0)])  # c (20) queued
    assert bar.remaining() == max(90.0, (20.0 + 90.0 + 30.0) / 2)
    assert "estimating" not in bar.bar()
    clock.t += 70
    bar.active = [(100.0, 80.0)]
    bar.advance(40.0, seconds=80.0)  # b took 2 s per unit: a has 120 s to go, c 40 s
    assert bar.remaining() == max(120.0, (40.0 + 120.0) / 2)
    assert Progress(1, "m", stream=io.StringIO()).remaining() is None  # no weights in seconds
