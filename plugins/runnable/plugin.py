"""MkDocs events only: wires fences, engine, render, mathml and report together."""

from __future__ import annotations

import json
import logging
import os
import posixpath
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

from .cache import Cache
from .config import RunnableConfig
from .downloads import downloads, insert_links, links_html
from .engine import ExecutionFailed, Outcome, environment, execute
from .fences import Fence, FenceError, find_fences, line_offset, split_front_matter
from .mathml import MathMLExtension
from .render import Stash, StashExtension, render_page
from .report import report_data, report_markdown

log = logging.getLogger("mkdocs.plugins.runnable")

REPORT_PAGE = "runnable/index.md"
REPORT_JSON = "runnable/report.json"


def _signature(fences: list[Fence]) -> list[dict]:
    return [fence.exec_signature() for fence in fences]


class RunnablePlugin(BasePlugin[RunnableConfig]):
    """Executes a site's Python exec fences at build time and renders their output."""

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        self.root = Path(config.config_file_path).parent.resolve()
        self.docs = Path(config.docs_dir).resolve()
        self.off = os.environ.get("RUNNABLE_OFF") == "1"
        use_cache = os.environ.get("RUNNABLE_NO_CACHE") != "1"
        self.cache = Cache(self.root / self.config.cache_dir) if use_cache else None
        self.outcomes: dict[str, Outcome] = {}
        self.math = MathMLExtension()
        self.stash = Stash()
        self.downloads: dict[str, list] = {}  # page's output folder -> its code to download
        config.markdown_extensions += [self.math, StashExtension(self.stash)]
        return config

    def _fences(self, file: File, markdown: str | None = None) -> list[Fence]:
        text = file.content_string
        body, offset = (
            split_front_matter(text)
            if markdown is None
            else (markdown, line_offset(text, markdown))
        )
        path = self._display_path(file)
        try:
            return find_fences(body, path=path, root=self.root, line_offset=offset)
        except FenceError as error:
            raise PluginError(str(error)) from None

    def _display_path(self, file: File) -> str:
        """The page's path relative to the repository (a generated page: its URI)."""
        source = Path(file.abs_src_path or file.src_uri).resolve()
        return (
            source.relative_to(self.root).as_posix()
            if source.is_relative_to(self.root)
            else file.src_uri
        )

    def _execute(self, pages: dict[str, list[Fence]]) -> None:
        try:
            self.outcomes |= execute(
                pages,
                root=self.root,
                cache=self.cache,
                workers=self.config.workers,
                timeout=self.config.timeout,
                off=self.off,
                log=log.info,
            )
        except ExecutionFailed as error:
            raise PluginError(str(error)) from None

    def on_files(self, files: Files, *, config: MkDocsConfig) -> Files | None:
        if not self.config.enabled:
            return None
        # Every page's fences run here, in parallel, before any page renders.
        pages = {file.src_uri: self._fences(file) for file in files.documentation_pages()}
        self._execute(pages)
        files.append(File.generated(config, REPORT_PAGE, content="# 执行报告\n"))
        return files

    # Before Material's blog plugin (-50) builds excerpts from the post's Markdown, so
    # listing pages reuse the rendered output instead of executing the fences again.
    @event_priority(50)
    def on_page_markdown(
        self, markdown: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if not self.config.enabled:
            return None
        self.math.errors.clear()
        if page.file.src_uri == REPORT_PAGE:
            return report_markdown(self._report(), links=self._links(page))
        fences = self._fences(page.file, markdown)
        if not fences:
            return None
        outcome = self.outcomes.get(page.file.src_uri)
        if outcome is None or _signature(outcome.fences) != _signature(fences):
            # Another plugin changed the page's code after `on_files`: run what is there now.
            self._execute({page.file.src_uri: fences})
            outcome = self.outcomes[page.file.src_uri]
        rendered = render_page(markdown, fences, outcome.results, self.stash)
        stem, folder = Path(page.file.src_uri).stem, posixpath.dirname(page.file.dest_uri)
        items = downloads(stem, markdown, fences, outcome.results, url=page.canonical_url or "")
        self.downloads[folder] = items
        return insert_links(rendered, links_html(items)) if items else rendered

    @event_priority(50)  # fail on a bad formula before other plugins use the HTML
    def on_page_content(
        self, html: str, *, page: Page, config: MkDocsConfig, files: Files
    ) -> str | None:
        if not self.config.enabled or not self.math.errors:
            return None
        text = page.file.content_string
        messages = []
        for error in self.math.errors:
            line = text[: max(text.find(error.latex), 0)].count("\n") + 1
            messages.append(f"{self._display_path(page.file)}:{line}: {error}")
        raise PluginError("\n".join(messages))

    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled:
            return
        target = Path(config.site_dir) / REPORT_JSON
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            json.dumps(self._report(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        for folder, items in self.downloads.items():
            for item in items:
                (Path(config.site_dir) / folder / item.name).write_bytes(item.content)
        if self.cache:
            self.cache.prune()

    def on_serve(self, server, *, config: MkDocsConfig, builder):  # noqa: ANN001 (livereload types)
        if self.config.enabled:
            # Pages show what snippet modules compute: editing one must rebuild.
            server.watch(str(self.root / "snippets"))
        return server

    def _report(self) -> dict:
        return report_data(self.outcomes, environment())

    def _links(self, page: Page) -> dict[str, str]:
        base = Path(page.file.src_uri).parent
        return {uri: os.path.relpath(uri, base) for uri in self.outcomes}
