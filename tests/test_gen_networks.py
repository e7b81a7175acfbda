"""Comparator networks: 0-1-principle checks, best-known sizes, generic constructions."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from gen.config import TopKConfig
from nmsparse.contract import networks

# (pattern) -> (comparators, depth) of the network the shipped selectors use
SHIPPED_NETWORKS = {(2, 4): (4, 2), (4, 8): (14, 4), (8, 16): (44, 11), (16, 32): (126, 15)}


@pytest.mark.parametrize(("n", "m"), [(2, 4), (4, 8), (8, 16)])
def test_best_known_entries_select(n: int, m: int) -> None:
    entries = networks.best_known_selection(n, m)
    assert entries
    for net in entries:
        assert networks.check_selection(net, n), net.source
        # as stated in the data README: exactly N comparators need only one output
        assert net.single_output == n, net.source


@pytest.mark.parametrize(("n", "m"), list(SHIPPED_NETWORKS))
def test_shipped_network_sizes(n: int, m: int) -> None:
    net = networks.selection_network(n, m)
    assert (net.size, net.depth) == SHIPPED_NETWORKS[(n, m)]
    depth_first = networks.selection_network(n, m, prefer="depth")
    assert depth_first.depth <= net.depth
    # the network selector is pipelined: it builds the shallowest network
    assert TopKConfig(n=n, m=m, arch="network").comparators == depth_first.size
    assert TopKConfig(n=n, m=m, arch="network").network_depth == depth_first.depth
    assert TopKConfig(n=n, m=m, arch="rank").comparators == m * (m - 1) // 2


@pytest.mark.parametrize(
    ("n", "m"),
    [(1, 2), (1, 3), (2, 3), (1, 4), (3, 4), (2, 5), (2, 6), (3, 8), (5, 8), (7, 8), (1, 8),
     (5, 12), (6, 12), (3, 16), (12, 16)],
)
def test_generic_networks_select(n: int, m: int) -> None:
    net = networks.selection_network(n, m)
    assert net.lines == m and len(net.outputs) == n
    assert networks.check_selection(net, n)
    # never worse than the comparison matrix, and every comparator is needed
    assert net.size <= m * (m - 1) // 2
    assert all(any(need) for need in net.needed)


def test_check_selection_rejects_broken_network() -> None:
    net = networks.selection_network(4, 8)
    for drop in range(net.size):
        comps = net.comparators[:drop] + net.comparators[drop + 1 :]
        broken = networks.Network(8, comps, net.outputs)
        assert not networks.check_selection(broken, 4), f"still selects without comparator {drop}"


@pytest.mark.parametrize("lines", [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16])
def test_sorting_networks(lines: int) -> None:
    net = networks.sorting_network(lines)
    assert networks.check_sorting(net)
    assert networks.check_sorting(networks.batcher_sort(lines))
    known = {2: 1, 4: 5, 8: 19, 16: 60}
    if lines in known:
        assert net.size == known[lines]


def test_evaluate_matches_ties_rule() -> None:
    """(key, -index) pairs through a network: exactly the rank rule, ties to the lower index."""
    rng = random.Random(7)
    for n, m in [(2, 4), (4, 8), (8, 16), (3, 7)]:
        net = networks.selection_network(n, m)
        for _ in range(200):
            keys = [rng.choice([0, 1, 2, 5]) for _ in range(m)]
            out = networks.evaluate(net, [(k, -j) for j, k in enumerate(keys)])
            got = sorted(-out[o][1] for o in net.outputs)
            want = sorted(range(m), key=lambda j: (-keys[j], j))[:n]
            assert got == sorted(want)


def test_levels_and_layers_are_consistent() -> None:
    net = networks.selection_network(16, 32)
    layers = net.layers()
    assert len(layers) == net.depth
    for layer in layers:
        used = list(itertools.chain.from_iterable(net.comparators[p] for p in layer))
        assert len(used) == len(set(used))
    assert sum(map(len, layers)) == net.size


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="prefer"):
        networks.selection_network(2, 4, prefer="fast")
    with pytest.raises(ValueError, match="n=4"):
        networks.selection_network(4, 4)
    with pytest.raises(ValueError, match="bad comparator"):
        networks.Network(4, ((0, 4),), (3,))
    with pytest.raises(ValueError, match="too many"):
        networks.check_selection(networks.selection_network(16, 32), 16)
    assert math.comb(32, 16) > networks.EXHAUSTIVE_LIMIT
