r"""heapq internals: a line-by-line clone of CPython's Lib/heapq.py sift functions, counted.

CPython's names are reversed from most textbooks: ``_siftdown(heap, startpos, pos)`` moves an
item *toward the root* (used by heappush), ``_siftup(heap, pos)`` moves the hole at ``pos``
*down to a leaf* by promoting the smaller child at every level, then calls ``_siftdown`` to
bubble the displaced item back up (the bottom-up pop; see the comment above ``_siftup`` in
Lib/heapq.py, which cites Knuth vol. 3). The textbook sift-down stops as soon as the item is
no larger than both children; it costs two comparisons per level instead of one.

Comparisons are counted by wrapping each value in ``Key``, whose ``__lt__`` bumps a shared
counter: heapq only ever calls ``<``.
"""

# --8<-- [start:imports]
import heapq
import random

import matplotlib.pyplot as plt

# --8<-- [end:imports]


# --8<-- [start:counter]
class Key:
    """A value whose `<` is counted in `tally[0]`; heapq calls nothing but `<`."""

    __slots__ = ("value", "tally")

    def __init__(self, value, tally: list[int]):
        self.value, self.tally = value, tally

    def __lt__(self, other: "Key") -> bool:
        self.tally[0] += 1
        return self.value < other.value

    def __repr__(self) -> str:
        return f"Key({self.value!r})"


def wrap(values, tally: list[int]) -> list[Key]:
    return [Key(v, tally) for v in values]


# --8<-- [end:counter]


# --8<-- [start:clone]
def siftdown(heap: list, startpos: int, pos: int) -> None:
    """Lib/heapq.py `_siftdown`: move heap[pos] toward the root (textbooks: sift-up)."""
    newitem = heap[pos]
    while pos > startpos:
        parentpos = (pos - 1) >> 1  # parent of i is (i-1)//2
        parent = heap[parentpos]
        if newitem < parent:  # one comparison per level climbed
            heap[pos] = parent  # move the parent down into the hole
            pos = parentpos
            continue
        break
    heap[pos] = newitem


def siftup(heap: list, pos: int) -> None:
    """Lib/heapq.py `_siftup`: promote the smaller child down to a leaf, then `siftdown`."""
    endpos = len(heap)
    startpos = pos
    newitem = heap[pos]
    childpos = 2 * pos + 1  # left child of i is 2i+1
    while childpos < endpos:
        rightpos = childpos + 1
        if rightpos < endpos and not heap[childpos] < heap[rightpos]:  # ties go right
            childpos = rightpos
        heap[pos] = heap[childpos]  # the smaller child moves up; no test against newitem
        pos = childpos
        childpos = 2 * pos + 1
    heap[pos] = newitem  # the hole reached a leaf: drop newitem there ...
    siftdown(heap, startpos, pos)  # ... and let it climb back (usually not far)


def heappush(heap: list, item) -> None:
    heap.append(item)
    siftdown(heap, 0, len(heap) - 1)


def heappop(heap: list):
    lastelt = heap.pop()  # IndexError on an empty heap, as in heapq
    if heap:
        returnitem = heap[0]
        heap[0] = lastelt  # the last leaf fills the root, then sinks
        siftup(heap, 0)
        return returnitem
    return lastelt


