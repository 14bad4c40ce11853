"""Tests for snippets/maximum_gap.py: bucket and radix answers against numpy's sort, the layout's bounds."""

import math
import random
from collections import Counter
from functools import cmp_to_key

import matplotlib.pyplot as plt
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.maximum_gap import (
    RADIX_BITS,
    bucket_layout,
    maximum_gap_bucket,
    maximum_gap_radix,
    maximum_gap_sort,
    plot_buckets,
    plot_ops,
    radix_sort,
    random_case,
    sort_comparisons,
)

LEETCODE_MAX = 10**9


def oracle(nums: list[int]) -> int:
    """max(diff(sort(a))) with numpy's sort (uint64 holds every value used here), 0 if n < 2."""
    if len(nums) < 2:
        return 0
    return int(np.diff(np.sort(np.asarray(nums, dtype=np.uint64))).max())


# values: the full LeetCode range, a handful of small ones (duplicates), ones next to 10**9
values = st.one_of(
    st.integers(0, LEETCODE_MAX), st.integers(0, 6), st.integers(LEETCODE_MAX - 3, LEETCODE_MAX)
)
inputs = st.one_of(
    st.lists(values, min_size=1, max_size=60),
    st.builds(lambda v, n: [v] * n, st.integers(0, LEETCODE_MAX), st.integers(1, 30)),  # all equal
)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_bucket_and_radix_match_numpy(nums: list[int]) -> None:
    """Both linear-time answers equal numpy's sort-and-diff on LeetCode-range inputs."""
    want = oracle(nums)
    assert maximum_gap_bucket(nums) == want
    assert maximum_gap_radix(nums) == want
    assert maximum_gap_sort(nums) == want


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40))
def test_radix_sort_beyond_32_bits(nums: list[int]) -> None:
    """Radix sort equals numpy's sort for values up to 2**64 - 1 (up to 8 passes); so do the gaps."""
    assert radix_sort(nums) == np.sort(np.asarray(nums, dtype=np.uint64)).tolist()
    assert maximum_gap_bucket(nums) == maximum_gap_radix(nums) == oracle(nums)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**4), min_size=2, max_size=60))
def test_pigeonhole_layout(nums: list[int]) -> None:
    """b <= ceil(R/(n-1)) <= answer, every value has a bucket, no bucket spans the answer, m <= 2(n-1)."""
    lo, b, m = bucket_layout(nums)
    n, r = len(nums), max(nums) - min(nums)
    gap = oracle(nums)
    assert b >= 1 and m <= 2 * (n - 1)
    assert all(0 <= (v - lo) // b < m for v in nums)
    assert r == 0 or b <= -(-r // (n - 1)) <= gap  # pigeonhole: n-1 gaps sum to R
    for i in range(m):  # inside one bucket two values differ by at most b - 1 < answer
        inside = [v for v in nums if (v - lo) // b == i]
        assert not inside or max(inside) - min(inside) < max(gap, 1)


def test_bucket_step_counts() -> None:
    """Bucket steps: n indices, m visits, 2(n-1) + 2(n-k) + (k-1) comparisons for k non-empty buckets."""
    rng = random.Random(1)
    nums = [rng.randint(0, 50) for _ in range(300)] + [
        rng.randint(0, LEETCODE_MAX) for _ in range(2000)
    ]
    n, lo, hi = len(nums), min(nums), max(nums)
    b = max(1, (hi - lo) // (n - 1))
    k = len({(v - lo) // b for v in nums})  # non-empty buckets
    ops = Counter()
    maximum_gap_bucket(nums, ops)
    assert ops["index"] == n and ops["scan"] == (hi - lo) // b + 1
    assert ops["compare"] == 2 * (n - 1) + 2 * (n - k) + (k - 1) <= 5 * n


def test_radix_step_counts() -> None:
    """Radix sort makes ceil(bits/8) passes of n digit reads and n moves, plus 256 prefix steps each."""
    nums = [0, 1, 2**31, 5, 2**20]
    ops = Counter()
    maximum_gap_radix(nums, ops)
    passes = math.ceil(32 / RADIX_BITS)
    assert ops == Counter(digit=passes * 5, move=passes * 5, prefix=passes * 2**RADIX_BITS, scan=4)


def test_sort_comparisons_meet_the_lower_bound() -> None:
    """sorted() uses only '<', and on random permutations averages at least log2(n!) comparisons."""
    n, rng = 200, random.Random(2)
    counts = []
    for _ in range(30):
        perm = list(range(n))
        rng.shuffle(perm)
        ops = sort_comparisons(perm)
        assert set(ops) == {"<"}
        counts.append(ops["<"])
    assert sum(counts) / len(counts) >= math.lgamma(n + 1) / math.log(2)
    assert sort_comparisons(list(range(n)))["<"] == n - 1  # one ascending run: n - 1 comparisons


def test_comparison_count_matches_cmp_to_key() -> None:
    """Counted's '<' acts like int '<': sorted() compares exactly as often as through cmp_to_key."""
    rng = random.Random(3)
    for n in (1, 2, 10, 100, 500):
        nums = [rng.randint(0, 9) for _ in range(n)]  # many ties: a wrong '<' takes another path
        calls = 0

        def cmp(a: int, b: int) -> int:
            nonlocal calls
            calls += 1
            return (a > b) - (a < b)

        assert sorted(nums, key=cmp_to_key(cmp)) == sorted(nums)
        assert sort_comparisons(nums) == Counter({"<": calls})  # missing counts as 0 (3.10+)


def test_random_cases_cover_the_edge_kinds() -> None:
    """The page's generator yields n = 1, all-equal, duplicate-heavy and near-10**9 inputs."""
    rng = random.Random(0)
    cases = [random_case(rng) for _ in range(2000)]
    assert any(len(c) == 1 for c in cases)
    assert any(len(c) > 1 and len(set(c)) == 1 for c in cases)
    assert any(len(set(c)) < len(c) // 2 for c in cases)
    assert any(max(c) >= LEETCODE_MAX - 100 for c in cases)
    assert all(0 <= v <= LEETCODE_MAX for c in cases for v in c)


def test_plots_mark_the_winning_gap() -> None:
    """The number line shades exactly the answer's interval; the step plot has one line per method."""
    nums = [2, 5, 7, 8, 13, 29, 31, 35, 40, 44]
    fig = plot_buckets(nums)
    span = fig.axes[0].patches[0]  # axvspan: a Rectangle from x to x + width
    assert (span.get_x(), span.get_x() + span.get_width()) == (13, 29)
    plt.close(fig)
    rows = [{"n": n, "sort": n * 3, "bucket": n * 5, "radix": n * 9} for n in (10, 100)]
    fig = plot_ops(rows)
    assert len(fig.axes[0].get_lines()) == 4
    plt.close(fig)
