"""Memos for `mkdocs serve`: work an unchanged page repeats on every rebuild (no MkDocs imports).

Under `mkdocs serve` every save rebuilds the whole site, and most of that time goes to
converting and indexing pages that did not change: Pygments highlighting every code
block, jieba segmenting every section of the search index, the search plugin parsing
every page's HTML. Each memo here is keyed by everything its result depends on (the
text itself, not a file name or a time), so a hit is the value a fresh computation would
give: nothing can go stale. They are installed only by the serve process, so a
`mkdocs build` computes everything as before, and benchmarks of builds stay honest.

The functions patch the third-party callables they are given (the plugin passes them in
and fails loudly if one is missing), and return an `undo` for tests.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import types
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from pathlib import Path
from typing import Any

_MISS = object()


class Memo:
    """A bounded least-recently-used map, with hit and miss counts."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self.data: OrderedDict[Hashable, Any] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any:
        value = self.data.get(key, _MISS)
        if value is _MISS:
            self.misses += 1
        else:
            self.hits += 1
            self.data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self.data[key] = value
        if len(self.data) > self.size:
            self.data.popitem(last=False)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=20).digest()


def _stable_repr(value: Any) -> str | None:
    """repr(value) if it cannot depend on object identity (no `at 0x...`), else None."""
    text = repr(value)
    return None if " at 0x" in text else text


def _patch(owner: Any, name: str, wrapper: Callable) -> Callable[[], None]:
    original = getattr(owner, name)
    if getattr(original, "_runnable_memo", None) is not None:
        return lambda: None  # already memoized (a second serve in one process)
    wrapper._runnable_memo = original  # type: ignore[attr-defined]
    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def pygments_key(code: str, lexer: Any, formatter: Any) -> Hashable | None:
    """What `pygments.highlight(code, lexer, formatter)` depends on, or None if unsure."""
    if getattr(lexer, "filters", None) or not hasattr(formatter, "options"):
        return None
    options = _stable_repr((sorted(lexer.options.items()), sorted(formatter.options.items())))
    if options is None:
        return None
    kinds = tuple(f"{type(x).__module__}.{type(x).__qualname__}" for x in (lexer, formatter))
    return (_digest(code), len(code), kinds, options)


def memoize_highlight(module: Any, memo: Memo) -> Callable[[], None]:
    """Memoize `module.highlight` (Pygments' `highlight` as a module imported it)."""
    highlight = module.highlight

    def memoized(code: str, lexer: Any, formatter: Any, outfile: Any = None) -> Any:
        key = pygments_key(code, lexer, formatter) if outfile is None else None
        if key is None:
            return highlight(code, lexer, formatter, outfile)
        value = memo.get(key)
        if value is _MISS:
            value = highlight(code, lexer, formatter)
            memo.put(key, value)
        return value

    return _patch(module, "highlight", memoized)


def memoize_text_method(cls: Any, name: str, memo: Memo, state: Callable[[], Hashable]) -> Callable:
    """Memoize `cls.name(self, text) -> str`, a function of `text` and of `state()` alone."""
    method = getattr(cls, name)

    def memoized(self: Any, text: str) -> str:
        key = (_digest(text), len(text), state())
        value = memo.get(key)
        if value is _MISS:
            value = method(self, text)
            memo.put(key, value)
        return value

    return _patch(cls, name, memoized)


def search_page_key(page: Any) -> Hashable | None:
    """What Material's `SearchIndex.add_entry_from_context(page)` reads from `page`."""

    def toc(items: Any) -> list:
        return [(i.id, i.url, i.title, toc(i.children)) for i in items]

    try:
        meta = _stable_repr(
            (page.meta.get("search"), page.meta.get("tags"), page.meta.get("title"))
        )
        fields = (page.url, str(page.title), toc(page.toc), meta)
    except AttributeError:
        return None
    if meta is None:
        return None
    return (_digest(page.content), len(page.content), _stable_repr(fields))


