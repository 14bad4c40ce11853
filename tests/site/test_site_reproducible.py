"""A clean build (RUNNABLE_NO_CACHE=1) gives the same pages as the site under test.

The site under test is the `docs` session's build (`RUNNABLE_SITE_DIR`). On CI, a fresh
clone has no cache, so that build executed every fence too: two clean builds compared, as
DESIGN.md asks, for the price of one extra. Locally the site usually came from the cache:
then equal pages prove that executing now reproduces what the cache replays.

Slow (a full build, every fence executed): run by `nox -s e2e`.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

from site_helpers import build_site

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


def test_a_clean_build_gives_the_same_pages(site_dir: Path, tmp_path: Path) -> None:
    """Every blog page (and every other page but the timing report) is byte-identical.

    The clean build runs in the repository itself (same paths as the site under test) into
    a temporary site folder; with RUNNABLE_NO_CACHE=1 it neither reads nor writes the cache.
    Stripped before comparing, because the build date is their content: <lastmod> in
    sitemap.xml; the channel's <pubDate> and <lastBuildDate> in the RSS feeds; the items'
    <pubDate> in feed_rss_updated.xml and date_modified in the JSON feeds (with use_git:
    false the rss plugin uses the build time as a post's update time). Not compared: the
    execution report under runnable/ (its page, report.json and search entries hold run
    times) and the theme's assets (copied, not built).
    """
    clean = tmp_path / "clean-site"
    build_site(clean, env={"RUNNABLE_NO_CACHE": "1"})
    first, second = comparable(site_dir), comparable(clean)
    assert any(name.startswith("blog/") for name in first), "no blog pages were built"
    assert sorted(first) == sorted(second), "the clean build made different files"
    differing = [name for name in first if first[name] != second[name]]
    diffs = []
    for name in differing[:5]:
        lines = difflib.unified_diff(
            first[name].splitlines(), second[name].splitlines(), name, name, n=0, lineterm=""
        )
        diffs.append("\n".join(line[:300] for line in list(lines)[:12]))
    assert not differing, f"{len(differing)} files differ: {differing}\n" + "\n".join(diffs)
