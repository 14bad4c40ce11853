r"""0/1 knapsack: brute force over the $2^n$ subsets, the 2-D table $dp[i][w]$ with its
traceback, the 1-D array updated from $w = W$ down to $w_i$, the same loop run forward (which
solves the *unbounded* knapsack instead) with an unbounded brute force, a vectorised numpy
version that refuses a dtype its values could overflow, and the dp heatmap with the path.
"""

# --8<-- [start:imports]
import itertools
import math

import matplotlib.pyplot as plt
import numpy as np

# --8<-- [end:imports]


# --8<-- [start:brute]
def brute_force(weights: list[int], values: list[int], capacity: int) -> int:
    """Best total value over all 2^n subsets whose weight fits (n ≤ ~20)."""
    n = len(weights)
    masks = np.arange(2**n, dtype=np.int64)[:, None]  # (2^n, 1): subset k as n bits
    take = (masks >> np.arange(n)) & 1  # (2^n, n): take[k, i] = 1 if item i is in subset k
    total_w = take @ np.asarray(weights, dtype=np.int64)  # Σ_i take·w_i
    total_v = take @ np.asarray(values, dtype=np.int64)
    return int(total_v[total_w <= capacity].max())  # the empty subset always fits


def brute_force_unbounded(weights: list[int], values: list[int], capacity: int) -> int:
    """Best value when item i may be taken c_i = 0, 1, 2, ... times (all count vectors)."""
    best = 0
    ranges = [range(capacity // w + 1) for w in weights]  # c_i ≤ ⌊W / w_i⌋
    for counts in itertools.product(*ranges):
        if sum(c * w for c, w in zip(counts, weights, strict=True)) <= capacity:
            best = max(best, sum(c * v for c, v in zip(counts, values, strict=True)))
    return best


# --8<-- [end:brute]


# --8<-- [start:table]
def knapsack_table(weights: list[int], values: list[int], capacity: int) -> list[list[int]]:
    """dp[i][w] = best value using only the first i items with total weight ≤ w; (n+1)×(W+1)."""
    n = len(weights)
    dp = [[0] * (capacity + 1) for _ in range(n + 1)]  # dp[0][w] = 0: no items, no value
    for i in range(1, n + 1):
        wt, v = weights[i - 1], values[i - 1]
        for w in range(capacity + 1):
            dp[i][w] = dp[i - 1][w]  # skip item i
            if wt <= w:  # take item i: dp[i-1][w-w_i] + v_i
                dp[i][w] = max(dp[i][w], dp[i - 1][w - wt] + v)
    return dp


def traceback(dp: list[list[int]], weights: list[int]) -> list[int]:
    """Indices of the items in one optimal subset, read backwards from dp[n][W]."""
    w = len(dp[0]) - 1
    chosen = []
    for i in range(len(dp) - 1, 0, -1):
        if dp[i][w] != dp[i - 1][w]:  # the value changed, so row i took item i
            chosen.append(i - 1)
            w -= weights[i - 1]
    return chosen[::-1]


# --8<-- [end:table]


# --8<-- [start:one_d]
def knapsack_1d(weights: list[int], values: list[int], capacity: int) -> list[int]:
    """The last row of the table in one array: w runs from W down to w_i."""
    dp = [0] * (capacity + 1)
    for wt, v in zip(weights, values, strict=True):
        for w in range(capacity, wt - 1, -1):  # dp[w - w_i] is still row i-1 here
            dp[w] = max(dp[w], dp[w - wt] + v)
    return dp


def knapsack_1d_forward(weights: list[int], values: list[int], capacity: int) -> list[int]:
    """The same update with w running upward: dp[w - w_i] may already hold item i."""
    dp = [0] * (capacity + 1)
    for wt, v in zip(weights, values, strict=True):
        for w in range(wt, capacity + 1):  # dp[w - w_i] is row i now: item i can repeat
            dp[w] = max(dp[w], dp[w - wt] + v)
    return dp


# --8<-- [end:one_d]


# --8<-- [start:numpy]
def knapsack_numpy(weights, values, capacity: int, dtype=np.int64) -> np.ndarray:  # noqa: ANN001
    """knapsack_1d with one vectorised update per item; raises if dtype could overflow."""
    if sum(int(v) for v in values) > np.iinfo(dtype).max:  # every dp entry ≤ Σ v_i
        raise OverflowError(f"sum of values exceeds {np.dtype(dtype).name}")
    dp = np.zeros(capacity + 1, dtype=dtype)
    for wt, v in zip(weights, values, strict=True):
        if wt <= capacity:  # the right side is a new array of row i-1 values: 0/1, not unbounded
            dp[wt:] = np.maximum(dp[wt:], dp[: capacity + 1 - wt] + dtype(v))
    return dp


# --8<-- [end:numpy]


# --8<-- [start:pseudo]
def reduce_by_gcd(weights: list[int], capacity: int) -> tuple[list[int], int]:
    """Divide the weights by g = gcd(w_i) and W by g (rounded down): same subsets fit."""
    g = math.gcd(*weights)
    return [w // g for w in weights], capacity // g


# --8<-- [end:pseudo]


# --8<-- [start:plot]
def table_path(dp: list[list[int]], weights: list[int]) -> list[tuple[int, int]]:
    """The cells (i, w) the traceback visits, from (n, W) up to row 0."""
    i, w = len(dp) - 1, len(dp[0]) - 1
    path = [(i, w)]
    while i > 0:
        if dp[i][w] != dp[i - 1][w]:
            w -= weights[i - 1]
        i -= 1
        path.append((i, w))
    return path


def plot_table(dp: list[list[int]], weights: list[int]):
    """dp as a heatmap, each cell's value written in it, the traceback path drawn on top."""
    table = np.array(dp)
    n, cap = table.shape[0] - 1, table.shape[1] - 1
    fig, ax = plt.subplots(figsize=(5.2, 4.2), layout="constrained")
    ax.imshow(table, cmap="viridis", aspect="auto", interpolation="nearest")
    light = table.min() + 0.6 * (table.max() - table.min())  # viridis turns light here
    for (i, w), val in np.ndenumerate(table):
        ax.text(w, i, val, ha="center", va="center", fontsize=10,
                color="black" if val > light else "white")  # fmt: skip
    path = table_path(dp, weights)
    rows, cols = zip(*path, strict=True)
    ax.plot(cols, rows, color="#ff3b30", lw=1.5, zorder=2)  # under the numbers (zorder 3)
    for (i, w), (_, w_up) in itertools.pairwise([*path, path[-1]]):
        taken = w_up != w  # a diagonal step up: item i was taken
        ax.add_patch(plt.Rectangle((w - 0.45, i - 0.45), 0.9, 0.9, fill=False, zorder=2.5,
                                   ec="#ff3b30", lw=3 if taken else 1.5,
                                   ls="-" if taken else "--"))  # fmt: skip
    ax.set_xticks(range(0, cap + 1, 2))
    ax.set_yticks(range(n + 1))
    ax.set_yticklabels([f"{i}（重 {weights[i - 1]}）" if i else "0" for i in range(n + 1)])
    ax.tick_params(labelsize=10)
    ax.set_xlabel("容量 w", fontsize=11)
    ax.set_ylabel("前 i 件物品", fontsize=11)
    ax.set_title("dp[i][w] 与回溯路径（实线框 = 取第 i 件）", fontsize=12)
    return fig


# --8<-- [end:plot]


if __name__ == "__main__":
    W_DEMO, V_DEMO, CAP_DEMO = [3, 4, 2, 5, 1], [4, 5, 3, 8, 2], 10
    table = knapsack_table(W_DEMO, V_DEMO, CAP_DEMO)
    print(table[-1][-1], traceback(table, W_DEMO), brute_force(W_DEMO, V_DEMO, CAP_DEMO))
    plot_table(table, W_DEMO)
    plt.show()
