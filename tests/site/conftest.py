"""Fixtures of the site tests: the built site, a local server for it, and Chromium.

`RUNNABLE_SITE_DIR` names an already built site (the nox sessions build it first);
without it the site is built here with `mkdocs build --strict`. The copy-paste tests are
collected only with `RUNNABLE_COPY_PASTE=1`, which `nox -s copy-paste` sets: they need an
interpreter without this project, which no other session has.

The sessions run these tests in two processes (pytest-xdist, `-n 2`): the browser tests of
one post go to one process, so each page is opened once; the slow clean build of the
reproducibility test starts first, beside the visits.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from site_helpers import ROOT, build_site

ARTIFACTS = ROOT / "test-artifacts"
COPY_PASTE = "test_site_copy_paste.py"
collect_ignore = [] if os.environ.get("RUNNABLE_COPY_PASTE") == "1" else [COPY_PASTE]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


FIRST = "test_site_reproducible.py"  # a full clean build: start it while the rest runs
BROWSER = "test_site_browser.py::"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the clean build first (stable sort: the rest keep their order)."""
    items.sort(key=lambda item: item.path.name != FIRST)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook; fine without it
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With `-n N`: a post's browser tests go to one process, the rest one by one, in order.

    (`--dist loadgroup` would do it with marks, but pytest-xdist 3.8 cannot rename pytest
    9's node ids, so its groups fall apart.)
    """
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ByPost(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            if BROWSER in nodeid and nodeid.endswith("]"):
                return "post " + nodeid.rsplit("[", 1)[1]  # the post's slug
            return nodeid

    config.option.loadscopereorder = False  # collection order: the clean build first
    return ByPost(config, log)


@pytest.fixture(scope="session")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("RUNNABLE_SITE_DIR")
    if given:
        path = (ROOT / given).resolve()
        assert (path / "index.html").is_file(), f"RUNNABLE_SITE_DIR={given} holds no built site"
        return path
    path = tmp_path_factory.mktemp("site")
    build_site(path)
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def base_url(site_dir: Path) -> Iterator[str]:
    """The built site served over HTTP on 127.0.0.1 (a free port), like any static host."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (`CHROMIUM` overrides the executable)."""
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail("no chromium on PATH: apt-get install chromium (see .ci/run)", pytrace=False)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    path = ARTIFACTS / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
