r"""Maximum Gap (LeetCode 164): buckets by the pigeonhole principle, LSD radix sort, sorting.

The answer is the largest difference between neighbours of the sorted list (0 if n < 2).
With $R = \max - \min$ and $n - 1$ neighbour gaps summing to $R$, the largest gap is at
least $\lceil R/(n-1) \rceil$; buckets of width $b = \max(1, \lfloor R/(n-1) \rfloor)$ are
narrower than that, so the largest gap always runs from one non-empty bucket's maximum to
the next non-empty bucket's minimum. Inputs are integers, as in the problem.

Each function takes an optional `collections.Counter` and adds the basic steps it performs
to it (comparisons, bucket indices, digit extractions, moves): counted, not timed.
"""

# --8<-- [start:imports]
import math
import random
from collections import Counter
from itertools import pairwise

import matplotlib.pyplot as plt

# --8<-- [end:imports]


# --8<-- [start:sort]
def maximum_gap_sort(nums: list[int]) -> int:
    """Reference: sort, then the largest neighbour difference. O(n log n) comparisons."""
    s = sorted(nums)
    return max((b - a for a, b in pairwise(s)), default=0)


class Counted:
    """An int wrapper whose comparisons are counted: `sorted` then reports its own work."""

    __slots__ = ("v", "ops")

    def __init__(self, v: int, ops: Counter) -> None:
        self.v, self.ops = v, ops

    def __lt__(self, other: "Counted") -> bool:
        self.ops["<"] += 1
        return self.v < other.v

    def __gt__(self, other: "Counted") -> bool:  # counted apart: does the sort ever use it?
        self.ops[">"] += 1
        return self.v > other.v


def sort_comparisons(nums: list[int]) -> Counter:
    """How many times `sorted` compares two elements of `nums` (by operator)."""
    ops = Counter()
    sorted(Counted(v, ops) for v in nums)
    return ops


# --8<-- [end:sort]


