"""Where the register stages go: timing-driven pipelining of a chain of layers.

A unit's datapath is a chain of combinational layers (an architecture lists them with an
estimated delay each, from a delay model calibrated on measured place and route). A register
stage may follow any layer; a *segment* is the logic between two registers. Two ways to
place ``P`` stages::

    target clock (pipeline="auto"):  fewest registered bits such that every segment meets
                                     1000 / target_mhz ns          (registers where the live
                                                                    data is narrow)
    explicit P (pipeline=P):         P stages placed to minimize the slowest segment

Segment delay = :data:`SEGMENT_OVERHEAD_NS` + the sum of its layers' delays. The last stage
always follows the last layer (outputs straight from flip-flops). Live bits after each layer
come from a dry-run elaboration (:func:`gen.pipeline.probe_live_bits`), so they are what the
registers would really hold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SEGMENT_OVERHEAD_NS", "segment_delay", "schedule_for_clock", "schedule_stages",
           "predicted_fmax"]

#: Fixed cost of one register-to-register segment (ns) on ECP5 in this flow: clock-to-Q,
#: setup and the routing every segment has that the per-layer figures do not contain.
SEGMENT_OVERHEAD_NS = 0.9


def segment_delay(delays: Sequence[float], a: int, b: int,
                  overhead: float = SEGMENT_OVERHEAD_NS) -> float:
    """Estimated delay (ns) of layers ``a .. b-1`` between two registers."""
    return overhead + sum(delays[a:b])


def _cuts_from(prev: list[int], end: int, n: int) -> list[int]:
    cuts = [0] * n
    k = end
    while k > 0:
        cuts[k - 1] += 1
        k = prev[k]
    return cuts


def schedule_for_clock(delays: Sequence[float], live_bits: Sequence[int], target_mhz: float, *,
                       overhead: float = SEGMENT_OVERHEAD_NS) -> list[int]:
    """Register stages after each layer (0 or 1) for a target clock.

    Minimizes the registered bits (ties: fewer stages) such that every segment's estimated
    delay is within ``1000 / target_mhz`` ns. When one layer alone exceeds that, no schedule
    meets the clock; the budget becomes that layer's segment delay (the best the
    architecture can do) and the same minimization runs.

    Raises
    ------
    ValueError
        ``target_mhz`` is not positive, or the lists differ in length.
    """
    n = len(delays)
    if len(live_bits) != n:
        raise ValueError(f"{n} layer delays but {len(live_bits)} live-bit counts")
    if not (isinstance(target_mhz, int | float) and target_mhz > 0):
        raise ValueError(f"target_mhz must be a positive number of MHz, not {target_mhz!r}")
    if n == 0:
        return []
    budget = max(1000.0 / target_mhz,
                 max(segment_delay(delays, k, k + 1, overhead) for k in range(n)))
    inf = (math.inf, math.inf)
    best = [inf] * (n + 1)  # best[b]: (bits, stages) with a register right after layer b-1
    prev = [-1] * (n + 1)
    best[0] = (0, 0)
    for b in range(1, n + 1):
        for a in range(b - 1, -1, -1):
            if segment_delay(delays, a, b, overhead) > budget + 1e-9:
                break
            if best[a][0] == math.inf:
                continue
            cost = (best[a][0] + live_bits[b - 1], best[a][1] + 1)
            if cost < best[b]:
                best[b], prev[b] = cost, a
    return _cuts_from(prev, n, n)


def schedule_stages(delays: Sequence[float], stages: int, *,
                    overhead: float = SEGMENT_OVERHEAD_NS) -> list[int]:
    """``stages`` register stages placed to minimize the slowest segment (the last one
    after the last layer). With more stages than layers the extra ones follow the last
    layer as plain delays; ``stages = 0`` gives a combinational unit."""
    n = len(delays)
    if stages < 0:
        raise ValueError(f"stages must be >= 0, not {stages}")
    if stages == 0 or n == 0:
        return [0] * n
    k = min(stages, n)
    # worst[j][b]: the slowest segment of the best placement of j registers, the j-th
    # right after layer b-1
    inf = math.inf
    worst = [[inf] * (n + 1) for _ in range(k + 1)]
    prev = [[-1] * (n + 1) for _ in range(k + 1)]
    worst[0][0] = 0.0
    for j in range(1, k + 1):
        for b in range(1, n + 1):
            for a in range(j - 1, b):
                if worst[j - 1][a] == inf:
                    continue
                w = max(worst[j - 1][a], segment_delay(delays, a, b, overhead))
                if w < worst[j][b] - 1e-12:
                    worst[j][b], prev[j][b] = w, a
    cuts = [0] * n
    b, j = n, k
    while j > 0:
        cuts[b - 1] += 1
        b, j = prev[j][b], j - 1
    cuts[-1] += stages - k
    return cuts


def predicted_fmax(delays: Sequence[float], cuts: Sequence[int], *,
                   overhead: float = SEGMENT_OVERHEAD_NS) -> float:
    """The delay model's Fmax (MHz) of a schedule: 1000 / its slowest segment."""
    worst, a = 0.0, 0
    for k, c in enumerate(cuts):
        if c:
            worst = max(worst, segment_delay(delays, a, k + 1, overhead))
            a = k + 1
    if a < len(delays):
        worst = max(worst, segment_delay(delays, a, len(delays), overhead))
    return 1000.0 / worst if worst else math.inf
