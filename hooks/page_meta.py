"""Each post describes itself: `<meta name="description">`, Open Graph and Twitter card tags.

A post's description is its front matter `description`, else the plain text of its excerpt
(what comes before `<!-- more -->`, title left out), trimmed to about 150 characters at a
sentence end. Material's base.html prints `page.meta.description` without escaping (MkDocs
renders themes with autoescape off), so the value kept there is HTML-escaped text.
`overrides/main.html` adds the Open Graph and Twitter tags from the same values. Nothing is
fetched, no image is made.
"""

from __future__ import annotations

import html
import re

from mkdocs.plugins import event_priority

LIMIT = 150
SEPARATOR = "<!-- more -->"

_DROP = re.compile(
    r"<(h1|svg|script|style|button)\b.*?</\1>|<a [^>]*class=\"headerlink\".*?</a>", re.DOTALL
)
_BLOCK_TAG = re.compile(r"</?(?:p|div|li|ul|ol|br|h[1-6]|tr|td|th|table|pre|blockquote)\b[^>]*>")
_TAG = re.compile(r"<[^>]+>")
_SENTENCE_END = re.compile(r"[。！？!?](?=\s|$)|[。！？]")


def plain_text(fragment: str) -> str:
    """The text a reader sees in an HTML fragment, whitespace collapsed."""
    text = _TAG.sub("", _BLOCK_TAG.sub(" ", _DROP.sub(" ", fragment)))
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


def trim(text: str, limit: int = LIMIT) -> str:
    """`text` cut to at most `limit` characters: at the last sentence end, else with an ellipsis."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 2:
        return head[: ends[-1]].strip()
    return head[: limit - 1].rstrip() + "…"


def is_post(page) -> bool:  # noqa: ANN001 (MkDocs page)
    return page.file.src_uri.startswith("blog/posts/")


# After every other on_page_content handler (the RSS plugin reads the description there
# and keeps making its own abstract from the HTML when a post sets none).
@event_priority(-100)
def on_page_content(html_: str, *, page, config, files):  # noqa: ANN001 (MkDocs hook)
    given = page.meta.get("description")
    if given:
        text = plain_text(str(given))
    elif is_post(page) and SEPARATOR in html_:
        text = trim(plain_text(html_.split(SEPARATOR, 1)[0]))
    else:
        return html_
    page.meta["description"] = html.escape(text, quote=True)
    if is_post(page):
        page.meta["og_type"] = "article"
    return html_
