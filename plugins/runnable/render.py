"""Turn fences and their results into static Markdown/HTML (nothing is executed here).

Source code stays a Markdown code block (markdown-exec's helpers), so it is highlighted
and gets Material's copy button like any other. Outputs, tracebacks and figures are HTML
already: they go into a `Stash` and the page gets a tiny placeholder, which
`StashExtension` swaps back after every Markdown conversion. So a post's outputs are never
re-parsed, neither for the post nor for each listing page that shows its excerpt.

Source blocks and output printed as Markdown stay Markdown, inside `%%runnable-open` …
`%%runnable-close` lines that `_DivProcessor` turns into a `<div>` at any depth (tabs,
admonitions), with no help from `md_in_html`. So an output's headings join the page's table
of contents; `_OutputIds` and `_OutputToc` give them markdown-exec's `idprefix` and
`updatetoc="no"`.
"""

from __future__ import annotations

import hashlib
import html
import re
from textwrap import indent
from xml.etree import ElementTree as etree

from markdown import Extension, Markdown
from markdown.blockprocessors import BlockProcessor
from markdown.extensions.toc import remove_fnrefs, render_inner_html, strip_tags, unique
from markdown.postprocessors import Postprocessor
from markdown.treeprocessors import Treeprocessor
from markdown_exec import IdPrependingTreeprocessor, code_block, tabbed
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from .fences import Fence, is_true
from .figures import svg_size_px
from .runner import FenceResult

DEFAULT_TABS = ("源码", "输出")
_TABS = re.compile(r"(?<!\\)\|")  # markdown-exec's: a `|` not escaped as `\|`
_IDPREFIX, _NOTOC = "data-runnable-idprefix", "data-runnable-notoc"
_HEADING = re.compile(r"[Hh][1-6]")
_OPEN, _CLOSE = "%%runnable-open", "%%runnable-close"
_ATTR = re.compile(r'([\w-]+)="([^"]*)"')
_PENDING = "data-runnable-pending"
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
        # Before the other block processors (admonition, md_in_html: 105) see the markers.
        md.parser.blockprocessors.register(_DivProcessor(md.parser), "runnable_div", 110)
        # Around `toc` (5): ids named and prefixed before it, hidden headings dropped after.
        md.treeprocessors.register(_OutputIds(md), "runnable_output_ids", 6)
        md.treeprocessors.register(_OutputToc(md), "runnable_output_toc", 4)


class _DivProcessor(BlockProcessor):
    """A `%%runnable-open ATTRS` block, the blocks up to its `%%runnable-close`: a div.

    Block by block, like an admonition's body: in a tab or an admonition the parser hands
    over one block at a time, so the div stays open (marked) until its closing block.
    """

    def test(self, parent, block: str) -> bool:  # noqa: ANN001 (an ElementTree element)
        return block.startswith(_OPEN) or _open_div(parent) is not None

    def run(self, parent, blocks: list[str]) -> None:  # noqa: ANN001 (an ElementTree element)
        block = blocks.pop(0)
        div = _open_div(parent)
        if div is None:
            attrs = {key: html.unescape(value) for key, value in _ATTR.findall(block)}
            etree.SubElement(parent, "div", attrs).set(_PENDING, "")
        elif block.strip() == _CLOSE and _open_div(div) is None:
            del div.attrib[_PENDING]
        else:
            self.parser.parseBlocks(div, [block])


def _open_div(parent):  # noqa: ANN001, ANN202 (ElementTree elements)
    """`parent`'s last child, if it is a runnable div still waiting for its closing block."""
    last = parent[-1] if len(parent) else None
    return last if last is not None and _PENDING in last.attrib else None


class _OutputIds(Treeprocessor):
    """markdown-exec's `idprefix`: ids and `#` links in a Markdown output get the prefix.

    The output's headings are named here, with `toc`'s own slugify, before `toc` runs, so
    the page's table of contents links to the prefixed ids.
    """

    def run(self, root) -> None:  # noqa: ANN001 (an ElementTree element)
        processors = self.md.treeprocessors
        toc = processors["toc"] if "toc" in processors else None  # noqa: SIM401 (no Registry.get)
        for div in root.iter("div"):
            prefix = div.attrib.pop(_IDPREFIX, "")
            if not prefix:
                continue
            used: set[str] = set()
            for heading in div.iter():
                if toc and _HEADING.fullmatch(str(heading.tag)) and "id" not in heading.attrib:
                    name = strip_tags(render_inner_html(remove_fnrefs(heading), self.md))
                    heading.set("id", unique(toc.slugify(html.unescape(name), toc.sep), used))
            IdPrependingTreeprocessor(self.md, prefix).run(div)


class _OutputToc(Treeprocessor):
    """markdown-exec's `updatetoc="no"`: an output's headings stay out of the page's TOC."""

    def run(self, root) -> None:  # noqa: ANN001 (an ElementTree element)
        hidden = set()
        for div in root.iter("div"):
            if div.attrib.pop(_NOTOC, None) is not None:
                hidden |= {h.get("id") for h in div.iter() if _HEADING.fullmatch(str(h.tag))}
        if hidden and getattr(self.md, "toc_tokens", None):
            self.md.toc_tokens = _without(self.md.toc_tokens, hidden)


