"""Tests for snippets/non_comparison_sorts.py against sorted(), np.sort, np.argsort(kind="stable")
and closed-form operation counts."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.non_comparison_sorts import (
    bucket_argsort,
    bucket_index,
    bucket_sizes,
    counting_argsort,
    counting_ops,
    expected_sum_squares,
    insertion_argsort,
    int32_to_ordered_uint32,
    log2_factorial,
    radix_argsort,
    radix_ops,
    sorted_comparisons,
)

SETTINGS = settings(max_examples=60, deadline=None)
U32_MAX = 2**32 - 1
u32 = st.one_of(st.sampled_from([0, 1, 255, 256, 2**31, U32_MAX - 1, U32_MAX]),
                st.integers(0, U32_MAX))  # fmt: skip
below_one = float(np.nextafter(1.0, 0.0))
unit = st.one_of(st.sampled_from([0.0, 0.5, below_one]),
                 st.floats(0.0, 1.0, exclude_max=True, allow_subnormal=False))  # fmt: skip


@SETTINGS
@given(st.integers(1, 6).flatmap(lambda k: st.tuples(st.just(k), st.lists(st.integers(0, k - 1)))))
def test_counting_argsort_is_the_stable_argsort(k_keys):
    """Counting sort's order equals numpy's stable argsort, so ties keep their input order."""
    k, keys = k_keys
    order = counting_argsort(keys, k)
    assert order == np.argsort(np.array(keys, dtype=np.int64), kind="stable").tolist()
    assert [keys[j] for j in order] == sorted(keys)


def test_counting_argsort_key_index_pairs():
    """Sorting (key, index) pairs by key alone returns them in lexicographic (key, index) order."""
    keys = [3, 1, 3, 0, 1, 3, 0]
    pairs = [(keys[j], j) for j in counting_argsort(keys, 4)]
    assert pairs == sorted(zip(keys, range(len(keys)), strict=True))


@SETTINGS
@given(st.lists(u32, max_size=60), st.sampled_from([4, 8, 11, 16]))
def test_radix_argsort_uint32(keys, r):
    """LSD radix sort (any digit width) is the stable argsort; edge values 0 and 2**32-1 included."""
    a = np.array(keys, dtype=np.uint32)
    order = radix_argsort(a, r=r)
    assert np.array_equal(order, np.argsort(a, kind="stable"))
    assert np.array_equal(a[order], np.sort(a))


def test_radix_edges_and_many_ties():
    """0 and 2**32-1 land first and last; keys equal in the low byte are ordered by the high ones."""
    a = np.array([U32_MAX, 0, 0x0100_00FF, 0x0000_00FF, U32_MAX, 0, 0xFF00_0000], dtype=np.uint32)
    order = radix_argsort(a)
    assert order.tolist() == np.argsort(a, kind="stable").tolist() == [1, 5, 3, 2, 6, 0, 4]


@SETTINGS
@given(st.lists(st.integers(-(2**31), 2**31 - 1), max_size=40))
def test_int32_offset(keys):
    """Flipping the sign bit makes radix sort order int32 correctly (a plain view does not)."""
    a = np.array(keys + [-(2**31), 2**31 - 1, -1, 0], dtype=np.int32)
    order = radix_argsort(int32_to_ordered_uint32(a))
    assert np.array_equal(order, np.argsort(a, kind="stable"))


def test_plain_uint32_view_misorders_negatives():
    """Without the offset, -1 (0xFFFFFFFF) sorts after +1."""
    a = np.array([-1, 1], dtype=np.int32)
    assert radix_argsort(a.view(np.uint32)).tolist() == [1, 0]


@SETTINGS
@given(st.lists(unit, max_size=80), st.integers(1, 20))
def test_bucket_argsort(xs, m):
    """Bucket sort's order is the stable argsort for any bucket count, duplicates included."""
    x = np.array(xs + xs[:5], dtype=np.float64)  # repeat a few values to force ties
    order, _ = bucket_argsort(x, m)
    assert order == np.argsort(x, kind="stable").tolist()
    assert x[order].tolist() == sorted(x.tolist())


