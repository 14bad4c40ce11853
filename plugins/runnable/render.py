"""Turn fences and their results into static Markdown/HTML (nothing is executed here).

Source code stays a Markdown code block (markdown-exec's helpers), so it is highlighted
and gets Material's copy button like any other. Outputs, tracebacks and figures are HTML
already: they go into a `Stash` and the page gets a tiny placeholder, which
`StashExtension` swaps back after every Markdown conversion. So a post's outputs are never
re-parsed, neither for the post nor for each listing page that shows its excerpt.
"""

from __future__ import annotations

import hashlib
import html
import re
from textwrap import indent

from markdown import Extension, Markdown
from markdown.postprocessors import Postprocessor
from markdown_exec import code_block, tabbed
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from .fences import Fence
from .runner import FenceResult

DEFAULT_TABS = ("源码", "输出")
_CODE = re.compile(r"(^(`{3,}|~{3,}).*?^\2[ \t]*$|`+[^`\n]*`+)", re.MULTILINE | re.DOTALL)
_PLACEHOLDER = re.compile(r'(?:<p>)?<div data-runnable="(?P<key>[0-9a-f]{16})"></div>(?:</p>)?')


class Stash:
    """HTML kept out of the Markdown pipeline, by content hash."""

    def __init__(self) -> None:
        self.blocks: dict[str, str] = {}

    def put(self, block: str) -> str:
        """Store `block`; return the placeholder to put in the Markdown instead."""
        key = hashlib.sha256(block.encode("utf-8")).hexdigest()[:16]
        self.blocks[key] = block
        return f'<div data-runnable="{key}"></div>'

    def restore(self, text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self.blocks.get(m["key"], m[0]), text)


class _StashPostprocessor(Postprocessor):
    def __init__(self, md: Markdown, stash: Stash) -> None:
        super().__init__(md)
        self.stash = stash

    def run(self, text: str) -> str:
        return self.stash.restore(text)


class StashExtension(Extension):
    """Puts stashed HTML back in place of its placeholders after conversion."""

    def __init__(self, stash: Stash) -> None:
        super().__init__()
        self.stash = stash

    def extendMarkdown(self, md: Markdown) -> None:  # noqa: N802 (Markdown's API)
        # Priority 6: after the raw-HTML postprocessor (30) has put the placeholders back.
        md.postprocessors.register(_StashPostprocessor(md, self.stash), "runnable_stash", 6)


def escape_html_outside_code(text: str) -> str:
    """Escape `<` and `>` in Markdown text, except inside code (which Markdown escapes itself)."""
    parts = _CODE.split(text)
    # re.split with two groups yields [text, code, fence-marker, text, ...]
    out = []
    for i in range(0, len(parts), 3):
        out.append(parts[i].replace("<", "&lt;").replace(">", "&gt;"))
        if i + 1 < len(parts):
            out.append(parts[i + 1])
    return "".join(out)


def code_html(language: str, code: str) -> str:
    """A code block as Material renders one (highlighted by Pygments, copy button and all)."""
    try:
        lexer = get_lexer_by_name(language)
    except ClassNotFound:
        lexer = get_lexer_by_name("text")
    body = (
        highlight(code, lexer, HtmlFormatter(nowrap=True))
        if language != "text"
        else html.escape(code)
    )
    css = html.escape(language, quote=True)
    return f'<div class="language-{css} highlight"><pre><span></span><code>{body.rstrip()}\n</code></pre></div>'


def _div(css_class: str, content: str, *, markdown: bool = False) -> str:
    if markdown:
        return f'<div class="{css_class}" markdown="1">\n\n{content}\n\n</div>'
    return f'<div class="{css_class}">{content}</div>'


