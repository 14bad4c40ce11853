"""Tests for snippets/knapsack_01.py against brute-force oracles written here with itertools.

The 0/1 oracle tries every subset with `itertools.combinations`; the unbounded oracle tries
every multiset of items with `itertools.combinations_with_replacement`. Neither shares code
with the module's own brute-force functions (bit masks, count vectors).
"""

import itertools

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.knapsack_01 import (
    brute_force,
    brute_force_unbounded,
    knapsack_1d,
    knapsack_1d_forward,
    knapsack_numpy,
    knapsack_table,
    plot_table,
    reduce_by_gcd,
    table_path,
    traceback,
)

matplotlib.use("Agg")
SETTINGS = settings(max_examples=60, deadline=None)


def best_01(weights, values, capacity):
    """Oracle: the best value over all subsets (itertools.combinations) that fit."""
    best = 0
    items = list(zip(weights, values, strict=True))
    for r in range(len(items) + 1):
        for subset in itertools.combinations(items, r):
            if sum(w for w, _ in subset) <= capacity:
                best = max(best, sum(v for _, v in subset))
    return best


def best_unbounded(weights, values, capacity):
    """Oracle: the best value over all multisets of items (with repetition) that fit."""
    best, most = 0, capacity // min(weights)
    for r in range(1, most + 1):
        for multiset in itertools.combinations_with_replacement(range(len(weights)), r):
            if sum(weights[i] for i in multiset) <= capacity:
                best = max(best, sum(values[i] for i in multiset))
    return best


@st.composite
def instances(draw, max_n=8, max_w=12, max_cap=30):
    """(weights, values, capacity) with positive integer weights and values."""
    n = draw(st.integers(1, max_n))
    weights = draw(st.lists(st.integers(1, max_w), min_size=n, max_size=n))
    values = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    return weights, values, draw(st.integers(0, max_cap))


@SETTINGS
@given(instances())
def test_table_every_cell_equals_subset_oracle(inst):
    """dp[i][w] is the 0/1 optimum of the first i items at capacity w, for every cell."""
    weights, values, capacity = inst
    dp = knapsack_table(weights, values, capacity)
    assert len(dp) == len(weights) + 1 and all(len(row) == capacity + 1 for row in dp)
    for i in range(len(weights) + 1):
        for w in range(capacity + 1):
            assert dp[i][w] == best_01(weights[:i], values[:i], w)


@SETTINGS
@given(instances())
def test_one_d_and_numpy_equal_oracle_at_every_capacity(inst):
    """The reverse-loop 1-D array and the numpy version hold the 0/1 optimum for each w ≤ W."""
    weights, values, capacity = inst
    expected = [best_01(weights, values, w) for w in range(capacity + 1)]
    assert knapsack_1d(weights, values, capacity) == expected
    assert knapsack_numpy(weights, values, capacity).tolist() == expected
    assert knapsack_numpy(weights, values, capacity, dtype=np.int32).tolist() == expected
    assert knapsack_1d(weights, values, capacity) == knapsack_table(weights, values, capacity)[-1]


@SETTINGS
@given(instances(max_n=15, max_w=30, max_cap=120))
def test_brute_force_equals_oracle(inst):
    """The module's bit-mask brute force agrees with the combinations oracle (n ≤ 15)."""
    weights, values, capacity = inst
    assert brute_force(weights, values, capacity) == best_01(weights, values, capacity)


@SETTINGS
@given(instances(max_n=12, max_w=20, max_cap=80))
def test_traceback_is_an_optimal_feasible_subset(inst):
    """The traced items are distinct, fit, and reach the subset oracle's value."""
    weights, values, capacity = inst
    dp = knapsack_table(weights, values, capacity)
    chosen = traceback(dp, weights)
    assert chosen == sorted(set(chosen))
    assert sum(weights[i] for i in chosen) <= capacity
    assert sum(values[i] for i in chosen) == best_01(weights, values, capacity)


