"""MkDocs events only: wires fences, engine, render, mathml and report together."""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import BasePlugin, event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from mkdocs.utils import get_relative_url

from .cache import Cache
from .config import RunnableConfig
from .downloads import downloads, insert_links, links_html
from .engine import ExecutionFailed, Outcome, environment, execute
from .excerpts import ExcerptError, Stats, shorten
from .fences import LANGUAGES, Fence, FenceError, find_fences, line_offset, split_front_matter
from .mathml import MathMLExtension
from .memo import (
    MISS,
    FileBoundMemo,
    Memo,
    RenderMemo,
    jinja_bytecode_cache,
    memoize_highlight,
    memoize_search_entries,
    memoize_text_method,
)
from .render import (
    FIGURE_DIR,
    FIGURE_SRC,
    Stash,
    StashExtension,
    figure_name,
    render_page,
    resolve_figure_urls,
)
from .report import report_data, report_markdown
from .search import compact_index, exclude_code, strip_before_indexing
from .theme_patches import patch_theme

log = logging.getLogger("mkdocs.plugins.runnable")

#: Extensions the rendered fences need (code blocks nested in tabs, titles): added if absent.
NEEDED_EXTENSIONS = ("pymdownx.superfences",)
REPORT_PAGE = "runnable/index.md"
REPORT_JSON = "runnable/report.json"


def _signature(fences: list[Fence]) -> list[dict]:
    return [fence.exec_signature() for fence in fences]


def _jieba_state() -> tuple:
    """What jieba's segmentation depends on besides the text: its dictionary."""
    try:
        import jieba
    except ImportError:
        return ()
    return (jieba.dt.dictionary, jieba.dt.total, len(jieba.dt.FREQ))


# A page's fences, valid while its Markdown and the files it includes are unchanged.
_FENCES = FileBoundMemo(Memo(5_000))
# Serve only: converted pages and excerpts, by their Markdown and the build's files and config.
_RENDERS: RenderMemo | None = None
_EXCERPTS = Memo(20_000)


def install_serve_memos(may_store: Callable[[Page], bool] = lambda page: True) -> None:
    """Memoize, for this process, the work every serve rebuild repeats (see memo.py)."""
    global _RENDERS
    try:
        import pymdownx.highlight as highlight_module
        from material.plugins.search.plugin import SearchIndex

        if _RENDERS is None:
            _RENDERS = RenderMemo(Memo(5_000), may_store)
            _RENDERS.install(Page)
        memoize_highlight(highlight_module, Memo())
        memoize_text_method(SearchIndex, "_segment_chinese", Memo(), _jieba_state)
        memoize_search_entries(SearchIndex, Memo(5_000), _jieba_state)
    except (ImportError, AttributeError) as error:
        raise PluginError(
            f"pymdownx or Material changed ({error}): update plugins/runnable/memo.py"
        ) from None


def strip_code_before_indexing() -> None:
    """Material's search index parses pages without the code it leaves out (see search.py)."""
    try:
        from material.plugins.search.plugin import SearchIndex
    except ImportError:  # no Material search: nothing to index
        return
    try:
        strip_before_indexing(SearchIndex)
    except AttributeError as error:
        raise PluginError(f"Material's search changed ({error}): update search.py") from None