def memoize_search_entries(cls: Any, memo: Memo, state: Callable[[], Hashable]) -> Callable:
    """Memoize `cls.add_entry_from_context(self, page)`, which appends to `self.entries`.

    The entries a page adds depend on the page (`search_page_key`) and on the index's
    configuration and jieba's dictionary (`state()`); a hit appends copies of them.
    """
    method = cls.add_entry_from_context

    def memoized(self: Any, page: Any) -> None:
        page_key = search_page_key(page)
        entries = getattr(self, "entries", None)
        if page_key is None or not isinstance(entries, list):
            return method(self, page)
        key = (page_key, _stable_repr(sorted(self.config.items())), state())
        value = memo.get(key)
        if value is _MISS:
            before = len(entries)
            method(self, page)
            memo.put(key, copy.deepcopy(entries[before:]))
        else:
            entries.extend(copy.deepcopy(value))
        return None

    return _patch(cls, "add_entry_from_context", memoized)


def fingerprint(value: Any, depth: int = 0) -> str | None:
    """A text that changes whenever `value`'s content does, or None if that cannot be told.

    For configuration: plain data, classes, functions (code, defaults, closure values),
    partials, Markdown extensions (their class and `getConfigs()`), objects by their fields.
    """
    if depth > 8:
        return None
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return repr(value)
    parts: list[str | None]
    if isinstance(value, list | tuple):
        parts = [fingerprint(v, depth + 1) for v in value]
    elif isinstance(value, set | frozenset):
        parts = sorted(fingerprint(v, depth + 1) or "\0" for v in value)
    elif isinstance(value, dict):
        parts = [
            f"{fingerprint(k, depth + 1)}:{fingerprint(v, depth + 1)}" for k, v in value.items()
        ]
        parts.sort()
    elif isinstance(value, type):
        return f"class {value.__module__}.{value.__qualname__}"
    elif isinstance(value, functools.partial):
        parts = [fingerprint(x, depth + 1) for x in (value.func, value.args, value.keywords)]
    elif isinstance(value, types.FunctionType):
        code = value.__code__
        cells = [c.cell_contents for c in value.__closure__ or ()]
        parts = [
            value.__module__,
            value.__qualname__,
            _digest(repr((code.co_code, code.co_consts))).hex(),
        ]
        parts += [
            fingerprint(x, depth + 1) for x in (value.__defaults__, value.__kwdefaults__, cells)
        ]
    elif isinstance(value, types.BuiltinFunctionType):
        return f"builtin {value.__module__}.{value.__qualname__}"
    elif callable(getattr(value, "getConfigs", None)):  # a Markdown extension instance
        parts = [fingerprint(type(value)), fingerprint(value.getConfigs(), depth + 1)]
    elif hasattr(value, "__dict__"):
        parts = [fingerprint(type(value)), fingerprint(vars(value), depth + 1)]
    else:
        return None
    if any(part is None for part in parts):
        return None
    return f"{type(value).__name__}({'|'.join(parts)})"  # type: ignore[arg-type]


