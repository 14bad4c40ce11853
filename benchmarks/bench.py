"""Build-time benchmark of the `runnable` engine on this site (`nox -s bench`).

Each scenario is a full `mkdocs build` of a scratch copy of the site, timed as a ratio
against a no-execution floor build (`RUNNABLE_OFF=1`) run just before it, so a busy
machine slows both sides alike. Rounds repeat; the table shows medians of the ratios.

  cold     empty cache: every page executes
  warm     nothing changed since the last build
  prose    one post's prose edited
  module   one snippets module edited
  mdexec   plain markdown-exec building the same pages (no cache, in-process)

It also checks what executed: nothing for warm and prose builds, exactly the pages that
include or import the edited module for the module build.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("docs", "snippets", "hooks", "mkdocs.yml")
TARGETS = {"warm": 1.10, "cold_vs_mdexec": 0.5}


def build(site: Path, *, config: str = "mkdocs.yml", env: dict[str, str] | None = None) -> float:
    """Seconds one `mkdocs build` takes; raises if it fails."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ.update({"NO_MKDOCS_2_WARNING": "1", **(env or {})})
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-f", config, "-d", "site"],
        cwd=site,
        env=environ,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if process.returncode:
        raise RuntimeError(f"build of {config} failed:\n{process.stdout}{process.stderr}")
    return seconds


def executed(site: Path) -> list[str]:
    report = json.loads((site / "site/runnable/report.json").read_text(encoding="utf-8"))
    return sorted(p["page"] for p in report["pages"] if p["status"] == "executed")


def markdown_exec_config(site: Path) -> str:
    """mkdocs.yml with `runnable` swapped for markdown-exec running the Python fences."""
    text = (site / "mkdocs.yml").read_text(encoding="utf-8")
    text = re.sub(r"  - markdown-exec:\n.*\n", "", text)
    text = text.replace("  - runnable\n", "  - markdown-exec\n")
    (site / "mkdocs-mdexec.yml").write_text(text, encoding="utf-8")
    return "mkdocs-mdexec.yml"


def dependents(site: Path, module: str) -> list[str]:
    """Posts whose fences include or import `snippets/<module>.py`."""
    pattern = re.compile(rf"snippets[./]{module}\b")
    posts = sorted((site / "docs/blog/posts").glob("*.md"))
    return [p.relative_to(site / "docs").as_posix() for p in posts if pattern.search(p.read_text())]


def touch(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(line)


def one_round(site: Path, module: str, post: Path, *, with_mdexec: bool) -> dict:
    """Each scenario right after its own floor build, so both see the same machine load."""
    times: dict[str, float] = {}
    floors: dict[str, float] = {}
    checks: dict[str, list[str]] = {}

    def timed(name: str, **options) -> None:
        floors[name] = build(site, env={"RUNNABLE_OFF": "1"})
        times[name] = build(site, **options)

    shutil.rmtree(site / ".cache", ignore_errors=True)
    timed("cold")
    timed("warm")
    checks["warm"] = executed(site)
    touch(post, "\n\n（基准测试追加的一句话。）\n")
    timed("prose")
    checks["prose"] = executed(site)
    touch(site / f"snippets/{module}.py", "\n# benchmark edit\n")
    timed("module")
    checks["module"] = executed(site)
    if with_mdexec:
        timed("mdexec", config=markdown_exec_config(site))
    return {"times": times, "floors": floors, "checks": checks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--module", default="upsampling", help="snippets module to edit")
    parser.add_argument(
        "--mdexec-rounds", type=int, default=1, help="rounds that also time markdown-exec"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results.json")
    args = parser.parse_args()

    rounds = []
    with tempfile.TemporaryDirectory(prefix="runnable-bench-") as tmp:
        for number in range(args.rounds):
            site = Path(tmp) / f"round{number}"
            for name in COPIED:
                source = ROOT / name
                copy = shutil.copytree if source.is_dir() else shutil.copy2
                copy(source, site / name)
            post = site / "docs/blog/posts" / f"{args.module.replace('_', '-')}.md"
            result = one_round(site, args.module, post, with_mdexec=number < args.mdexec_rounds)
            result["expected_module_pages"] = dependents(site, args.module)
            rounds.append(result)
            print(
                f"round {number + 1}/{args.rounds}: "
                + ", ".join(f"{k} {v:.1f}s" for k, v in result["times"].items()),
                flush=True,
            )

    def median(values) -> float:
        values = list(values)
        return statistics.median(values) if values else float("nan")

    table = {
        name: median(r["times"][name] / r["floors"][name] for r in rounds if name in r["times"])
        for name in ("cold", "warm", "prose", "module", "mdexec")
    }
    table["cold_vs_mdexec"] = median(
        r["times"]["cold"] / r["times"]["mdexec"] for r in rounds if "mdexec" in r["times"]
    )
    floor = median(f for r in rounds for f in r["floors"].values())
    ok = {
        "warm ≤ 1.10× floor": table["warm"] <= TARGETS["warm"],
        "cold ≤ 0.5× markdown-exec": table["cold_vs_mdexec"] <= TARGETS["cold_vs_mdexec"],
        "prose edit executes 0 pages": all(
            not r["checks"]["prose"] and not r["checks"]["warm"] for r in rounds
        ),
        "module edit executes exactly its dependents": all(
            r["checks"]["module"] == r["expected_module_pages"] for r in rounds
        ),
    }
    print(f"\nfloor (RUNNABLE_OFF=1): median {floor:.1f}s over {len(rounds)} rounds\n")
    print("Each build is timed right after a floor build; ratios are medians over rounds.\n")
    print("| build | × floor |")
    print("| --- | ---: |")
    for name, value in table.items():
        label = "cold ÷ markdown-exec" if name == "cold_vs_mdexec" else name
        print(f"| {label} | {value:.2f} |")
    print()
    for claim, holds in ok.items():
        print(f"{'PASS' if holds else 'FAIL'}  {claim}")
    print(f"module edit of snippets/{args.module}.py executed: {rounds[0]['checks']['module']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {"floor_seconds": floor, "ratios": table, "targets": ok, "rounds": rounds},
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwrote {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