class RunnablePlugin(BasePlugin[RunnableConfig]):
    """Executes a site's Python exec fences at build time and renders their output."""

    def on_startup(self, *, command: str, dirty: bool) -> None:
        # Having on_startup also keeps this instance across `mkdocs serve` rebuilds.
        if (
            self.config.enabled
            and command == "serve"
            and os.environ.get("RUNNABLE_SERVE_MEMO") != "0"
        ):
            # A page whose formulas failed is never memoized: its next build fails again.
            install_serve_memos(lambda page: not self.math.errors)
            self.serving = True

    def on_config(self, config: MkDocsConfig) -> MkDocsConfig | None:
        if not self.config.enabled:
            return None
        self.root = Path(config.config_file_path).parent.resolve()
        self.docs = Path(config.docs_dir).resolve()
        self.off = os.environ.get("RUNNABLE_OFF") == "1"
        use_cache = os.environ.get("RUNNABLE_NO_CACHE") != "1"
        self.cache = Cache(self.root / self.config.cache_dir) if use_cache else None
        self.outcomes: dict[str, Outcome] = {}
        # RUNNABLE_FULL_EXCERPTS=1: listing pages convert whole posts, as Material does.
        self.full_excerpts = os.environ.get("RUNNABLE_FULL_EXCERPTS") == "1"
        self.excerpt_stats = Stats()
        self.math = MathMLExtension()
        # Only Material's search honours (and then strips) data-search-exclude markers.
        self.material_search = any(
            type(plugin).__module__.startswith("material.plugins.search")
            for plugin in config.plugins.values()
        )
        if self.material_search:
            strip_code_before_indexing()
        self.stash = Stash()
        names = {
            e.removeprefix("markdown.extensions.")
            for e in config.markdown_extensions
            if isinstance(e, str)
        }
        config.markdown_extensions += [e for e in NEEDED_EXTENSIONS if e not in names]
        self.tabbed = "pymdownx.tabbed" in names
        auto = {x.strip() for x in os.environ.get("MARKDOWN_EXEC_AUTO", "").split(",")}
        if auto & LANGUAGES:
            raise PluginError(
                "MARKDOWN_EXEC_AUTO asks to run every Python fence; runnable runs only "
                'fences marked exec="1": mark them, and unset MARKDOWN_EXEC_AUTO for Python'
            )
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
        key = (body, path, str(self.root), offset)
        fences = _FENCES.get(key, self.root)
        if fences is MISS:
            try:
                fences = find_fences(body, path=path, root=self.root, line_offset=offset)
            except FenceError as error:
                raise PluginError(str(error)) from None
            _FENCES.put(key, self.root, fences, {file for f in fences for file in f.includes})
        for fence in fences:
            source = fence.options.get("source", "")
            if source.startswith("tabbed") and not self.tabbed:
                message = f'source="{source}" needs the pymdownx.tabbed Markdown extension'
                raise PluginError(f"{fence.path}:{fence.line}: {message}")
        return fences

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
        if not self.config.enabled:
            return None
        # Material's blog plugin made the post's excerpt in its on_page_markdown: from
        # here on, listing pages convert only the excerpt's Markdown (see excerpts.py).
        excerpt = getattr(page, "excerpt", None)
        if excerpt is not None and not self.full_excerpts:
            try:
                if getattr(self, "serving", False) and _RENDERS is not None:
                    shorten(excerpt, self.excerpt_stats, _EXCERPTS, lambda: _RENDERS.current)
                else:
                    shorten(excerpt, self.excerpt_stats)
            except ExcerptError as error:
                raise PluginError(str(error)) from None
        if self.math.errors:
            self._fail_on_math(page)
        # Before the search plugin indexes the page (on_page_context): code stays out.
        return exclude_code(html) if self.material_search else None

    def _fail_on_math(self, page: Page) -> None:
        text = page.file.content_string
        messages = []
        for error in self.math.errors:
            line = text[: max(text.find(error.latex), 0)].count("\n") + 1
            messages.append(f"{self._display_path(page.file)}:{line}: {error}")
        raise PluginError("\n".join(messages))

    def on_post_page(self, output: str, *, page: Page, config: MkDocsConfig) -> str | None:
        if not self.config.enabled or FIGURE_SRC not in output:
            return None
        # Here, not when rendering: a post's figures also show in excerpts on listing pages.
        return resolve_figure_urls(output, get_relative_url(FIGURE_DIR, page.url))

    def on_env(self, env, *, config: MkDocsConfig, files: Files):  # noqa: ANN001 (jinja2)
        if getattr(self, "serving", False):
            env.bytecode_cache = jinja_bytecode_cache()  # compile templates once per serve
        return env

    @event_priority(-100)  # after the search plugin (0) has written its index
    def on_post_build(self, *, config: MkDocsConfig) -> None:
        if not self.config.enabled:
            return
        compact_index(Path(config.site_dir) / "search/search_index.json")
        if config.theme.name == "material":
            for problem in patch_theme(Path(config.site_dir)):
                log.warning(f"Material not patched: {problem}")
        stats = self.excerpt_stats
        log.debug(
            f"excerpts: {stats.shortened} shortened, {stats.full} converted whole"
            + (f" ({', '.join(sorted(set(stats.fallbacks)))})" if stats.fallbacks else "")
        )
        self._write_figures(Path(config.site_dir) / FIGURE_DIR)
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

    def _write_figures(self, directory: Path) -> None:
        """Every figure's light and dark SVG, each once, named by its content."""
        for outcome in self.outcomes.values():
            for result in outcome.results or []:
                for figure in result.figures:
                    for svg in (figure["light"], figure["dark"]):
                        target = directory / figure_name(svg)
                        if not target.exists():
                            directory.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(svg.encode("utf-8"))

    def _report(self) -> dict:
        return report_data(self.outcomes, environment())

    def _links(self, page: Page) -> dict[str, str]:
        base = Path(page.file.src_uri).parent
        return {uri: os.path.relpath(uri, base) for uri in self.outcomes}
