"""Sharded execution: disjoint, covering, balanced shares whose cache folders merge by copying."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fixture_site import Site, fence
from hypothesis import given
from hypothesis import strategies as st

from plugins.runnable import shards
from plugins.runnable.cache import Cache

#: Fixture builds and shards import this checkout's plugin (not another installed copy).
REPO = Path(__file__).resolve().parents[2]
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}

costs = st.dictionaries(
    st.text("abcdefgh/", min_size=1, max_size=6).map(lambda s: s + ".md"),
    st.floats(0, 100, allow_nan=False) | st.integers(0, 5).map(float),
    max_size=30,
)


@given(costs=costs, n=st.integers(1, 7), seed=st.integers(0, 2**32 - 1))
def test_shares_are_disjoint_cover_every_page_and_agree(costs, n, seed) -> None:
    """Every page lands in exactly one share, whatever order a shard lists the pages in."""
    shares = shards.assign(costs, n)
    assert len(shares) == n
    placed = [page for share in shares for page in share]
    assert sorted(placed) == sorted(costs)
    shuffled = list(costs.items())
    random.Random(seed).shuffle(shuffled)
    assert shards.assign(dict(shuffled), n) == shares


@given(costs=costs, n=st.integers(1, 7))
def test_largest_share_is_within_one_page_of_the_ideal(costs, n) -> None:
    """Greedy placement: the largest share ≤ total / n + (1 - 1/n) × the largest page."""
    loads = [sum(costs[p] for p in share) for share in shards.assign(costs, n)]
    largest_page = max(costs.values(), default=0.0)
    assert max(loads) <= sum(costs.values()) / n + (1 - 1 / n) * largest_page + 1e-6


def test_estimates_use_recorded_times_else_fence_counts() -> None:
    """A recorded page costs its last run (scaled to its fences now); a new one, fences × mean."""
    records = {
        "a.md": {"seconds": 6.0, "fences": 2},
        "b.md": {"seconds": 2.0, "fences": 2},
        "c.md": None,
    }
    assert shards.estimates({"a.md": 3, "c.md": 5}, records) == {"a.md": 9.0, "c.md": 10.0}
    assert shards.estimates({"c.md": 5}, {"c.md": None}) == {"c.md": 5.0}


def test_parse_shard_argument() -> None:
    """K/N with 1 ≤ K ≤ N is accepted; anything else is an error."""
    assert shards.parse("2/3") == (2, 3)
    for bad in ("0/3", "4/3", "3", "a/b", "1/0"):
        with pytest.raises(ValueError):
            shards.parse(bad)


def test_site_pages_found_like_mkdocs(tmp_path: Path) -> None:
    """docs_dir from mkdocs.yml (Python tags and all); hidden files and templates/ left out."""
    (tmp_path / "mkdocs.yml").write_text(
        "site_name: x\ndocs_dir: pages\nmarkdown_extensions:\n  - toc:\n"
        "      slugify: !!python/object/apply:pymdownx.slugs.slugify {kwds: {case: lower}}\n"
        "plugins:\n  - search\n  - runnable:\n      cache_dir: here\n      timeout: 9\n"
    )
    for name in ("a.md", "sub/b.markdown", ".hidden/c.md", "templates/d.md", "e.txt", ".f.md"):
        (tmp_path / "pages" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pages" / name).write_text("# x\n")
    config = shards.read_config(tmp_path / "mkdocs.yml")
    assert config.docs == (tmp_path / "pages").resolve()
    assert (config.cache_dir, config.timeout, config.workers) == (tmp_path / "here", 9, None)
    pages = [p.relative_to(config.docs).as_posix() for p in shards.site_pages(config.docs)]
    assert pages == ["a.md", "sub/b.markdown"]


def test_page_records_merge_by_copying_in_either_order(tmp_path: Path) -> None:
    """Two folders' records of one page copied together, either way round: the newer wins."""
    older, newer = Cache(tmp_path / "older"), Cache(tmp_path / "newer")
    older.remember("docs/a.md", "1" * 64, seconds=1.0)
    newer.remember("docs/a.md", "2" * 64, seconds=2.0)
    for name, folders in {"ab": (older, newer), "ba": (newer, older)}.items():
        for cache in folders:
            shutil.copytree(cache.directory, tmp_path / name, dirs_exist_ok=True)
        assert Cache(tmp_path / name).last("docs/a.md")["seconds"] == 2.0
    newer.remember("docs/a.md", "3" * 64, seconds=3.0)  # a folder keeps only its latest
    assert [p.stem for p in newer.directory.glob("pages/*/*.json")] == ["3" * 64]


