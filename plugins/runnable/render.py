"""Turn fences and their results into static Markdown/HTML (nothing is executed here).

Code blocks and tabs come from markdown-exec's helpers, so pages look like any
markdown-exec site; the wrappers carry this plugin's classes (`runnable-*`).
"""

from __future__ import annotations

import re
from textwrap import indent

from markdown_exec import code_block, tabbed

from .fences import Fence
from .runner import FenceResult

DEFAULT_TABS = ("源码", "输出")
_CODE = re.compile(r"(^(`{3,}|~{3,}).*?^\2[ \t]*$|`+[^`\n]*`+)", re.MULTILINE | re.DOTALL)


def _div(css_class: str, content: str, *, markdown: bool = True) -> str:
    attribute = ' markdown="1"' if markdown else ""
    return f'<div class="{css_class}"{attribute}>\n\n{content}\n\n</div>'


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


def render_output(fence: Fence, result: FenceResult) -> str:
    """The output of one fence: its printed text, its traceback if expected, its figures."""
    blocks = []
    text = result.output.rstrip()
    if text:
        if fence.options.get("html", "off") == "on":
            blocks.append(_div("runnable-output", text, markdown=False))
        elif "result" in fence.options:
            blocks.append(_div("runnable-output", code_block(fence.options["result"], text)))
        else:
            blocks.append(_div("runnable-output", escape_html_outside_code(text)))
    if result.error:
        blocks.append(_div("runnable-error", code_block("pytb", result.error)))
    for svg in result.figures:
        blocks.append(f'<figure class="runnable-figure">\n{svg}\n</figure>')
    return "\n\n".join(blocks)


def render_fence(fence: Fence, result: FenceResult | None) -> str:
    """A fence's Markdown replacement: its source (where asked) and its output."""
    extra = {key: fence.options[key] for key in ("title",) if key in fence.options}
    source = _div("runnable-source", code_block(fence.language, fence.code, **extra))
    output = render_output(fence, result) if result else ""
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


def render_page(markdown: str, fences: list[Fence], results: list[FenceResult] | None) -> str:
    """`markdown` with every fence rendered; `results=None` shows the code only."""
    blocks = [render_fence(f, results[i] if results else None) for i, f in enumerate(fences)]
    return replace_fences(markdown, fences, blocks)
