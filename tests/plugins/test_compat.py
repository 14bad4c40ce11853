"""A page written the way markdown-exec's documentation writes fences builds the same here.

One page holds every Python form of markdown-exec's docs (docs/usage/index.md, python.md at
github.com/pawamoy/markdown-exec); it is built twice for real: in a site that does not
declare `md_in_html`, and with this project's own `markdown_extensions` (Material theme).
"""

from __future__ import annotations

import html as htmllib
import re
import textwrap
from pathlib import Path

import pytest
from fixture_site import CONFIG, REPO, Build, Site

from plugins.runnable.fences import FenceError, find_fences

#: No md_in_html, no math: what a small markdown-exec site declares.
BARE = CONFIG.replace("  - md_in_html\n", "").replace(
    "  - pymdownx.arithmatex:\n      generic: true\n", ""
)
assert "md_in_html" not in BARE and "arithmatex" not in BARE


def project_config() -> str:
    """The fixture site with this project's theme and `markdown_extensions` (from mkdocs.yml)."""
    text = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    extensions = text[text.index("\nmarkdown_extensions:") + 1 :]
    extensions = extensions[: extensions.find("\n\n") + 1 or None]  # up to the next section
    escaped = extensions.replace("{", "{{").replace("}", "}}")  # Site() formats the config
    return BARE[: BARE.index("markdown_extensions:")] + "theme: material\n" + escaped


PYCON = """\
>>> numbers = [3, 1, 2]
>>> for n in sorted(numbers):
...     print(n * 10)
42
>>> print(f"total: {sum(numbers)}")
this typed output is replaced by the real one
"""

PAGE = """\
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
print("## Plain commands")
print("\\n[link to plain](#plain-commands)")
```

```python exec="1" idprefix="cli-" updatetoc="no"
print("## Commands")
print("\\n[link to commands](#commands)")
```

```python exec="1" id="super-cli" updatetoc="no"
print("## Commands")
print("\\n[link to super commands](#commands)")
```

```python exec="1"
print("## Generated section")
```

```python exec="1" source="tabbed-right" tabs="Code a \\| b|What it printed"
print("tabbed output")
```
"""


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


def fences_of(markdown: str, root: Path = REPO) -> list:
    return find_fences(textwrap.dedent(markdown), path="docs/p.md", root=root)


def test_booleans_read_as_markdown_exec_reads_them() -> None:
    """exec is true unless 0/no/off/false; html/updatetoc/allow_error take only those words."""
    page = "".join(
        f'```python exec="{value}"\nprint(1)\n```\n\n'
        for value in ("1", "true", "YES", "On", "y", "0", "false", "NO", "Off")
    )
    assert [f.options["exec"] for f in fences_of(page)] == ["1", "true", "YES", "On", "y"]
    for value in ("1", "TRUE", "yes", "on", "0", "False", "no", "OFF"):
        (fence,) = fences_of(f'```python exec="1" html="{value}" updatetoc="{value}"\nx\n```\n')
        assert fence.options["html"] == value
    with pytest.raises(FenceError, match=r'docs/p.md:1: html="maybe" is not a boolean'):
        fences_of('```python exec="1" html="maybe"\nx\n```\n')


def test_pycon_runs_prompt_lines_and_maps_them_to_the_page() -> None:
    """A pycon fence runs only `>>> `/`... ` lines; each keeps its page line; key says pycon."""
    (fence,) = fences_of(
        """\
        ```pycon exec="1" source="console"
        >>> x = 2
        >>> if x:
        ...     print(x)
        2
        >>> print("done")  # markdown-exec: hide
        ```
        """
    )
    assert fence.code == 'x = 2\nif x:\n    print(x)\nprint("done")  # markdown-exec: hide'
    assert fence.origins == ("docs/p.md:2", "docs/p.md:3", "docs/p.md:4", "docs/p.md:6")
    assert fence.displayed == ">>> x = 2\n>>> if x:\n...     print(x)"
    assert fence.exec_signature()["language"] == "pycon"


def test_execution_options_are_in_the_cache_key(tmp_path: Path) -> None:
    """workdir and width change what runs, so they change the fence's signature."""
    (tmp_path / "data").mkdir()
    plain, workdir, width = fences_of(
        '```python exec="1"\nx\n```\n\n```python exec="1" workdir="data"\nx\n```\n\n'
        '```python exec="1" width="40"\nx\n```\n',
        root=tmp_path,
    )
    signatures = [f.exec_signature() for f in (plain, workdir, width)]
    assert signatures[0] == {"code": "x", "options": {"exec": "1"}}
    assert signatures[1]["options"]["workdir"] == "data"
    assert signatures[2]["options"]["width"] == "40"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ('workdir="missing"', 'workdir="missing" is not a folder'),
        ('source="console" html="1"', 'source="console" shows the output as text'),
        ('width="wide"', 'width="wide" is not a number of columns'),
        ('source="sideways"', 'source="sideways" is not one of'),
        ('returncode="1"', "unknown fence option"),
    ],
)
def test_forms_that_cannot_apply_fail_at_their_line(options: str, message: str) -> None:
    """Options that would be ignored or misread fail with `page.md:LINE` instead."""
    with pytest.raises(FenceError, match=re.escape(f"docs/p.md:3: {message}")):
        fences_of(f'# P\n\n```python exec="1" {options}\nx\n```\n')


def test_tabbed_source_without_tabbed_extension_fails(tmp_path: Path) -> None:
    """source="tabbed-left" in a site without pymdownx.tabbed fails at the fence's line."""
    config = BARE[: BARE.index("  - pymdownx.tabbed")]
    site = Site(tmp_path / "notabs", config=config)
    site.page("p.md", '# P\n\n```python exec="1" source="tabbed-left"\nprint(1)\n```\n')
    result = site.build()
    assert result.returncode != 0
    assert 'docs/p.md:3: source="tabbed-left" needs the pymdownx.tabbed' in result.log


def test_markdown_exec_auto_for_python_fails(tmp_path: Path) -> None:
    """MARKDOWN_EXEC_AUTO=python cannot apply here: the build says so instead of skipping."""
    site = Site(tmp_path / "auto", config=BARE)
    result = site.build(env={"MARKDOWN_EXEC_AUTO": "bash,python"})
    assert result.returncode != 0
    assert 'runnable runs only fences marked exec="1"' in result.log
