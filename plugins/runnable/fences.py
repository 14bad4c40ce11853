"""Find executable fences in a page's Markdown and expand their snippet includes.

Plain functions over text: nothing here knows MkDocs or executes code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

#: Languages this plugin executes; other `exec="on"` fences are left to markdown-exec.
#: A `pycon` fence runs its `>>> ` / `... ` lines only, as markdown-exec's pycon formatter.
LANGUAGES = frozenset({"python", "py", "pycon"})

#: Options that change what the code does; the others only change how it is shown.
EXEC_OPTIONS = ("exec", "session", "allow_error", "workdir", "width")
DISPLAY_OPTIONS = (
    *("source", "result", "html", "id", "idprefix", "updatetoc", "title", "tabs", "timeout"),
    "alt",  # a figure's alt text (render.py)
)
#: markdown-exec's `source` values (`material-block` is its older name of `block`).
SOURCES = ("above", "below", "block", "material-block", "console", "tabbed-left", "tabbed-right")
#: Boolean options, and the values markdown-exec reads as false / true (any case).
BOOLEANS = ("html", "updatetoc", "allow_error")
FALSE = frozenset({"0", "no", "off", "false"})
TRUE = frozenset({"1", "yes", "on", "true"})
#: Lines holding this text run but are not shown (markdown-exec's marker).
HIDE = "markdown-exec: hide"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>.*)$")
_OPTION = re.compile(r'(?P<key>[\w-]+)=(?:"(?P<dq>[^"]*)"|\'(?P<sq>[^\']*)\'|(?P<bare>\S+))')
_INCLUDE = re.compile(r"^[ \t]*-{1,}8<-{1,}[ \t]+(?P<q>[\"'])(?P<target>.+?)(?P=q)[ \t]*$")
_SECTION = re.compile(r"^\s*#\s*-{1,}8<-{1,}\s*\[(?P<kind>start|end):(?P<name>[\w-]+)\]\s*$")


class FenceError(Exception):
    """A problem in a page's fences, located at `path:line`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


@dataclass(frozen=True)
class Fence:
    """One executable fence of a page, its snippet includes already expanded."""

    path: str  # the page, as shown in messages (relative to the repository root)
    index: int  # 0-based position among the page's exec fences
    start: int  # line of the opening fence in the body given to `find_fences` (0-based)
    end: int  # line after the closing fence (0-based, exclusive)
    line: int  # 1-based line of the opening fence in the source file
    indent: str
    language: str
    options: dict[str, str]
    code: str  # what runs (a pycon fence: its prompts' lines without the prompts)
    origins: tuple[str, ...]  # "path:line" of every code line, for tracebacks
    includes: tuple[str, ...] = field(default=())  # repository files the code was copied from
    shown: str | None = None  # what the reader sees, if not `code` (pycon: prompts kept)

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}: fence '{self.id}'"

    @property
    def id(self) -> str:
        return self.options.get("id") or f"fence-{self.index + 1}"

    @property
    def session(self) -> str | None:
        return self.options.get("session")

    @property
    def allow_error(self) -> bool:
        return is_true(self.options.get("allow_error", "off"))

    @property
    def displayed(self) -> str:
        """The displayed source, as markdown-exec shows it: hidden lines dropped, stripped."""
        shown = self.code if self.shown is None else self.shown
        if HIDE not in shown:
            return shown
        return "\n".join(line for line in shown.split("\n") if HIDE not in line).strip()

    @property
    def timeout(self) -> float | None:
        value = self.options.get("timeout")
        return float(value) if value is not None else None

    def exec_signature(self) -> dict:
        """What decides this fence's output: the code and the options that change execution."""
        signature = {
            "code": self.code,
            "options": {k: self.options[k] for k in EXEC_OPTIONS if k in self.options},
        }
        if self.language == "pycon":  # what runs was parsed out of a console session
            signature["language"] = self.language
        return signature


_FRONT_MATTER = re.compile(r"^-{3}[ \t]*\n.*?\n(?:-{3}|\.{3})[ \t]*\n", re.DOTALL)


def split_front_matter(text: str) -> tuple[str, int]:
    """A page's body without its YAML front matter (as MkDocs strips it), and its line offset."""
    match = _FRONT_MATTER.match(text)
    body = text[match.end() :].lstrip("\n") if match else text
    return body, line_offset(text, body)


def line_offset(text: str, body: str) -> int:
    """How many lines of `text` come before `body`, its tail."""
    return text[: len(text) - len(body)].count("\n") if text.endswith(body) else 0


def is_true(value: str) -> bool:
    """markdown-exec's reading of a boolean option: anything but 0/no/off/false (or empty)."""
    return value.lower() not in FALSE | {""}


def parse_options(info: str) -> tuple[str, dict[str, str]]:
    """Split a fence's info string into its language and its `key="value"` options."""
    language, _, rest = info.strip().partition(" ")
    options = {}
    for match in _OPTION.finditer(rest):
        value = match["dq"] if match["dq"] is not None else match["sq"]
        options[match["key"]] = value if value is not None else match["bare"]
    return language.lstrip("{.").rstrip("}"), options


