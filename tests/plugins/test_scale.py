"""Scale work (issue 9): excerpts converted once, code kept out of search, serve memos.

Listing pages must be byte-for-byte what Material renders when it converts whole posts;
the search index must hold the prose and not the code; a page served after an edit under
`mkdocs serve` (memos on) must equal a fresh `mkdocs build` of the same sources.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import markdown
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from serve import Server, append_paragraph, comment_in_section  # noqa: E402

from plugins.runnable.excerpts import excerpt_source  # noqa: E402
from plugins.runnable.memo import Memo, fingerprint, pygments_key  # noqa: E402
from plugins.runnable.search import exclude_code  # noqa: E402

SEP = "<!-- more -->"
EXTENSIONS = ["footnotes", "abbr", "toc", "attr_list", "md_in_html", "tables", "admonition"]


def head_html(source: str) -> str:
    html = markdown.Markdown(extensions=EXTENSIONS).convert(source)
    return html.split(SEP, 1)[0]


# -- excerpt_source: the head's HTML is what the whole post gives ----------------------

BLOCKS = [
    "Plain paragraph with *emphasis* and `code`.",
    "A footnote reference[^n].",
    "A [reference link][r] and an [inline one](https://example.org/).",
    "HTML is an abbreviation here.",
    "- item one\n- item two",
    "- loose one\n\n- loose two",
    "1. first\n2. second",
    "> quoted\n> text",
    "## A heading",
    "## A heading",
    "```python\nprint('<!-- more -->')\n```",
    "    indented code",
    "| a | b |\n| - | - |\n| 1 | 2 |",
    "!!! note\n    An admonition.",
    "[^n]: The footnote,\n    continued on an indented line.",
    "[r]: https://example.org/ref",
    "*[HTML]: Hyper Text Markup Language",
    '<div markdown="1">\n\nInside **HTML**.\n\n</div>',
]
SEPARATORS = [SEP, f"  {SEP}", f"Text {SEP} inline", f"```\n{SEP}\n```"]


@settings(max_examples=300, deadline=None)
@example(head=[BLOCKS[1], BLOCKS[2], BLOCKS[3]], tail=BLOCKS[14:17], separator=SEP, glue="\n\n")
@example(head=[BLOCKS[5]], tail=[BLOCKS[4], BLOCKS[14]], separator=SEP, glue="\n")
@given(
    head=st.lists(st.sampled_from(BLOCKS), max_size=6),
    tail=st.lists(st.sampled_from(BLOCKS), max_size=6),
    separator=st.sampled_from(SEPARATORS),
    glue=st.sampled_from(["\n\n", "\n"]),
)
def test_excerpt_source_keeps_the_head_html(head, tail, separator, glue) -> None:
    """Where the shortcut applies, the HTML before the separator equals the whole post's."""
    source = glue.join([*head, separator, *tail]) + "\n"
    short = excerpt_source(source, SEP)
    if short is not None:
        assert head_html(short) == head_html(source)
        assert SEP in markdown.Markdown(extensions=EXTENSIONS).convert(short)


def test_excerpt_source_cases() -> None:
    """The shortcut applies to a separator line of its own, never inside code or a list."""
    tail = "\n\nLong tail.\n\n[^a]: Note.\n\n*[CPU]: Processor\n\n```\n[x]: not-a-def\n```\n"
    short = excerpt_source(f"Intro[^a] CPU.\n\n{SEP}{tail}", SEP)
    assert short.rstrip() == f"Intro[^a] CPU.\n\n{SEP}\n\n[^a]: Note.\n\n*[CPU]: Processor"
    assert excerpt_source(f"```\n{SEP}\n```\n\n{SEP}\n", SEP) is None  # first one is code
    assert excerpt_source(f"- a\n  {SEP}\n- b\n", SEP) is None
    assert excerpt_source(f"para\n{SEP}\n", SEP) is None  # no blank line before
    assert excerpt_source("no separator\n", SEP) is None


# -- search: code blocks and outputs are excluded --------------------------------------


def test_exclude_code_marks_code_outputs_and_figures_only() -> None:
    """Highlighted blocks, outputs and figures get data-search-exclude; prose does not."""
    html = (
        '<p>Text <code>inline</code></p><div class="language-python highlight"><pre>x</pre></div>'
        '<div class="runnable-output"><p>out</p></div><figure class="runnable-figure">'
        '<svg></svg></figure><div class="admonition note"><p>n</p></div>'
        '<table class="highlighttable"><tr><td>1</td></tr></table>'
    )
    marked = exclude_code(html)
    assert marked.count('data-search-exclude="code"') == 4
    assert '<div class="admonition note">' in marked and "<p>Text <code>inline</code></p>" in marked
    assert exclude_code(marked) == marked  # idempotent
    # Material strips the attributes after indexing, leaving the original HTML
    assert re.sub(r"\s?data-search-\w+=\"[^\"]+\"", "", marked) == html


