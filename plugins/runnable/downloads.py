"""A page's code to take home: `<name>.py` and `<name>.ipynb`, as bytes (no MkDocs here).

- `.py`: the code of every exec fence the page displays, in page order, each followed by a
  blank line, minus fences marked `allow_error` (their traceback is the point; a script
  that stops there runs nothing after it). This is what the copy-paste check assembles from
  the page's HTML, under a comment header that says where it comes from.
- `.ipynb` (nbformat 4.5): a Markdown cell per prose section (the text between fences, cut
  at each heading), a code cell per exec fence with the outputs the build recorded: printed
  text, a traceback, figures as image/svg+xml. An `allow_error` cell is tagged
  `raises-exception` (nbclient and Jupyter run on past it); a fence that shows no source is
  a collapsed cell.

Both are deterministic: same page and results, same bytes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .fences import Fence, is_true
from .runner import FenceResult

_HEADING = re.compile(r"^#{1,6}\s")
_MORE = re.compile(r"^\s*<!--\s*more\s*-->\s*$")
_SPAWN = re.compile(r"\bspawn\(|start_method\s*=\s*[\"']spawn|get_context\([\"']spawn")
_ERROR_LINE = re.compile(r"^(?P<name>[A-Za-z_][\w.]*)(?::\s?(?P<value>.*))?$")


@dataclass(frozen=True)
class Download:
    name: str  # file name, e.g. "autograd.py"
    content: bytes


def title_of(markdown: str) -> str:
    """The page's first `# ` heading (empty if none)."""
    for line in markdown.split("\n"):
        if line.startswith("# "):
            return line[2:].strip()
    return ""


def script_text(fences: list[Fence]) -> str:
    """The displayed, non-failing fences' code, each block followed by one blank line."""
    shown = [f for f in fences if "source" in f.options and not f.allow_error]
    return "\n".join(f.code.strip("\n") + "\n" for f in shown)


def python_file(fences: list[Fence], *, title: str, url: str) -> bytes:
    header = [f"# {title}" if title else "#", f"# {url}", "#"]
    header += ["# 页面上显示的全部代码，按页面顺序（故意报错的代码块除外），由构建生成。"]
    header += ["# 只需要 torch、numpy、matplotlib：python <this file>"]
    return ("\n".join(header) + "\n\n" + script_text(fences)).encode("utf-8")


def _lines(text: str) -> list[str]:
    """nbformat's multiline string: a list of lines, each but the last keeping its newline."""
    return text.splitlines(keepends=True)


def _prose_cells(text: str) -> list[str]:
    """Markdown sections of a stretch of prose: cut before every heading, blank ones dropped."""
    sections: list[list[str]] = [[]]
    for line in text.split("\n"):
        if _MORE.match(line):
            continue
        if _HEADING.match(line) and any(s.strip() for s in sections[-1]):
            sections.append([])
        sections[-1].append(line)
    return [s for s in ("\n".join(lines).strip("\n") for lines in sections) if s.strip()]


def _error_output(traceback: str) -> dict:
    last = traceback.rstrip("\n").split("\n")[-1]
    match = _ERROR_LINE.match(last)
    name, value = (match["name"], match["value"] or "") if match else ("Error", last)
    return {
        "output_type": "error",
        "ename": name,
        "evalue": value,
        "traceback": traceback.rstrip("\n").split("\n"),
    }


def _outputs(fence: Fence, result: FenceResult | None) -> list[dict]:
    if result is None:
        return []
    outputs: list[dict] = []
    text = result.output
    if text.strip():
        if is_true(fence.options.get("html", "off")):
            outputs.append(_display({"text/html": _lines(text)}))
        elif "result" in fence.options:
            outputs.append({"output_type": "stream", "name": "stdout", "text": _lines(text)})
        else:  # printed Markdown, as the page renders it
            outputs.append(_display({"text/markdown": _lines(text)}))
    if result.error:
        outputs.append(_error_output(result.error))
    for figure in result.figures:
        outputs.append(_display({"image/svg+xml": _lines(figure["light"])}))
    return outputs


