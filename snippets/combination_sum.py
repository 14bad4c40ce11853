r"""Combination Sum I/II (LeetCode 39/40) by backtracking: one DFS over ``(start, remain)``.

LC 39 recurses with ``i`` (a candidate may be taken again), LC 40 with ``i + 1`` and skips a
value equal to its left sibling (``i > start``). The oracles are independent of the DFS:
all :math:`2^n` subsets (LC 40), all multiplicity vectors (LC 39), and coin-change counting
DPs for the number of answers. ``plot_trees`` draws the search tree with the pruned and the
duplicate-skipped branches coloured.
"""

# --8<-- [start:imports]
import itertools
from collections import Counter

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

# --8<-- [end:imports]


# --8<-- [start:backtrack]
def backtrack(candidates, target, *, reuse, skip="start", log=None):
    r"""Every combination of ``candidates`` summing to ``target``, each a non-decreasing list.

    ``reuse=True`` is LC 39 (the child loop starts at ``i``); ``reuse=False`` is LC 40
    (it starts at ``i + 1``). ``skip`` is the duplicate rule: ``"start"`` skips
    ``c[i] == c[i-1]`` when ``i > start`` (correct), ``"zero"`` when ``i > 0`` (the bug),
    ``None`` never. ``log`` (a list) receives ``(parent, value, remain, status)`` per branch;
    the branch's node id is its 1-based position in ``log``, the root is 0.
    """
    c = sorted(candidates)  # ascending, so one `break` cuts every larger sibling
    result, path = [], []

    def dfs(start, remain, node):
        if remain == 0:
            result.append(path.copy())  # a copy: `path` keeps changing after this line
            return
        first = start if skip == "start" else 0  # the duplicate rule looks at i > first
        for i in range(start, len(c)):
            if skip is not None and i > first and c[i] == c[i - 1]:
                _record(log, node, c[i], remain, "skip")
                continue  # same value at the same depth: the left sibling's subtree again
            if c[i] > remain:
                _record(log, node, c[i], remain, "prune")
                break  # c[i+1:] ≥ c[i] > remain: none of them fits either
            child = _record(log, node, c[i], remain - c[i], "take")
            path.append(c[i])
            dfs(i if reuse else i + 1, remain - c[i], child)  # LC 39: i, LC 40: i + 1
            path.pop()

    dfs(0, target, 0)
    return result


def _record(log, parent, value, remain, status):
    """Append one branch to ``log`` (if any) and return its node id."""
    if log is None:
        return None
    log.append((parent, value, remain, status))
    return len(log)


def combination_sum(candidates, target):
    """LeetCode 39: distinct candidates, each usable any number of times."""
    return backtrack(candidates, target, reuse=True, skip=None)


def combination_sum2(candidates, target):
    """LeetCode 40: candidates may repeat, each used at most once, no duplicate answers."""
    return backtrack(candidates, target, reuse=False, skip="start")


# --8<-- [end:backtrack]


# --8<-- [start:oracles]
def brute_force_subsets(candidates, target):
    """LC 40 oracle: every one of the 2^n index subsets, answers as a set of sorted tuples."""
    n = len(candidates)
    found = set()
    for mask in range(1 << n):  # bit j of mask: take candidates[j]
        chosen = [candidates[j] for j in range(n) if mask >> j & 1]
        if sum(chosen) == target:
            found.add(tuple(sorted(chosen)))
    return found


