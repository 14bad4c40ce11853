"""Page-weight budgets: every post and the home page stay light enough for a phone.

Read from the built site, as GitHub Pages serves it (gzip, level 6):

- DOM_ELEMENTS: elements in the page's HTML (Material's JavaScript adds about a hundred,
  checked in Chromium as well). Style and layout time grows with it; Pygments spans of long
  listings are most of a post's elements.
- HTML_GZIP: the page's HTML, compressed.
- FIRST_LOAD_GZIP: what the page needs before it is usable, compressed: its HTML, the
  stylesheets, scripts, icon and eagerly loaded images it references. The search index is
  not part of it: it is requested only when the reader turns to search (checked in
  test_site_browser.py, with the elements in Chromium, during the post's phone visit).

Today's posts (figures as <img> files) measure at most ~3,500 elements, ~31 KB of HTML and
~92 KB first load; Material's CSS and JavaScript alone are ~61 KB of it. Lighthouse's mobile
performance falls as elements grow (style and layout in Material's start-up), so the
budgets stop a post from drifting far above what scores today; `nox -s lighthouse` gives
the scores themselves.
"""

from __future__ import annotations

import gzip
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from site_helpers import posts

DOM_ELEMENTS = 4_000
HTML_GZIP = 40 * 1024
FIRST_LOAD_GZIP = 110 * 1024
BROWSER_EXTRA_ELEMENTS = 300  # what Material's JavaScript may add (copy buttons, tooltips)

POSTS = posts()
PAGES = [("home", "")] + [(post.slug, post.url) for post in POSTS]


class _Page(HTMLParser):
    """Counts elements and collects what the page loads before it is usable."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements = 0
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements += 1
        a = {k: v or "" for k, v in attrs}
        rel = set(a.get("rel", "").split())
        if tag == "link" and rel & {"stylesheet", "icon", "preload", "modulepreload"}:
            self.loads.append(a.get("href", ""))
        elif a.get("src") and (tag == "script" or tag == "img" and a.get("loading") != "lazy"):
            self.loads.append(a["src"])


def gzipped(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=6, mtime=0))


def read_page(site: Path, url: str) -> tuple[_Page, bytes]:
    html = (site / url / "index.html").read_bytes()
    page = _Page()
    page.feed(html.decode("utf-8"))
    page.close()
    return page, html


def local_file(site: Path, page_url: str, ref: str) -> Path | None:
    """The file in the site that `ref` (as written in the page at `page_url`) points to."""
    parts = urlsplit(urljoin("http://site/" + page_url, ref))
    if parts.scheme != "http" or parts.hostname != "site":
        return None  # data: URIs cost nothing extra; other hosts are e2e's business
    return site / parts.path.lstrip("/")


@pytest.mark.parametrize(("name", "url"), PAGES, ids=[name for name, _ in PAGES])
def test_page_within_budget(name: str, url: str, site_dir: Path) -> None:
    """DOM elements, gzipped HTML and gzipped first-load bytes are within their budgets."""
    page, html = read_page(site_dir, url)
    first_load = gzipped(html)
    for ref in dict.fromkeys(page.loads):  # each file once, as the browser fetches it
        path = local_file(site_dir, url, ref)
        if path is not None:
            assert path.is_file(), f"{name} loads {ref}, which the site lacks"
            first_load += gzipped(path.read_bytes())
    over = []
    if page.elements > DOM_ELEMENTS:
        over.append(f"{page.elements} DOM elements > {DOM_ELEMENTS}")
    if gzipped(html) > HTML_GZIP:
        over.append(f"HTML {gzipped(html)} B gzipped > {HTML_GZIP}")
    if first_load > FIRST_LOAD_GZIP:
        over.append(f"first load {first_load} B gzipped > {FIRST_LOAD_GZIP}")
    assert not over, f"{name} is over budget: " + "; ".join(over)
