"""N:M patterns: validation, parsing, labels and order, in one place.

Strings users type:

- ``"N:M"``: keep N of every M consecutive elements (``0 < N < M``, ``M >= 2``);
- ``"dense"`` (or ``"dense:M"`` for a dense unit of group size M): nothing pruned;
- ``"unstructured:S"``: a software comparison point, the fraction S of each token's
  features pruned (model-quality study only; no hardware implements it).

:func:`parse_sparsity` reads all three; :func:`parse_pattern` only ``"N:M"``. Every error names
the string and says what would be valid.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

__all__ = [
    "Pattern",
    "Sparsity",
    "check_nm",
    "parse_pattern",
    "parse_sparsity",
    "pattern_label",
    "pattern_order",
    "SHIPPED_PATTERNS",
]

#: The patterns the project ships hardware for and reports on.
SHIPPED_PATTERNS: tuple[tuple[int, int], ...] = ((2, 4), (4, 8), (8, 16), (16, 32))


def _integer(name: str, v: object) -> int:
    if isinstance(v, bool):
        raise TypeError(f"{name} must be an integer, not {v!r}")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {v!r}") from None


def check_nm(n: object, m: object) -> tuple[int, int]:
    """Validate an N:M pair and return it as ints (``0 < n < m``, ``m >= 2``).

    Raises
    ------
    TypeError
        ``n`` or ``m`` is not an integer (``bool`` and ``float`` included).
    ValueError
        The pair is out of range; the message names the value.
    """
    n, m = _integer("n", n), _integer("m", m)
    if m < 2:
        raise ValueError(f"m must be at least 2, not {m}")
    if not 0 < n < m:
        raise ValueError(f"n must satisfy 0 < n < m = {m}, not n = {n}")
    return n, m


@dataclass(frozen=True, order=True)
class Pattern:
    """A validated N:M pattern; orders by M, then N."""

    m: int
    n: int

    def __init__(self, n: object, m: object) -> None:
        n, m = check_nm(n, m)
        object.__setattr__(self, "m", m)
        object.__setattr__(self, "n", n)

    @classmethod
    def parse(cls, text: str) -> Pattern:
        return cls(*parse_pattern(text))

    @property
    def label(self) -> str:
        return f"{self.n}:{self.m}"

    @property
    def density(self) -> float:
        return self.n / self.m

    @property
    def index_width(self) -> int:
        """Bits of one in-group index: ceil(log2 M)."""
        return max(1, (self.m - 1).bit_length())

    def __str__(self) -> str:
        return self.label


def parse_pattern(pattern: object) -> tuple[int, int]:
    """``"8:16"`` -> ``(8, 16)``.

    Raises
    ------
    TypeError
        ``pattern`` is not a string.
    ValueError
        It is not a valid N:M; the message names the string.
    """
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a string like '8:16', not {pattern!r}")
    parts = pattern.strip().split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"pattern must look like 'N:M' (e.g. '8:16'), not {pattern!r}")
    try:
        return check_nm(int(parts[0]), int(parts[1]))
    except ValueError as exc:
        raise ValueError(f"invalid pattern {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Sparsity:
    """A parsed activation-sparsity setting: ``kind`` ``"nm"`` (``n`` of every ``m``) or
    ``"unstructured"`` (``fraction`` of each token's features pruned)."""

    kind: str
    n: int = 0
    m: int = 0
    fraction: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.n}:{self.m}" if self.kind == "nm" else f"unstructured:{self.fraction:g}"

    @property
    def density(self) -> float:
        """Fraction of the activations kept."""
        return self.n / self.m if self.kind == "nm" else 1.0 - self.fraction

    def keep(self, k: int) -> int:
        """Features kept per token of width ``k`` (``unstructured``)."""
        return k - round(self.fraction * k)


def parse_sparsity(pattern: object) -> Sparsity | None:
    """``"8:16"``, ``"unstructured:0.5"``, or ``None``/``"dense"`` (no sparsity: ``None``).

    Raises
    ------
    TypeError, ValueError
        Anything else, naming the value.
    """
    if pattern is None or pattern == "dense":
        return None
    if isinstance(pattern, Sparsity):
        return pattern
    if not isinstance(pattern, str):
        raise TypeError(
            f"pattern must be a string like '8:16' or 'unstructured:0.5', not {pattern!r}")
    p = pattern.strip()
    if p.startswith("unstructured"):
        _, _, frac = p.partition(":")
        try:
            f = float(frac)
        except ValueError:
            f = -1.0
        if not 0.0 < f < 1.0:
            raise ValueError(
                f"invalid pattern {pattern!r}: expected 'unstructured:S' with the sparsity S "
                f"in (0, 1), e.g. 'unstructured:0.5'")
        return Sparsity("unstructured", fraction=f)
    n, m = parse_pattern(p)
    return Sparsity("nm", n=n, m=m)


def pattern_label(n: int | None, m: int) -> str:
    """``"8:16"``, or ``"dense:16"`` for a dense unit (``n`` None)."""
    return f"dense:{m}" if n is None else f"{n}:{m}"


def pattern_order(label: str) -> tuple[int, int, float]:
    """Sort key of a pattern label: dense first, then N:M by M and N, unstructured last.

    Raises
    ------
    ValueError
        ``label`` is not a pattern (never a silent default).
    """
    if label == "dense" or label.startswith("dense:"):
        return (0, 0, 0.0)
    sp = parse_sparsity(label)
    assert sp is not None
    if sp.kind == "unstructured":
        return (2, 0, sp.fraction)
    return (1, sp.m, float(sp.n))