def _without(tokens: list[dict], ids: set) -> list[dict]:
    """TOC tokens without those of `ids` (their children move up a level)."""
    kept = []
    for token in tokens:
        children = _without(token.get("children", []), ids)
        if token["id"] in ids:
            kept += children
        else:
            kept.append({**token, "children": children})
    return kept


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


def _div(css_class: str, content: str, *, markdown: bool = False, attrs: str = "") -> str:
    if markdown:  # `content` is Markdown: see `_DivProcessor`
        return f'{_OPEN} class="{css_class}"{attrs}\n\n{content}\n\n{_CLOSE}'
    return f'<div class="{css_class}">{content}</div>'


def _markdown_attrs(fence: Fence) -> str:
    """markdown-exec's id prefix (`idprefix`, else `id-`, else `exec-N--`) and `updatetoc`."""
    options = fence.options
    prefix = options.get("idprefix")
    if prefix is None:
        prefix = f"{options['id']}-" if options.get("id") else f"exec-{fence.index + 1}--"
    attrs = f' {_IDPREFIX}="{html.escape(prefix, quote=True)}"' if prefix else ""
    if not is_true(options.get("updatetoc", "yes")):
        attrs += f' {_NOTOC}="1"'
    return attrs


def render_output(fence: Fence, result: FenceResult, stash: Stash) -> str:
    """The output of one fence: its printed text, its traceback if expected, its figures."""
    blocks = []
    text = result.output.rstrip()
    if text and fence.options.get("source") != "console":  # console: in the source's block
        if is_true(fence.options.get("html", "off")):
            blocks.append(stash.put(_div("runnable-output", text)))
        elif fence.options.get("result"):
            blocks.append(
                stash.put(_div("runnable-output", code_html(fence.options["result"], text)))
            )
        else:  # Markdown, as markdown-exec treats output without `result`; raw HTML escaped
            markdown = escape_html_outside_code(text)
            attrs = _markdown_attrs(fence)
            blocks.append(_div("runnable-output", markdown, markdown=True, attrs=attrs))
    if result.error:
        blocks.append(stash.put(_div("runnable-error", code_html("pytb", result.error))))
    for figure in result.figures:
        blocks.append(stash.put(figure_html(figure, alt=fence.options.get("alt"))))
    return "\n\n".join(blocks)


def render_fence(fence: Fence, result: FenceResult | None, stash: Stash) -> str:
    """A fence's Markdown replacement: its source (where asked) and its output."""
    extra = {key: fence.options[key] for key in ("title",) if key in fence.options}
    output = render_output(fence, result, stash) if result else ""
    location = fence.options.get("source")
    if location == "console":  # markdown-exec's: one code block, the session then its output
        text = result.output.rstrip() if result else ""
        session = fence.displayed + (f"\n{text}" if text else "")
        language = fence.options.get("result") or fence.language
        console = code_block(language, session, **extra)
        source = _div("runnable-source runnable-output", console, markdown=True)
    else:
        source = code_block(fence.language, fence.displayed, **extra)
        source = _div("runnable-source", source, markdown=True)
    if location is None:
        block = output
    elif not output or location in ("above", "console"):
        block = f"{source}\n\n{output}"
    elif location == "below":
        block = f"{output}\n\n{source}"
    elif location in ("block", "material-block"):  # Material's style for a result under code
        block = f"{source}\n\n{_div('result', output, markdown=True)}"
    else:
        tabs_option = fence.options.get("tabs", "|".join(DEFAULT_TABS))
        titles = _TABS.split(tabs_option, maxsplit=1)
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


def figure_name(svg: str) -> str:
    """The file name of a figure's SVG document: its content hash."""
    return hashlib.sha256(svg.encode("utf-8")).hexdigest()[:20] + ".svg"


def figure_alt(figure: dict, alt: str | None = None) -> str:
    """The figure's alt text: the fence's `alt=`, else the figure's title, else a default."""
    return alt or figure["alt"] or DEFAULT_ALT


def figure_html(figure: dict, *, alt: str | None = None) -> str:
    """A figure as two `<img>`, light and dark; Material shows the one of the palette.

    Material hides `img[src$="#only-dark"]` on light pages and `#only-light` on dark ones.
    Width and height (CSS px, from the SVG's pt) reserve the box before the file loads.
    """
    size = svg_size_px(figure["light"])
    width, height = (round(v) for v in size) if size else (640, 480)
    text = html.escape(figure_alt(figure, alt), quote=True)
    images = [
        f'<img src="{FIGURE_SRC}{figure_name(figure[scheme])}#only-{scheme}" alt="{text}"'
        f' width="{width}" height="{height}" loading="lazy" decoding="async">'
        for scheme in ("light", "dark")
    ]
    return '<figure class="runnable-figure">\n' + "\n".join(images) + "\n</figure>"


def resolve_figure_urls(page_html: str, figure_dir_url: str) -> str:
    """`page_html` with each figure's `src` pointing into `figure_dir_url` (relative to the page)."""
    return page_html.replace(f'src="{FIGURE_SRC}', f'src="{figure_dir_url.rstrip("/")}/')
