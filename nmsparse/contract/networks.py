"""Comparator networks for N:M top-k selection and for sorting the survivors by index.

A comparator ``(lo, hi)`` sends the smaller of its two lines to ``lo`` and the larger to
``hi``; a network applies its comparators in list order. Two kinds are used:

- a **selection network** (an (N, M) "halver" when N = M/2): after it runs, the lines in
  ``outputs`` hold the N largest inputs, in no particular order;
- a **sorting network** on N lines: ``outputs[k]`` holds the k-th smallest input.

For the shipped patterns the best-known selection networks of ``data/selection_networks.json``
are used (verified exhaustively; see ``data/README.md``). Any other N:M gets a generic
construction: Batcher's odd-even merge sort padded to a power of two, its padding folded away,
the comparators that cannot affect the top-N set removed, and, while an exhaustive check is
affordable, every remaining comparator whose removal keeps the network correct.

Correctness is checked with the 0-1 principle: a comparator network commutes with every
monotone map, so a network selects the N largest of M for every input iff it does so for the
C(M, N) 0-1 inputs with exactly N ones (and it sorts iff it sorts all 2**N 0-1 inputs).
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Network",
    "selection_network",
    "sorting_network",
    "best_known_selection",
    "batcher_sort",
    "evaluate",
    "check_selection",
    "check_sorting",
    "EXHAUSTIVE_LIMIT",
    "prune_dead",
    "threshold_network",
]

_DATA = Path(__file__).parent / "data" / "selection_networks.json"

#: Largest number of 0-1 test vectors the exhaustive checks (and the greedy pruning) run on.
EXHAUSTIVE_LIMIT = 1 << 20


@dataclass(frozen=True)
class Network:
    """A comparator network.

    Parameters
    ----------
    lines : int
        Number of lines (inputs).
    comparators : tuple of (int, int)
        ``(lo, hi)`` pairs in application order: min to ``lo``, max to ``hi``.
    outputs : tuple of int
        Lines that hold the result (selection: the N largest, unordered; sorting: ascending).
    source : str
        Where the network comes from (for reports).
    """

    lines: int
    comparators: tuple[tuple[int, int], ...]
    outputs: tuple[int, ...]
    source: str = ""

    def __post_init__(self) -> None:
        for lo, hi in self.comparators:
            if lo == hi or not (0 <= lo < self.lines and 0 <= hi < self.lines):
                raise ValueError(f"bad comparator ({lo}, {hi}) on {self.lines} lines")
        if len(set(self.outputs)) != len(self.outputs):
            raise ValueError(f"repeated output lines {self.outputs}")

    @property
    def size(self) -> int:
        """Number of comparators."""
        return len(self.comparators)

    @functools.cached_property
    def levels(self) -> tuple[int, ...]:
        """Layer (1-based, as soon as possible) of every comparator."""
        level = [0] * self.lines
        out = []
        for lo, hi in self.comparators:
            d = max(level[lo], level[hi]) + 1
            level[lo] = level[hi] = d
            out.append(d)
        return tuple(out)

    @property
    def depth(self) -> int:
        """Number of comparator layers (0 for an empty network)."""
        return max(self.levels, default=0)

    def layers(self) -> list[list[int]]:
        """Comparator positions grouped by layer, in order; each layer's lines are disjoint."""
        out: list[list[int]] = [[] for _ in range(self.depth)]
        for pos, d in enumerate(self.levels):
            out[d - 1].append(pos)
        return out

    @functools.cached_property
    def needed(self) -> tuple[tuple[bool, bool], ...]:
        """For each comparator, whether its min output and its max output are used later.

        A comparator with one unused output needs a single multiplexer set.
        """
        live = set(self.outputs)
        out = []
        for lo, hi in reversed(self.comparators):
            need = (lo in live, hi in live)
            if any(need):
                live.update((lo, hi))
            out.append(need)
        return tuple(reversed(out))

    @property
    def single_output(self) -> int:
        """Number of comparators of which only one output is used."""
        return sum(1 for a, b in self.needed if a != b)


def evaluate(network: Network, values: Sequence) -> list:
    """Run ``network`` on ``values`` (any mutually comparable items); returns all lines."""
    if len(values) != network.lines:
        raise ValueError(f"expected {network.lines} values, got {len(values)}")
    v = list(values)
    for lo, hi in network.comparators:
        if v[hi] < v[lo]:
            v[lo], v[hi] = v[hi], v[lo]
    return v


