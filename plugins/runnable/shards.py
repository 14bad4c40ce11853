"""Sharded execution: split the pages that miss the cache into N balanced, disjoint shares.

Every shard computes the same split on its own (no coordinator): the pages and the cache
it restored are the same, and the split is a pure function of them. Pages are placed
longest first (by the seconds their last run took, from the cache's page records; a page
never run is estimated from its fence count), each on the shard with the least work so
far, ties broken by path and shard number. Greedy placement keeps the largest shard within
one page of the ideal: at most total / N + (1 - 1/N) × the largest page.

`site_pages` finds a site's pages the way MkDocs does, without importing MkDocs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

#: Seconds per fence for a page never run, when no page has a recorded time to learn from.
DEFAULT_FENCE_SECONDS = 1.0
#: The file name endings MkDocs reads as Markdown pages.
MARKDOWN = (".markdown", ".mdown", ".mkdn", ".mkd", ".md")


def parse(text: str) -> tuple[int, int]:
    """`"K/N"` as `(K, N)`, 1 ≤ K ≤ N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise ValueError(f"--shard takes K/N with 1 ≤ K ≤ N, not {text!r}")
    return int(match[1]), int(match[2])


def estimates(fences: dict[str, int], records: dict[str, dict | None]) -> dict[str, float]:
    """Expected seconds of each page in `fences` (page → fence count now): its last recorded
    run (scaled if fences were added or removed), or else its fences × the mean seconds per
    fence of all recorded pages."""
    timed = {
        page: record
        for page, record in records.items()
        if record and isinstance(record.get("seconds"), int | float) and record.get("fences")
    }
    counted = sum(record["fences"] for record in timed.values())
    per_fence = (
        sum(record["seconds"] for record in timed.values()) / counted
        if counted
        else DEFAULT_FENCE_SECONDS
    )
    return {
        page: timed[page]["seconds"] * count / timed[page]["fences"]
        if page in timed
        else count * per_fence
        for page, count in fences.items()
    }


def assign(costs: dict[str, float], n: int) -> list[list[str]]:
    """Split pages into `n` shares of nearly equal cost (longest first, onto the lightest)."""
    shares: list[list[str]] = [[] for _ in range(n)]
    loads = [0.0] * n
    for page in sorted(costs, key=lambda page: (-costs[page], page)):
        lightest = min(range(n), key=lambda i: (loads[i], i))
        shares[lightest].append(page)
        loads[lightest] += costs[page]
    return shares


@dataclass
class SiteConfig:
    root: Path  # the folder of mkdocs.yml
    docs: Path
    cache_dir: Path
    timeout: float
    workers: int | None


class _Loader(yaml.SafeLoader):
    """Reads mkdocs.yml without constructing its Python tags (`!!python/name:…`)."""


_Loader.add_multi_constructor("", lambda loader, suffix, node: None)  # after the plain tags


def read_config(config_file: Path) -> SiteConfig:
    """docs_dir and the runnable plugin's settings from mkdocs.yml (defaults as MkDocs)."""
    config = yaml.load(config_file.read_text(encoding="utf-8"), Loader=_Loader) or {}
    root = config_file.resolve().parent
    plugin = {}
    for entry in config.get("plugins") or []:
        if isinstance(entry, dict) and "runnable" in entry:
            plugin = entry["runnable"] or {}
    return SiteConfig(
        root=root,
        docs=(root / config.get("docs_dir", "docs")).resolve(),
        cache_dir=root / plugin.get("cache_dir", ".cache/runnable"),
        timeout=plugin.get("timeout", 120),
        workers=plugin.get("workers"),
    )


def site_pages(docs: Path) -> list[Path]:
    """The Markdown pages under `docs`, leaving out what MkDocs leaves out by default
    (hidden files and folders, `templates/`)."""
    pages = []
    for path in sorted(docs.rglob("*")):
        relative = path.relative_to(docs)
        if (
            path.is_file()
            and path.suffix in MARKDOWN
            and not any(part.startswith(".") for part in relative.parts)
            and relative.parts[0] != "templates"
        ):
            pages.append(path)
    return pages
