"""Read time for Chinese posts.

Material counts words by splitting on non-word characters, so a Chinese paragraph with
no spaces counts as one word and every post reads in "1 min". Here Chinese characters
count at a reading speed of 400 per minute, other words at 265, figures at 12 s each.
"""

from __future__ import annotations

import functools
import math
import re

from mkdocs.plugins import event_priority

CHARS_PER_MINUTE = 400
WORDS_PER_MINUTE = 265
SECONDS_PER_FIGURE = 12

_HIDDEN = re.compile(r"<(svg|math|script|style)\b.*?</\1>", re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z0-9_]+")


@functools.lru_cache(maxsize=4096)  # a function of the HTML alone: `mkdocs serve` reuses it
def minutes(html: str) -> int:
    figures = html.count("<figure")
    text = _TAG.sub(" ", _HIDDEN.sub(" ", html))
    seconds = (
        len(_CJK.findall(text)) / CHARS_PER_MINUTE * 60
        + len(_WORD.findall(text)) / WORDS_PER_MINUTE * 60
        + figures * SECONDS_PER_FIGURE
    )
    return max(1, math.ceil(seconds / 60))


@event_priority(10)  # before the blog plugin's handler (0), which keeps a read time already set
def on_page_content(html: str, *, page, config, files):  # noqa: ANN001 (MkDocs hook)
    post_config = getattr(page, "config", None)
    if post_config is not None and hasattr(post_config, "readtime") and not post_config.readtime:
        post_config.readtime = minutes(html)
    return html