def _run_bits(network: Network, lines: list[int]) -> list[int]:
    """Bit-parallel run: each line is an int whose bit t is line's value in test vector t."""
    v = list(lines)
    for lo, hi in network.comparators:
        a, b = v[lo], v[hi]
        v[lo], v[hi] = a & b, a | b
    return v


@functools.lru_cache(maxsize=8)
def _weight_vectors(m: int, n: int) -> tuple[tuple[int, ...], int]:
    """All 0-1 vectors of length m with exactly n ones, transposed to per-line bit masks."""
    lines = [0] * m
    t = 0
    for t, ones in enumerate(itertools.combinations(range(m), n)):
        bit = 1 << t
        for j in ones:
            lines[j] |= bit
    count = math.comb(m, n)
    return tuple(lines), (1 << count) - 1


def check_selection(network: Network, n: int) -> bool:
    """Exhaustive 0-1 check that the ``outputs`` lines receive the ``n`` largest inputs.

    Raises
    ------
    ValueError
        When C(lines, n) exceeds :data:`EXHAUSTIVE_LIMIT` (too many vectors to check).
    """
    m = network.lines
    if len(network.outputs) != n:
        return False
    if math.comb(m, n) > EXHAUSTIVE_LIMIT:
        raise ValueError(f"C({m}, {n}) = {math.comb(m, n)} vectors is too many to check")
    lines, full = _weight_vectors(m, n)
    out = _run_bits(network, list(lines))
    return all(out[o] == full for o in network.outputs)


