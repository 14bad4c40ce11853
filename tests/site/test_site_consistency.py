"""One name, three files; every exec fence ran and left its blocks; categories from the list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from site_helpers import DOCS, ROOT, Post, exec_fences, plugin_config, posts, runnable_blocks

POSTS = posts()
MODULES = sorted(p.stem for p in (ROOT / "snippets").glob("*.py") if p.name != "__init__.py")
PAGES_WITH_FENCES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.md")
    if exec_fences(p.read_text(encoding="utf-8"))
)
IDS = [p.slug for p in POSTS]


def page_html(site_dir: Path, page: str) -> Path:
    """The built file of a docs page (posts by their slug URL, others as directory URLs)."""
    for post in POSTS:
        if post.path == DOCS / page:
            return post.html_path(site_dir)
    stem = page.removesuffix(".md")
    if stem == "index" or stem.endswith("/index"):
        return site_dir / stem.removesuffix("index") / "index.html"
    return site_dir / stem / "index.html"


@pytest.fixture(scope="module")
def report(site_dir: Path) -> dict[str, dict]:
    data = json.loads((site_dir / "runnable" / "report.json").read_text(encoding="utf-8"))
    return {page["page"]: page for page in data["pages"]}


def test_there_are_posts() -> None:
    """docs/blog/posts holds at least one post (so the tests below test something)."""
    assert POSTS


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_post_has_slug_module_and_test(post: Post) -> None:
    """A post's slug is its file name; snippets/<slug_>.py and its test exist."""
    assert post.meta.get("slug") == post.path.stem, "front matter slug differs from the file name"
    assert (ROOT / "snippets" / f"{post.module}.py").is_file(), f"no snippets/{post.module}.py"
    test = ROOT / "tests" / "snippets" / f"test_{post.module}.py"
    assert test.is_file(), f"no tests/snippets/{test.name}"


@pytest.mark.parametrize("module", MODULES)
def test_module_has_post(module: str) -> None:
    """Every snippets module belongs to a post of the same name."""
    post = ROOT / "docs" / "blog" / "posts" / f"{module.replace('_', '-')}.md"
    assert post.is_file(), f"snippets/{module}.py has no post {post.relative_to(ROOT)}"


@pytest.mark.parametrize("post", POSTS, ids=IDS)
def test_post_categories_from_the_list(post: Post) -> None:
    """A post has categories, all from categories_allowed in mkdocs.yml."""
    allowed = set(plugin_config("blog")["categories_allowed"])
    categories = post.meta.get("categories") or []
    assert categories, "no categories"
    assert set(categories) <= allowed, f"not in categories_allowed: {set(categories) - allowed}"


def test_report_lists_every_page_with_fences(report: dict[str, dict]) -> None:
    """report.json lists exactly the pages whose Markdown has exec fences."""
    assert sorted(report) == PAGES_WITH_FENCES


@pytest.mark.parametrize("page", PAGES_WITH_FENCES)
def test_every_exec_fence_left_its_blocks(page: str, site_dir: Path, report: dict) -> None:
    """Each exec fence ran (report.json count) and its source and output are on the page."""
    fences = exec_fences((DOCS / page).read_text(encoding="utf-8"))
    entry = report.get(page, {})
    assert entry.get("fences") == len(fences), f"report.json: {entry}, Markdown: {len(fences)}"
    assert entry.get("status") in {"executed", "cached"}, f"report.json: {entry}"

    html = page_html(site_dir, page).read_text(encoding="utf-8")
    blocks = [b["class"] for b in runnable_blocks(html)]
    count = {name: blocks.count(f"runnable-{name}") for name in ("source", "output", "figure")}
    count["error"] = blocks.count("runnable-error")
    shown = sum(f.shows_source for f in fences)
    results = sum("result" in f.options for f in fences)
    silent = sum(not f.shows_source and "result" not in f.options for f in fences)
    assert count["source"] == shown, "runnable-source blocks differ from fences with source="
    assert count["error"] == sum(f.allow_error for f in fences), "runnable-error blocks"
    # a result= fence that printed nothing shows nothing; a hidden fence must show something
    assert count["output"] >= results, "a result= fence printed nothing"
    assert count["output"] + count["figure"] >= results + silent, "a hidden fence showed nothing"
