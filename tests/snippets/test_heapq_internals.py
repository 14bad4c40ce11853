"""Tests for snippets/heapq_internals.py against CPython's C `_heapq` (the oracle) and sorted().

The clone must leave exactly the list the C module leaves after every heapify/push/pop, and make
exactly as many `<` calls; the textbook variant must be a correct heap with more pop comparisons.
"""

import _heapq
import heapq
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.heapq_internals import (
    Key,
    count_comparisons,
    heapify,
    heappop,
    heappush,
    per_item_curves,
    textbook_heapify,
    textbook_heappop,
    wrap,
)

small_ints = st.lists(st.integers(-5, 5), max_size=60)  # many duplicates
pairs = st.lists(st.tuples(st.integers(0, 3), st.text(alphabet="ab", max_size=2)), max_size=40)


def is_heap(h) -> bool:
    """Independent check of the invariant h[k] <= h[2k+1], h[2k+2]."""
    return all(not h[i] < h[(i - 1) // 2] for i in range(1, len(h)))


def test_heapq_functions_are_the_c_ones():
    """On this interpreter heapq's public functions are _heapq's, so the oracle is the C code."""
    assert heapq.heappush is _heapq.heappush and heapq.heapify is _heapq.heapify
    assert heapq.heappop is _heapq.heappop


@settings(max_examples=60, deadline=None)
@given(st.one_of(small_ints, pairs), st.data())
def test_clone_list_equals_heapq_after_every_operation(values, data):
    """heapify, then interleaved pushes and pops: the two lists are identical at every step."""
    a, b = list(values), list(values)
    heapq.heapify(a)
    heapify(b)
    assert a == b
    extra = data.draw(st.lists(st.sampled_from(values or [0]), max_size=30))
    popped = []
    for item in extra:
        heapq.heappush(a, item)
        heappush(b, item)
        assert a == b
        if data.draw(st.booleans()) and a:
            popped.append(heapq.heappop(a))
            assert popped[-1] == heappop(b)
            assert a == b
    out_a = [heapq.heappop(a) for _ in range(len(a))]
    out_b = [heappop(b) for _ in range(len(b))]
    assert out_a == out_b == sorted(out_a)
    assert sorted(popped + out_a) == sorted(list(values) + extra)


def test_clone_equals_heapq_on_large_list():
    """n = 3000 > 2500, where the C heapify may visit nodes in a cache-friendly order."""
    rng = random.Random(3)
    values = [rng.randrange(100) for _ in range(3000)]
    a, b = values[:], values[:]
    heapq.heapify(a)
    heapify(b)
    assert a == b


def test_equal_keys_keep_identity_order():
    """Ties go to the right child in both: the same objects end up in the same slots."""
    tally = [0]
    keys = wrap([1] * 9 + [0] * 4, tally)
    a, b = keys[:], keys[:]
    heapq.heapify(a)
    heapify(b)
    assert all(x is y for x, y in zip(a, b, strict=True))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-20, 20), max_size=120))
def test_comparison_counts_equal_c(values):
    """The clone makes exactly as many `<` calls as the C module for heapify, pushes and pops."""
    assert count_comparisons(values, "clone") == count_comparisons(values, "C _heapq")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-1000, 1000), max_size=300))
def test_heapify_at_most_2n(values):
    """heapify uses at most 2(n - popcount(n)) < 2n comparisons, also on sorted input."""
    n = len(values)
    for v in (values, sorted(values), sorted(values, reverse=True)):
        assert count_comparisons(v, "C _heapq")["heapify"] <= 2 * (n - bin(n).count("1"))


class Counted:
    """The test's own counter (independent of the module's Key): every `<` adds one."""

    calls = 0

    def __init__(self, value):
        self.value = value

    def __lt__(self, other):
        Counted.calls += 1
        return self.value < other.value


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-20, 20), max_size=120))
def test_count_comparisons_matches_a_separate_count(values):
    """count_comparisons' three phases equal a count made here with heapq and a separate class."""
    Counted.calls = 0
    heapq.heapify([Counted(v) for v in values])
    heapify_calls, Counted.calls = Counted.calls, 0
    heap = []
    for v in values:
        heapq.heappush(heap, Counted(v))
    push_calls, Counted.calls = Counted.calls, 0
    while heap:
        heapq.heappop(heap)
    expected = {"heapify": heapify_calls, "push": push_calls, "pop": Counted.calls}
    assert count_comparisons(values, "C _heapq") == expected


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-3, 3), max_size=200))
def test_textbook_heapify_on_a_heap_costs_n_minus_1(values):
    """Sorted input is already a heap: the textbook sift stops at once, ties included.

    Each of the n//2 inner nodes costs 2 comparisons (pick a child, test newitem), except that
    a node with a single child skips the first: n - 1 in all.
    """
    n = len(values)
    assert count_comparisons(sorted(values), "textbook")["heapify"] == max(n - 1, 0)


def test_experiment_curves_against_closed_forms():
    """Descending pushes climb to the root: item i costs depth(i) = floor(log2(i+1)) compares.

    Heapify stays within its bound, and from n = 64 on the textbook pops cost more.
    """
    ns = [1, 2, 5, 64, 300]
    curves = per_item_curves(ns, seed=4)
    for k, n in enumerate(ns):
        assert round(curves["push_desc"][k] * n) == sum((i + 1).bit_length() - 1 for i in range(n))
        assert round(curves["heapify"][k] * n) <= 2 * (n - bin(n).count("1"))
    assert all(t > p for t, p in zip(curves["pop_textbook"][3:], curves["pop"][3:], strict=True))


@settings(max_examples=60, deadline=None)
@given(st.one_of(small_ints, pairs))
def test_textbook_is_a_correct_heap(values):
    """The textbook variant builds a valid heap and pops in sorted order."""
    h = list(values)
    textbook_heapify(h)
    assert is_heap(h)
    assert [textbook_heappop(h) for _ in range(len(h))] == sorted(values)


def test_bottom_up_pops_are_cheaper_on_random_data():
    """On 1000 random floats, popping everything costs the textbook variant far more."""
    rng = random.Random(0)
    values = [rng.random() for _ in range(1000)]
    clone, book = count_comparisons(values, "clone"), count_comparisons(values, "textbook")
    assert clone["pop"] < 0.65 * book["pop"]
    assert clone["push"] == book["push"]  # same heappush in both


def test_key_counts_only_lt():
    """Key counts each `<`; a heap of Keys sorts like the raw values."""
    tally = [0]
    a, b = Key(1, tally), Key(2, tally)
    assert (a < b) is True and (b < a) is False and tally == [2]
    h = wrap([3, 1, 2], tally)
    heapify(h)
    assert [heappop(h).value for _ in range(3)] == [1, 2, 3]