# --8<-- [start:bucket]
def bucket_layout(nums: list[int]) -> tuple[int, int, int]:
    r"""(lo, b, m): minimum, bucket width $b = \max(1, \lfloor R/(n-1) \rfloor)$, bucket count."""
    lo, hi = min(nums), max(nums)
    b = max(1, (hi - lo) // (len(nums) - 1))  # without max(1, .): b = 0 when all are equal
    m = (hi - lo) // b + 1  # bucket of hi is (hi-lo)//b, which may be n-1 or more
    return lo, b, m


def maximum_gap_bucket(nums: list[int], ops: Counter | None = None) -> int:
    """Largest neighbour gap in O(n) steps: per-bucket min/max, then one scan over the buckets."""
    ops = Counter() if ops is None else ops
    n = len(nums)
    if n < 2:
        return 0
    lo, b, m = bucket_layout(nums)
    ops["compare"] += 2 * (n - 1)  # min and max of the input
    bmin: list[int | None] = [None] * m
    bmax: list[int | None] = [None] * m
    for v in nums:
        i = (v - lo) // b  # bucket of v: [lo + i·b, lo + (i+1)·b)
        ops["index"] += 1
        if bmin[i] is None:
            bmin[i] = bmax[i] = v
        else:
            bmin[i], bmax[i] = min(bmin[i], v), max(bmax[i], v)
            ops["compare"] += 2
    gap, prev = 0, None  # prev: max of the last non-empty bucket
    for i in range(m):
        ops["scan"] += 1
        if bmin[i] is None:
            continue
        if prev is not None:
            gap = max(gap, bmin[i] - prev)  # a gap between buckets; none inside one can win
            ops["compare"] += 1
        prev = bmax[i]
    return gap


# --8<-- [end:bucket]


# --8<-- [start:radix]
RADIX_BITS = 8  # base 2**8 = 256: values below 2**32 need 4 passes


def radix_sort(nums: list[int], ops: Counter | None = None) -> list[int]:
    """LSD radix sort of non-negative ints: one stable counting sort per 8-bit digit."""
    ops = Counter() if ops is None else ops
    base, mask = 1 << RADIX_BITS, (1 << RADIX_BITS) - 1
    passes = max(1, math.ceil(max(nums, default=0).bit_length() / RADIX_BITS))  # d digits
    a = list(nums)
    for p in range(passes):
        shift = p * RADIX_BITS
        count = [0] * base
        for v in a:
            count[(v >> shift) & mask] += 1  # digit p of v
        ops["digit"] += len(a)
        start = 0
        for d in range(base):  # count[d] becomes where digit d's run starts
            count[d], start = start, start + count[d]
        ops["prefix"] += base
        out = [0] * len(a)
        for v in a:  # left to right keeps equal digits in order: stable
            d = (v >> shift) & mask
            out[count[d]] = v
            count[d] += 1
        ops["move"] += len(a)
        a = out
    return a


def maximum_gap_radix(nums: list[int], ops: Counter | None = None) -> int:
    """Radix-sort in Θ(d·(n + 256)) steps, then one scan of neighbour differences."""
    ops = Counter() if ops is None else ops
    s = radix_sort(nums, ops)
    ops["scan"] += max(0, len(s) - 1)
    return max((b - a for a, b in pairwise(s)), default=0)


# --8<-- [end:radix]


# --8<-- [start:cases]
def random_case(rng: random.Random) -> list[int]:
    """One test input: duplicates, n = 1, all equal, clusters and values up to 10**9."""
    kind = rng.choice(["small", "dups", "single", "equal", "large", "clustered"])
    n = rng.randint(2, 40)
    if kind == "single":
        return [rng.randint(0, 10**9)]
    if kind == "equal":
        return [rng.randint(0, 10**9)] * n
    if kind == "dups":
        return [rng.randint(0, 5) for _ in range(n)]  # few distinct values
    if kind == "large":
        return [
            rng.randint(10**9 - 100, 10**9) if rng.random() < 0.5 else rng.randint(0, 10**9)
            for _ in range(n)
        ]
    if kind == "clustered":  # two tight clusters far apart: the answer is one huge gap
        return [rng.randint(0, 3) for _ in range(n // 2)] + [
            rng.randint(10**6, 10**6 + 3) for _ in range(n - n // 2)
        ]
    return [rng.randint(0, 100) for _ in range(n)]


# --8<-- [end:cases]


# --8<-- [start:plot]
def plot_buckets(nums: list[int]):
    """Number line: the points, the bucket edges, the empty buckets, the winning gap."""
    lo, b, m = bucket_layout(nums)
    s = sorted(set(nums))
    gap = maximum_gap_bucket(nums)
    left = next(a for a, c in pairwise(s) if c - a == gap)  # leftmost winning pair
    fig, ax = plt.subplots(figsize=(5.2, 2.6), layout="constrained")
    for i in range(m + 1):
        ax.axvline(lo + i * b, color="0.6", lw=1, ls="--", zorder=0)
    for i in range(m):
        inside = [v for v in s if lo + i * b <= v < lo + (i + 1) * b]
        if not inside:
            ax.text(lo + (i + 0.5) * b, 0.75, "空", ha="center", fontsize=10, color="0.35")
    ax.axvspan(left, left + gap, ymin=0.3, ymax=0.7, color="tab:orange", alpha=0.35, lw=0)
    ax.annotate(
        "",
        xy=(left + gap, 0.25),
        xytext=(left, 0.25),
        arrowprops={"arrowstyle": "<->", "color": "tab:orange", "lw": 2},
    )
    ax.text(left + gap / 2, 0.05, f"最大间距 {gap}", ha="center", fontsize=11, color="tab:orange")
    ax.scatter(nums, [0.45] * len(nums), s=40, color="tab:blue", zorder=3)
    ax.set_ylim(-0.1, 1.0)
    ax.set_yticks([])
    ax.set_xticks([lo + i * b for i in range(m + 1)])
    ax.tick_params(labelsize=10)
    ax.set_xlabel(f"数值（虚线为桶边界，桶宽 b = {b}）", fontsize=10)
    ax.set_title("最大间距横跨空桶，落在相邻非空桶之间", fontsize=11)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    return fig


def plot_ops(rows: list[dict]):
    """Steps per element against n: the comparison sort grows like log2 n, the others level off."""
    fig, ax = plt.subplots(figsize=(5.0, 3.6), layout="constrained")
    ns = [r["n"] for r in rows]
    for key, label, style in [
        ("sort", "sorted() 的比较", "o-"),
        ("bucket", "桶方法", "s-"),
        ("radix", "基数排序", "^-"),
    ]:
        ax.plot(ns, [r[key] / r["n"] for r in rows], style, label=label)
    ax.plot(ns, [math.lgamma(n + 1) / math.log(2) / n for n in ns], "k:", label="下界 log₂(n!)/n")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("元素个数 n", fontsize=10)
    ax.set_ylabel("每个元素的步数", fontsize=10)
    ax.set_title("比较次数随 n 增长，桶与基数排序趋于常数", fontsize=11)
    ax.legend(fontsize=10, loc="upper right", frameon=False)
    ax.tick_params(labelsize=10)
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    rng = random.Random(0)
    cases = [random_case(rng) for _ in range(10_000)]
    bad = [
        c for c in cases if not maximum_gap_bucket(c) == maximum_gap_radix(c) == maximum_gap_sort(c)
    ]
    print(f"{len(cases)} cases, {len(bad)} disagreements")