def heapify(x: list) -> None:
    for i in reversed(range(len(x) // 2)):  # n//2 - 1 is the last node with a child
        siftup(x, i)


# --8<-- [end:clone]


# --8<-- [start:textbook]
def textbook_sink(heap: list, pos: int) -> None:
    """Top-down sift-down with early exit: 2 comparisons per level, stop when in place."""
    endpos = len(heap)
    newitem = heap[pos]
    childpos = 2 * pos + 1
    while childpos < endpos:
        rightpos = childpos + 1
        if rightpos < endpos and heap[rightpos] < heap[childpos]:  # comparison 1: pick child
            childpos = rightpos
        if not heap[childpos] < newitem:  # comparison 2: is newitem already in place?
            break
        heap[pos] = heap[childpos]
        pos = childpos
        childpos = 2 * pos + 1
    heap[pos] = newitem


def textbook_heapify(x: list) -> None:
    for i in reversed(range(len(x) // 2)):
        textbook_sink(x, i)


def textbook_heappop(heap: list):
    lastelt = heap.pop()
    if heap:
        returnitem, heap[0] = heap[0], lastelt
        textbook_sink(heap, 0)
        return returnitem
    return lastelt


# --8<-- [end:textbook]


# --8<-- [start:count]
IMPLS = {  # name -> (heapify, heappush, heappop)
    "C _heapq": (heapq.heapify, heapq.heappush, heapq.heappop),
    "clone": (heapify, heappush, heappop),
    "textbook": (textbook_heapify, heappush, textbook_heappop),
}


def count_comparisons(values, impl: str) -> dict[str, int]:
    """Comparisons for heapify(values), len(values) pushes of values, then popping all."""
    do_heapify, do_push, do_pop = IMPLS[impl]
    tally = [0]
    heap = wrap(values, tally)
    do_heapify(heap)
    counts = {"heapify": tally[0]}
    tally[0], heap = 0, []
    for key in wrap(values, tally):
        do_push(heap, key)
    counts["push"] = tally[0]
    tally[0] = 0
    while heap:
        do_pop(heap)
    counts["pop"] = tally[0]
    return counts


# --8<-- [end:count]


# --8<-- [start:experiment]
def per_item_curves(ns: list[int], seed: int = 0) -> dict[str, list[float]]:
    """Comparisons / n for each n: heapify, pushes (random and descending order), pops."""
    rng = random.Random(seed)
    curves = {k: [] for k in ("heapify", "push", "push_desc", "pop", "pop_textbook")}
    for n in ns:
        values = [rng.random() for _ in range(n)]
        c = count_comparisons(values, "C _heapq")
        t = count_comparisons(values, "textbook")
        desc = count_comparisons(sorted(values, reverse=True), "C _heapq")
        for name, total in [("heapify", c["heapify"]), ("push", c["push"]),
                            ("push_desc", desc["push"]), ("pop", c["pop"]),
                            ("pop_textbook", t["pop"])]:  # fmt: skip
            curves[name].append(total / n)
    return curves


def plot_curves(ns: list[int], curves: dict[str, list[float]]):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5.0, 6.4), sharex=True, layout="constrained")
    top.plot(ns, curves["heapify"], marker="o", label="heapify")
    top.plot(ns, curves["push"], marker="s", label="逐个 heappush（随机顺序）")
    top.plot(ns, curves["push_desc"], marker="^", label="逐个 heappush（降序，最坏）")
    top.axhline(2, color="gray", linestyle="--", linewidth=1, label="heapify 上界 2")
    top.set(ylabel="比较次数 / n")
    top.set_title("建堆：heapify 每元素不到 2 次", fontsize=11)
    bottom.plot(ns, curves["pop"], marker="o", label="heapq 的 heappop（到叶再回升）")
    bottom.plot(ns, curves["pop_textbook"], marker="s", label="教科书 sift-down（提前停）")
    bottom.set(ylabel="比较次数 / n", xlabel="n（对数轴）", xscale="log", ylim=(0, None))
    bottom.set_title("弹空整个堆：每次 pop 的比较次数", fontsize=11)
    top.set_ylim(0, 1.4 * max(curves["push_desc"]))  # headroom: the legend sits above the data
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=10, loc="upper left")
    return fig


# --8<-- [end:experiment]


if __name__ == "__main__":
    rng = random.Random(1)
    data = [rng.random() for _ in range(1000)]
    for name in IMPLS:
        print(name, count_comparisons(data, name))
    ns = [2**k for k in range(5, 14)]
    plot_curves(ns, per_item_curves(ns))
    plt.show()