def _validate(options: dict[str, str], *, path: str, line: int) -> None:
    unknown = sorted(set(options) - set(EXEC_OPTIONS) - set(DISPLAY_OPTIONS))
    if unknown:
        known = ", ".join(EXEC_OPTIONS + DISPLAY_OPTIONS)
        raise FenceError(
            path, line, f"unknown fence option(s) {', '.join(unknown)} (known: {known})"
        )
    source = options.get("source")
    if source is not None and source not in SOURCES:
        raise FenceError(path, line, f'source="{source}" is not one of {", ".join(SOURCES)}')
    for key in BOOLEANS:
        value = options.get(key)
        if value is not None and value.lower() not in FALSE | TRUE:
            accepted = "/".join(sorted(TRUE)) + " or " + "/".join(sorted(FALSE))
            raise FenceError(path, line, f'{key}="{value}" is not a boolean ({accepted})')
    if source == "console" and is_true(options.get("html", "off")):
        raise FenceError(
            path, line, 'source="console" shows the output as text: it cannot be html="1"'
        )
    width = options.get("width")
    if width is not None and not width.isdigit():
        raise FenceError(path, line, f'width="{width}" is not a number of columns')
    timeout = options.get("timeout")
    if timeout is not None:
        try:
            if float(timeout) <= 0:
                raise ValueError
        except ValueError:
            raise FenceError(path, line, f'timeout="{timeout}" is not a positive number') from None


def read_section(
    root: Path, target: str, *, path: str, line: int
) -> tuple[list[str], list[str], str]:
    """Lines named by a pymdownx.snippets target (`file`, `file:section`, `file:start:end`).

    Returns the lines, their origins (`file:line`) and the file's path relative to `root`.
    """
    file, *selector = target.split(":")
    source = (root / file).resolve()
    if not source.is_file() or not source.is_relative_to(root.resolve()):
        raise FenceError(path, line, f'snippet file "{file}" not found under {root}')
    rel = source.relative_to(root.resolve()).as_posix()
    lines = source.read_text(encoding="utf-8").splitlines()
    numbered = list(enumerate(lines, start=1))
    if len(selector) == 1:
        numbered = _section(numbered, selector[0], path=path, line=line, file=rel)
    elif len(selector) == 2:
        first, last = (int(x) if x else None for x in selector)
        numbered = numbered[(first or 1) - 1 : last]
    numbered = [(n, text) for n, text in numbered if not _SECTION.match(text)]
    return [text for _, text in numbered], [f"{rel}:{n}" for n, _ in numbered], rel


def _section(numbered: list[tuple[int, str]], name: str, *, path: str, line: int, file: str):
    start = end = None
    for i, (_, text) in enumerate(numbered):
        marker = _SECTION.match(text)
        if marker and marker["name"] == name:
            if marker["kind"] == "start" and start is None:
                start = i + 1
            elif marker["kind"] == "end" and start is not None:
                end = i
                break
    if start is None or end is None:
        raise FenceError(path, line, f'section "{name}" not found (or not closed) in {file}')
    return numbered[start:end]


def find_fences(markdown: str, *, path: str, root: Path, line_offset: int = 0) -> list[Fence]:
    """Every executable Python fence of a page body, in order.

    `path` names the page in messages; `line_offset` is the number of source lines before
    `markdown` (front matter), so locations point into the real file.
    """
    lines = markdown.split("\n")
    fences: list[Fence] = []
    i = 0
    while i < len(lines):
        opening = _OPEN.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, marker = opening["indent"], opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not closing.match(lines[j]):
            j += 1
        language, options = parse_options(opening["info"])
        file_line = line_offset + i + 1
        if language in LANGUAGES and is_true(options.get("exec", "off")):
            if j >= len(lines):
                raise FenceError(path, file_line, "exec fence is never closed")
            _validate(options, path=path, line=file_line)
            body = [
                text[len(indent) :] if text.startswith(indent) else text.lstrip()
                for text in lines[i + 1 : j]
            ]
            code, origins, includes = _expand(body, first_line=file_line + 1, path=path, root=root)
            shown = None
            if language == "pycon":
                code, origins, shown = _console(code, origins)
            workdir = options.get("workdir")
            if workdir is not None and not (root / workdir).is_dir():
                raise FenceError(path, file_line, f'workdir="{workdir}" is not a folder of {root}')
            fences.append(
                Fence(
                    path=path,
                    index=len(fences),
                    start=i,
                    end=j + 1,
                    line=file_line,
                    indent=indent,
                    language=language,
                    options=options,
                    code=code,
                    origins=tuple(origins),
                    includes=tuple(includes),
                    shown=shown,
                )
            )
        i = j + 1
    return fences


def _console(code: str, origins: list[str]) -> tuple[str, list[str], str]:
    """A pycon session's code (its `>>> `/`... ` lines, prompts removed), their origins, and
    the session as shown (those lines only: the typed output gives way to the real one)."""
    kept = [
        (line, origin)
        for line, origin in zip(code.split("\n"), origins, strict=True)
        if line.startswith((">>> ", "... "))
    ]
    return (
        "\n".join(line[4:] for line, _ in kept),
        [origin for _, origin in kept],
        "\n".join(line for line, _ in kept),
    )


def _expand(body: list[str], *, first_line: int, path: str, root: Path):
    code, origins, includes = [], [], []
    for offset, text in enumerate(body):
        line = first_line + offset
        include = _INCLUDE.match(text)
        if include:
            section, section_origins, file = read_section(
                root, include["target"], path=path, line=line
            )
            code += section
            origins += section_origins
            includes.append(file)
        else:
            code.append(text)
            origins.append(f"{path}:{line}")
    return "\n".join(code), origins, includes