class RenderMemo:
    """Memoize MkDocs' `Page.render(config, files)` by everything it reads.

    The key: the page's Markdown (after every `on_page_markdown`), its file's paths and
    URL, every file's paths and URL (links resolve against them), and a fingerprint of the
    Markdown configuration. A page whose Markdown pulls in other files while converting
    (`--8<--` includes) or runs code (`exec=` fences) is never memoized. A hit restores what
    `render` sets (content, toc, title, anchors) as copies, and re-logs the warnings the
    conversion logged (broken links), so `--strict` still fails on them.
    """

    SKIP = ("--8<--", "exec=")

    def __init__(self, memo: Memo, may_store: Callable[[Any], bool] = lambda page: True):
        self.memo = memo
        self.may_store = may_store
        self._build: tuple[Any, Any, str | None] | None = None  # (config, files, fingerprint)

    def _build_key(self, config: Any, files: Any) -> str | None:
        if self._build is None or self._build[0] is not config or self._build[1] is not files:
            conf = fingerprint(
                [
                    config["markdown_extensions"],
                    config["mdx_configs"],
                    config["validation"],
                    config["use_directory_urls"],
                    config["docs_dir"],
                ]
            )
            listing = sorted((f.src_uri, f.dest_uri, f.url) for f in files)
            self._build = (
                config,
                files,
                None if conf is None else _digest(conf + repr(listing)).hex(),
            )
        return self._build[2]

    @property
    def current(self) -> str | None:
        """The key of the build in progress (None before its first page, or if unsure)."""
        return None if self._build is None else self._build[2]

    def install(self, page_class: Any) -> Callable[[], None]:
        render = page_class.render
        memo = self

        def memoized(page: Any, config: Any, files: Any) -> None:
            build = memo._build_key(config, files)
            text = page.markdown
            if build is None or not isinstance(text, str) or any(s in text for s in memo.SKIP):
                return render(page, config, files)
            file = page.file
            key = (_digest(text), len(text), file.src_uri, file.dest_uri, file.url, build)
            value = memo.memo.get(key)
            if value is _MISS:
                records = _Recorder()
                with records:
                    render(page, config, files)
                if memo.may_store(page):
                    links = page.links_to_anchors
                    memo.memo.put(
                        key,
                        (
                            page.content,
                            copy.deepcopy(page.toc),
                            page._title_from_render,
                            set(page.present_anchor_ids or ()),
                            None
                            if links is None
                            else {f.src_uri: dict(v) for f, v in links.items()},
                            records.records,
                        ),
                    )
                return None
            content, toc, title, anchors, links, logged = value
            for record in logged:
                logging.getLogger(record.name).handle(record)
            page.content = content
            page.toc = copy.deepcopy(toc)
            page._title_from_render = title
            page.present_anchor_ids = set(anchors)
            if links is not None:
                by_uri = {f.src_uri: f for f in files}
                page.links_to_anchors = {
                    by_uri[u]: dict(v) for u, v in links.items() if u in by_uri
                }
            return None

        return _patch(page_class, "render", memoized)


class _Recorder(logging.Handler):
    """Records what MkDocs' loggers log while it is active (a context manager)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.records.append(record)

    def __enter__(self) -> _Recorder:
        logging.getLogger("mkdocs").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("mkdocs").removeHandler(self)


class FileBoundMemo:
    """Results that depend on a text and on some files' contents (e.g. a page's fences).

    `get(key, root)` returns the stored result only if every file it depends on still has
    the content it had when the result was computed.
    """

    def __init__(self, memo: Memo) -> None:
        self.memo = memo

    @staticmethod
    def digests(root: Path, files: Iterable[str]) -> dict[str, bytes | None]:
        out: dict[str, bytes | None] = {}
        for name in files:
            try:
                out[name] = hashlib.blake2b((root / name).read_bytes(), digest_size=20).digest()
            except OSError:
                out[name] = None
        return out

    def get(self, key: Hashable, root: Path) -> Any:
        value = self.memo.get(key)
        if value is _MISS:
            return _MISS
        result, digests = value
        return result if self.digests(root, digests) == digests else _MISS

    def put(self, key: Hashable, root: Path, result: Any, files: Iterable[str]) -> None:
        self.memo.put(key, (result, self.digests(root, files)))


def jinja_bytecode_cache() -> Any:
    """One process-wide Jinja bytecode cache: templates compile once per serve, not per build.

    Jinja checks each entry's source checksum when loading it, so an edited template
    compiles again (jinja2.BytecodeCache, Bucket.load_bytecode).
    """
    global _BYTECODE
    if _BYTECODE is None:
        import jinja2

        class MemoryBytecodeCache(jinja2.BytecodeCache):
            def __init__(self) -> None:
                self.store: dict[str, bytes] = {}

            def load_bytecode(self, bucket: Any) -> None:
                if bucket.key in self.store:
                    bucket.bytecode_from_string(self.store[bucket.key])

            def dump_bytecode(self, bucket: Any) -> None:
                self.store[bucket.key] = bucket.bytecode_to_string()

        _BYTECODE = MemoryBytecodeCache()
    return _BYTECODE


_BYTECODE: Any = None
MISS = _MISS