@SETTINGS
@given(instances(max_n=10, max_w=20, max_cap=60))
def test_table_path_drops_by_the_taken_values(inst):
    """The path starts at (n, W), goes up one row per step, and leaves w only by w_i on taken rows."""
    weights, values, capacity = inst
    dp = knapsack_table(weights, values, capacity)
    path = table_path(dp, weights)
    assert path[0] == (len(weights), capacity) and path[-1][0] == 0
    taken = []
    for (i, w), (i_up, w_up) in itertools.pairwise(path):
        assert i_up == i - 1 and w_up in (w, w - weights[i - 1])
        if w_up != w:
            assert dp[i][w] == dp[i_up][w_up] + values[i - 1]  # the value came from item i
            taken.append(i - 1)
        else:
            assert dp[i][w] == dp[i_up][w_up]
    assert sorted(taken) == traceback(dp, weights)
    assert sum(values[i] for i in taken) == best_01(weights, values, capacity)


@SETTINGS
@given(instances(max_n=4, max_w=8, max_cap=16))
def test_forward_loop_is_unbounded_knapsack(inst):
    """The forward 1-D loop equals the multiset oracle at every capacity; so does the module's."""
    weights, values, capacity = inst
    expected = [best_unbounded(weights, values, w) for w in range(capacity + 1)]
    assert knapsack_1d_forward(weights, values, capacity) == expected
    assert brute_force_unbounded(weights, values, capacity) == expected[-1]


def test_forward_and_reverse_differ_on_one_item():
    """One item (weight 2, value 3), W = 6: reverse takes it once, forward three times."""
    assert knapsack_1d([2], [3], 6) == [0, 0, 3, 3, 3, 3, 3]
    assert knapsack_1d_forward([2], [3], 6) == [0, 0, 3, 3, 6, 6, 9]


@SETTINGS
@given(instances(max_n=6, max_w=6, max_cap=20), st.integers(1, 6))
def test_scaling_and_gcd_reduction_keep_the_optimum(inst, g):
    """Weights and W scaled by g: same optimum; dividing by their gcd gives the same optimum."""
    weights, values, capacity = inst
    scaled = [w * g for w in weights]
    reduced, cap = reduce_by_gcd(scaled, capacity * g + g - 1)  # W not a multiple of g
    assert all(w * math_gcd(scaled) == s for w, s in zip(reduced, scaled, strict=True))
    assert best_01(reduced, values, cap) == best_01(weights, values, capacity)


def math_gcd(xs):
    """gcd of a list, by Euclid's algorithm written out."""
    g = 0
    for x in xs:
        a, b = g, x
        while b:
            a, b = b, a % b
        g = a
    return g


def test_numpy_overflow_guard():
    """int32 is refused once Σ v exceeds its maximum and accepted at exactly the maximum."""
    top = int(np.iinfo(np.int32).max)
    assert knapsack_numpy([1], [top], 1, dtype=np.int32).tolist() == [0, top]
    with pytest.raises(OverflowError):
        knapsack_numpy([1, 1], [top, 1], 2, dtype=np.int32)
    big = [5 * 10**18, 5 * 10**18]
    with pytest.raises(OverflowError):
        knapsack_numpy([1, 1], big, 2)  # int64 by default
    assert knapsack_1d([1, 1], big, 2)[2] == 10**19  # python ints do not overflow


def test_plot_marks_each_taken_item():
    """The heatmap writes every cell and draws one solid box per traced item."""
    weights, values, capacity = [3, 4, 2, 5, 1, 6], [4, 5, 3, 8, 2, 9], 12
    dp = knapsack_table(weights, values, capacity)
    fig = plot_table(dp, weights)
    (ax,) = fig.axes
    assert len(ax.texts) == (len(weights) + 1) * (capacity + 1)
    solid = [p for p in ax.patches if p.get_linestyle() == "-"]
    assert len(solid) == len(traceback(dp, weights)) == 3
    plt.close(fig)