def check_sorting(network: Network) -> bool:
    """Exhaustive 0-1 check (2**lines vectors) that ``outputs`` come out ascending."""
    m = network.lines
    if (1 << m) > EXHAUSTIVE_LIMIT:
        raise ValueError(f"2**{m} vectors is too many to check")
    # line j of vector t = bit j of t: blocks of 2**j zeros then 2**j ones, repeated
    lines = []
    for j in range(m):
        period = 1 << (j + 1)
        pattern = ((1 << (1 << j)) - 1) << (1 << j)
        lines.append(sum(pattern << (r * period) for r in range((1 << m) // period)))
    out = _run_bits(network, lines)
    seq = [out[o] for o in network.outputs]
    # ascending: wherever line k is 1, line k+1 is 1 too
    return all((a & ~b) == 0 for a, b in itertools.pairwise(seq))


def batcher_sort(lines: int) -> Network:
    """Batcher's odd-even merge sort on ``lines`` lines (padded to a power of two, folded)."""
    if lines < 1:
        raise ValueError(f"a sorting network needs at least one line, not {lines}")
    p = 1 << max(0, (lines - 1).bit_length())
    comps: list[tuple[int, int]] = []
    # the iterative odd-even merge sort (Knuth, TAOCP vol. 3, 5.3.4)
    k = 1
    while k < p:
        j = k
        while j >= 1:
            for i in range(j % k, p - j, 2 * j):
                for t in range(min(j, p - i - j)):
                    if (i + t) // (2 * k) == (i + t + j) // (2 * k):
                        comps.append((i + t, i + t + j))
            j //= 2
        k *= 2
    # padding lines >= `lines` hold +inf on top: every comparator touching them is a no-op
    comps = [(a, b) for a, b in comps if b < lines]
    return Network(lines, tuple(comps), tuple(range(lines)), f"batcher-oddeven({lines})")


@functools.cache
def _best_known_table() -> dict[str, list[dict]]:
    with open(_DATA) as f:
        return json.load(f)


def best_known_selection(n: int, m: int) -> list[Network]:
    """The best-known selection networks for ``n:m`` from the data file (may be empty)."""
    out = []
    for e in _best_known_table().get(f"{n}:{m}", []):
        comps = tuple((int(a), int(b)) for a, b in e["comparators_min_to_first"])
        out.append(Network(int(e["M"]), comps, tuple(e["top_lines"]), e["source"]))
    return out


def _best_known_sorters() -> dict[int, Network]:
    """Sorting networks on M/2 lines, taken from the "bitonic-halves" entries."""
    out: dict[int, Network] = {}
    for entries in _best_known_table().values():
        for e in entries:
            if not e["source"].startswith("bitonic-halves"):
                continue
            h = int(e["M"]) // 2
            comps = tuple(
                (int(a), int(b)) for a, b in e["comparators_min_to_first"] if max(a, b) < h
            )
            net = Network(h, comps, tuple(range(h)), e["source"].split("(")[1].rstrip(")"))
            if h not in out or (net.size, net.depth) < (out[h].size, out[h].depth):
                out[h] = net
    return out


@functools.cache
def sorting_network(lines: int) -> Network:
    """A small sorting network on ``lines`` lines (best-known where listed, else Batcher)."""
    if lines < 1:
        raise ValueError(f"a sorting network needs at least one line, not {lines}")
    known = _best_known_sorters()
    return known.get(lines) or batcher_sort(lines)


def _fold_padding(n: int, m: int) -> Network:
    """Batcher sort on 2**k >= m lines, inputs on the top m lines, -inf padding folded away."""
    sorter = batcher_sort(1 << max(0, (m - 1).bit_length()))
    p = sorter.lines
    pads = p - m
    wire: list[int | None] = [None] * pads + list(range(m))  # logical line -> input wire
    comps: list[tuple[int, int]] = []
    for lo, hi in sorter.comparators:
        a, b = wire[lo], wire[hi]
        if a is None:  # min of (-inf, b) stays -inf on lo: no-op
            continue
        if b is None:  # -inf moves down, the real value moves up: a relabelling
            wire[lo], wire[hi] = None, a
            continue
        comps.append((a, b))
        # the physical wires keep their roles: a carries the min, b the max
    top = [wire[line] for line in range(p - n, p)]
    assert all(w is not None for w in top)
    return Network(m, tuple(comps), tuple(top), f"batcher-oddeven({p}) pruned")


def prune_dead(net: Network) -> Network:
    """``net`` without the comparators that cannot affect its ``outputs`` lines."""
    comps = tuple(c for c, need in zip(net.comparators, net.needed, strict=True) if any(need))
    return Network(net.lines, comps, net.outputs, net.source)


@functools.cache
def threshold_network(n: int, m: int) -> Network:
    """A network whose single output line receives the ``n``-th largest of ``m`` inputs.

    Batcher's sort on the next power of two of lines (the extra lines padded with the
    smallest value by the caller), pruned to what the line of the n-th largest depends on.
    """
    lines = 1 << max(1, (m - 1).bit_length())
    return prune_dead(Network(lines, batcher_sort(lines).comparators, (lines - n,),
                              f"batcher-oddeven({lines}) threshold"))


def _prune_greedy(net: Network, n: int) -> Network:
    """Remove every comparator (last first) whose removal keeps the network a selector."""
    comps = list(net.comparators)
    for pos in range(len(comps) - 1, -1, -1):
        trial = Network(net.lines, tuple(comps[:pos] + comps[pos + 1 :]), net.outputs, net.source)
        if check_selection(trial, n):
            del comps[pos]
    return Network(net.lines, tuple(comps), net.outputs, net.source)


@functools.cache
def _generic_selection(n: int, m: int) -> Network:
    net = prune_dead(_fold_padding(n, m))
    if math.comb(m, n) <= EXHAUSTIVE_LIMIT // 4:
        net = _prune_greedy(net, n)
        net = Network(net.lines, net.comparators, net.outputs, net.source + " greedy")
    return net


def selection_network(n: int, m: int, *, prefer: str = "size") -> Network:
    """A network whose ``outputs`` lines receive the ``n`` largest of ``m`` inputs.

    Parameters
    ----------
    n, m : int
        Keep ``n`` of ``m`` (``0 < n < m``).
    prefer : str
        ``"size"`` (fewest comparators, then least depth) or ``"depth"`` (the reverse), to
        choose among the best-known networks of a pattern.
    """
    if prefer not in ("size", "depth"):
        raise ValueError(f"prefer must be 'size' or 'depth', not {prefer!r}")
    if not (isinstance(n, int) and isinstance(m, int) and 0 < n < m):
        raise ValueError(f"need integers 0 < n < m, not n={n!r}, m={m!r}")
    cands = best_known_selection(n, m)
    if not cands:
        cands = [_generic_selection(n, m)]
    if prefer == "size":
        return min(cands, key=lambda c: (c.size, c.depth))
    return min(cands, key=lambda c: (c.depth, c.size))
