"""Lighthouse scores of every post and the home page, on the built site served with gzip.

Usage (what `nox -s lighthouse` runs): `python tests/site/lighthouse.py SITE_DIR LIGHTHOUSE_BIN [PAGE ...]`
(pages: `home` or post slugs, also from LIGHTHOUSE_PAGES; default all).
The site is served on 127.0.0.1 by a small server that gzips text responses, as GitHub
Pages does; Lighthouse (mobile preset, simulated throttling) drives Debian's Chromium
(`CHROME_PATH`, default /usr/bin/chromium). Every page is loaded RUNS times first (one pass
over all pages, then the next); then each load is scored with one CPU slowdown for the
host, calibrated to the median of the loads' benchmark indexes, and a page's score is that
of its median run, chosen as Lighthouse's own `computeMedianRun` does. Prints a table of the
four category scores and exits non-zero if a page is below TARGET. JSON reports land in
test-artifacts/lighthouse/.
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from site_helpers import ROOT, posts

TARGET = {"performance": 90, "accessibility": 100, "best-practices": 100, "seo": 100}
COMPRESSIBLE = (".html", ".css", ".js", ".json", ".svg", ".xml", ".txt", ".map", ".ipynb", ".py")
CHROME_FLAGS = "--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage"
CATEGORIES = "--only-categories=" + ",".join(TARGET)
# Loads per page. Lighthouse's docs/variability.md: the median of several runs is much
# steadier than one; here one load's score moved by up to ±10 with the host's speed.
RUNS = int(os.environ.get("LIGHTHOUSE_RUNS", "3"))


class GzipHandler(SimpleHTTPRequestHandler):
    """Static files; text types gzip-compressed when the client accepts it (as GitHub Pages)."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # noqa: ANN201 (http.server's API)
        path = Path(self.translate_path(self.path))
        if path.is_dir() and self.path.split("?", 1)[0].endswith("/"):
            path = path / "index.html"
        wants_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (wants_gzip and path.suffix in COMPRESSIBLE and path.is_file()):
            return super().send_head()  # redirects, 404s and binary files as usual
        body = gzip.compress(path.read_bytes(), compresslevel=6, mtime=0)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=600")  # what GitHub Pages sends
        self.end_headers()
        return io.BytesIO(body)


