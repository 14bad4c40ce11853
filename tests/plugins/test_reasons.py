"""Every executed page says why it ran; the reason names the fence, file or version that changed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fixture_site import Site, fence
from hypothesis import given
from hypothesis import strategies as st

from plugins.runnable.reasons import describe, diff, explain

#: Fixture builds import this checkout's plugin (not another installed copy of it).

digests = st.text("0123456789abcdef", min_size=4, max_size=4)
materials = st.fixed_dictionaries(
    {
        "fences": st.lists(
            st.fixed_dictionaries(
                {"code": digests, "options": st.dictionaries(st.sampled_from(["session"]), digests)}
            ),
            min_size=1,
            max_size=4,
        ),
        "files": st.dictionaries(st.sampled_from(["snippets/a.py", "snippets/b.py"]), digests),
        "packages": st.dictionaries(st.sampled_from(["numpy", "scipy"]), digests),
        "environment": st.fixed_dictionaries(
            {"python": digests, "torch": digests, "plugin": digests, "seed_policy": digests}
        ),
    }
)


@given(material=materials, data=st.data())
def test_diff_names_exactly_the_part_that_changed(material: dict, data: st.DataObject) -> None:
    """Changing one fence, file, package or environment field gives exactly that one change."""
    new = json.loads(json.dumps(material))
    part = data.draw(st.sampled_from(["fence", "file", "package", "python", "plugin"]))
    if part == "fence":
        number = data.draw(st.integers(1, len(new["fences"])))
        new["fences"][number - 1]["code"] += "x"
        expected = [{"kind": "fence", "fence": number, "part": "code"}]
        text = f"fence {number}'s code changed"
    elif part == "file":
        new["files"]["snippets/c.py"] = "0000"
        expected = [{"kind": "file", "file": "snippets/c.py", "change": "added"}]
        text = "now depends on snippets/c.py"
    elif part == "package":
        old = material["packages"].get("numpy", "none")
        new["packages"]["numpy"] = old + "9"
        expected = [{"kind": "package", "name": "numpy", "old": old, "new": old + "9"}]
        text = f"numpy {old} → {old}9"
    elif part == "python":
        new["environment"]["python"] += "9"
        python = material["environment"]["python"]
        expected = [{"kind": "package", "name": "python", "old": python, "new": python + "9"}]
        text = f"python {python} → {python}9"
    else:
        new["environment"]["plugin"] += "9"
        expected, text = [{"kind": "plugin"}], "plugin code changed"
    assert diff(material, new) == expected
    assert describe(diff(material, new)) == text


def test_explain_without_a_usable_record() -> None:
    """No record: no entry yet; same key: pruned; unreadable entry: said first."""
    material = {"fences": [], "files": {}, "packages": {}, "environment": {}}
    assert explain(None, "k", material, corrupt=False) == [{"kind": "new"}]
    record = {"key": "k", "material": material}
    assert explain(record, "k", material, corrupt=False) == [{"kind": "pruned"}]
    assert explain(record, "k", material, corrupt=True) == [{"kind": "corrupt"}]
    assert describe(explain({"key": "old"}, "k", material, corrupt=False)).startswith("its key")


def records_of(site: Site, page: str) -> Path:
    return site.root / ".cache/runnable/pages" / hashlib.sha256(page.encode()).hexdigest()[:32]


def reasons(build) -> dict[str, str | None]:  # noqa: ANN001 (fixture_site.Build)
    return {p["page"]: p["reason"] for p in build.report()["pages"]}


def test_report_says_why_each_page_ran(site: Site) -> None:
    """First build: no entry; prose edit: cached; fence 2, module, version, pruned, forced named."""
    site.write("snippets/__init__.py", "")
    site.write("snippets/alpha.py", "def value():\n    return 'alpha 1'\n")
    prose = "# A\n\n{}\n\n" + fence("from snippets.alpha import value\nprint('a', value())")
    site.page("a.md", prose.format("Words."))
    site.page("b.md", "# B\n\n" + fence("print('b1')") + "\n" + fence("print('b2')"))
    site.page("c.md", "# C\n\n" + fence("print('c')"))
    site.page("d.md", "# D\n\n" + fence("print('d')"))
    pages = {"a.md", "b.md", "c.md", "d.md"}

    first = site.build()
    assert first.returncode == 0, first.log
    assert reasons(first) == dict.fromkeys(pages, "no entry yet")
    assert first.report()["pages"][0]["changes"] == [{"kind": "new"}]
    assert "— no entry yet" in first.log  # the progress lines say it too

    site.page("a.md", prose.format("Other words."))
    assert reasons(site.build()) == dict.fromkeys(pages, None)  # prose: nothing runs

    # c: its last run was under another torch. d: its entry was pruned.
    cache = site.root / ".cache/runnable"
    (record_file,) = records_of(site, "docs/c.md").glob("*.json")
    record = json.loads(record_file.read_text())
    (cache / record["key"][:2] / f"{record['key']}.json").unlink()
    record_file.unlink()
    torch = record["material"]["environment"]["torch"]
    record["material"]["environment"]["torch"] = "0.0.1"
    record["key"] = "0" * 64
    (record_file.parent / f"{record['key']}.json").write_text(json.dumps(record))
    (d_record,) = records_of(site, "docs/d.md").glob("*.json")
    (cache / d_record.stem[:2] / f"{d_record.stem}.json").unlink()
    # b: its second fence. a: the module it imports.
    site.page("b.md", "# B\n\n" + fence("print('b1')") + "\n" + fence("print('b2 edited')"))
    site.write("snippets/alpha.py", "def value():\n    return 'alpha 2'\n")

    edited = site.build()
    assert edited.returncode == 0, edited.log
    assert reasons(edited) == {
        "a.md": "snippets/alpha.py changed",
        "b.md": "fence 2's code changed",
        "c.md": f"torch 0.0.1 → {torch}",
        "d.md": "its entry was pruned from the cache",
    }
    report_page = edited.html("runnable/index.html")
    assert "第 2 个代码块的代码变了" in report_page and "snippets/alpha.py" in report_page

    forced = site.build(env={"RUNNABLE_NO_CACHE": "1"})
    assert reasons(forced) == dict.fromkeys(pages, "forced (RUNNABLE_NO_CACHE=1)")
