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
