"""What a page's code depends on: repository files (followed through imports) and packages.

Imports are read with `ast`, never by executing anything, and followed transitively
through the repository's own modules, so editing a module that a snippet imports through
another module still re-runs the page.
"""

from __future__ import annotations

import ast
import hashlib
import sys
from functools import cache
from importlib import metadata
from pathlib import Path


@cache  # the same module text is read for every page that imports it
def imported_names(code: str, *, package: str = "") -> frozenset[str]:
    """Absolute dotted names `code` imports (`from a import b` gives `a` and `a.b`)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return frozenset()  # the fence fails when it runs, with a better message than ours
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(filter(None, [*parts, base]))
            if base:
                names.add(base)
            names.update(
                f"{base}.{alias.name}".lstrip(".") for alias in node.names if alias.name != "*"
            )
    return frozenset(names)


def module_file(name: str, root: Path) -> Path | None:
    """The repository file that `import name` loads from `root`, if there is one."""
    path = root.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def repository_files(code: list[str], includes: list[str], root: Path) -> set[Path]:
    """Every repository file the code includes or imports, directly or through other files."""
    found = {(root / rel).resolve() for rel in includes}
    queue = [name for text in code for name in imported_names(text)]
    queue += [name for file in sorted(found) for name in imported_names(file.read_text("utf-8"))]
    seen = set()
    while queue:
        name = queue.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            file = module_file(".".join(parts[:depth]), root)
            if file is None or file in found:
                continue
            found.add(file)
            package = ".".join(parts[:depth] if file.name == "__init__.py" else parts[: depth - 1])
            queue += imported_names(file.read_text("utf-8"), package=package)
    return found


def file_digests(files: set[Path], root: Path) -> dict[str, str]:
    return {
        file.relative_to(root).as_posix(): hashlib.sha256(file.read_bytes()).hexdigest()
        for file in sorted(files)
    }


def package_versions(code: list[str], files: set[Path], root: Path) -> dict[str, str]:
    """Versions of the installed distributions the code or the repository files import."""
    texts = code + [file.read_text("utf-8") for file in files]
    tops = {name.split(".")[0] for text in texts for name in imported_names(text)}
    tops = {t for t in tops if t not in sys.stdlib_module_names and module_file(t, root) is None}
    versions = {}
    for top in sorted(tops):
        for dist in _distributions(top):
            versions[dist] = _version(dist)
    return versions


@cache
def _distributions(top: str) -> tuple[str, ...]:
    """The distributions providing import name `top` (usually one, named alike)."""
    try:
        metadata.distribution(top)
        return (top,)  # the common case, without scanning every installed distribution
    except metadata.PackageNotFoundError:
        return tuple(_all_distributions().get(top, ()))


@cache
def _all_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


@cache
def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


def dependencies(code: list[str], includes: list[str], root: Path) -> dict:
    """The part of a page's cache key that lives outside the page."""
    root = root.resolve()
    files = repository_files(code, includes, root)
    return {"files": file_digests(files, root), "packages": package_versions(code, files, root)}
