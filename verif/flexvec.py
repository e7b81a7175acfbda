"""Stimulus and expected outputs of the runtime-flexible units (DESIGN.md section 5).

Each transfer carries W lanes and its own pattern (``m_log2``, ``n``). The expected outputs
come from the golden model with no new rule: :func:`golden.nm_mask` on each group of
M = 2**m_log2 lanes of a served transfer, the kept lanes compacted in ascending lane order,
the unused slots zero; a transfer the unit cannot serve (:func:`nmsparse.contract.flex.
serves`) expects ``err = 1`` and zeros. MAC rows: the exact int64 sum over the kept lanes of
x * w, wrapped to ``acc_width`` (:func:`golden.wrap`)::

    bits [T, W], m_log2 [T], n [T] ─► flex_expected ─► mask, values, index, count, err
                                  └─► flex_topk_phase / flex_mac_phase (hex payloads)

:func:`flex_scenarios` is the regression of one flexible module: every served pattern and
every unserved encoding, the pattern changing on every transfer (random and adversarial
orders), ties/NaN/extremes, idle x back-pressure, reset mid-stream, and real activations
with a different pattern per layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import torch

import golden
from nmsparse.contract import flex as contract
from nmsparse.contract.sidecar import Sidecar
from nmsparse.contract.vectors import BACKPRESSURE_PATTERNS, IDLE_PATTERNS, Phase, Scenario, Segment

from .vectors import _pack_rows, activation_groups, edge_groups, random_groups

__all__ = [
    "FlexRow",
    "served",
    "unserved",
    "flex_expected",
    "flex_topk_phase",
    "flex_mac_phase",
    "random_patterns",
    "adversarial_patterns",
    "layer_plan",
    "flex_activation_phase",
    "flex_scenarios",
]

FlexRow = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""One MAC row: ``(x [t, W] signed ints, w [t, K, W], m_log2 [t], n [t])``."""


def served(sc: Sidecar) -> list[tuple[int, int]]:
    """``(n, m_log2)`` of every pattern the unit serves, by M then N."""
    return [(n, m.bit_length() - 1) for n, m in contract.served_patterns(sc.w, sc.max_kept)]


def unserved(sc: Sidecar) -> list[tuple[int, int]]:
    """Every ``(n, m_log2)`` the payload fields can express that the unit does not serve."""
    ml_max = (1 << contract.m_log2_width(sc.w)) - 1
    n_max = (1 << contract.n_width(sc.w)) - 1
    return [(n, ml) for ml in range(ml_max + 1) for n in range(n_max + 1)
            if not contract.serves(n, ml, sc.w, sc.max_kept)]