def serve(site: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = functools.partial(GzipHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def lighthouse_run(lighthouse: str, url: str, *args: str) -> None:
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH") or "/usr/bin/chromium"}
    command = [lighthouse, url, "--quiet", f"--chrome-flags={CHROME_FLAGS}", *args]
    subprocess.run(command, env=env, check=True, timeout=300)


def cpu_multiplier(benchmark_index: float) -> float:
    """Lighthouse's CPU slowdown for a host of this benchmarkIndex (4 on a high-end desktop).

    The piecewise-linear calculator that Lighthouse's docs/throttling.md links to
    (github.com/patrickhulce/lighthouse-cpu-throttling-calculator): 1533 -> 4x,
    1300 -> 3x, 800 -> 2x, 150 -> 1x, so a slower or busier host is throttled less.
    """
    if benchmark_index >= 1300:
        return 3 + (benchmark_index - 1300) / 233
    if benchmark_index >= 800:
        return 2 + (benchmark_index - 800) / 500
    return max(1.0, 1 + (benchmark_index - 150) / 650)


def gather(lighthouse: str, url: str, artifacts: Path) -> float:
    """Load `url` once, unthrottled, saving what Lighthouse saw; the host's benchmark index."""
    lighthouse_run(lighthouse, url, f"--gather-mode={artifacts}", CATEGORIES)
    return json.loads((artifacts / "artifacts.json").read_text(encoding="utf-8"))["BenchmarkIndex"]


def score(lighthouse: str, url: str, artifacts: Path, report: Path, slowdown: float) -> dict:
    """The saved load scored with CPU slowdown `slowdown`: Lighthouse's JSON report.

    Simulated throttling loads the page unthrottled; the multiplier only enters the
    simulation, so one load is scored with any number of multipliers.
    """
    saved = json.loads((artifacts / "artifacts.json").read_text(encoding="utf-8"))
    saved["settings"]["throttling"]["cpuSlowdownMultiplier"] = slowdown
    (artifacts / "artifacts.json").write_text(json.dumps(saved), encoding="utf-8")
    lighthouse_run(
        lighthouse,
        url,
        f"--audit-mode={artifacts}",
        "--output=json",
        f"--output-path={report}",
        f"--throttling.cpuSlowdownMultiplier={slowdown}",
        CATEGORIES,
    )
    return json.loads(report.read_text(encoding="utf-8"))


def failed_audits(data: dict, category: str) -> list[str]:
    """Ids of the audits that cost `category` points."""
    refs = data["categories"][category]["auditRefs"]
    audits = data["audits"]
    return [
        r["id"]
        for r in refs
        if r["weight"] and audits[r["id"]]["score"] is not None and audits[r["id"]]["score"] < 1
    ]


def scores(data: dict) -> dict[str, int]:
    return {c: round(100 * (data["categories"][c]["score"] or 0)) for c in TARGET}


def median_run(reports: list[dict]) -> int:
    """Index of the run closest to the median first contentful paint and time to interactive
    (ties: the earlier interactive), as Lighthouse's core/lib/median-run.js chooses it."""

    def value(report: dict, audit: str) -> float:
        return report["audits"][audit]["numericValue"]

    fcp = statistics.median(value(r, "first-contentful-paint") for r in reports)
    tti = statistics.median(value(r, "interactive") for r in reports)
    return min(
        range(len(reports)),
        key=lambda i: (
            (fcp - value(reports[i], "first-contentful-paint")) ** 2
            + (tti - value(reports[i], "interactive")) ** 2,
            value(reports[i], "interactive"),
        ),
    )


def main(site: Path, lighthouse: str, only: list[str]) -> int:
    out = ROOT / "test-artifacts" / "lighthouse"
    out.mkdir(parents=True, exist_ok=True)
    pages = [("home", "")] + [(post.slug, post.url) for post in posts()]
    pages = [(name, path) for name, path in pages if not only or name in only]
    server, base = serve(site)
    indexes = {}  # (page, run) -> benchmark index
    try:
        # Pass after pass over all pages: a slow spell of the host hits different pages in
        # different passes, not every run of one page.
        for run in range(RUNS):
            for name, path in pages:
                artifacts = out / f"{name}.{run}.artifacts"
                indexes[name, run] = gather(lighthouse, base + path, artifacts)
                print(
                    f"{name}: load {run + 1}/{RUNS}, benchmark index {indexes[name, run]:.0f}",
                    file=sys.stderr,
                    flush=True,
                )
        # One slowdown for the host, from the median of its benchmark indexes: one page's
        # index moves by up to 2x on a shared machine, its load's timings much less.
        index = statistics.median(indexes.values())
        forced = os.environ.get("LIGHTHOUSE_CPU_SLOWDOWN")
        multiplier = float(forced) if forced else round(cpu_multiplier(index), 2)
        rows, failures = [], []
        for name, path in pages:
            runs = [
                score(lighthouse, base + path, out / f"{name}.{run}.artifacts",
                      out / f"{name}.{run}.json", multiplier)
                for run in range(RUNS)
            ]  # fmt: skip
            chosen = median_run(runs)
            data = runs[chosen]
            artifacts = out / f"{name}.{chosen}.artifacts"
            default = score(lighthouse, base + path, artifacts, out / f"{name}.default.json", 4)
            (out / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
            got = scores(data)
            a = data["audits"]
            rows.append(
                [
                    name,
                    *map(str, got.values()),
                    " ".join(str(scores(r)["performance"]) for r in runs),
                    str(scores(default)["performance"]),
                    f"{indexes[name, chosen]:.0f}",
                    f"{a['dom-size-insight'].get('numericValue', 0):.0f}",
                    f"{a['total-byte-weight']['numericValue'] / 1024:.0f}",
                    f"{a['largest-contentful-paint']['numericValue'] / 1000:.1f}",
                    f"{a['total-blocking-time']['numericValue']:.0f}",
                ]
            )
            for category, value in got.items():
                if value < TARGET[category]:
                    audits = ", ".join(failed_audits(data, category))
                    failures.append(f"{name}: {category} {value} < {TARGET[category]} ({audits})")
            print(f"{name}: {got}", file=sys.stderr, flush=True)
    finally:
        server.shutdown()
    heads = ["page", "performance", "accessibility", "best practices", "SEO", "perf, each run"]
    heads += ["perf @4x", "benchmark index", "DOM", "KiB", "LCP s", "TBT ms"]
    print("\n| " + " | ".join(heads) + " |\n| --- " + "| ---: " * (len(heads) - 1) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    low, high = min(indexes.values()), max(indexes.values())
    print(
        f"\nperformance: Lighthouse's mobile preset, CPU slowdown {multiplier:g}x, calibrated to"
        f" this host's median benchmark index {index:.0f} (loads: {low:.0f} to {high:.0f});"
        " LIGHTHOUSE_CPU_SLOWDOWN=4 forces the default. Each page's scores are those of its"
        f" median run of {RUNS} (LIGHTHOUSE_RUNS); the benchmark index, DOM, KiB, LCP and TBT"
        " columns are that run's. perf @4x: the median run scored with 4x."
    )
    if failures:
        print("\nbelow target:\n" + "\n".join(failures))
        return 1
    print("\nevery page meets " + ", ".join(f"{c} >= {t}" for c, t in TARGET.items()))
    return 0


if __name__ == "__main__":
    only = sys.argv[3:] or os.environ.get("LIGHTHOUSE_PAGES", "").split()
    sys.exit(main(Path(sys.argv[1]).resolve(), sys.argv[2], only))