def brute_force_multiplicities(candidates, target):
    """LC 39 oracle: every vector m with 0 ≤ m_j ≤ target // c_j, keep Σ m_j·c_j = target."""
    found = set()
    ranges = [range(target // c + 1) for c in candidates]
    for m in itertools.product(*ranges):
        pairs = list(zip(m, candidates, strict=True))  # (m_j, c_j)
        if sum(mj * c for mj, c in pairs) == target:
            found.add(tuple(sorted(c for mj, c in pairs for _ in range(mj))))
    return found


def count_unbounded(candidates, target):
    """Number of LC 39 answers by the coin-change DP (coins in the outer loop: order ignored)."""
    ways = [1] + [0] * target  # ways[s]: multisets of the coins seen so far summing to s
    for c in candidates:
        for s in range(c, target + 1):
            ways[s] += ways[s - c]  # ways'[s] = ways[s] + ways'[s - c]
    return ways[target]


def count_bounded(candidates, target):
    """Number of LC 40 answers: value v with k copies is used 0..k times."""
    ways = [1] + [0] * target
    for v, k in sorted(Counter(candidates).items()):
        ways = [sum(ways[s - m * v] for m in range(k + 1) if m * v <= s) for s in range(target + 1)]
    return ways[target]


# --8<-- [end:oracles]


# --8<-- [start:tree]
STYLE = {  # status -> (edge colour, line style, box fill)
    "take": ("#4c72b0", "-", "#dbe4f3"),
    "solution": ("#2a9d4a", "-", "#cdeed6"),
    "dead": ("#8c8c8c", "-", "#e6e6e6"),
    "prune": ("#d1495b", "--", "#f6d5d9"),
    "skip": ("#8e44ad", ":", "#e8d6f0"),
}
LEGEND = {"solution": "找到答案", "dead": "没有可选的数", "prune": "剪枝（c[i] > 余量）",
          "skip": "去重跳过"}  # fmt: skip


def tree_layout(log):
    """Node id -> (depth, row, status): leaves one row each in DFS order, parents centred."""
    children = {0: []}
    for node, (parent, _, _, _) in enumerate(log, start=1):
        children.setdefault(parent, []).append(node)
        children.setdefault(node, [])
    place, rows = {}, itertools.count()

    def walk(node, depth):
        kids = children[node]
        for k in kids:
            walk(k, depth + 1)
        row = sum(place[k][1] for k in kids) / len(kids) if kids else next(rows)
        status = "root" if node == 0 else log[node - 1][3]
        if status == "take" and log[node - 1][2] == 0:
            status = "solution"
        elif status == "take" and not kids:
            status = "dead"  # remain > 0 but the loop had nothing left to try
        place[node] = (depth, row, status)

    walk(0, 0)
    return place


def node_text(entry, status):
    """What a box says: `+v 余r` for a taken value, why the branch stops otherwise."""
    parent, value, remain, _ = entry
    if status == "prune":
        return f"{value}>{remain} 剪"
    if status == "skip":
        return f"{value} 跳过"
    return f"+{value} ✓" if status == "solution" else f"+{value} 余{remain}"


RULES = (("start", "i > start（正确）"), ("zero", "i > 0（错误）"))


def plot_trees(candidates, target, rules=RULES):
    """One search tree per duplicate rule, stacked; returns the figure."""
    logs = []
    for skip, _ in rules:
        logs.append([])
        backtrack(candidates, target, reuse=False, skip=skip, log=logs[-1])
    heights = [1 + max(row for _, row, _ in tree_layout(log).values()) for log in logs]
    fig, axes = plt.subplots(len(rules), 1, figsize=(5.2, 0.42 * sum(heights) + 1.6),
                             height_ratios=heights, layout="constrained")  # fmt: skip
    for ax, log, (skip, title) in zip(axes, logs, rules, strict=True):
        place = tree_layout(log)
        for node, (depth, row, status) in place.items():
            if node:  # the edge from the parent
                pd, pr, _ = place[log[node - 1][0]]
                colour, ls, _ = STYLE["take" if status in ("solution", "dead") else status]
                ax.plot([pd, depth], [pr, row], color=colour, ls=ls, lw=1.4, zorder=1)
        for node, (depth, row, status) in place.items():
            text = f"和 {target}" if node == 0 else node_text(log[node - 1], status)
            _, _, fill = STYLE.get(status, STYLE["take"])
            edge = STYLE.get(status, STYLE["take"])[0]
            ax.text(depth, row, text, ha="center", va="center", fontsize=10, zorder=2,
                    bbox={"boxstyle": "round,pad=0.25", "fc": fill, "ec": edge})  # fmt: skip
        answers = backtrack(candidates, target, reuse=False, skip=skip)
        found = "、".join("[" + ",".join(map(str, a)) + "]" for a in answers)
        ax.set_title(f"{title}：{found}", fontsize=10)
        ax.set_xlim(-0.5, max(d for d, _, _ in place.values()) + 0.5)
        ax.set_ylim(max(r for _, r, _ in place.values()) + 0.6, -0.6)
        ax.axis("off")
    handles = [Line2D([], [], color=STYLE[s][0], ls=STYLE[s][1], lw=1.4, marker="s",
                      markerfacecolor=STYLE[s][2], markersize=9) for s in LEGEND]  # fmt: skip
    fig.legend(handles, LEGEND.values(), loc="outside lower center", ncols=2, fontsize=10)
    shown = ",".join(map(str, sorted(candidates)))
    fig.suptitle(f"LC 40 的搜索树：c = [{shown}]，target = {target}", fontsize=11)
    return fig


# --8<-- [end:tree]


if __name__ == "__main__":
    print(combination_sum([2, 3, 6, 7], 7), combination_sum2([10, 1, 2, 7, 6, 1, 5], 8))
    plot_trees([1, 1, 2, 6], 8)
    plt.show()
