"""What the site tests read: posts and their front matter, exec fences, and the built HTML.

Deliberately independent of `plugins.runnable` (stdlib and PyYAML only), so the tests check
the site against the Markdown rather than against the plugin's own data structures, and the
copy-paste test can run in an interpreter that has only torch, numpy and matplotlib.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
POSTS_DIR = DOCS / "blog" / "posts"

_FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<mark>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_OPTION = re.compile(r"""([\w-]+)=(?:"([^"]*)"|'([^']*)'|(\S+))""")
ON = {"1", "on", "true", "yes"}


@dataclass
class ExecFence:
    """One exec fence of a page: its 1-based opening line and its options."""

    line: int
    language: str
    options: dict[str, str]

    @property
    def shows_source(self) -> bool:
        return "source" in self.options

    @property
    def allow_error(self) -> bool:
        return self.options.get("allow_error", "off").lower() in ON


def exec_fences(markdown: str) -> list[ExecFence]:
    """The exec fences of a page in order (fences nested in other fences do not count)."""
    fences: list[ExecFence] = []
    closing: str | None = None
    for number, line in enumerate(markdown.split("\n"), start=1):
        if closing is not None:
            stripped = line.strip()
            if stripped.startswith(closing[0] * len(closing)) and not stripped.strip(closing[0]):
                closing = None
            continue
        match = _FENCE_OPEN.match(line)
        if not match:
            continue
        closing = match["mark"]
        words = match["info"].split(maxsplit=1)
        language = words[0].lstrip("{.") if words else ""
        options = {key: dq or sq or bare for key, dq, sq, bare in _OPTION.findall(match["info"])}
        if options.get("exec", "off").lower() in ON and language.rstrip("}") in {"python", "py"}:
            fences.append(ExecFence(number, language, options))
    return fences


_CODE = re.compile(r"^(`{3,}|~{3,}).*?^\1[ \t]*$|`+[^`\n]*`+", re.MULTILINE | re.DOTALL)
_MATH = re.compile(r"\$\$(.+?)\$\$|\$([^$\s](?:[^$\n]*?[^$\s])?)\$", re.DOTALL)


def formulas(markdown: str) -> list[tuple[str, bool]]:
    """The Markdown's `$...$` and `$$...$$` formulas outside code: (LaTeX, display)."""
    found = _MATH.finditer(_CODE.sub("", markdown))
    return [((m[1] or m[2]).strip(), m[1] is not None) for m in found]


def has_math(markdown: str) -> bool:
    return bool(formulas(markdown))


def front_matter(markdown: str) -> dict:
    """The YAML front matter of a page (empty if there is none)."""
    import yaml

    match = re.match(r"\A---\n(.*?)\n---\n", markdown, re.DOTALL)
    return (yaml.safe_load(match[1]) or {}) if match else {}


def mkdocs_config() -> dict:
    """mkdocs.yml, with Python-object tags (slugify functions) read as None, not executed."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda *_: None)
    Loader.add_multi_constructor("!", lambda *_: None)
    return yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def plugin_config(name: str) -> dict:
    """The options of one plugin in mkdocs.yml (empty dict if it has none)."""
    for entry in mkdocs_config().get("plugins", []):
        if entry == name:
            return {}
        if isinstance(entry, dict) and name in entry:
            return entry[name] or {}
    raise KeyError(name)


@dataclass
class Post:
    """A post as the repository defines it: file, slug, front matter, Markdown."""

    path: Path
    markdown: str = field(repr=False)
    meta: dict = field(repr=False)

    @property
    def slug(self) -> str:
        return str(self.meta.get("slug", self.path.stem))

    @property
    def module(self) -> str:
        return self.path.stem.replace("-", "_")

    @property
    def url(self) -> str:
        """The post's URL relative to the site root (post_url_format in mkdocs.yml)."""
        return (
            plugin_config("blog")
            .get("post_url_format", "blog/{slug}")
            .format(slug=self.slug, date=None, categories=None, file=self.path.stem)
            + "/"
        )

    @property
    def date(self) -> str:
        date = self.meta.get("date")
        if isinstance(date, dict):  # {created: ..., updated: ...}
            date = date.get("created")
        return str(date)

    def html_path(self, site: Path) -> Path:
        return site / self.url / "index.html"

    def fences(self) -> list[ExecFence]:
        return exec_fences(self.markdown)


def posts() -> list[Post]:
    """Every post in docs/blog/posts, whatever exists now (drafts excluded)."""
    found = []
    for path in sorted(POSTS_DIR.glob("*.md")):
        markdown = path.read_text(encoding="utf-8")
        meta = front_matter(markdown)
        if not meta.get("draft"):
            found.append(Post(path, markdown, meta))
    return found


def build_site(site_dir: Path, *, cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    """`mkdocs build --strict` of the project in `cwd` into `site_dir`; raises with the log."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ.update({"NO_MKDOCS_2_WARNING": "1", **(env or {})})
    process = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if process.returncode:
        raise AssertionError(f"mkdocs build failed:\n{process.stdout}{process.stderr}")


# -- built HTML -------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
VOID |= {"track", "wbr", "param"}


class ClassBlocks(HTMLParser):
    """Collects, in document order, the elements whose class list has one of `classes`.

    For each it records the class, the text of every `<pre><code>` inside it (exactly as a
    browser's `textContent` gives it: entities decoded, tags dropped), and its plain text.
    """

    def __init__(self, classes: set[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.classes = classes
        self.blocks: list[dict] = []
        self._stack: list[str] = []  # open tags
        self._open: list[tuple[int, dict]] = []  # (depth, block) of blocks being read
        self._code_depth: int | None = None
        self._pre_depth: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self._stack.append(tag)
        depth = len(self._stack)
        names = set((dict(attrs).get("class") or "").split())
        hit = names & self.classes
        if hit:
            block = {"class": sorted(hit)[0], "codes": [], "text": ""}
            self.blocks.append(block)
            self._open.append((depth, block))
        if tag == "pre" and self._pre_depth is None:
            self._pre_depth = depth
        if tag == "code" and self._pre_depth is not None and self._code_depth is None:
            self._code_depth = depth
            for _, block in self._open:
                block["codes"].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or tag not in self._stack:
            return
        while self._stack:  # close anything left open inside `tag`
            depth = len(self._stack)
            closed = self._stack.pop()
            if self._code_depth == depth:
                self._code_depth = None
            if self._pre_depth == depth:
                self._pre_depth = None
            while self._open and self._open[-1][0] == depth:
                self._open.pop()
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, block in self._open:
            block["text"] += data
            if self._code_depth is not None:
                block["codes"][-1] += data


def runnable_blocks(html: str) -> list[dict]:
    """The `runnable-*` blocks of a page, in order (nested ones, e.g. in tabs, included)."""
    parser = ClassBlocks(
        {"runnable-source", "runnable-output", "runnable-figure", "runnable-error"}
    )
    parser.feed(html)
    parser.close()
    return parser.blocks


def displayed_sources(html: str) -> list[str]:
    """The code of each `runnable-source` block, as displayed, in page order."""
    sources = []
    for block in runnable_blocks(html):
        if block["class"] == "runnable-source":
            assert len(block["codes"]) == 1, f"a runnable-source with {len(block['codes'])} codes"
            sources.append(block["codes"][0])
    return sources
