"""Run one or more pages' fences exactly as the build does, and print what they produce.

    python -m plugins.runnable docs/blog/posts/adamw-vs-adam.md [--cache] [--figures DIR]
    python -m plugins.runnable --shard K/N [--cache-dir DIR]

Run from the repository root (where mkdocs.yml is). Exits 1 if a page fails.

`--shard K/N` takes the whole site (the pages under mkdocs.yml's `docs_dir`), splits the
pages that miss the cache into N balanced shares and executes share K, writing only cache
entries (to the plugin's `cache_dir`, or DIR). Run every K on its own machine, copy their
cache folders into one, and `mkdocs build` executes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import shards
from .cache import Cache
from .engine import ExecutionFailed, default_workers, execute
from .fences import Fence, FenceError, find_fences, split_front_matter
from .render import figure_alt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.runnable", description=__doc__.split("\n")[0]
    )
    parser.add_argument("pages", nargs="*", type=Path, help="Markdown files to execute")
    parser.add_argument(
        "--cache", action="store_true", help="use and fill .cache/runnable like the build"
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds per page (default 120)")
    parser.add_argument(
        "--figures",
        type=Path,
        metavar="DIR",
        help="also write each figure's light and dark SVG here",
    )
    parser.add_argument(
        "--shard", metavar="K/N", help="execute share K of N of the site's uncached pages"
    )
    parser.add_argument(
        "--cache-dir", type=Path, help="with --shard: the cache folder (default: mkdocs.yml's)"
    )
    parser.add_argument(
        "--config-file", type=Path, default=Path("mkdocs.yml"), help="with --shard: the site"
    )
    args = parser.parse_args(argv)
    if args.shard:
        if args.pages:
            parser.error("--shard takes the whole site: give no pages")
        try:
            shard = shards.parse(args.shard)
        except ValueError as error:
            parser.error(str(error))
        return run_shard(shard, args.config_file, args.cache_dir)
    if not args.pages:
        parser.error("give the pages to execute, or --shard K/N")
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
    root = Path.cwd().resolve()
    pages = {}
    try:
        for page in args.pages:
            body, offset = split_front_matter(page.read_text(encoding="utf-8"))
            path = page.resolve().relative_to(root).as_posix()
            pages[path] = find_fences(body, path=path, root=root, line_offset=offset)
        outcomes = execute(
            pages,
            root=root,
            cache=Cache(root / ".cache/runnable") if args.cache else None,
            workers=default_workers(),
            timeout=args.timeout,
            log=lambda line: print(line, file=sys.stderr),
            forced_by="run without --cache",
        )
    except (FenceError, ExecutionFailed) as error:
        print(error, file=sys.stderr)
        return 1
    for outcome in outcomes.values():
        for fence, result in zip(outcome.fences, outcome.results, strict=True):
            print(f"── {fence.location} ({result.seconds:.2f}s)")
            print(result.output.rstrip() or "(no output)")
            if result.error:
                print(result.error)
            for number, figure in enumerate(result.figures, start=1):
                light, dark = len(figure["light"]), len(figure["dark"])
                print(
                    f"[figure {number}: {figure_alt(figure, fence.options.get('alt'))}; SVG {light:,} B light, {dark:,} B dark]"
                )
                if args.figures:
                    print(f"  {save_figure(figure, args.figures, fence, number)}")
    return 0


def save_figure(figure: dict, folder: Path, fence: Fence, number: int) -> str:
    """Write a figure's two SVGs as <page>-<fence id>-<n>-{light,dark}.svg; return their pattern."""
    stem = f"{Path(fence.path).stem}-{fence.id}-{number}"
    for scheme in ("light", "dark"):
        (folder / f"{stem}-{scheme}.svg").write_text(figure[scheme], encoding="utf-8")
    return str(folder / f"{stem}-{{light,dark}}.svg")


def run_shard(shard: tuple[int, int], config_file: Path, cache_dir: Path | None) -> int:
    """Execute one share of the site's pages that miss the cache; print what ran."""
    site = shards.read_config(config_file)
    cache = Cache((cache_dir or site.cache_dir).resolve())
    cache.directory.mkdir(parents=True, exist_ok=True)  # a shard always has a folder to upload
    pages = {}
    try:
        for file in shards.site_pages(site.docs):
            body, offset = split_front_matter(file.read_text(encoding="utf-8"))
            # Named as the plugin names them: by path in docs_dir; from the root in messages.
            shown = file.relative_to(site.root) if file.is_relative_to(site.root) else file
            pages[file.relative_to(site.docs).as_posix()] = find_fences(
                body, path=shown.as_posix(), root=site.root, line_offset=offset
            )
        outcomes = execute(
            pages,
            root=site.root,
            cache=cache,
            workers=site.workers or default_workers(),
            timeout=site.timeout,
            log=lambda line: print(line, file=sys.stderr),
            shard=shard,
        )
    except (FenceError, ExecutionFailed) as error:
        print(error, file=sys.stderr)
        return 1
    executed = sorted(p for p, o in outcomes.items() if o.status == "executed")
    seconds = sum(outcomes[p].seconds for p in executed)
    print(f"shard {shard[0]}/{shard[1]}: executed {len(executed)} pages in {seconds:.1f}s")
    for page in executed:
        print(f"  {page} ({outcomes[page].seconds:.1f}s): {outcomes[page].reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
