"""Two clean builds with RUNNABLE_NO_CACHE=1 produce identical pages (seeded, deterministic).

Slow (two full builds, every fence executed): run by `nox -s e2e`.
"""

from __future__ import annotations

import difflib
import json
import re
import shutil
from pathlib import Path

from site_helpers import ROOT, build_site

# Left out of the copy that is built: outputs, caches, environments, tests.
NOT_COPIED = {".git", ".nox", ".venv", ".cache", "site", "build", "test-artifacts", "tests"}
NOT_COPIED |= {".hypothesis", ".pytest_cache", ".ruff_cache", "runnable_notes.egg-info"}

# What records when or how fast the build ran, rather than what it built:
TIMED = "runnable/"  # the execution report (page, report.json, its search entries): run times
LASTMOD = re.compile(r"<lastmod>[^<]*</lastmod>")  # sitemap.xml: the build date of each page
BUILD_TIME = re.compile(r"<(pubDate|lastBuildDate)>[^<]*</\1>")  # RSS channel: the build time


def strip_build_time(name: str, text: str) -> str:
    """`text` without what only the build date or the run times change."""
    if name == "search/search_index.json":
        index = json.loads(text)
        index["docs"] = [d for d in index["docs"] if not d["location"].startswith(TIMED)]
        return json.dumps(index, ensure_ascii=False, sort_keys=True, indent=1)
    if name.startswith("feed_rss"):
        channel, items = text.split("<item>", 1) if "<item>" in text else (text, "")
        return BUILD_TIME.sub("", channel) + "<item>" + items  # items keep their post dates
    return LASTMOD.sub("", text) if name.startswith("sitemap") else text


def comparable(site: Path) -> dict[str, str]:
    """Every HTML page, the search index, sitemap and feeds, build time stripped."""
    files = {}
    for path in sorted(site.rglob("*")):
        name = path.relative_to(site).as_posix()
        if path.suffix not in {".html", ".xml", ".json"} or name.startswith(("assets/", TIMED)):
            continue
        files[name] = strip_build_time(name, path.read_text(encoding="utf-8"))
    return files


def copy_repository(target: Path) -> Path:
    """A clean copy of the working tree (no caches, no site), so both builds start equal."""

    def ignore(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == ROOT
        return [n for n in names if n == "__pycache__" or (top and n in NOT_COPIED)]

    shutil.copytree(ROOT, target, ignore=ignore)
    return target


def test_two_clean_builds_are_identical(tmp_path: Path) -> None:
    """Every blog page (and every other page but the timing report) is byte-identical.

    Stripped before comparing, because the build date is their content: <lastmod> in
    sitemap.xml; the channel's <pubDate> and <lastBuildDate> in the RSS feeds; the items'
    <pubDate> in feed_rss_updated.xml and date_modified in the JSON feeds (with use_git:
    false the rss plugin uses the build time as a post's update time). Not compared: the
    execution report under runnable/ (its page, report.json and search entries hold run
    times) and the theme's assets (copied, not built).
    """
    source = copy_repository(tmp_path / "src")
    sites = []
    for n in (1, 2):
        site = tmp_path / f"site{n}"
        build_site(site, cwd=source, env={"RUNNABLE_NO_CACHE": "1"})
        sites.append(comparable(site))
    first, second = sites
    assert any(name.startswith("blog/") for name in first), "no blog pages were built"
    assert sorted(first) == sorted(second), "the two builds made different files"
    differing = [name for name in first if first[name] != second[name]]
    diffs = []
    for name in differing[:5]:
        lines = difflib.unified_diff(
            first[name].splitlines(), second[name].splitlines(), name, name, n=0, lineterm=""
        )
        diffs.append("\n".join(line[:300] for line in list(lines)[:12]))
    assert not differing, f"{len(differing)} files differ: {differing}\n" + "\n".join(diffs)