#: Pages and the seconds their fences sleep: fence counts mislead, recorded times do not.
PAGES = {
    "p0.md": [1.2],
    "p1.md": [0.8],
    "p2.md": [0.4],
    "p3.md": [0.1] * 4,
    "p4.md": [0.1] * 4,
    "p5.md": [0.1] * 3,
    "p6.md": [0.1] * 3,
    "p7.md": [0.1] * 2,
}
STALE_KEY = "f" * 64


def shard_records(folder: Path) -> dict[str, dict]:
    """The pages a shard executed (its new records), by page."""
    found = {}
    for path in folder.glob("pages/*/*.json"):
        record = json.loads(path.read_text())
        if record["key"] != STALE_KEY:
            found[record["page"]] = record
    return found


def test_three_shards_merge_into_a_fully_cached_build(site: Site, tmp_path: Path) -> None:
    """Shards 1/3..3/3 run disjoint shares of all pages, balanced by recorded times; merged, nothing runs."""
    config = site.root / "mkdocs.yml"
    config.write_text(config.read_text().replace("workers: 2", "workers: 1"))
    for name, sleeps in PAGES.items():
        site.page(
            name,
            f"# {name}\n\n"
            + "".join(
                fence(f"import time\ntime.sleep({s})\nprint({i})") for i, s in enumerate(sleeps)
            ),
        )
    # An earlier run's records (another key, so every page misses): its times guide the split.
    base = Cache(tmp_path / "base")
    for name, sleeps in PAGES.items():
        base.remember(
            f"docs/{name}", STALE_KEY, seconds=sum(sleeps), fences=len(sleeps), material={}
        )
    folders = [tmp_path / f"shard{k}" for k in (1, 2, 3)]
    for folder in folders:
        shutil.copytree(base.directory, folder)

    def run(k: int) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "plugins.runnable", "--shard", f"{k}/3"]
        return subprocess.run(
            [*command, "--cache-dir", str(folders[k - 1])],
            cwd=site.root,
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=300,
        )

    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(run, (1, 2, 3)))
    for process in runs:
        assert process.returncode == 0, process.stdout + process.stderr
    executed = [shard_records(folder) for folder in folders]
    names = [set(records) for records in executed]
    assert sum(map(len, names)) == len(set().union(*names)) == len(PAGES)  # disjoint, covering
    assert set().union(*names) == {f"docs/{name}" for name in PAGES}
    assert not (site.root / ".cache").exists()  # a shard writes its cache folder, nothing else

    recorded = [sum(r["seconds"] for r in records.values()) for records in executed]
    ideal = max(sum(map(sum, PAGES.values())) / 3, max(map(sum, PAGES.values())))
    assert max(recorded) <= 1.25 * ideal, (recorded, names)
    # The power of that check: splitting these pages by fence count would break it.
    by_count = shards.assign({n: float(len(s)) for n, s in PAGES.items()}, 3)
    assert max(sum(sum(PAGES[n]) for n in share) for share in by_count) > 1.25 * ideal

    merged = site.root / ".cache/runnable"
    for folder in folders:
        shutil.copytree(folder, merged, dirs_exist_ok=True)
    for name in PAGES:  # whichever folder came last, a page's latest record is its new key
        assert Cache(merged).last(f"docs/{name}")["key"] != STALE_KEY
    build = site.build()
    assert build.returncode == 0, build.log
    assert build.statuses() == dict.fromkeys(PAGES, "cached")
