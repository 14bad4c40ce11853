"""`<page>.py` and `<page>.ipynb` built from a page's Markdown, fences and results."""

from __future__ import annotations

import json
from pathlib import Path

from plugins.runnable.downloads import downloads, insert_links, links_html
from plugins.runnable.fences import find_fences
from plugins.runnable.runner import FenceResult

PAGE = """# A title

Intro text.

<!-- more -->

## First

```python exec="on" source="above" result="text"

x = 1
print(x)
```

Between the fences.

```python exec="on"
hidden = 2
```

## Second

```python exec="on" source="above" allow_error="on"
1 / 0
```

```python exec="on" source="above"
import matplotlib.pyplot as plt
plt.plot([1, 2])
```

Closing words.
"""
TRACEBACK = (
    'Traceback (most recent call last):\n  File "x", line 1\nZeroDivisionError: division by zero\n'
)
RESULTS = [
    FenceResult(output="1\n", figures=[], error=None, seconds=0.1),
    FenceResult(output="", figures=[], error=None, seconds=0.1),
    FenceResult(output="", figures=[], error=TRACEBACK, seconds=0.1),
    FenceResult(
        output="",
        figures=[{"light": "<svg>figure</svg>", "dark": "<svg>dark</svg>", "alt": "图"}],
        error=None,
        seconds=0.1,
    ),
]


def build(tmp_path: Path, results=RESULTS):  # noqa: ANN001, ANN201 (test helper)
    fences = find_fences(PAGE, path="p.md", root=tmp_path)
    return downloads("p", PAGE, fences, results, url="https://example.org/p/")


def test_python_file_is_the_displayed_code_without_failing_fences(tmp_path: Path) -> None:
    """The .py holds a comment header, then displayed non-failing fences' code, one blank line apart.

    A fence's leading blank line is dropped, as the page's highlighted block drops it.
    """
    py, _ = build(tmp_path)
    assert py.name == "p.py"
    header, _, body = py.content.decode("utf-8").partition("\n\n")
    assert header.startswith("# A title\n# https://example.org/p/\n")
    assert all(line.startswith("#") for line in header.split("\n"))
    assert body == "x = 1\nprint(x)\n\nimport matplotlib.pyplot as plt\nplt.plot([1, 2])\n"


def test_notebook_cells_outputs_and_tags(tmp_path: Path) -> None:
    """A Markdown cell per prose section, a code cell per exec fence, with the build's outputs."""
    _, nb = build(tmp_path)
    book = json.loads(nb.content)
    assert (book["nbformat"], book["nbformat_minor"]) == (4, 5)
    kinds = [c["cell_type"] for c in book["cells"]]
    md, code = "markdown", "code"
    assert kinds == [md, md, md, code, md, code, md, code, code, md]
    texts = ["".join(c["source"]) for c in book["cells"]]
    assert texts[0].startswith("本笔记本由[原文](https://example.org/p/)")
    assert texts[1] == "# A title\n\nIntro text."  # the excerpt separator is gone
    assert texts[2] == "## First"
    assert texts[3] == "x = 1\nprint(x)"
    assert texts[-1] == "Closing words."
    code = [c for c in book["cells"] if c["cell_type"] == "code"]
    assert code[0]["outputs"] == [{"output_type": "stream", "name": "stdout", "text": ["1\n"]}]
    assert code[1]["metadata"] == {"jupyter": {"source_hidden": True}}
    assert code[2]["metadata"] == {"tags": ["raises-exception"]}
    error = code[2]["outputs"][0]
    assert (error["ename"], error["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert code[3]["outputs"][0]["data"] == {"image/svg+xml": ["<svg>figure</svg>"]}
    assert [c["execution_count"] for c in code] == [1, 2, 3, 4]
    assert len({c["id"] for c in book["cells"]}) == len(book["cells"])


def test_downloads_are_deterministic_and_skipped_without_code(tmp_path: Path) -> None:
    """Same inputs give the same bytes; a page that shows no code offers nothing."""
    assert build(tmp_path) == build(tmp_path)
    assert downloads("q", "# T\n\ntext\n", [], None, url="u") == []
    _, nb = build(tmp_path, results=None)
    assert all(c.get("outputs", []) == [] for c in json.loads(nb.content)["cells"])


def test_links_go_after_the_excerpt() -> None:
    """The download line sits right after `<!-- more -->`, outside the excerpt."""
    page = insert_links(PAGE, "LINKS")
    assert page.index("<!-- more -->") < page.index("LINKS") < page.index("## First")
    assert insert_links("# T\n\nbody", "LINKS").split("\n")[:3] == ["# T", "", "LINKS"]
    assert 'href="p.py" download' in links_html([build_item("p.py")])


def build_item(name: str):  # noqa: ANN201 (test helper)
    from plugins.runnable.downloads import Download

    return Download(name, b"")
