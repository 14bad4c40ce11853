"""Listing pages convert only a post's excerpt, not the whole post (no MkDocs imports).

Material's blog plugin shows a post on every listing page (index, pagination, archive,
categories) by converting the post's *whole* Markdown again and keeping the HTML before
the excerpt separator (`Excerpt.render` in material/plugins/blog/structure/__init__.py,
9.8: `self.content = self.md.convert(self.markdown)`, then `split(separator, 1)`). With
36 posts that is most of a build's Markdown work, though the excerpt is a few percent of
each post.

`shorten(excerpt)` makes one `Excerpt` convert only what the listing keeps: the Markdown
up to the separator, plus the tail's definitions that the head may use (reference links,
footnotes, abbreviations), so the HTML before the separator is what the full conversion
gives. The rest of the post's HTML is still available as `excerpt.more` (the post's own
HTML after the separator), which Material's template only tests for being non-empty.

The shortcut applies only where it cannot change the head's HTML: the separator's first
occurrence in the source is a line of its own, at column 0, after a blank line (so no
list, quote or indented block spans it) and outside fenced code. Anywhere else (the
separator in code, indented, inline, missing) the excerpt converts the whole post as
Material does. If Material's `Excerpt` stops working the way this relies on (it no longer
converts through `excerpt.md.convert`, or keeps other HTML than the part before the
separator), the build fails with `ExcerptError` instead of showing wrong listings.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
# Reference links and footnotes (`[id]: ...`, `[^id]: ...`), abbreviations (`*[HTML]: ...`).
_DEFINITION = re.compile(r"^ {0,3}(\[[^\]\n]+\]|\*\[[^\]\n]+\]):")


class ExcerptError(RuntimeError):
    """Material's excerpt rendering no longer works as `shorten` assumes."""


def _lines_outside_fences(lines: list[str]):
    """(index, line) of each line not inside a fenced code block (fence lines included)."""
    fence = None
    for number, line in enumerate(lines):
        match = _FENCE.match(line)
        if fence is None:
            if match:
                fence = match[1]
            yield number, line, fence is not None
        else:
            closes = match and match[1][0] == fence[0] and len(match[1]) >= len(fence)
            if closes and not line[match.end() :].strip():
                fence = None
            yield number, line, True


def _definitions(tail: list[str]) -> list[str]:
    """The tail's definition lines (with a footnote's indented continuation lines)."""
    kept: list[str] = []
    keeping = False
    for _, line, in_fence in _lines_outside_fences(tail):
        if in_fence:
            keeping = False
            continue
        if _DEFINITION.match(line):
            kept.append(line)
            keeping = True
        elif keeping and (not line.strip() or line.startswith(("    ", "\t"))):
            kept.append(line)
        else:
            keeping = False
    return kept


def excerpt_source(markdown: str, separator: str) -> str | None:
    """The Markdown a listing needs: head, separator, the tail's definitions; or None.

    None means the shortcut does not apply and the whole source must be converted.
    """
    first = markdown.find(separator)
    if first < 0:
        return None
    lines = markdown.split("\n")
    offset = 0
    for number, line, in_fence in _lines_outside_fences(lines):
        if offset + len(line) >= first:  # the line holding the separator's first occurrence
            blank_before = number == 0 or not lines[number - 1].strip()
            if in_fence or line.rstrip() != separator or not blank_before:
                return None
            head, tail = lines[:number], lines[number + 1 :]
            return "\n".join([*head, separator, "", *_definitions(tail)]) + "\n"
        offset += len(line) + 1
    return None  # pragma: no cover (the separator was found, so some line holds it)


@dataclass
class Stats:
    """What the excerpts converted: for the benchmark's ratio and for tests."""

    shortened: int = 0  # renders that converted the excerpt only
    full: int = 0  # renders that converted the whole post
    characters: int = 0  # characters handed to Markdown.convert by excerpts
    fallbacks: list[str] = field(default_factory=list)


def shorten(
    excerpt: Any,
    stats: Stats | None = None,
    memo: Any = None,
    build_key: Callable[[], Hashable | None] = lambda: None,
) -> None:
    """Make Material's `excerpt` convert only its head on each listing page (in place).

    With a `memo` (a `memo.Memo`, under `mkdocs serve`), a head converted for the same
    listing URL, post URL and build (`build_key()`: the files' URLs and the Markdown
    configuration; None: do not memoize) is not converted again.
    """
    try:
        md, post, render = excerpt.md, excerpt.post, excerpt.render
        convert = md.convert
    except AttributeError as error:
        raise ExcerptError(f"Material's Excerpt has changed: {error}") from None
    if getattr(render, "_runnable_shortened", False):
        return
    stats = stats if stats is not None else Stats()
    state: dict[str, Any] = {}

    def shortened_convert(source: str) -> str:
        separator = state.get("separator")
        rest = getattr(post, "content", None) or ""  # the post's own HTML, for `more`
        short = excerpt_source(source, separator) if separator and separator in rest else None
        build = build_key() if memo is not None and short is not None else None
        key = (short, excerpt.file.url, post.url, build) if build is not None else None
        hit = memo.get(key) if key is not None else None
        if isinstance(hit, tuple):
            html, tokens = hit
            md.toc_tokens = copy.deepcopy(tokens)
        else:
            html = convert(short) if short is not None else None
            if key is not None and html is not None and separator in html:
                memo.put(key, (html, copy.deepcopy(getattr(md, "toc_tokens", []))))
        if html is not None and separator not in html:
            stats.characters += len(short)
            html = None  # the separator did not survive conversion: take no chances
        if html is None:
            stats.full += 1
            stats.characters += len(source)
            if separator:
                stats.fallbacks.append(getattr(getattr(post, "file", None), "src_uri", "?"))
            html = convert(source)
        else:
            stats.shortened += 1
            stats.characters += len(short)
            state["short"] = True
        state["html"] = html
        state["calls"] = state.get("calls", 0) + 1
        return html

    def shortened_render(page: Any, separator: str) -> None:
        state.clear()
        state["separator"] = separator
        render(page, separator)
        html = state.get("html")
        if state.get("calls") != 1 or excerpt.content != html.split(separator, 1)[0]:
            raise ExcerptError(
                "Material's Excerpt.render no longer converts the post once through "
                "excerpt.md.convert and keeps the HTML before the separator; update "
                "plugins/runnable/excerpts.py (or set RUNNABLE_FULL_EXCERPTS=1)"
            )
        if state.get("short"):  # Material set `more` from the short HTML: use the post's
            excerpt.more = post.content.split(separator, 1)[1]

    shortened_render._runnable_shortened = True  # type: ignore[attr-defined]
    md.convert = shortened_convert
    excerpt.render = shortened_render
