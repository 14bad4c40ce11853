"""Tests for snippets/combination_sum.py: backtracking against brute-force enumeration and DPs."""

import itertools

import matplotlib.pyplot as plt
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.combination_sum import (
    backtrack,
    brute_force_multiplicities,
    brute_force_subsets,
    combination_sum,
    combination_sum2,
    count_bounded,
    count_unbounded,
    plot_trees,
    tree_layout,
)

SETTINGS = settings(max_examples=60, deadline=None)
distinct = st.lists(st.integers(1, 12), min_size=1, max_size=5, unique=True)
with_dups = st.lists(st.integers(1, 8), min_size=1, max_size=11)


def _as_set(answers):
    return {tuple(a) for a in answers}


def _subsets_by_combinations(candidates, target):
    """A second LC 40 oracle, written differently: itertools.combinations over indices."""
    return {
        tuple(sorted(candidates[j] for j in idx))
        for r in range(len(candidates) + 1)
        for idx in itertools.combinations(range(len(candidates)), r)
        if sum(candidates[j] for j in idx) == target
    }


def _multisets_by_cwr(candidates, target):
    """A second LC 39 oracle, outside the module: non-decreasing tuples of length r, r ≤ T / min c."""
    return {
        t
        for r in range(target // min(candidates) + 1)
        for t in itertools.combinations_with_replacement(sorted(candidates), r)
        if sum(t) == target
    }


def test_leetcode_examples():
    """The examples in the LeetCode 39 and 40 statements."""
    assert combination_sum([2, 3, 6, 7], 7) == [[2, 2, 3], [7]]
    assert combination_sum([2, 3, 5], 8) == [[2, 2, 2, 2], [2, 3, 3], [3, 5]]
    assert combination_sum([2], 1) == []
    assert combination_sum2([10, 1, 2, 7, 6, 1, 5], 8) == [[1, 1, 6], [1, 2, 5], [1, 7], [2, 6]]
    assert combination_sum2([2, 5, 2, 1, 2], 5) == [[1, 2, 2], [5]]


@SETTINGS
@given(c=distinct, target=st.integers(1, 30))
def test_lc39_matches_multiplicity_vectors_and_dp(c, target):
    """LC 39 equals the multiplicity-vector enumeration as a set, has no repeats, count = DP."""
    got = combination_sum(c, target)
    assert _as_set(got) == brute_force_multiplicities(c, target) == _multisets_by_cwr(c, target)
    assert len(got) == len(_as_set(got)) == count_unbounded(c, target)
    assert all(sum(a) == target and a == sorted(a) for a in got)


@SETTINGS
@given(c=with_dups, target=st.integers(1, 30))
def test_lc40_matches_all_subsets_and_dp(c, target):
    """LC 40 equals the 2^n-subset enumeration, has no repeats, and its count = bounded DP."""
    got = combination_sum2(c, target)
    oracle = _subsets_by_combinations(c, target)
    assert _as_set(got) == oracle == brute_force_subsets(c, target)
    assert len(got) == len(oracle) == count_bounded(c, target)


@SETTINGS
@given(c=with_dups, target=st.integers(1, 30))
def test_wrong_rule_keeps_only_answers_without_repeated_values(c, target):
    """With i > 0 the second copy of a value is never taken: exactly the repeat-free answers."""
    wrong = backtrack(c, target, reuse=False, skip="zero")
    assert _as_set(wrong) == {
        t for t in _subsets_by_combinations(c, target) if len(set(t)) == len(t)
    }


@SETTINGS
@given(c=with_dups, target=st.integers(1, 30))
def test_no_rule_finds_the_same_set_with_repeats(c, target):
    """Without a duplicate rule the set of answers is right; the list holds each once per index set."""
    raw = backtrack(c, target, reuse=False, skip=None)
    assert _as_set(raw) == _subsets_by_combinations(c, target)
    index_sets = sum(
        1 for r in range(len(c) + 1) for idx in itertools.combinations(range(len(c)), r)
        if sum(c[j] for j in idx) == target
    )  # fmt: skip
    assert len(raw) == index_sets


def test_one_one_six():
    """The brief's example: i > 0 drops [1, 1, 6]; i > start keeps it."""
    c = [10, 1, 2, 7, 6, 1, 5]
    assert [1, 1, 6] in combination_sum2(c, 8)
    assert [1, 1, 6] not in backtrack(c, 8, reuse=False, skip="zero")


def test_log_statuses_and_counts():
    """The log of [1,1,2,6], 8: one skip at the root, two prunes, two answers; layout rows unique."""
    log = []
    backtrack([1, 1, 2, 6], 8, reuse=False, skip="start", log=log)
    statuses = [s for _, _, _, s in log]
    assert statuses.count("skip") == 1 and statuses.count("prune") == 2
    under_root = [(v, r, s) for parent, v, r, s in log if parent == 0]
    assert under_root == [(1, 7, "take"), (1, 8, "skip"), (2, 6, "take"), (6, 2, "take")]
    place = tree_layout(log)
    assert sum(1 for _, _, s in place.values() if s == "solution") == 2
    leaves = [row for _, row, s in place.values() if s != "take" and s != "root"]
    assert sorted(leaves) == list(range(len(leaves)))


def test_plot_trees_smoke():
    """The figure has two tree panels whose titles list the answers."""
    fig = plot_trees([1, 1, 2, 6], 8)
    titles = [ax.get_title() for ax in fig.axes]
    assert "[1,1,6]" in titles[0] and "[1,1,6]" not in titles[1]
    plt.close(fig)


@SETTINGS
@given(c=distinct, target=st.integers(1, 30))
def test_break_stops_the_loop(c, target):
    """After a prune the loop stops: no node has two pruned children or a branch after its prune."""
    log = []
    backtrack(c, target, reuse=True, skip=None, log=log)
    last_status = {}
    for parent, _, _, status in log:
        assert last_status.get(parent) != "prune"
        last_status[parent] = status


@SETTINGS
@given(c=st.lists(st.integers(-6, 6), min_size=1, max_size=9), target=st.integers(1, 12))
def test_lc40_with_zeros_and_negatives(c, target):
    """The page's claim: `break` needs only sorted order, so LC 40 stays right with c_i ≤ 0."""
    got = combination_sum2(c, target)
    assert _as_set(got) == _subsets_by_combinations(c, target)
    assert len(got) == len(_as_set(got))


def test_lc39_on_repeated_candidates_lists_a_combination_once_per_index_sequence():
    """The page's pitfall: [2, 2, 3] gives (0,0,2), (0,1,2), (1,1,2) -> [2,2,3] three times."""
    assert combination_sum([2, 2, 3], 7) == [[2, 2, 3]] * 3
    assert combination_sum(set([2, 2, 3]), 7) == [[2, 2, 3]]
