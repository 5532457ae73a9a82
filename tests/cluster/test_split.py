"""Layer splits: largest remainder properties, and the fastest split against brute force."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeplanner.engine.cluster_split import (
    StageCosts,
    bounds,
    fastest_contiguous_split,
    largest_remainder,
)


@given(
    total=st.integers(min_value=0, max_value=500),
    weights=st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=12).filter(
        lambda w: sum(w) > 0
    ),
)
def test_largest_remainder_sums_and_stays_within_one_of_the_quota(total, weights):
    counts = largest_remainder(total, weights)
    assert sum(counts) == total
    s = sum(weights)
    for c, w in zip(counts, weights, strict=True):
        # Exact rational comparison: quota - 1 < c < quota + 1, quota = total * w / s.
        assert c * s > total * w - s  # c > quota - 1
        assert c * s < total * w + s  # c < quota + 1
        if w == 0:
            assert c == 0


@given(
    total=st.integers(min_value=1, max_value=300),
    weights=st.lists(st.integers(min_value=1, max_value=1000), min_size=2, max_size=8),
)
def test_largest_remainder_is_monotone_in_weight(total, weights):
    counts = largest_remainder(total, weights)
    for i, j in itertools.combinations(range(len(weights)), 2):
        if weights[i] > weights[j]:
            assert counts[i] >= counts[j]


def test_largest_remainder_hand_checked():
    # 80 layers over budgets 48 and 24 GiB -> quotas 53.33 and 26.67 -> remainders .33/.67
    assert largest_remainder(80, [48, 24]) == (53, 27)
    # equal weights: ties go to the earlier node
    assert largest_remainder(5, [1, 1]) == (3, 2)
    assert largest_remainder(81, [1, 1, 1]) == (27, 27, 27)


def test_largest_remainder_errors_state_the_problem():
    with pytest.raises(ValueError, match="zero nodes"):
        largest_remainder(10, [])
    with pytest.raises(ValueError, match="weight of 0"):
        largest_remainder(10, [0, 0])
    with pytest.raises(ValueError, match="negative"):
        largest_remainder(-1, [1])


def test_bounds_are_contiguous():
    assert bounds((3, 0, 2)) == ((0, 3), (3, 3), (3, 5))


def _brute_force(layer_bytes, nodes, min_layers=1):
    n_layers, n = len(layer_bytes), len(nodes)
    best = None
    for cuts in itertools.combinations(range(1, n_layers), n - 1):
        edges = (0, *cuts, n_layers)
        counts = tuple(edges[i + 1] - edges[i] for i in range(n))
        if min(counts) < min_layers:
            continue
        ok, total, worst = True, 0.0, 0.0
        for node, (a, b) in zip(nodes, bounds(counts), strict=True):
            if sum(layer_bytes[a:b]) + node.fixed_bytes > node.budget_bytes:
                ok = False
                break
            t = sum(node.layer_seconds[a:b])
            total += t
            worst = max(worst, t)
        if ok and (best is None or (total, worst) < best[0]):
            best = ((total, worst), counts)
    return best


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_layers=st.integers(min_value=3, max_value=12),
    n_nodes=st.integers(min_value=2, max_value=3),
)
def test_fastest_split_matches_brute_force(data, n_layers, n_nodes):
    layer_bytes = data.draw(st.lists(st.integers(1, 10), min_size=n_layers, max_size=n_layers))
    nodes = []
    for _ in range(n_nodes):
        per_layer = data.draw(st.integers(1, 9)) / 1000
        nodes.append(
            StageCosts(
                layer_seconds=tuple(per_layer for _ in range(n_layers)),
                fixed_bytes=data.draw(st.integers(0, 5)),
                budget_bytes=data.draw(st.integers(5, 60)),
            )
        )
    got = fastest_contiguous_split(layer_bytes, nodes)
    want = _brute_force(layer_bytes, nodes)
    if want is None:
        assert got is None
    else:
        assert got is not None
        total = sum(
            sum(node.layer_seconds[a:b]) for node, (a, b) in zip(nodes, bounds(got), strict=True)
        )
        assert total == pytest.approx(want[0][0])
        for node, (a, b) in zip(nodes, bounds(got), strict=True):
            assert sum(layer_bytes[a:b]) + node.fixed_bytes <= node.budget_bytes


def test_fastest_split_puts_layers_on_the_faster_node_up_to_its_memory():
    fast = StageCosts(layer_seconds=(0.001,) * 10, fixed_bytes=0, budget_bytes=7)
    slow = StageCosts(layer_seconds=(0.004,) * 10, fixed_bytes=0, budget_bytes=100)
    assert fastest_contiguous_split([1] * 10, [fast, slow]) == (7, 3)
    assert fastest_contiguous_split([1] * 10, [slow, fast]) == (3, 7)


def test_fastest_split_none_when_nothing_fits():
    a = StageCosts(layer_seconds=(0.001,) * 4, fixed_bytes=0, budget_bytes=1)
    assert fastest_contiguous_split([1] * 4, [a, a]) is None


def test_a_hop_that_costs_more_than_it_saves_leaves_the_node_idle():
    # the remote node is 10 % faster per layer but reaching it costs more than that saves
    remote = StageCosts((0.0009,) * 10, fixed_bytes=0, budget_bytes=100, overhead_s=0.01)
    host = StageCosts((0.001,) * 10, fixed_bytes=0, budget_bytes=100)
    assert fastest_contiguous_split([1] * 10, [remote, host], min_layers=0) == (0, 10)
    cheap = StageCosts((0.0009,) * 10, fixed_bytes=0, budget_bytes=100, overhead_s=1e-4)
    assert fastest_contiguous_split([1] * 10, [cheap, host], min_layers=0) == (10, 0)


def test_identical_nodes_split_evenly_whatever_the_rounding() -> None:
    """Every split of identical nodes has the same total time up to float rounding; the
    slowest stage decides, so 80 layers go 40/40 and 3 nodes 27/26/27 (no rounding-noise pick)."""
    import math

    # per-layer seconds whose partial sums round differently from different starts
    t = tuple(0.001 + math.sin(i) * 1e-13 for i in range(80))
    node = StageCosts(layer_seconds=t, fixed_bytes=0, budget_bytes=10**12, overhead_s=3e-4)
    assert fastest_contiguous_split([10] * 80, [node, node]) == (40, 40)
    assert fastest_contiguous_split([10] * 80, [node, node, node]) in {
        (27, 26, 27),
        (26, 27, 27),
        (27, 27, 26),
    }
