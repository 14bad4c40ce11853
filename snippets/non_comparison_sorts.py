r"""Sorting without comparing keys: stable counting sort (prefix sums, right-to-left placement),
LSD radix sort of uint32 keys one r-bit digit at a time, and bucket sort of floats in [0, 1)
with insertion sort inside each bucket. Every sort returns the *order* (a stable argsort), so
the tests can compare it with ``np.argsort(kind="stable")`` index by index. Work is counted in
loop steps and comparisons, never in seconds.
"""

# --8<-- [start:imports]
import math
from functools import cmp_to_key

import matplotlib.pyplot as plt
import numpy as np

# --8<-- [end:imports]


# --8<-- [start:counting]
def counting_argsort(keys, k: int) -> list[int]:
    """Stable order of integer keys in [0, k): keys[order] is sorted, ties keep input order."""
    count = [0] * k
    for x in keys:  # C[v] = #{j : key_j = v}
        count[x] += 1
    for v in range(1, k):  # prefix sums: C[v] = #{j : key_j ≤ v}
        count[v] += count[v - 1]
    order = [0] * len(keys)
    for j in range(len(keys) - 1, -1, -1):  # right to left: the last equal key takes the last slot
        count[keys[j]] -= 1
        order[count[keys[j]]] = j  # key_j goes to slot C[key_j] − 1
    return order


def counting_ops(n: int, k: int) -> int:
    """Loop steps of counting_argsort: n (histogram) + k − 1 (prefix sums) + n (placement)."""
    return 2 * n + k - 1


# --8<-- [end:counting]


# --8<-- [start:radix]
def radix_argsort(keys: np.ndarray, r: int = 8, bits: int = 32) -> np.ndarray:
    """LSD radix sort of unsigned keys < 2**bits: one stable counting sort per r-bit digit."""
    keys = np.asarray(keys, dtype=np.uint64)
    order = np.arange(len(keys))
    mask = (1 << r) - 1
    for shift in range(0, bits, r):  # least significant digit first
        digit = ((keys[order] >> np.uint64(shift)) & np.uint64(mask)).tolist()  # r-bit digit
        order = order[counting_argsort(digit, 1 << r)]  # stable: earlier passes break ties
    return order


def radix_ops(n: int, r: int = 8, bits: int = 32) -> int:
    """⌈b/r⌉ passes of counting sort with k = 2**r (CLRS Lemma 8.4: Θ((b/r)(n + 2^r)))."""
    return math.ceil(bits / r) * counting_ops(n, 1 << r)


def int32_to_ordered_uint32(x: np.ndarray) -> np.ndarray:
    """Map int32 to uint32 keeping order: flip the sign bit (= add the offset 2**31)."""
    return np.asarray(x, dtype=np.int32).view(np.uint32) ^ np.uint32(0x8000_0000)


# --8<-- [end:radix]


# --8<-- [start:bucket]
def bucket_index(x: np.ndarray, m: int, cdf=None) -> np.ndarray:
    """Bucket ⌊m·F(x)⌋ of each x in [0, 1); F is the identity unless a CDF is given."""
    u = np.asarray(x, dtype=np.float64) if cdf is None else cdf(np.asarray(x, dtype=np.float64))
    if u.size and not (u.min() >= 0.0 and u.max() <= 1.0):  # a list takes buckets[-1] silently
        raise ValueError("bucket sort needs F(x) in [0, 1]")
    return np.minimum(np.floor(m * u).astype(np.int64), m - 1)  # guard: F(x) may round to 1.0


def insertion_argsort(x: list[float], idx: list[int]) -> int:
    """Sort the indices idx in place by x[idx]; return the number of key comparisons."""
    comparisons = 0
    for i in range(1, len(idx)):
        j, cur = i - 1, idx[i]
        while j >= 0:
            comparisons += 1
            if x[idx[j]] <= x[cur]:  # `<=` stops at an equal key: stable
                break
            idx[j + 1] = idx[j]
            j -= 1
        idx[j + 1] = cur
    return comparisons


def bucket_argsort(x: np.ndarray, m: int | None = None, cdf=None) -> tuple[list[int], int]:
    """Bucket sort of floats in [0, 1) with m buckets (default n); returns (order, comparisons)."""
    m = len(x) if m is None else m
    buckets = [[] for _ in range(m)]
    for j, b in enumerate(bucket_index(x, m, cdf).tolist()):  # scan left to right: stable
        buckets[b].append(j)
    xs, comparisons, order = np.asarray(x).tolist(), 0, []
    for b in buckets:
        comparisons += insertion_argsort(xs, b)
        order.extend(b)  # concatenate the buckets in index order
    return order, comparisons


def bucket_sizes(x: np.ndarray, m: int | None = None, cdf=None) -> np.ndarray:
    """n_i, the number of keys in each of the m buckets."""
    m = len(x) if m is None else m
    return np.bincount(bucket_index(x, m, cdf), minlength=m)


def expected_sum_squares(n: int, data_cdf=lambda t: t) -> float:
    """E[Σ n_i²] for n i.i.d. keys with CDF G in n buckets: n_i ~ Binomial(n, p_i)."""
    p = np.diff(data_cdf(np.arange(n + 1) / n))  # p_i = G((i+1)/n) − G(i/n)
    return float(np.sum(n * p * (1 - p) + (n * p) ** 2))  # E[n_i²] = Var + mean²


# --8<-- [end:bucket]


# --8<-- [start:comparisons]
def sorted_comparisons(x) -> int:
    """How many times sorted() compares two keys on this input (counted through cmp_to_key)."""
    calls = 0

    def cmp(a, b):
        nonlocal calls
        calls += 1
        return (a > b) - (a < b)

    sorted(x, key=cmp_to_key(cmp))
    return calls


def log2_factorial(n: int) -> float:
    """lg(n!): any comparison sort needs this many comparisons in the worst case (CLRS Thm 8.1)."""
    return math.lgamma(n + 1) / math.log(2)


# --8<-- [end:comparisons]


# --8<-- [start:figure]
def plot_occupancy(samples: dict[str, np.ndarray]):
    """One panel per input, stacked: how many keys land in each of the n buckets."""
    fig, axes = plt.subplots(len(samples), 1, figsize=(5.0, 2.4 * len(samples)), sharey=True,
                             layout="constrained")  # fmt: skip
    for ax, (name, x) in zip(axes, samples.items(), strict=True):
        sizes = bucket_sizes(x)
        ax.bar(np.arange(len(sizes)), sizes, width=1.0, color="C0")
        ax.set_title(f"{name}：最大桶 {sizes.max()} 个，Σn²ᵢ = {int((sizes**2).sum())}",
                     fontsize=11)  # fmt: skip
        ax.set_ylabel("桶内元素数", fontsize=10)
        ax.set_xlim(-1, len(sizes))
    axes[-1].set_xlabel("桶编号 i（第 i 个桶装 [i/n, (i+1)/n)）", fontsize=10)
    fig.suptitle(f"n = {len(x)} 个数放进 n 个桶", fontsize=12)
    return fig


# --8<-- [end:figure]


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**32, size=1000, dtype=np.uint64).astype(np.uint32)
    print(np.array_equal(radix_argsort(keys), np.argsort(keys, kind="stable")))
    u = rng.random(1000)
    print(bucket_argsort(u)[1], bucket_argsort(u**4)[1])
