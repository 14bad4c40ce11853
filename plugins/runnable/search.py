"""Keep code and outputs out of the search index (no MkDocs imports).

Readers search for words; code is still found through the inline code in the prose. Code
blocks and outputs made most of the index's text (71% at 36 posts) and every page loads
the index. Material's search plugin skips an element carrying `data-search-exclude`
together with everything inside it, and strips `data-search-*` attributes from the page
after indexing it (material/plugins/search/plugin.py, 9.8: `Parser.handle_starttag`,
`SearchPlugin.on_page_context`), so the published HTML is unchanged.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

#: Classes of the elements left out: every highlighted code block (Pygments, with or
#: without line-number tables, exec fence or not) and the plugin's outputs and figures.
EXCLUDED = ("highlight", "highlighttable", "runnable-output", "runnable-error", "runnable-figure")
ATTRIBUTE = 'data-search-exclude="code"'

_TAG = re.compile(r'<(?:div|figure|table)\b[^>]*?\bclass="(?P<classes>[^"]*)"[^>]*>')


def exclude_code(html: str) -> str:
    """`html` with ATTRIBUTE on every element whose classes include one of EXCLUDED."""

    def mark(match: re.Match) -> str:
        tag = match[0]
        if "data-search-exclude" in tag or not set(match["classes"].split()) & set(EXCLUDED):
            return tag
        end = -2 if tag.endswith("/>") else -1
        return f"{tag[:end]} {ATTRIBUTE}{tag[end:]}"

    return _TAG.sub(mark, html)


def compact_index(path: Path) -> tuple[int, int] | None:
    """Rewrite Material's `search_index.json` as UTF-8 instead of `\\uXXXX` escapes.

    The same JSON value (JSON.parse gives the same object), a third of the bytes for
    Chinese text: Material writes it with `json.dumps` defaults, which escape every CJK
    character and every jieba word break (U+200B) as six ASCII characters. Returns the
    sizes before and after, or None when there is no index.
    """
    try:
        before = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    after = json.dumps(json.loads(before), separators=(",", ":"), ensure_ascii=False)
    path.write_text(after, encoding="utf-8")
    return len(before.encode("utf-8")), len(after.encode("utf-8"))


_MARKED = re.compile(rf"<(?P<tag>div|figure|table)\b[^>]*\s{re.escape(ATTRIBUTE)}[^>]*>")
_HEADING = re.compile(r"<h[1-6]\b")


def strip_excluded(html: str) -> str:
    """`html` without the elements `exclude_code` marked (and what they hold).

    Material's search parser skips them anyway, but only after tokenizing every tag inside
    (Pygments' spans, SVG paths): removing them first gives the same index for a fraction
    of the parsing. An element holding a heading is kept, since Material starts a section
    at a heading even inside a skipped element.
    """
    out, position = [], 0
    for match in _MARKED.finditer(html):
        if match.start() < position:
            continue  # inside an element already removed
        tag = match["tag"]
        tokens = re.compile(rf"<(/?){tag}\b[^>]*>")
        depth, end = 0, None
        for token in tokens.finditer(html, match.start()):
            depth += -1 if token[1] else 1
            if depth == 0:
                end = token.end()
                break
        if end is None or _HEADING.search(html, match.start(), end):
            continue
        out.append(html[position : match.start()])
        position = end
    out.append(html[position:])
    return "".join(out)


class _Stripped:
    """A page as Material's search index reads it, with excluded elements removed."""

    def __init__(self, page: object) -> None:
        self._page = page
        self.content = strip_excluded(page.content)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._page, name)


def strip_before_indexing(index_class: type) -> None:
    """Make `index_class.add_entry_from_context(page)` parse the page without excluded code."""
    method = index_class.add_entry_from_context  # type: ignore[attr-defined]
    if getattr(method, "_runnable_strip", False):
        return

    def add_entry_from_context(self: object, page: object) -> None:
        content = getattr(page, "content", None)
        return method(self, _Stripped(page) if isinstance(content, str) else page)

    add_entry_from_context._runnable_strip = True  # type: ignore[attr-defined]
    add_entry_from_context.__wrapped__ = method  # type: ignore[attr-defined]
    index_class.add_entry_from_context = add_entry_from_context  # type: ignore[attr-defined]