def _display(data: dict) -> dict:
    return {"output_type": "display_data", "data": data, "metadata": {}}


def _spawn_cell(script: str) -> dict:
    """A first cell for pages that start processes with `spawn`: a spawned child re-imports
    the main module to find its function, and a notebook's main module has no file, so the
    child would find nothing. Pointing `__main__.__file__` at the page's `.py` (downloaded
    next to the notebook: definitions at top level, demos under `if __name__ == "__main__"`)
    lets the children load the same definitions."""
    code = (
        "# mp.spawn: child processes re-import the main module to find their function; a\n"
        f"# notebook has none, so they load {script} (download it next to this notebook).\n"
        "import __main__\n"
        "\n"
        f'__main__.__file__ = "{script}"'
    )
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {"tags": ["spawn-setup"]},
        "outputs": [],
        "source": _lines(code),
    }


def notebook(
    markdown: str,
    fences: list[Fence],
    results: list[FenceResult] | None,
    *,
    title: str,
    url: str,
    script: str = "",
) -> dict:
    """The page as a notebook (a JSON-ready dict, nbformat 4.5)."""
    lines = markdown.split("\n")
    intro = f"本笔记本由[原文]({url})的构建生成：代码单元格是页面上运行过的代码，输出是构建时记录下的输出。"
    cells: list[dict] = [{"cell_type": "markdown", "metadata": {}, "source": _lines(intro)}]
    if any(_SPAWN.search(f.code) for f in fences):
        cells.append(_spawn_cell(script))
    position = 0
    for i, fence in enumerate(fences):
        for section in _prose_cells("\n".join(lines[position : fence.start])):
            cells.append({"cell_type": "markdown", "metadata": {}, "source": _lines(section)})
        metadata: dict = {}
        if fence.allow_error:
            metadata["tags"] = ["raises-exception"]
        if "source" not in fence.options:
            metadata["jupyter"] = {"source_hidden": True}
        cells.append(
            {
                "cell_type": "code",
                "execution_count": i + 1 if results else None,
                "metadata": metadata,
                "outputs": _outputs(fence, results[i] if results else None),
                "source": _lines(fence.code.strip("\n")),
            }
        )
        position = fence.end
    for section in _prose_cells("\n".join(lines[position:])):
        cells.append({"cell_type": "markdown", "metadata": {}, "source": _lines(section)})
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k + 1}"
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "title": title,
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def downloads(
    stem: str,
    markdown: str,
    fences: list[Fence],
    results: list[FenceResult] | None,
    *,
    url: str,
) -> list[Download]:
    """`<stem>.py` and `<stem>.ipynb` of a page that displays code (none if it shows none)."""
    if not any("source" in f.options for f in fences):
        return []
    title = title_of(markdown)
    book = notebook(markdown, fences, results, title=title, url=url, script=f"{stem}.py")
    text = json.dumps(book, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    return [
        Download(f"{stem}.py", python_file(fences, title=title, url=url)),
        Download(f"{stem}.ipynb", text.encode("utf-8")),
    ]


def links_html(items: list[Download]) -> str:
    """The line that offers the downloads (relative links: the files sit next to the page)."""
    anchors = " · ".join(f'<a href="{d.name}" download><code>{d.name}</code></a>' for d in items)
    return f'<p class="runnable-downloads">下载代码：{anchors}</p>'


def insert_links(markdown: str, block: str) -> str:
    """`block` as its own paragraph right after the excerpt separator `<!-- more -->` (so
    listings and descriptions, made from the excerpt, leave it out), else after the page's
    first `# ` heading, else on top."""
    lines = markdown.split("\n")
    at = next((i + 1 for i, line in enumerate(lines) if _MORE.match(line)), None)
    if at is None:
        at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
    return "\n".join([*lines[:at], "", block, "", *lines[at:]])
