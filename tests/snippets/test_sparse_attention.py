import math

import matplotlib
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from snippets.sparse_attention import (
    draw_masks,
    draw_nnz,
    draw_reach,
    factorized_heads,
    fixed_keys,
    fixed_masks,
    gather_attention,
    missing_pairs,
    nnz,
    strided_keys,
    strided_masks,
    two_hop,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


# The paper's sets (Child et al. 2019, §4.3), written as Python sets of key positions.
def paper_strided(i, stride):
    a1 = set(range(max(0, i - stride), i + 1))  # {t, ..., i}, t = max(0, i - l)
    a2 = {j for j in range(i + 1) if (i - j) % stride == 0}
    return a1, a2


def paper_fixed(i, stride, c):
    a1 = {j for j in range(i + 1) if j // stride == i // stride}
    a2 = {
        j for j in range(i + 1) if j % stride in range(stride - c, stride + 1)
    }  # {t, ..., l}, t = l - c
    return a1, a2


def as_mask(sets_of_rows, n):
    m = torch.zeros(n, n, dtype=torch.bool)
    for i, row in enumerate(sets_of_rows):
        m[i, sorted(row)] = True
    return m


def scatter(idx, valid, n):
    m = torch.zeros(n, n, dtype=torch.bool)
    rows = torch.arange(n).unsqueeze(1).expand_as(idx)
    m[rows[valid], idx[valid]] = True
    return m


sizes = st.integers(min_value=1, max_value=48)
strides = st.integers(min_value=1, max_value=9)


@settings(max_examples=60, deadline=None)
@given(n=sizes, stride=strides, data=st.data())
def test_masks_and_key_lists_equal_paper_sets(n, stride, data):
    """Masks and gathered key lists both equal the paper's A(1), A(2) and union, as sets."""
    c = data.draw(st.integers(min_value=1, max_value=stride))
    s = [paper_strided(i, stride) for i in range(n)]
    f = [paper_fixed(i, stride, c) for i in range(n)]
    cases = [
        (strided_masks(n, stride), lambda p: strided_keys(n, stride, p), s),
        (fixed_masks(n, stride, c), lambda p: fixed_keys(n, stride, c, p), f),
    ]
    for (a1, a2), keys, sets in cases:
        want = {
            "A1": as_mask([r[0] for r in sets], n),
            "A2": as_mask([r[1] for r in sets], n),
            "both": as_mask([r[0] | r[1] for r in sets], n),
        }
        assert torch.equal(a1, want["A1"]) and torch.equal(a2, want["A2"])
        for part, mask in want.items():
            assert torch.equal(scatter(*keys(part), n), mask), part


@settings(max_examples=40, deadline=None)
@given(n=sizes, stride=strides, seed=st.integers(0, 2**16), data=st.data())
def test_gather_attention_equals_sdpa_with_bool_mask(n, stride, seed, data):
    """Gather attention equals F.scaled_dot_product_attention(attn_mask=mask) to 1e-12 (float64).

    Covers the union patterns and one pattern per head, including fixed-A(2) rows with no key.
    """
    c = data.draw(st.integers(min_value=1, max_value=stride))
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(2, 2, n, 5, generator=g, dtype=torch.float64) for _ in range(3))
    s1, s2 = strided_masks(n, stride)
    f1, f2 = fixed_masks(n, stride, c)
    sdpa = F.scaled_dot_product_attention
    checks = [
        (gather_attention(q, k, v, *strided_keys(n, stride)), sdpa(q, k, v, attn_mask=s1 | s2)),
        (gather_attention(q, k, v, *fixed_keys(n, stride, c)), sdpa(q, k, v, attn_mask=f1 | f2)),
        (
            factorized_heads(
                q, k, v, [strided_keys(n, stride, "A1"), strided_keys(n, stride, "A2")]
            ),
            sdpa(q, k, v, attn_mask=torch.stack([s1, s2])),  # (H, n, n): one pattern per head
        ),
        (
            factorized_heads(
                q, k, v, [fixed_keys(n, stride, c, "A1"), fixed_keys(n, stride, c, "A2")]
            ),
            sdpa(q, k, v, attn_mask=torch.stack([f1, f2])),
        ),
    ]
    for ours, ref in checks:
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


def test_gather_attention_equals_softmax_formula_by_hand():
    """One query: softmax(q·k_j/√d) over its listed keys, times v, computed by a Python loop."""
    g = torch.Generator().manual_seed(0)
    n, stride = 11, 3
    q, k, v = (torch.randn(1, 1, n, 4, generator=g, dtype=torch.float64) for _ in range(3))
    out = gather_attention(q, k, v, *strided_keys(n, stride))
    for i in range(n):
        keys = sorted(set().union(*paper_strided(i, stride)))
        s = [float(q[0, 0, i] @ k[0, 0, j]) / math.sqrt(4) for j in keys]
        w = [math.exp(x - max(s)) for x in s]
        want = sum(wj / sum(w) * v[0, 0, j] for wj, j in zip(w, keys, strict=True))
        torch.testing.assert_close(out[0, 0, i], want, rtol=0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(min_value=1, max_value=300), stride=st.integers(1, 40), data=st.data())
def test_closed_form_nnz_equals_mask_count(n, stride, data):
    """nnz() equals the number of True cells of A(1) ∪ A(2), strided and fixed."""
    c = data.draw(st.integers(min_value=1, max_value=stride))
    s1, s2 = strided_masks(n, stride)
    f1, f2 = fixed_masks(n, stride, c)
    assert nnz(n, stride) == int((s1 | s2).sum())
    assert nnz(n, stride, c) == int((f1 | f2).sum())


def test_nnz_grows_like_n_sqrt_n():
    """With l = √n and fixed c, nnz / (n√n) tends to 3/2 (strided) and (1 + c)/2 (fixed)."""
    c = 8
    for pattern, limit in ((None, 1.5), (c, (1 + c) / 2)):
        gaps = [abs(nnz(n, math.isqrt(n), pattern) / n**1.5 - limit) for n in (4**6, 4**8, 4**10)]
        assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.002 * limit


def brute_two_hop(first_sets, second_sets, n, residual):
    """reach[i] = {j : j -> a -> i}, a in second(i) and j in first(a); a residual adds a = i, j = a."""
    reach = []
    for i in range(n):
        mids = set(second_sets[i]) | ({i} if residual else set())
        reach.append(
            set().union(*(set(first_sets[a]) | ({a} if residual else set()) for a in mids))
        )
    return reach


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 30), stride=st.integers(1, 7), residual=st.booleans(), data=st.data())
def test_two_hop_equals_brute_force_paths(n, stride, residual, data):
    """two_hop equals path enumeration over the paper's sets, both patterns, both orders."""
    c = data.draw(st.integers(min_value=1, max_value=stride))
    for sets, masks in (
        ([paper_strided(i, stride) for i in range(n)], strided_masks(n, stride)),
        ([paper_fixed(i, stride, c) for i in range(n)], fixed_masks(n, stride, c)),
    ):
        a1 = [r[0] for r in sets]
        a2 = [r[1] for r in sets]
        for (fs, ss), (fm, sm) in (((a1, a2), masks), ((a2, a1), masks[::-1])):
            want = as_mask(brute_two_hop(fs, ss, n, residual), n)
            assert torch.equal(two_hop(fm, sm, residual=residual), want)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 80), stride=st.integers(1, 12), data=st.data())