def _as_tensor(v: Sequence[int] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(v, dtype=torch.int64).reshape(-1)


def flex_mask(sc: Sidecar, bits: torch.Tensor, m_log2: torch.Tensor,
              n: torch.Tensor) -> torch.Tensor:
    """Golden keep mask ``[T, W]`` (bool): ``nm_mask`` per group of each served transfer,
    all False for the others."""
    w, s = sc.w, sc.max_kept
    if bits.dim() != 2 or bits.shape[1] != w:
        raise ValueError(f"expected transfers of shape [T, {w}], got {tuple(bits.shape)}")
    m_log2, n = _as_tensor(m_log2), _as_tensor(n)
    if not len(m_log2) == len(n) == bits.shape[0]:
        raise ValueError(f"need one pattern per transfer: {bits.shape[0]} transfers, "
                         f"{len(m_log2)} m_log2 and {len(n)} n values")
    mask = torch.zeros(bits.shape, dtype=torch.bool)
    for nn, ml in {(int(a), int(b)) for a, b in zip(n.tolist(), m_log2.tolist(), strict=True)}:
        if not contract.serves(nn, ml, w, s):
            continue
        sel = (n == nn) & (m_log2 == ml)
        x = golden.from_bits(bits[sel], sc.fmt)
        mask[sel] = golden.nm_mask(x, nn, 1 << ml, fmt=sc.fmt)
    return mask


def flex_expected(sc: Sidecar, bits: torch.Tensor, m_log2: Sequence[int] | torch.Tensor,
                  n: Sequence[int] | torch.Tensor) -> dict[str, torch.Tensor]:
    """Golden output fields of transfers ``bits: [T, W]`` under per-transfer patterns.

    Returns ``mask [T, W]``, ``values [T, S]`` (bit patterns), ``index [T, S]`` (zero in
    unused slots), ``count``, ``m_log2``, ``n``, ``err`` (``[T, 1]`` each).
    """
    m_log2, n = _as_tensor(m_log2), _as_tensor(n)
    mask = flex_mask(sc, bits, m_log2, n)
    T, s = bits.shape[0], sc.max_kept
    slot = mask.to(torch.int64).cumsum(1) - 1
    t_i, j_i = mask.nonzero(as_tuple=True)
    s_i = slot[t_i, j_i]
    values = torch.zeros(T, s, dtype=torch.int64)
    index = torch.zeros(T, s, dtype=torch.int64)
    values[t_i, s_i] = bits[t_i, j_i]
    index[t_i, s_i] = j_i
    ok = torch.tensor([contract.serves(int(a), int(b), sc.w, s)
                       for a, b in zip(n.tolist(), m_log2.tolist(), strict=True)], dtype=torch.bool)
    return {"mask": mask.to(torch.int64), "values": values, "index": index,
            "count": mask.sum(1, keepdim=True).to(torch.int64), "m_log2": m_log2[:, None],
            "n": n[:, None], "err": (~ok).to(torch.int64)[:, None]}


def flex_topk_phase(sc: Sidecar, bits: torch.Tensor, m_log2: Sequence[int] | torch.Tensor,
                    n: Sequence[int] | torch.Tensor, *, reset_after: bool = False) -> Phase:
    """One phase of transfers ``bits: [T, W]`` through a flexible selector, transfer t under
    pattern ``n[t] : 2**m_log2[t]``."""
    m_log2, n = _as_tensor(m_log2), _as_tensor(n)
    exp = flex_expected(sc, bits, m_log2, n)
    T = bits.shape[0]
    inputs = _pack_rows(sc.i, {"data": bits, "m_log2": m_log2[:, None], "n": n[:, None]})
    expected = _pack_rows(sc.o, exp)
    groups = sum(sc.w >> int(ml) if 0 <= int(ml) <= contract.lanes_log2(sc.w) else 0
                 for ml in m_log2.tolist())
    return Phase(inputs=inputs, expected=expected, out_src=list(range(T)), groups=groups,
                 reset_after=reset_after)


def _weight_fmt(sc: Sidecar) -> str:
    name = f"int{sc.weight_width}"
    if name not in golden.FORMATS:
        raise ValueError(f"{sc.module}: weight_width {sc.weight_width} has no golden format")
    return name


def flex_mac_phase(sc: Sidecar, rows: Sequence[FlexRow], *, reset_after: bool = False,
                   complete_last_row: bool = True) -> Phase:
    """One phase of MAC rows through a flexible sparse MAC or linear engine.

    Each row is ``(x [t, W], w [t, K, W], m_log2 [t], n [t])``. The sparse MAC gets the
    golden compacted ``values``/``index`` of each transfer, the linear engine the dense lanes
    and the pattern. Expected: per row, ``sum_t sum_j mask[t, j] x[t, j] w[t, k, j]``
    wrapped to ``acc_width``. With ``complete_last_row=False`` the last row carries no
    ``last`` and expects no output (used before a reset).
    """
    f = sc.format
    if not f.is_int:
        raise ValueError(f"{sc.module}: MAC units are verified for integer formats only")
    wf, K, W = _weight_fmt(sc), sc.outputs, sc.w
    xs, ws, mls, ns, lasts, out_src, spans = [], [], [], [], [], [], []
    t = 0
    for r, (x, w, ml, nn) in enumerate(rows):
        g = x.shape[0]
        if x.shape != (g, W) or w.shape != (g, K, W):
            raise ValueError(f"row {r}: need x [{g}, {W}] and w [{g}, {K}, {W}], got "
                             f"{tuple(x.shape)} and {tuple(w.shape)}")
        xs.append(x)
        ws.append(w)
        mls.append(_as_tensor(ml))
        ns.append(_as_tensor(nn))
        last = torch.zeros(g, dtype=torch.int64)
        if complete_last_row or r < len(rows) - 1:
            last[-1] = 1
            out_src.append(t + g - 1)
            spans.append((t, t + g))
        lasts.append(last)
        t += g
    X, Wt = torch.cat(xs), torch.cat(ws)
    ML, N = torch.cat(mls), torch.cat(ns)
    bits = golden.to_bits(X.to(golden.dtype_of(f)), f.name)
    mask = flex_mask(sc, bits, ML, N)
    contrib = torch.einsum("tj,tkj->tk", X * mask, Wt)  # exact in int64
    acc = torch.stack([contrib[a:b].sum(0) for a, b in spans]) if spans else None
    fields: dict[str, torch.Tensor] = {
        "weights": golden.to_bits(Wt.to(golden.dtype_of(wf)), wf).reshape(t, K * W),
        "last": torch.cat(lasts)[:, None]}
    if sc.unit == "spmac_flex":
        exp = flex_expected(sc, bits, ML, N)
        fields["values"], fields["index"] = exp["values"], exp["index"]
    else:
        fields.update(data=bits, m_log2=ML[:, None], n=N[:, None])
    inputs = _pack_rows(sc.i, fields)
    expected = (_pack_rows(sc.o, {"acc": golden.wrap(acc, sc.acc_width)
                                  & ((1 << sc.acc_width) - 1)}) if spans else [])
    return Phase(inputs=inputs, expected=expected, out_src=out_src, groups=t,
                 reset_after=reset_after)


# --------------------------------------------------------------------------------- stimulus

def random_patterns(sc: Sidecar, count: int, seed: int, *,
                    invalid: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """``(m_log2, n)`` per transfer: a random served pattern on each, an unserved encoding
    with probability ``invalid``."""
    gen = torch.Generator().manual_seed(seed)
    ok, bad = served(sc), unserved(sc)
    pick = torch.randint(len(ok), (count,), generator=gen).tolist()
    pick_bad = torch.randint(len(bad), (count,), generator=gen).tolist()
    flip = (torch.rand(count, generator=gen) < invalid).tolist()
    pats = [bad[b] if f else ok[p] for p, b, f in zip(pick, pick_bad, flip, strict=True)]
    return (torch.tensor([ml for _, ml in pats], dtype=torch.int64),
            torch.tensor([n for n, _ in pats], dtype=torch.int64))


def adversarial_patterns(sc: Sidecar) -> list[tuple[int, int]]:
    """Pattern sequences that stress a change on every transfer, concatenated: smallest and
    largest group alternating, the fewest and the most kept alternating at every M, every
    served pattern in turn, served and unserved alternating, and runs of 1, 2 and 3."""
    ok, bad = served(sc), unserved(sc)
    by_m: dict[int, list[int]] = {}
    for n, ml in ok:
        by_m.setdefault(ml, []).append(n)
    lo_ml, hi_ml = min(by_m), max(by_m)
    seq: list[tuple[int, int]] = []
    for _ in range(6):  # 1:4 <-> N_max:W
        seq += [(min(by_m[lo_ml]), lo_ml), (max(by_m[hi_ml]), hi_ml)]
    for ml, ns in sorted(by_m.items()):  # fewest <-> most kept at the same M
        seq += [(min(ns), ml), (max(ns), ml)] * 3
    seq += ok + ok[::-1]
    for a, b in zip(ok, itertools.cycle(bad)):
        seq += [a, b]
    for run, p in zip(itertools.cycle((1, 2, 3)), ok):
        seq += [p] * run
    return seq


def _edge_transfers(sc: Sidecar, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Directed groups (ties at the N-th place, all-equal, zeros, the most negative integer,
    NaN/inf/-0/subnormals) for every served pattern, tiled into W-lane transfers, with the
    transfers of all patterns interleaved so that the pattern changes on every transfer."""
    w = sc.w
    chunks = []
    for k, (n, ml) in enumerate(served(sc)):
        m = 1 << ml
        g = edge_groups(SimpleNamespace(format=sc.format, n=n, m=m), seed + k)
        per = w // m
        pad = (-g.shape[0]) % per
        if pad:
            g = torch.cat([g, g[:pad]])
        t = g.reshape(-1, w)
        chunks.append((t, torch.full((t.shape[0],), ml), torch.full((t.shape[0],), n)))
    # round-robin over the patterns
    order = []
    longest = max(c[0].shape[0] for c in chunks)
    for i in range(longest):
        for c, ch in enumerate(chunks):
            if i < ch[0].shape[0]:
                order.append((c, i))
    bits = torch.stack([chunks[c][0][i] for c, i in order])
    ml = torch.stack([chunks[c][1][i] for c, i in order]).to(torch.int64)
    nn = torch.stack([chunks[c][2][i] for c, i in order]).to(torch.int64)
    return bits, ml, nn


def _random_bits(sc: Sidecar, count: int, seed: int) -> torch.Tensor:
    return random_groups(SimpleNamespace(format=sc.format, m=sc.w), count, seed)


def layer_plan(sc: Sidecar, layers: int) -> list[tuple[int, int]]:
    """A different served pattern per layer, ``(n, m_log2)``: the density-1/2 points first
    (16:32, 8:16, 4:8, 2:4), then the others, repeated."""
    ok = served(sc)
    half = sorted([p for p in ok if 2 * p[0] == 1 << p[1]], key=lambda p: -p[1])
    rest = [p for p in ok if p not in half]
    order = half + rest
    return [order[i % len(order)] for i in range(layers)]


def flex_activation_phase(sc: Sidecar, activations: Mapping[str, torch.Tensor], *,
                          limit: int | None = None,
                          plan: Sequence[tuple[int, int]] | None = None,
                          ) -> tuple[Phase, list[Segment], list[tuple[int, int]]]:
    """Real activations through a flexible selector, one pattern per tensor (layer).

    Returns the phase, the segments (one per tensor, in transfers) and the plan used
    (default :func:`layer_plan`)."""
    bits, segments = activation_groups(activations, sc.w, sc.fmt, limit=limit)
    plan = list(plan) if plan is not None else layer_plan(sc, len(segments))
    ml = torch.zeros(bits.shape[0], dtype=torch.int64)
    nn = torch.zeros(bits.shape[0], dtype=torch.int64)
    ends = [s.first for s in segments[1:]] + [bits.shape[0]]
    for seg, end, (n, m_log2) in zip(segments, ends, plan, strict=False):
        ml[seg.first:end], nn[seg.first:end] = m_log2, n
    return flex_topk_phase(sc, bits, ml, nn), segments, plan


def _mac_rows(sc: Sidecar, count: int, seed: int, *, max_transfers: int = 4,
              extreme: bool = False, invalid: float = 0.1) -> list[FlexRow]:
    f, ww, K, W = sc.format, sc.weight_width, sc.outputs, sc.w
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for r in range(count):
        t = int(torch.randint(1, max_transfers + 1, (1,), generator=gen))
        ml, nn = random_patterns(sc, t, seed * 7919 + r, invalid=invalid)
        if extreme:
            x = torch.full((t, W), f.min, dtype=torch.int64)
            x[torch.rand(t, W, generator=gen) < 0.3] = f.max
            w = torch.full((t, K, W), -(1 << (ww - 1)), dtype=torch.int64)
            w[torch.rand(t, K, W, generator=gen) < 0.3] = (1 << (ww - 1)) - 1
        else:
            x = torch.randint(f.min, f.max + 1, (t, W), generator=gen, dtype=torch.int64)
            x = torch.where(torch.rand(t, 1, generator=gen) < 0.3, x % 3 - 1, x)
            w = torch.randint(-(1 << (ww - 1)), 1 << (ww - 1), (t, K, W), generator=gen,
                              dtype=torch.int64)
        rows.append((x, w, ml, nn))
    return rows


def _wrap_row(sc: Sidecar) -> list[FlexRow] | None:
    """One row long enough that every accumulator wraps at ``acc_width``: the most negative
    values and weights under the pattern that fills every slot (None beyond 2**17 transfers)."""
    f, ww, K, W, s = sc.format, sc.weight_width, sc.outputs, sc.w, sc.max_kept
    full = [(n, ml) for n, ml in served(sc) if n * (W >> ml) == s]
    if not full:
        return None
    n, ml = full[-1]
    per = (1 << (f.width - 1)) * (1 << (ww - 1)) * s
    t = (1 << (sc.acc_width - 1)) // per + 3
    if t > (1 << 17):
        return None
    x = torch.full((t, W), f.min, dtype=torch.int64)
    w = torch.full((t, K, W), -(1 << (ww - 1)), dtype=torch.int64)
    for k in range(1, K):
        w[:, k, :] = (1 << (ww - 1)) - k
    return [(x, w, torch.full((t,), ml), torch.full((t,), n))]


def flex_scenarios(sc: Sidecar, seed: int, *, transfers: int = 240, act_groups: int = 2048,
                   activations: Mapping[str, torch.Tensor] | None = None,
                   slow: bool = False) -> list[Scenario]:
    """The regression of one flexible module (DESIGN.md section 5), as scenarios.

    Selector: directed edge groups of every served pattern (pattern changing on every
    transfer; exact latency and full throughput asserted), adversarial pattern sequences,
    every unserved encoding between served ones, random patterns and data under every idle
    x back-pressure pattern, a reset mid-stream, and real activations with one pattern per
    layer. MAC units: rows of transfers under random patterns (some unserved), extremes,
    one-transfer rows, reset mid-row, accumulator wrap-around, activations (linear).
    """
    scen: list[Scenario] = []
    scale = 8 if slow else 1
    if sc.unit == "topk_flex":
        bits, ml, nn = _edge_transfers(sc, seed)
        scen.append(Scenario("directed edge cases, every served pattern interleaved",
                             [flex_topk_phase(sc, bits, ml, nn)], check_latency=True))
        adv = adversarial_patterns(sc)
        bits = _random_bits(sc, len(adv), seed + 1)
        scen.append(Scenario("adversarial pattern sequences",
                             [flex_topk_phase(sc, bits, [p[1] for p in adv],
                                              [p[0] for p in adv])], check_latency=True))
        bad = unserved(sc)
        ok = served(sc)
        mix = [p for pair in zip(itertools.cycle(ok), bad) for p in pair]
        bits = _random_bits(sc, len(mix), seed + 2)
        scen.append(Scenario("every unserved encoding between served patterns",
                             [flex_topk_phase(sc, bits, [p[1] for p in mix],
                                              [p[0] for p in mix])], check_latency=True))
        for i, idle in enumerate(IDLE_PATTERNS):
            for j, bp in enumerate(BACKPRESSURE_PATTERNS):
                s = seed + 10 * i + j
                bits = _random_bits(sc, transfers * scale, s)
                ml, nn = random_patterns(sc, transfers * scale, s + 5)
                scen.append(Scenario(f"random patterns idle={idle} bp={bp}",
                                     [flex_topk_phase(sc, bits, ml, nn)], idle=idle,
                                     backpressure=bp, check_latency=idle == bp == "none"))
        a, b = _random_bits(sc, 37, seed + 101), _random_bits(sc, 50, seed + 102)
        pa, pb = random_patterns(sc, 37, seed + 103), random_patterns(sc, 50, seed + 104)
        scen.append(Scenario("reset mid-stream",
                             [flex_topk_phase(sc, a, *pa, reset_after=True),
                              flex_topk_phase(sc, b, *pb)],
                             idle="random:0.2", backpressure="cycle:1,0"))
        if activations is not None and sc.fmt in ("int8", "bf16") and act_groups:
            ph, segs, _ = flex_activation_phase(sc, activations, limit=act_groups * scale)
            scen.append(Scenario(f"SmolLM2 activations ({sc.fmt}), one pattern per layer",
                                 [ph], check_latency=True, segments=segs))
        return scen
    rows = max(8, transfers // 8) * scale
    scen.append(Scenario("directed extremes",
                         [flex_mac_phase(sc, _mac_rows(sc, rows, seed, extreme=True))],
                         check_latency=True))
    for i, idle in enumerate(IDLE_PATTERNS):
        for j, bp in enumerate(BACKPRESSURE_PATTERNS):
            r = _mac_rows(sc, rows, seed + 10 * i + j)
            scen.append(Scenario(f"random rows, random patterns idle={idle} bp={bp}",
                                 [flex_mac_phase(sc, r)], idle=idle, backpressure=bp,
                                 check_latency=idle == bp == "none"))
    single = _mac_rows(sc, rows, seed + 99, max_transfers=1)
    scen.append(Scenario("one-transfer rows", [flex_mac_phase(sc, single)], check_latency=True))
    a, b = _mac_rows(sc, 5, seed + 201), _mac_rows(sc, 6, seed + 202)
    scen.append(Scenario("reset mid-row",
                         [flex_mac_phase(sc, a, reset_after=True, complete_last_row=False),
                          flex_mac_phase(sc, b)],
                         idle="random:0.2", backpressure="random:0.3"))
    wr = _wrap_row(sc)
    if wr is not None:
        scen.append(Scenario(f"accumulator wrap-around at {sc.acc_width} bits",
                             [flex_mac_phase(sc, wr)], check_latency=True, timeout=4000))
    if activations is not None and sc.unit == "linear_flex" and sc.fmt == "int8" and act_groups:
        bits, segments = activation_groups(activations, sc.w, "int8", limit=act_groups * scale)
        x = golden.from_bits(bits, "int8").to(torch.int64)
        plan = layer_plan(sc, len(segments))
        gen = torch.Generator().manual_seed(seed + 7)
        K, ww = sc.outputs, sc.weight_width
        act_rows: list[FlexRow] = []
        ends = [seg.first for seg in segments[1:]] + [x.shape[0]]
        for seg, end, (n, ml) in zip(segments, ends, plan, strict=True):
            for r0 in range(seg.first, end, seg.row_groups):
                xr = x[r0 : min(r0 + seg.row_groups, end)]
                t = xr.shape[0]
                wr_ = torch.randint(-(1 << (ww - 1)), 1 << (ww - 1), (t, K, sc.w),
                                    generator=gen, dtype=torch.int64)
                act_rows.append((xr, wr_, torch.full((t,), ml), torch.full((t,), n)))
        scen.append(Scenario("SmolLM2 activations (int8), one pattern per layer",
                             [flex_mac_phase(sc, act_rows)], check_latency=True))
    return scen
