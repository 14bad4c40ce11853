"""Run one or more pages' fences exactly as the build does, and print what they produce.

    python -m plugins.runnable docs/blog/posts/adamw-vs-adam.md [--cache]

Run from the repository root (where mkdocs.yml is). Exits 1 if a page fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cache import Cache
from .engine import ExecutionFailed, default_workers, execute
from .fences import FenceError, find_fences, split_front_matter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m plugins.runnable", description=__doc__.split("\n")[0]
    )
    parser.add_argument("pages", nargs="+", type=Path, help="Markdown files to execute")
    parser.add_argument(
        "--cache", action="store_true", help="use and fill .cache/runnable like the build"
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds per page (default 120)")
    args = parser.parse_args(argv)
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
                    f"[figure {number}: {figure['alt'] or 'no title'}; SVG {light:,} B light, {dark:,} B dark]"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