# -- memos: keys change with everything that matters -----------------------------------


def test_memo_keys_follow_content() -> None:
    """Fingerprints and Pygments keys differ when any input differs, and only then."""
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    lexer = get_lexer_by_name("python", stripnl=False)
    key = pygments_key("x = 1", lexer, HtmlFormatter(hl_lines=[1]))
    assert key == pygments_key(
        "x = 1", get_lexer_by_name("python", stripnl=False), HtmlFormatter(hl_lines=[1])
    )
    assert key != pygments_key("x = 2", lexer, HtmlFormatter(hl_lines=[1]))
    assert key != pygments_key("x = 1", lexer, HtmlFormatter(hl_lines=[2]))
    assert key != pygments_key(
        "x = 1", get_lexer_by_name("python", stripnl=True), HtmlFormatter(hl_lines=[1])
    )

    def slugify(case):
        return lambda text: text.lower() if case == "lower" else text

    assert fingerprint({"toc": {"slugify": slugify("lower")}}) == fingerprint(
        {"toc": {"slugify": slugify("lower")}}
    )
    assert fingerprint({"toc": {"slugify": slugify("lower")}}) != fingerprint(
        {"toc": {"slugify": slugify("upper")}}
    )
    assert fingerprint(Memo(3)) != fingerprint(Memo(4))  # objects by their fields
    assert fingerprint(object()) is None and fingerprint(iter([])) is None  # cannot tell
    memo = Memo(size=2)
    for k in "abc":
        memo.put(k, k)
    assert list(memo.data) == ["b", "c"]


# -- a Material blog: listings, search index, serve vs build ---------------------------

CONFIG = """\
site_name: blog fixture
site_url: {site_url}
theme:
  name: material
  language: zh
plugins:
  - search
  - blog:
      blog_dir: .
      post_excerpt: required
      pagination_per_page: 2
      post_url_format: "posts/{{slug}}"
  - runnable:
      workers: 1
markdown_extensions:
  - toc:
      permalink: true
  - abbr
  - attr_list
  - footnotes
  - md_in_html
  - pymdownx.highlight
  - pymdownx.superfences
  - pymdownx.tabbed:
      alternate_style: true
"""

POST = """\
---
date: 2024-0{month}-0{day}
categories:
  - {category}
---

# Post {n}

Intro {n} with a footnote[^f] and a [link][ref] about CPU.

{SEP}

## Details {n}

Body text 正文内容第{n}段 and [another post](post-{other}.md#details-{other}).

```python exec="on" source="above" result="text"
--8<-- "snippets/mod{n}.py:show"
print(answer())
```

```text
plain code block {n}
```

[^f]: Footnote {n}.
[ref]: https://example.org/{n}
*[CPU]: Central Processing Unit
"""

MODULE = """\
# --8<-- [start:show]
def answer():
    return {n}
# --8<-- [end:show]
"""


def write_blog(root: Path, posts: int = 5, site_url: str = "https://example.org/") -> None:
    (root / "docs/posts").mkdir(parents=True, exist_ok=True)
    (root / "snippets").mkdir(exist_ok=True)
    (root / "mkdocs.yml").write_text(CONFIG.format(site_url=site_url), encoding="utf-8")
    (root / "docs/index.md").write_text("# Blog\n", encoding="utf-8")
    for n in range(1, posts + 1):
        text = POST.format(
            n=n,
            month=1 + n % 3,
            day=n,
            category="甲" if n % 2 else "乙",
            other=1 + n % posts,
            SEP=SEP,
        )
        (root / f"docs/posts/post-{n}.md").write_text(text, encoding="utf-8")
        (root / f"snippets/mod{n}.py").write_text(MODULE.format(n=n), encoding="utf-8")


