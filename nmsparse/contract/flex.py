"""The runtime-flexible N:M interface (DESIGN.md section 5): which patterns a unit serves,
the widths of its pattern fields, and what it answers to a pattern it cannot serve.

A flexible unit takes W lanes per transfer and the pattern beside them::

    i: data[W] | m_log2 | n            (M = 2**m_log2; the W lanes are W/M groups of M)
    o: mask[W] | values[S] | index[S] | count | m_log2 | n | err     (S = max_kept slots)

A transfer is *served* when ``2 <= m_log2 <= log2 W`` (M in 4, 8, ..., W), ``0 < n < M`` and
``n * W / M <= max_kept``; otherwise the unit flags it (``err = 1``, ``count = 0``, mask,
values and index all zero) and keeps streaming. Everything else (the per-group rule) is
DESIGN.md section 1: the golden model of a served transfer is ``nm_mask`` on each group.

One place for these rules: the generators build the hardware decode from
:func:`m_log2_width` / :func:`n_width`, and the testbench's expected outputs use
:func:`serves` and :func:`kept_count`.
"""

from __future__ import annotations

__all__ = [
    "MIN_M_LOG2",
    "check_lanes",
    "lanes_log2",
    "m_log2_width",
    "n_width",
    "count_width",
    "default_max_kept",
    "max_slots",
    "serves",
    "why_not",
    "kept_count",
    "served_patterns",
]

#: The smallest group of a flexible unit is M = 4 (2**2).
MIN_M_LOG2 = 2


def check_lanes(w: object) -> int:
    """``w`` as an int: a power of two from 4 to 64 (the lanes of a flexible unit).

    Raises
    ------
    TypeError, ValueError
        Naming the value and what would be valid.
    """
    if isinstance(w, bool) or not isinstance(w, int):
        raise TypeError(f"w (lanes per transfer) must be an integer, not {w!r}")
    if w < 4 or w > 64 or w & (w - 1):
        raise ValueError(f"w (lanes per transfer) must be a power of two from 4 to 64, not {w}")
    return w


def lanes_log2(w: int) -> int:
    """log2 W: the widest group's ``m_log2`` and the bits of one lane index."""
    return check_lanes(w).bit_length() - 1


def m_log2_width(w: int) -> int:
    """Bits of the ``m_log2`` field: enough for log2 W (3 bits for W = 16 and 32)."""
    return max(1, lanes_log2(w).bit_length())


def n_width(w: int) -> int:
    """Bits of the ``n`` field: log2 W, so every N < W is expressible."""
    return lanes_log2(w)


def max_slots(w: int) -> int:
    """Largest useful ``max_kept``: 3:4 keeps 3W/4 lanes, the most any pattern keeps."""
    return 3 * check_lanes(w) // 4


def default_max_kept(w: int) -> int:
    """W/2: every pattern of density up to 1/2 (2:4, 4:8, 8:16, 16:32, ...) is served."""
    return check_lanes(w) // 2


def count_width(max_kept: int) -> int:
    """Bits of the ``count`` field (0 .. max_kept)."""
    return max(1, int(max_kept).bit_length())


def why_not(n: int, m_log2: int, w: int, max_kept: int) -> str | None:
    """None when a unit of ``w`` lanes and ``max_kept`` slots serves ``(n, m_log2)``, else the
    reason in words (as the field values are given, any integers)."""
    lw = lanes_log2(w)
    if m_log2 < MIN_M_LOG2:
        return f"m_log2 = {m_log2}: M = {1 << max(0, m_log2)} is below the smallest group, 4"
    if m_log2 > lw:
        return f"m_log2 = {m_log2}: M = {1 << m_log2} is wider than the W = {w} lanes"
    m = 1 << m_log2
    if not 0 < n < m:
        return f"n = {n}: need 0 < N < M = {m}"
    if n * (w // m) > max_kept:
        return (f"{n}:{m} keeps {n * (w // m)} of {w} lanes, more than the {max_kept} "
                "output slots")
    return None


def serves(n: int, m_log2: int, w: int, max_kept: int) -> bool:
    """Whether the unit serves the pattern ``n : 2**m_log2`` (see the module docstring)."""
    return why_not(n, m_log2, w, max_kept) is None


def kept_count(n: int, m_log2: int, w: int, max_kept: int) -> int:
    """The ``count`` output: N x W/M for a served pattern, 0 otherwise."""
    return n * (w >> m_log2) if serves(n, m_log2, w, max_kept) else 0


def served_patterns(w: int, max_kept: int) -> list[tuple[int, int]]:
    """Every served ``(n, m)``, by M then N."""
    out = []
    for ml in range(MIN_M_LOG2, lanes_log2(w) + 1):
        m = 1 << ml
        out += [(n, m) for n in range(1, m) if serves(n, ml, w, max_kept)]
    return out
