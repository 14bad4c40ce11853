"""Cache keys follow exactly what a page's code depends on; entries survive faults."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.runnable.cache import Cache
from plugins.runnable.deps import dependencies, imported_names
from plugins.runnable.engine import environment, page_key
from plugins.runnable.fences import find_fences

PAGE = '```python exec="on"\nimport {module}\nprint({module}.value())\n```\n'


def key(root: Path, markdown: str) -> str:
    return page_key(find_fences(markdown, path="p.md", root=root), root, environment())


def test_imported_names_resolve_relative_imports() -> None:
    """`from . import x` inside package a.b names a.b.x (and a.b)."""
    code = "import os\nfrom . import x\nfrom ..c import d\nfrom e.f import g"
    assert imported_names(code, package="a.b") == {
        "os",
        "a.b",
        "a.b.x",
        "a.c",
        "a.c.d",
        "e.f",
        "e.f.g",
    }


# A random repository: module i may import any module j > i (no cycles needed, but allowed).
trees = st.integers(min_value=2, max_value=6).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=2 * n),
    )
)


def write_tree(root: Path, n: int, edges: list[tuple[int, int]]) -> dict[int, set[int]]:
    imports: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        if a != b:
            imports[a].add(b)
    pkg = root / "pkg"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    for i in range(n):
        lines = [
            f"from pkg import m{j}" if j % 2 else f"from . import m{j}" for j in sorted(imports[i])
        ]
        (pkg / f"m{i}.py").write_text("\n".join([*lines, "def value():", f"    return {i}", ""]))
    return imports


def reachable(imports: dict[int, set[int]], start: int) -> set[int]:
    seen, stack = set(), [start]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(imports[node])
    return seen


@settings(max_examples=40, deadline=None)
@given(tree=trees, data=st.data())
def test_key_changes_exactly_when_a_dependency_changes(tmp_path_factory, tree, data) -> None:
    """Editing a module the page reaches through imports changes the key; others don't."""
    n, edges = tree
    root = tmp_path_factory.mktemp("repo")
    imports = write_tree(root, n, edges)
    page = PAGE.format(module="pkg.m0")
    before = key(root, page)
    edited = data.draw(st.integers(0, n - 1), label="edited module")
    path = root / "pkg" / f"m{edited}.py"
    path.write_text(path.read_text() + "# edited\n")
    assert (key(root, page) != before) == (edited in reachable(imports, 0))


def test_prose_and_display_options_do_not_change_the_key(tmp_path: Path) -> None:
    """Text around fences and how a fence is shown are not part of the key; code is."""
    (tmp_path / "mod.py").write_text("def value():\n    return 1\n")
    base = key(tmp_path, "intro\n\n" + PAGE.format(module="mod"))
    assert key(tmp_path, "other words\n\n" + PAGE.format(module="mod")) == base
    shown = PAGE.format(module="mod").replace('exec="on"', 'exec="on" source="above" title="t"')
    assert key(tmp_path, shown) == base
    assert key(tmp_path, PAGE.format(module="mod").replace("value()", "value() + 0")) != base


def test_included_file_is_a_dependency(tmp_path: Path) -> None:
    """A file shown through --8<-- is part of the key, all of it."""
    mod = tmp_path / "snip.py"
    mod.write_text("# --8<-- [start:a]\nA = 1\n# --8<-- [end:a]\nB = 2\n")
    page = '```python exec="on"\n--8<-- "snip.py:a"\nprint(A)\n```\n'
    before = key(tmp_path, page)
    mod.write_text(mod.read_text().replace("B = 2", "B = 3"))
    assert key(tmp_path, page) != before


def test_package_versions_are_part_of_the_dependencies(tmp_path: Path) -> None:
    """Imported third-party packages are recorded with their installed versions."""
    deps = dependencies(["import hypothesis\nimport os"], [], tmp_path)
    assert "hypothesis" in deps["packages"] and "os" not in json.dumps(deps["packages"])


def test_corrupt_or_partial_entry_is_a_miss(tmp_path: Path) -> None:
    """Truncated JSON, a wrong key inside or garbage read as a miss and are reported."""
    cache = Cache(tmp_path)
    cache.put("ab" * 32, {"results": [], "seconds": 1.0})
    assert cache.get("ab" * 32) == {"results": [], "seconds": 1.0}
    entry = tmp_path / "ab" / f"{'ab' * 32}.json"
    entry.write_text(entry.read_text()[:20])
    assert cache.get("ab" * 32) is None
    entry.write_bytes(b"\xff\xfe garbage")
    assert cache.get("ab" * 32) is None
    entry.write_text(json.dumps({"format": 1, "key": "cd" * 32, "value": {}}))
    assert cache.get("ab" * 32) is None
    assert len(cache.corrupt) == 3


def test_concurrent_writers_never_leave_a_broken_entry(tmp_path: Path) -> None:
    """Many threads writing the same and different keys: every entry reads back whole."""
    cache = Cache(tmp_path)
    values = [{"results": [{"output": str(i) * 10_000}], "seconds": i} for i in range(8)]

    def writer(i: int) -> None:
        for _ in range(20):
            cache.put("00" * 32, values[i])
            cache.put(f"{i:02d}" * 32, values[i])

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("00" * 32) in values
    assert all(cache.get(f"{i:02d}" * 32) == values[i] for i in range(1, 8))
    assert not cache.corrupt and not list(tmp_path.glob("*/.tmp-*"))


def test_prune_removes_only_old_entries(tmp_path: Path) -> None:
    """Entries unused for longer than the limit are deleted; fresh ones stay."""
    cache = Cache(tmp_path)
    cache.put("aa" * 32, {"v": 1})
    cache.put("bb" * 32, {"v": 2})
    old = tmp_path / "aa" / f"{'aa' * 32}.json"
    os.utime(old, (1, 1))
    assert cache.prune() == 1
    assert cache.get("aa" * 32) is None and cache.get("bb" * 32) == {"v": 2}
