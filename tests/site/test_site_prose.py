"""The writing itself: Chinese typography and the article arc, checked in the Markdown source.

These need no built site; they catch the slips an expert review found in the first posts
(hard-wrapped Chinese paragraphs, ASCII quotes around Chinese text, references without links)
so that no later post repeats them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from site_helpers import DOCS, POSTS_DIR, Post, posts

POSTS = posts()
IDS = [p.slug for p in POSTS]
PAGES = sorted(DOCS.rglob("*.md"))

#: The arc every post follows, as `## ` headings in this order (others may sit between).
ARC = ("引言", "原理", "从零实现", "验证", "实验", "小结", "参考")

CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_FENCED = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_WRAP = re.compile(rf"[{CJK}]\n[ \t]*[{CJK}]")
_INLINE_CODE = re.compile(r"`+[^`\n]*`+")
_SYNTAX_LINE = re.compile(r"^[ \t]*(?:!!!|\?\?\?\+?|===)[ \t].*$", re.MULTILINE)
_ASCII_QUOTED = re.compile(rf'"[^"\n]*[{CJK}][^"\n]*"')
_SPACED_BOLD = re.compile(rf"[{CJK}]\*{{1,2}} +[{CJK}]|[{CJK}] +\*{{1,2}}[{CJK}]")
_LINK = re.compile(r"\[[^\]]+\]\((?:https?://|\.\./|/)[^)\s]+\)")


def prose(markdown: str) -> str:
    """The Markdown without front matter, fenced code and HTML comments (blank lines kept)."""
    blank = lambda match: "\n" * match[0].count("\n")  # noqa: E731 (keeps line numbers)
    text = _FRONT_MATTER.sub(blank, markdown)
    return _COMMENT.sub(blank, _FENCED.sub(blank, text))


def line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def relative(path: Path) -> str:
    return path.relative_to(DOCS.parent).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=[relative(p) for p in PAGES])
def test_no_hard_wrapped_chinese(page: Path) -> None:
    """No line break between two CJK characters: the browser would show it as a stray space."""
    text = prose(page.read_text(encoding="utf-8"))
    where = [f"{relative(page)}:{line_of(text, m.start())}" for m in _WRAP.finditer(text)]
    assert not where, "join these lines (one paragraph, one line): " + ", ".join(where)


@pytest.mark.parametrize("page", PAGES, ids=[relative(p) for p in PAGES])
def test_chinese_quotation_marks(page: Path) -> None:
    """Chinese text is quoted with “…”, never ASCII "…" (admonition and tab titles aside)."""
    text = _INLINE_CODE.sub("", _SYNTAX_LINE.sub("", prose(page.read_text(encoding="utf-8"))))
    text = re.sub(r"<[^>\n]+>", "", text)  # attributes of inline HTML are not prose
    where = [
        f"{relative(page)}:{line_of(text, m.start())}: {m[0]}" for m in _ASCII_QUOTED.finditer(text)
    ]
    assert not where, "use “…” around Chinese text:\n" + "\n".join(where)


@pytest.mark.parametrize("page", PAGES, ids=[relative(p) for p in PAGES])
def test_no_space_around_emphasis_in_chinese(page: Path) -> None:
    """`**粗体。**正文`, not `**粗体。** 正文`: the space would show between two Chinese characters."""
    text = _INLINE_CODE.sub("x", prose(page.read_text(encoding="utf-8")))  # `a` ** b is fine
    where = [
        f"{relative(page)}:{line_of(text, m.start())}: {m[0]}" for m in _SPACED_BOLD.finditer(text)
    ]
    assert not where, "drop the space next to the emphasis marks:\n" + "\n".join(where)


def sections(post: Post) -> list[tuple[str, str]]:
    """The post's `## ` sections: (heading, body) in order."""
    parts = re.split(r"^## +(.+?)[ \t]*$", prose(post.markdown), flags=re.MULTILINE)
    return list(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_post_follows_the_arc(post: Post) -> None:
    """A post has the sections 引言 → 原理 → 从零实现 → 验证 → 实验 → 小结 → 参考, in order."""
    headings = [heading for heading, _ in sections(post)]
    found = [name for name in ARC for h in headings if h.startswith(name)]
    arc_order = [name for h in headings for name in ARC if h.startswith(name)]
    assert found == list(ARC), f"missing sections: {[n for n in ARC if n not in found]}"
    assert arc_order == list(ARC), f"sections out of order: {arc_order}"


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_references_are_links(post: Post) -> None:
    """Every entry of a post's 参考 section links to its source."""
    body = next(body for heading, body in sections(post) if heading.startswith("参考"))
    entries = re.findall(r"^[ \t]*(?:[-*+]|\d+\.)[ \t]+(.+)$", body, flags=re.MULTILINE)
    assert entries, "the 参考 section lists no references"
    unlinked = [entry for entry in entries if not _LINK.search(entry)]
    assert not unlinked, "references without a link:\n" + "\n".join(unlinked)


def test_posts_dir_exists() -> None:
    """The checks above have posts to check."""
    assert POSTS and POSTS_DIR.is_dir()