def render_output(fence: Fence, result: FenceResult, stash: Stash) -> str:
    """The output of one fence: its printed text, its traceback if expected, its figures."""
    blocks = []
    text = result.output.rstrip()
    if text:
        if fence.options.get("html", "off") == "on":
            blocks.append(stash.put(_div("runnable-output", text)))
        elif "result" in fence.options:
            blocks.append(
                stash.put(_div("runnable-output", code_html(fence.options["result"], text)))
            )
        else:  # Markdown, as markdown-exec treats output without `result`; raw HTML escaped
            blocks.append(_div("runnable-output", escape_html_outside_code(text), markdown=True))
    if result.error:
        blocks.append(stash.put(_div("runnable-error", code_html("pytb", result.error))))
    for figure in result.figures:
        blocks.append(stash.put(figure_html(figure, alt=fence.options.get("alt"))))
    return "\n\n".join(blocks)


def render_fence(fence: Fence, result: FenceResult | None, stash: Stash) -> str:
    """A fence's Markdown replacement: its source (where asked) and its output."""
    extra = {key: fence.options[key] for key in ("title",) if key in fence.options}
    source = _div("runnable-source", code_block(fence.language, fence.code, **extra), markdown=True)
    output = render_output(fence, result, stash) if result else ""
    location = fence.options.get("source")
    if location is None:
        block = output
    elif not output or location == "above":
        block = f"{source}\n\n{output}"
    elif location == "below":
        block = f"{output}\n\n{source}"
    else:
        titles = fence.options.get("tabs", "|".join(DEFAULT_TABS)).split("|", 1)
        tabs = [(titles[0], source), (titles[-1], output)]
        block = tabbed(*(tabs if location == "tabbed-left" else tabs[::-1]))
    return indent(block.strip() + "\n", fence.indent)


def replace_fences(markdown: str, fences: list[Fence], blocks: list[str]) -> str:
    """The page with each fence's lines replaced by its rendered block."""
    lines = markdown.split("\n")
    for fence, block in sorted(zip(fences, blocks, strict=True), key=lambda pair: -pair[0].start):
        lines[fence.start : fence.end] = ["", *block.rstrip("\n").split("\n"), ""]
    return "\n".join(lines)


def render_page(
    markdown: str, fences: list[Fence], results: list[FenceResult] | None, stash: Stash
) -> str:
    """`markdown` with every fence rendered; `results=None` shows the code only."""
    blocks = [render_fence(f, results[i] if results else None, stash) for i, f in enumerate(fences)]
    return replace_fences(markdown, fences, blocks)


#: Where figure files go in the site, and the `src` prefix they carry until the plugin makes
#: it relative to the page that shows them (a post, or an excerpt on a listing page).
FIGURE_DIR = "assets/runnable"
FIGURE_SRC = "runnable-figure:"
#: Alt text of a figure with neither an `alt` option nor a title.
DEFAULT_ALT = "代码画出的图"
_SVG_SIZE = re.compile(r'<svg\b[^>]*?\swidth="(?P<w>[\d.]+)pt"[^>]*?\sheight="(?P<h>[\d.]+)pt"')


def figure_name(svg: str) -> str:
    """The file name of a figure's SVG document: its content hash."""
    return hashlib.sha256(svg.encode("utf-8")).hexdigest()[:20] + ".svg"


def figure_html(figure: dict, *, alt: str | None = None) -> str:
    """A figure as two `<img>`, light and dark; Material shows the one of the palette.

    Material hides `img[src$="#only-dark"]` on light pages and `#only-light` on dark ones.
    Width and height (CSS px, from the SVG's pt) reserve the box before the file loads.
    """
    size = _SVG_SIZE.search(figure["light"])
    width, height = (round(float(size[k]) * 4 / 3) for k in "wh") if size else (640, 480)
    text = html.escape(alt or figure["alt"] or DEFAULT_ALT, quote=True)
    images = [
        f'<img src="{FIGURE_SRC}{figure_name(figure[scheme])}#only-{scheme}" alt="{text}"'
        f' width="{width}" height="{height}" loading="lazy" decoding="async">'
        for scheme in ("light", "dark")
    ]
    return '<figure class="runnable-figure">\n' + "\n".join(images) + "\n</figure>"


def resolve_figure_urls(page_html: str, figure_dir_url: str) -> str:
    """`page_html` with each figure's `src` pointing into `figure_dir_url` (relative to the page)."""
    return page_html.replace(f'src="{FIGURE_SRC}', f'src="{figure_dir_url.rstrip("/")}/')
