"""Builds after edits: exactly the pages whose inputs changed execute, once each."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fixture_site import CONFIG, Site, fence

BLOG = CONFIG.replace(
    "plugins:\n",
    "theme:\n  name: material\nplugins:\n  - blog:\n      blog_dir: .\n      post_dir: blog/posts\n"
    "      authors: false\n",
)


def counted_post(slug: str, counter: Path) -> str:
    code = f"with open({str(counter)!r}, 'a') as f:\n    f.write('ran\\n')\nprint('post {slug}')"
    return (
        f"---\ndate: 2026-01-01\nslug: {slug}\n---\n\n# {slug}\n\n"
        + fence(code)
        + "\n<!-- more -->\n\nrest\n"
    )


def test_post_code_runs_once_per_build_despite_listing_pages(tmp_path: Path) -> None:
    """A blog post shown on the index and archive pages still executes only once."""
    site = Site(tmp_path / "blog", config=BLOG)
    counter = tmp_path / "count.txt"
    site.page("blog/posts/a.md", counted_post("a", counter))
    site.page("index.md", "# Blog\n")
    build = site.build(env={"RUNNABLE_NO_CACHE": "1"})
    assert build.returncode == 0, build.log
    assert counter.read_text() == "ran\n"
    listings = [p for p in build.site.rglob("index.html") if "post a" in p.read_text()]
    assert len(listings) >= 3  # the post, the blog index, the archive


def test_cache_reruns_exactly_the_dependent_pages(site: Site) -> None:
    """Warm build executes nothing; prose edits execute nothing; a module edit re-runs its importers."""
    site.write("snippets/__init__.py", "")
    site.write("snippets/alpha.py", "def value():\n    return 'alpha 1'\n")
    site.write(
        "snippets/beta.py",
        "from snippets.alpha import value\n\ndef twice():\n    return value() * 2\n",
    )
    site.write("snippets/gamma.py", "def value():\n    return 'gamma'\n")
    site.page("a.md", "# A\n\n" + fence("from snippets.alpha import value\nprint(value())"))
    site.page("b.md", "# B\n\n" + fence("from snippets.beta import twice\nprint(twice())"))
    site.page("c.md", "# C\n\n" + fence("from snippets.gamma import value\nprint(value())"))
    pages = {"a.md", "b.md", "c.md"}

    cold = site.build()
    assert cold.returncode == 0, cold.log
    assert cold.statuses() == dict.fromkeys(pages, "executed")

    warm = site.build()
    assert warm.statuses() == dict.fromkeys(pages, "cached")
    assert warm.html("a/index.html") == cold.html("a/index.html")

    site.page(
        "a.md", "# A\n\nNew prose.\n\n" + fence("from snippets.alpha import value\nprint(value())")
    )
    prose = site.build()
    assert prose.statuses() == dict.fromkeys(pages, "cached")
    assert "New prose." in prose.html("a/index.html")

    site.write("snippets/alpha.py", "def value():\n    return 'alpha 2'\n")
    edited = site.build()
    assert edited.statuses() == {"a.md": "executed", "b.md": "executed", "c.md": "cached"}
    assert "alpha 2alpha 2" in edited.html("b/index.html")


def test_failed_page_is_not_cached(site: Site) -> None:
    """A page that failed executes again next build instead of replaying the failure."""
    flag = site.root / "flag"
    code = f"import os\nif not os.path.exists({str(flag)!r}):\n    raise RuntimeError('first')\nprint('fine')"
    site.page("p.md", "# P\n\n" + fence(code))
    assert site.build().returncode != 0
    flag.write_text("")
    build = site.build()
    assert build.returncode == 0, build.log
    assert build.statuses() == {"p.md": "executed"}


def test_corrupt_entry_executes_again(site: Site) -> None:
    """A damaged cache entry is reported and re-executed, never a crash."""
    site.page("p.md", "# P\n\n" + fence("print('value 7')"))
    assert site.build().returncode == 0
    for entry in (site.root / ".cache/runnable").glob("*/*.json"):
        entry.write_text("{broken")
    build = site.build()
    assert build.returncode == 0, build.log
    assert build.statuses() == {"p.md": "executed"}
    assert re.search(r"cache entry .* was unreadable", build.log)


def test_report_page_lists_pages_and_environment(site: Site) -> None:
    """The report page and report.json show each page, its status and the environment."""
    site.page("p.md", "# P\n\n" + fence("print(1)") + fence("print(2)"))
    build = site.build()
    assert build.returncode == 0, build.log
    report = build.report()
    assert report["pages"] == [
        {
            "page": "p.md",
            "status": "executed",
            "seconds": report["pages"][0]["seconds"],
            "fences": 2,
            "reason": "no entry yet",
            "changes": [{"kind": "new"}],
        }
    ]
    assert {"python", "torch", "numpy", "matplotlib", "cpu_count"} <= set(report["environment"])
    page = build.html("runnable/index.html")
    assert "执行报告" in page and "p.md" in page and "已执行" in page


def test_concurrent_builds_share_the_cache_safely(tmp_path: Path) -> None:
    """Two builds at once over one cache both succeed, and a third build is all cached."""
    sites = [Site(tmp_path / f"s{i}") for i in range(2)]
    cache = tmp_path / "shared-cache"
    for s in sites:
        (s.root / "mkdocs.yml").write_text(
            (s.root / "mkdocs.yml")
            .read_text()
            .replace("workers: 2", f"workers: 2\n      cache_dir: {cache}")
        )
        for n in range(3):
            s.page(f"p{n}.md", f"# P{n}\n\n" + fence(f"import time\ntime.sleep(0.5)\nprint({n})"))
    with ThreadPoolExecutor(2) as pool:
        builds = list(pool.map(lambda s: s.build(), sites))
    assert [b.returncode for b in builds] == [0, 0], builds[0].log + builds[1].log
    again = sites[0].build()
    assert set(again.statuses().values()) == {"cached"}


def test_ctrl_c_stops_workers_and_keeps_the_cache_valid(site: Site) -> None:
    """SIGINT during execution ends the build and its workers promptly; the next build works."""
    site.page("done.md", "# D\n\n" + fence("print('quick')"))
    site.build()
    site.page("slow.md", "# S\n\n" + fence("import time\ntime.sleep(600)"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    with subprocess.Popen(
        [sys.executable, "-m", "mkdocs", "build"],
        cwd=site.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A terminal's Ctrl-C: a job started in the background by a non-interactive shell
        # (a CI runner, `cmd &`) inherits SIGINT ignored, and so would this build.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        for line in process.stdout:
            if "executing 1 of 2 pages" in line:
                break
        time.sleep(3)  # the worker is inside the fence
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode != 0
    time.sleep(1)
    leftover = subprocess.run(
        ["pgrep", "-f", f"plugins.runnable.worker .* {site.root}"], capture_output=True
    )
    assert leftover.stdout == b""
    site.page("slow.md", "# S\n\n" + fence("print('now fast')"))
    build = site.build()
    assert build.returncode == 0, build.log
    assert build.statuses() == {"done.md": "cached", "slow.md": "executed"}
