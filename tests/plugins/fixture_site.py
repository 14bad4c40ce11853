"""Fixture sites: small MkDocs projects written to a temporary folder and built for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

#: This checkout: fixture builds import its `plugins`, not whatever an editable install names.
REPO = Path(__file__).resolve().parents[2]

CONFIG = """\
site_name: fixture
site_url: https://example.org/
plugins:
  - runnable:
      workers: 2
      timeout: {timeout}
markdown_extensions:
  - md_in_html
  - pymdownx.arithmatex:
      generic: true
  - pymdownx.superfences
  - pymdownx.tabbed:
      alternate_style: true
"""


@dataclass
class Build:
    returncode: int
    log: str
    site: Path

    def html(self, page: str) -> str:
        return (self.site / page).read_text(encoding="utf-8")

    def report(self) -> dict:
        return json.loads((self.site / "runnable/report.json").read_text(encoding="utf-8"))

    def statuses(self) -> dict[str, str]:
        return {p["page"]: p["status"] for p in self.report()["pages"]}


class Site:
    """A fixture site in `root`: write pages and modules, then `build()`."""

    def __init__(self, root: Path, *, timeout: float = 60, config: str = CONFIG) -> None:
        self.root = root
        (root / "docs").mkdir(parents=True, exist_ok=True)
        (root / "mkdocs.yml").write_text(config.format(timeout=timeout), encoding="utf-8")
        self.page("index.md", "# Home\n")

    def page(self, name: str, markdown: str) -> Path:
        return self.write(f"docs/{name}", markdown)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def build(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Build:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
        environ.update({"NO_MKDOCS_2_WARNING": "1", **(env or {})})
        environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), environ.get("PYTHONPATH")])
        )
        process = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", *args],
            cwd=self.root,
            env=environ,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Build(process.returncode, process.stdout + process.stderr, self.root / "site")


def fence(code: str, options: str = 'source="above" result="text"') -> str:
    """A Python exec fence with `options`, as an article writes it."""
    return f'```python exec="on" {options}\n{textwrap.dedent(code).strip()}\n```\n'