def test_bucket_argsort_with_cdf():
    """Bucketing by F(x) still sorts (F monotone) and spreads u**4 evenly."""
    u = np.random.default_rng(1).random(2000)
    x = u**4
    cdf = lambda t: t**0.25  # noqa: E731  F(x) = P(u⁴ ≤ x)
    order, _ = bucket_argsort(x, cdf=cdf)
    assert order == np.argsort(x, kind="stable").tolist()
    assert bucket_sizes(x, cdf=cdf).max() <= 8 < bucket_sizes(x).max()


def test_bucket_index_edges_and_histogram():
    """0 goes to bucket 0, the largest double below 1 to bucket m-1; counts match np.histogram."""
    for m in (1, 3, 7, 10, 1000, 2**20 + 1):
        assert bucket_index(np.array([0.0, below_one]), m).tolist() == [0, m - 1]
        # (1 - 2**-53) ** 0.25 rounds to 1.0: without the clamp this key would get bucket m
        assert bucket_index(np.array([below_one]), m, cdf=lambda t: t**0.25).tolist() == [m - 1]
    x = np.random.default_rng(2).random(5000)
    assert np.array_equal(bucket_sizes(x, 50), np.histogram(x, bins=50, range=(0, 1))[0])


def test_bucket_rejects_keys_outside_unit_interval():
    """A negative key would index buckets[-1] silently; NaN and keys above 1 are refused too."""
    for bad in ([0.5, -0.1, 0.2], [0.5, 1.5], [float("nan"), 0.1]):
        with pytest.raises(ValueError):
            bucket_argsort(np.array(bad))
    assert bucket_argsort(np.array([0.5, 1.0, 0.2]))[0] == [2, 0, 1]  # 1.0 is clamped to the last


def test_insertion_comparisons_closed_forms():
    """Insertion sort compares n-1 times on sorted or all-equal keys and n(n-1)/2 on reversed."""
    for n in (1, 2, 5, 30):
        x = list(range(n))
        assert insertion_argsort(x, list(range(n))) == max(n - 1, 0)
        assert insertion_argsort([1.0] * n, list(range(n))) == max(n - 1, 0)
        idx = list(range(n))[::-1]
        assert insertion_argsort(x, idx) == n * (n - 1) // 2 and idx == list(range(n))


def test_bucket_comparisons_single_bucket():
    """With one bucket, bucket sort is insertion sort: reversed distinct keys cost n(n-1)/2."""
    x = np.linspace(0.9, 0.0, 40)
    assert bucket_argsort(x, 1)[1] == 40 * 39 // 2
    assert bucket_argsort(x[::-1].copy(), 1)[1] == 39


def test_operation_count_formulas():
    """2n + k - 1 per counting pass; ceil(b/r) passes in radix sort."""
    assert counting_ops(10, 1) == 20
    assert radix_ops(100, 8) == 4 * (200 + 255)
    assert radix_ops(100, 11) == 3 * (200 + 2047)
    assert radix_ops(100, 32) == 200 + 2**32 - 1


@settings(max_examples=20, deadline=None)
@given(st.permutations(list(range(7))))
def test_sorted_comparisons_bounds(perm):
    """Counted comparisons lie between n-1 and n(n-1)/2 and match a __lt__ counter."""
    calls = []

    class K:
        def __init__(self, v):
            self.v = v

        def __lt__(self, other):
            calls.append(1)
            return self.v < other.v

    sorted(map(K, perm))
    assert 6 <= sorted_comparisons(perm) == len(calls) <= 21


def test_log2_factorial():
    """lg(n!) against the exact product for small n."""
    for n in (1, 2, 5, 20):
        assert math.isclose(log2_factorial(n), math.log2(math.factorial(n)), abs_tol=1e-9)


def test_expected_sum_squares():
    """Uniform keys give 2n - 1 (CLRS 3rd ed. eq. 8.2 summed); u**4 matches a Monte Carlo mean."""
    for n in (1, 2, 10, 1000):
        assert math.isclose(expected_sum_squares(n), 2 * n - 1, rel_tol=1e-12)
    rng = np.random.default_rng(3)
    n = 300
    mc = np.mean([(bucket_sizes(rng.random(n) ** 4) ** 2).sum() for _ in range(400)])
    assert math.isclose(expected_sum_squares(n, lambda t: t**0.25), mc, rel_tol=0.03)
