"""A page written the way markdown-exec's documentation writes fences builds the same here.

One page holds every Python form of markdown-exec's docs (docs/usage/index.md, python.md at
github.com/pawamoy/markdown-exec); it is built twice for real: in a site that does not
declare `md_in_html`, and with this project's own `markdown_extensions` (Material theme).
"""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import pytest
from fixture_site import Build, Site

from plugins.runnable.fences import FenceError, find_fences

ROOT = Path(__file__).resolve().parents[2]

#: No md_in_html, no toc options: what a small markdown-exec site declares.
BARE = """\
site_name: fixture
site_url: https://example.org/
plugins:
  - runnable:
      workers: 2
      timeout: {timeout}
markdown_extensions:
  - pymdownx.superfences
  - pymdownx.tabbed:
      alternate_style: true
"""


def project_config() -> str:
    """The fixture site with this project's theme and `markdown_extensions` (from mkdocs.yml)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    extensions = text[text.index("\nmarkdown_extensions:") :]
    extensions = extensions[: extensions.find("\n\n", 1) + 1 or None]
    head = BARE[: BARE.index("markdown_extensions:")]
    return head.replace("{", "{{").replace("}", "}}").replace(
        "{{timeout}}", "{timeout}"
    ) + "theme:\n  name: material\n" + extensions.lstrip("\n").replace("{", "{{").replace(
        "}", "}}"
    )


PYCON = """\
>>> numbers = [3, 1, 2]
>>> for n in sorted(numbers):
...     print(n * 10)
42
>>> print(f"total: {sum(numbers)}")
this typed output is replaced by the real one
"""

PAGE = '''\
# Compat

```python exec="1" html="1"
print("<b>raw html</b>")
```

```python exec="true"
print("**bold** from markdown")
```

```python exec="yes" html="0" source="above" title="shown.py"
print("<i>escaped</i>")
```

```python exec="ON" source="material-block" session="s"
greeting = "block form"
print(greeting)
```

```python exec="1" source="block" session="s"
print(greeting.upper())
```

```pycon exec="1" source="console" session="s"
--8<-- "session.pycon"
```

```pycon exec="1" session="s"
>>> print(f"{greeting} from pycon")
```

```python exec="1" source="console"
print("console python")
```

```python exec="1" source="above"
import os  # markdown-exec: hide
print("hidden import ran:", os.sep == "/")
```

```python exec="1" workdir="data"
from pathlib import Path
print("cwd is", Path.cwd().name, Path("input.txt").read_text().strip())
```

```python exec="1" width="37"
import os, shutil
print("columns", shutil.get_terminal_size().columns, os.environ["COLUMNS"])
```

```python exec="1" idprefix="" updatetoc="no"
print("#### Plain commands")
print("\\n[link to plain](#plain-commands)")
```

```python exec="1" idprefix="cli-" updatetoc="no"
print("#### Commands")
print("\\n[link to commands](#commands)")
```

```python exec="1" id="super-cli" updatetoc="no"
print("#### Commands")
print("\\n[link to super commands](#commands)")
```

```python exec="1"
print("## Generated section")
```

```python exec="1" source="tabbed-right" tabs="Code a \\| b|What it printed"
print("tabbed output")
```
'''


def build(site: Site) -> Build:
    site.page("compat.md", PAGE)
    site.write("session.pycon", PYCON)
    site.write("data/input.txt", "found\n")
    result = site.build()
    assert result.returncode == 0, result.log
    return result


def text(fragment: str) -> str:
    """The visible text of an HTML fragment (tags dropped, entities decoded)."""
    return htmllib.unescape(re.sub(r"<[^>]+>", "", fragment))


def divs(page: str, css_class: str) -> list[str]:
    """Every div whose class attribute is `css_class`, from its opening tag to its end."""
    found = []
    for match in re.finditer(rf'<div class="{css_class}"', page):
        depth, position = 0, match.start()
        for tag in re.finditer(r"<(/?)div\b", page[position:]):
            depth += -1 if tag[1] else 1
            if depth == 0:
                found.append(page[position : position + tag.end()])
                break
    return found


def check_page(page: str) -> None:
    """Every form's HTML: classes, executed output, ids and table of contents."""
    content = page[page.index('<h1 id="compat"') :]
    outputs = divs(content, "runnable-output")
    # html="1" passes HTML through; Markdown output is rendered without md_in_html declared
    assert any("<b>raw html</b>" in o for o in outputs)
    assert any("<strong>bold</strong> from markdown" in o for o in outputs)
    assert "**bold**" not in content and 'markdown="1"' not in content
    assert "%%runnable" not in page and "data-runnable-" not in page  # markers all consumed
    # html="0" escapes; title reaches the source block
    assert "&lt;i&gt;escaped&lt;/i&gt;" in content and "<i>escaped</i>" not in content
    assert "shown.py" in divs(content, "runnable-source")[0]
    # block / material-block: source, then Material's result div holding the output
    for form in ("<p>block form</p>", "<p>BLOCK FORM</p>"):
        start = content.index(form)
        assert content.rfind('<div class="result">', 0, start) > content.rfind(
            "runnable-source", 0, start
        )
    # pycon console: prompts' lines shown with the real output, typed output dropped
    console = [text(d) for d in divs(content, "runnable-source runnable-output")]
    assert ">>> for n in sorted(numbers):\n...     print(n * 10)\n" in console[0]
    assert 'print(f"total: {sum(numbers)}")\n10\n20\n30\ntotal: 6' in console[0]
    assert "42" not in console[0] and "typed output" not in content
    assert "block form from pycon" in content
    assert 'print("console python")\nconsole python' in console[1]
    # hidden line ran but is not shown
    assert "hidden import ran: True" in content and "import os" not in text(content)
    # workdir, width
    assert "cwd is data found" in text(content)
    assert "columns 37 37" in text(content)
    # idprefix / id prefix / no prefix; updatetoc
    assert 'id="plain-commands"' in content and 'href="#plain-commands"' in content
    assert 'id="cli-commands"' in content and 'href="#cli-commands"' in content
    assert 'id="super-cli-commands"' in content and 'href="#super-cli-commands"' in content
    assert re.search(r'<h2 id="exec-\d+--generated-section"', content)
    toc = page[: page.index('<h1 id="compat"')]
    assert re.search(r'href="#exec-\d+--generated-section"', toc)
    assert "commands" not in toc
    # tabs: escaped pipe in a title, result tab first (tabbed-right)
    labels = re.findall(r"<label[^>]*>([^<]*)</label>", content)
    assert labels == ["What it printed", "Code a | b"]


def test_markdown_exec_page_without_md_in_html(tmp_path: Path) -> None:
    """Every markdown-exec form renders right in a site that does not declare md_in_html."""
    site = Site(tmp_path / "bare", config=BARE)
    check_page(build(site).html("compat/index.html"))


def test_markdown_exec_page_with_project_config(tmp_path: Path) -> None:
    """The same page renders the same forms under this project's theme and extensions."""
    site = Site(tmp_path / "project", config=project_config())
    check_page(build(site).html("compat/index.html"))
