"""Timing-driven register placement (gen.schedule) and its use by the selector configs."""

from __future__ import annotations

import pytest

from gen.config import TopKConfig
from gen.schedule import (
    SEGMENT_OVERHEAD_NS,
    predicted_fmax,
    schedule_for_clock,
    schedule_stages,
)

OH = SEGMENT_OVERHEAD_NS


def test_clock_schedule_registers_where_the_data_is_narrow() -> None:
    delays = [1.0, 1.0, 1.0, 1.0]
    live = [100, 10, 100, 50]
    # 3.9 ns budget fits two layers per segment: the cut goes after the narrow layer 1
    cuts = schedule_for_clock(delays, live, 1000 / (2 + OH))
    assert cuts == [0, 1, 0, 1]
    assert predicted_fmax(delays, cuts) == pytest.approx(1000 / (2 + OH))
    # a slower clock needs no inner register: only the output one
    assert schedule_for_clock(delays, live, 1000 / (4 + OH)) == [0, 0, 0, 1]
    # every layer alone: a register after each one
    assert schedule_for_clock(delays, live, 1000 / (1 + OH)) == [1, 1, 1, 1]


def test_clock_schedule_when_one_layer_is_too_slow() -> None:
    delays, live = [1.0, 5.0, 1.0], [8, 8, 8]
    cuts = schedule_for_clock(delays, live, 1000.0)  # 1 ns: impossible
    assert predicted_fmax(delays, cuts) == pytest.approx(1000 / (5 + OH))  # the best there is
    with pytest.raises(ValueError, match="target_mhz must be a positive number"):
        schedule_for_clock(delays, live, 0)
    with pytest.raises(ValueError, match="3 layer delays but 2"):
        schedule_for_clock(delays, live[:2], 100)


def test_fixed_stages_minimize_the_slowest_segment() -> None:
    delays = [3.0, 1.0, 1.0, 1.0, 3.0]
    two = schedule_stages(delays, 2)
    assert sum(two) == 2 and two[-1] == 1
    assert predicted_fmax(delays, two) == pytest.approx(1000 / (5 + OH))  # 4|5 or 5|4, not 3|6
    assert schedule_stages(delays, 0) == [0] * 5
    assert schedule_stages(delays, 7) == [1, 1, 1, 1, 3]  # extra stages follow the last layer
    assert sum(schedule_stages(delays, 3)) == 3
    with pytest.raises(ValueError, match="stages must be >= 0"):
        schedule_stages(delays, -1)


def test_selector_config_auto_and_explicit() -> None:
    auto = TopKConfig(n=8, m=16, arch="rank", pipeline="auto", target_mhz=250)
    assert auto.pipeline == sum(auto.cuts) == auto.latency and auto.target_mhz == 250.0
    assert auto.sidecar().params["target_mhz"] == 250.0
    assert auto.predicted_fmax_mhz >= 250 or auto.cuts == tuple(
        schedule_for_clock([la.delay_ns for la in auto.architecture.layers()],
                           auto.architecture.live_bits(), 250))
    assert TopKConfig(n=8, m=16, arch="rank", target_mhz=250) == auto  # a clock implies auto
    fixed = TopKConfig(n=8, m=16, arch="rank", pipeline=3)
    assert fixed.pipeline == 3 and fixed.target_mhz is None
    assert "target_mhz" not in fixed.sidecar().params
    assert len(fixed.cuts) == len(fixed.architecture.layers())
    with pytest.raises(ValueError, match="target_mhz=200 needs pipeline='auto'"):
        TopKConfig(n=8, m=16, arch="rank", pipeline=3, target_mhz=200)
    with pytest.raises(ValueError, match="target_mhz must be a clock"):
        TopKConfig(n=8, m=16, pipeline="auto", target_mhz=-5)
    with pytest.raises(ValueError, match="pipeline must be in"):
        TopKConfig(n=8, m=16, pipeline=-1)


def test_live_bits_come_from_a_dry_run() -> None:
    cfg = TopKConfig(n=2, m=4, fmt="int8", arch="rank")
    live = cfg.architecture.live_bits()
    assert len(live) == len(cfg.architecture.layers())
    # keys only (|x| needs 8 bits): the raw data waits in LUT RAM, not in the stage registers
    assert live[0] == 4 * 8
    names = [la.name for la in cfg.architecture.layers()]
    # the select layer registers the raw data again (read from the RAM for the compaction)
    sel = names.index("select")
    assert live[sel] == 4 + 2 * 3 + 4 * 8  # keep, one-hot selects (2 slots x 3), data
    assert live[-1] == 4 + 2 * 8 + 2 * 2  # mask, values, index: the output payload


@pytest.mark.parametrize(("n", "m", "fmt", "target"), [(8, 16, "int8", 200.0),
                                                       (16, 32, "int8", 175.0),
                                                       (16, 32, "bf16", 150.0)])
def test_auto_schedule_keeps_the_architectures_margin(n, m, fmt, target) -> None:
    """An architecture whose model is optimistic for whole designs (SCHEDULE_MARGIN) is
    scheduled for target / (1 - margin): the bare model meets that clock (or the slowest
    single layer's, when one layer alone is slower), it gets more stages than the bare
    model would give it for the target, and the predicted Fmax has the margin taken off."""
    from gen.arch import ARCHITECTURES

    checked = 0
    for name, arch in ARCHITECTURES.items():
        cfg = TopKConfig(n=n, m=m, fmt=fmt, arch=name, pipeline="auto", target_mhz=target)
        margin = arch.SCHEDULE_MARGIN
        if margin == 0:
            continue
        checked += 1
        delays = [la.delay_ns for la in cfg.architecture.layers()]
        aim = target / (1 - margin)
        raw = predicted_fmax(delays, cfg.cuts)
        assert raw >= min(aim, 1000 / (max(delays) + OH)) - 1e-6
        assert cfg.predicted_fmax_mhz == pytest.approx(raw * (1 - margin))
        bare = schedule_for_clock(delays, cfg.architecture.live_bits(), target)
        assert cfg.pipeline > sum(bare)
        assert cfg.target_mhz == target  # the sidecar keeps the clock asked for
    assert checked