def build(root: Path, out: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ.update({"NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT), **env})
    process = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--verbose", "-d", out],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    return process.stdout + process.stderr


def html_files(site: Path) -> dict[str, str]:
    return {
        p.relative_to(site).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(site.rglob("*.html"))
    }


@pytest.fixture(scope="module")
def blog(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("blog")
    write_blog(root)
    return root


def test_listings_equal_material_full_conversion(blog: Path) -> None:
    """Every page (listings included) is identical with the excerpt shortcut on and off."""
    log = build(blog, "site-short")
    build(blog, "site-full", RUNNABLE_FULL_EXCERPTS="1")
    short, full = html_files(blog / "site-short"), html_files(blog / "site-full")
    assert short.keys() == full.keys()
    listings = [
        p for p in short if p == "index.html" or "/page/" in p or "category" in p or "archive" in p
    ]
    assert len(listings) >= 5, listings
    assert "Footnote 1" not in short["index.html"]  # only the excerpt is shown
    assert "fnref:f" in short["index.html"]  # its footnote reference still resolved
    assert '<abbr title="Central Processing Unit">CPU</abbr>' in short["index.html"]
    for page in short:
        if not page.startswith("runnable/"):  # the report: executed first, cached then
            assert short[page] == full[page], page
    assert re.search(r"excerpts: 1\d shortened, 0 converted whole", log), log[-2000:]


def test_search_index_has_prose_not_code(blog: Path) -> None:
    """The index holds headings, prose and inline code; no code block, output or fence."""
    site = blog / "site-short"
    if not site.exists():
        build(blog, "site-short")
    raw = (site / "search/search_index.json").read_text(encoding="utf-8")
    docs = raw[raw.index('"docs"') :]
    assert "正文" in docs and not re.search(r"\\u(200b|[4-9][0-9a-f]{3})", docs)  # as UTF-8
    text = " ".join(d["title"] + " " + d["text"] for d in json.loads(raw)["docs"])
    text = text.replace("\u200b", "")  # jieba's word breaks
    assert "正文内容" in text and "Details" in text and "answer" not in text
    assert "plain code block" not in text and "return" not in text
    page = (site / "posts/post-1/index.html").read_text(encoding="utf-8")
    assert "data-search-exclude" not in page  # Material stripped the markers


def test_served_rebuild_equals_fresh_build(tmp_path: Path) -> None:
    """After a prose edit and a module edit under serve, pages equal a fresh build's."""
    root = tmp_path / "served"
    write_blog(root, posts=3)
    env = {"PYTHONPATH": str(ROOT)}
    with Server(root, env=env, timeout=300) as server:
        write_blog(tmp_path / "fresh", posts=3, site_url=server.base)  # same URLs as served
        post = root / "docs/posts/post-2.md"
        server.time_edit("posts/post-2/", append_paragraph(post, "新增的一句话MARK1。"), "MARK1")
        module = root / "snippets/mod2.py"
        server.time_edit("posts/post-2/", comment_in_section(module, "show", "MARK2"), "MARK2")
        served = {
            page: server.get(page).decode("utf-8")
            for page in (
                "posts/post-2/",
                "posts/post-1/",
                "",
                "page/2/",
                "search/search_index.json",
            )
        }
        report = json.loads(server.get("runnable/report.json"))
    executed = [p["page"] for p in report["pages"] if p["status"] == "executed"]
    assert executed == ["docs/posts/post-2.md"] or executed == ["posts/post-2.md"], executed
    fresh = tmp_path / "fresh"
    (fresh / "docs/posts/post-2.md").write_text(post.read_text(encoding="utf-8"), encoding="utf-8")
    (fresh / "snippets/mod2.py").write_text(module.read_text(encoding="utf-8"), encoding="utf-8")
    build(fresh, "site")
    for page, html in served.items():
        name = page + "index.html" if not page.endswith(".json") else page
        expected = (fresh / "site" / name).read_text(encoding="utf-8")
        if page.endswith(".json"):  # the report page's entries say executed/cached: not those
            html, expected = (
                [d for d in json.loads(x)["docs"] if not d["location"].startswith("runnable/")]
                for x in (html, expected)
            )
        assert html == expected, page


def test_stripping_excluded_code_keeps_material_index() -> None:
    """Material's search parser gives the same sections with excluded elements removed first."""
    from material.plugins.search.plugin import Parser

    from plugins.runnable.search import strip_excluded

    html = exclude_code(
        '<h1 id="t">T</h1><p>Intro <code>x</code> text</p>'
        '<div class="tabbed-set"><div class="tabbed-block"><div class="runnable-source">'
        '<div class="language-python highlight"><pre><span></span><code><span class="n">a</span>'
        '</code></pre></div></div></div><div class="tabbed-block"><div class="runnable-output">'
        '<div class="language-text highlight"><pre><code>out</code></pre></div></div></div></div>'
        '<h2 id="s">S</h2><p>More</p><figure class="runnable-figure"><svg><text>lbl</text></svg>'
        '</figure><div class="runnable-output"><h3 id="o">Printed heading</h3><p>kept</p></div>'
        '<table class="highlighttable"><tr><td><div class="linenodiv">1</div></td></tr></table><p>End</p>'
    )

    def sections(text: str) -> list:
        parser = Parser()
        parser.feed(text)
        parser.close()
        return [(s.id, s.title, s.text) for s in parser.data if not s.is_excluded()]

    stripped = strip_excluded(html)
    assert "runnable-figure" not in stripped and "Printed heading" in stripped
    assert sections(stripped) == sections(html)