def test_two_hops_reach_every_earlier_position(n, stride, data):
    """Strided: both orders cover j <= i; fixed A(1) then A(2): once a residual path is allowed."""
    c = data.draw(st.integers(min_value=1, max_value=stride))
    s1, s2 = strided_masks(n, stride)
    f1, f2 = fixed_masks(n, stride, c)
    assert missing_pairs(two_hop(s1, s2, residual=False)) == 0
    assert missing_pairs(two_hop(s2, s1, residual=False)) == 0  # a = i - ((i - j) mod l)
    assert missing_pairs(two_hop(f1, f2, residual=True)) == 0
    # without it, the pair (i, i) for i = 0 < l - c has no intermediate a: A(2) of 0 is empty
    assert (missing_pairs(two_hop(f1, f2, residual=False)) > 0) == (c < stride)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 80), stride=st.integers(1, 12), data=st.data())
def test_fixed_in_the_wrong_order_misses_exactly_the_non_summary_keys_of_earlier_blocks(
    n, stride, data
):
    """Fixed A(2) then A(1), with residuals: j <= i unreached iff j is a non-summary cell of an
    earlier block (j // l < i // l and j mod l < l - c), written here from the definition."""
    c = data.draw(st.integers(min_value=1, max_value=stride))
    f1, f2 = fixed_masks(n, stride, c)
    want = torch.zeros(n, n, dtype=torch.bool)
    for i in range(n):
        for j in range(i + 1):
            want[i, j] = not (j // stride < i // stride and j % stride < stride - c)
    got = two_hop(f2, f1, residual=True)
    assert torch.equal(got & torch.ones(n, n, dtype=torch.bool).tril(), want)


def test_figures_draw():
    """The three figure helpers return figures with the expected number of axes and titles."""
    a1, a2 = strided_masks(12, 3)
    fig = draw_masks([("a", a1, a2), ("b", *fixed_masks(12, 3, 1))], n=12, title="掩码")
    assert len(fig.axes) == 2 and fig._suptitle.get_text() == "掩码"
    fig3 = draw_reach([("a", two_hop(a1, a2)), ("b", two_hop(a2, a1))], n=12, title="可达")
    assert len(fig3.axes) == 2 and fig3._suptitle.get_text() == "可达"
    fig2 = draw_nnz([16, 64], {"dense": [136, 2080]}, title="计数")
    assert fig2.axes[0].get_xscale() == "log"
    plt.close("all")
