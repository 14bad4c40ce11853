"""Characters handed to `Markdown.convert` in one build, against the pages' own Markdown.

Run in a site's root (`python benchmarks/convert_count.py`): builds the site in-process
(set RUNNABLE_OFF=1 for a no-execution build) with `markdown.Markdown.convert` counted,
and prints JSON: `converted` (characters handed to convert, excerpts included), `pages`
(characters of every page's Markdown as MkDocs renders it, i.e. after `on_page_markdown`),
`sources` (characters of the Markdown files) and the ratios.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.getcwd())  # this site's plugins/, as `python -m mkdocs` would


def main() -> None:
    import markdown
    from mkdocs.commands import build
    from mkdocs.config import load_config
    from mkdocs.structure.pages import Page

    counts = {"converted": 0, "conversions": 0, "pages": 0, "sources": 0}
    convert, render = markdown.Markdown.convert, Page.render

    def counted_convert(self, source):
        counts["converted"] += len(source)
        counts["conversions"] += 1
        return convert(self, source)

    def counted_render(self, config, files):
        counts["pages"] += len(self.markdown)
        counts["sources"] += len(self.file.content_string)
        return render(self, config, files)

    markdown.Markdown.convert = counted_convert
    Page.render = counted_render
    with tempfile.TemporaryDirectory() as out:
        config = load_config("mkdocs.yml", site_dir=out)
        config.plugins.on_startup(command="build", dirty=False)
        started = time.perf_counter()
        try:
            build.build(config)
        finally:
            config.plugins.on_shutdown()
        seconds = time.perf_counter() - started
    counts["seconds"] = round(seconds, 2)
    counts["ratio"] = round(counts["converted"] / counts["pages"], 3)
    counts["ratio_to_sources"] = round(counts["converted"] / counts["sources"], 3)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
