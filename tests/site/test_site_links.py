"""Every internal link and anchor of the built site resolves; external links are well-formed.

No network here: external URLs are checked for form only (scheme, host), and nothing a page
loads by itself (images, scripts, styles, frames) may come from another host.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from site_helpers import mkdocs_config

URL_ATTRIBUTES = {"href", "src", "xlink:href", "poster", "action", "data"}
LOADED = {"img", "script", "iframe", "embed", "object", "video", "audio", "source", "track"}
LOADED_LINK_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest", "prefetch"}
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.I)


class Links(HTMLParser):
    """Ids and names a page defines, and every URL it refers to: (tag, attribute, URL, loads)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str, str, bool]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        for name in ("id", "name"):
            if name in values:
                self.ids.add(values[name])
        rel = set(values.get("rel", "").split())
        loads = tag in LOADED or (tag == "link" and bool(rel & LOADED_LINK_RELS))
        for name, value in values.items():
            if name in URL_ATTRIBUTES:
                self.urls.append((tag, name, value.strip(), loads))
            elif name == "srcset":
                for candidate in value.split(","):
                    if candidate.strip():
                        self.urls.append((tag, name, candidate.split()[0], True))


@cache
def parse(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def html_pages(site_dir: Path) -> list[Path]:
    return sorted(site_dir.rglob("*.html"))


def page_url(site_url: str, site_dir: Path, page: Path) -> str:
    """The URL a built file is served at (directory URLs for index.html)."""
    relative = page.relative_to(site_dir).as_posix()
    return site_url + relative.removesuffix("index.html")


def target_file(site_dir: Path, site_path: str, url_path: str) -> Path | None:
    """The built file an internal URL path names, or None."""
    path = unquote(url_path)
    if not path.startswith(site_path):
        return None
    file = site_dir / path[len(site_path) :]
    if path.endswith("/") or file.is_dir():
        file = file / "index.html"
    return file if file.is_file() else None


def check_external(url: str) -> str | None:
    """Why `url` is not a well-formed http(s) or mailto URL, or None if it is."""
    parts = urlsplit(url)
    if parts.scheme in {"http", "https"}:
        try:
            host = (parts.hostname or "").encode("idna").decode()
        except UnicodeError:
            host = ""
        if not HOSTNAME.match(host):
            return "no valid host"
        if re.search(r"\s", url):
            return "whitespace in URL"
        return None
    if parts.scheme == "mailto":
        return None if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", parts.path) else "bad address"
    return f"scheme {parts.scheme!r} is not http, https or mailto"


def problems(site_dir: Path) -> dict[str, list[str]]:
    """Broken internal links and anchors, and malformed or loaded external URLs, by page."""
    site_url = mkdocs_config()["site_url"]
    site = urlsplit(site_url)
    found: dict[str, list[str]] = defaultdict(list)
    for page in html_pages(site_dir):
        name = page.relative_to(site_dir).as_posix()
        base = page_url(site_url, site_dir, page)
        for tag, attribute, value, loads in parse(page).urls:
            where = f"<{tag} {attribute}={value!r}>"
            if value.startswith("data:") and attribute != "href":
                continue
            url = urljoin(base, value)
            parts = urlsplit(url)
            if parts.scheme in {"http", "https"} and parts.netloc == site.netloc:
                file = target_file(site_dir, site.path, parts.path)
                if file is None:
                    found[name].append(f"{where}: no such file in the site")
                elif file.suffix == ".html" and parts.fragment:
                    anchor = unquote(parts.fragment)
                    if anchor not in parse(file).ids:
                        found[name].append(f"{where}: no id {anchor!r}")
            elif loads:
                found[name].append(f"{where}: loads a resource from another host")
            elif reason := check_external(url):
                found[name].append(f"{where}: {reason}")
    return found


def test_site_has_pages(site_dir: Path) -> None:
    """The built site has HTML pages to check."""
    assert len(html_pages(site_dir)) > 1


def test_links_resolve(site_dir: Path) -> None:
    """Internal links point at built files and existing ids; external ones are well-formed."""
    found = problems(site_dir)
    report = "\n".join(f"{page}: {p}" for page, items in found.items() for p in items[:20])
    assert not found, f"link problems:\n{report}"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://pytorch.org/docs/stable/autograd.html#x", True),
        ("mailto:someone@example.org", True),
        ("http://", False),
        ("https://exa mple.org/", False),
        ("ftp://example.org/file", False),
        ("javascript:alert(1)", False),
    ],
)
def test_external_url_form(url: str, ok: bool) -> None:
    """The external-URL check accepts well-formed http(s)/mailto URLs and rejects others."""
    assert (check_external(url) is None) == ok
