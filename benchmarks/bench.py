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

Synthetic mode (`--posts N`, e.g. `nox -s bench -- --posts 36`): one run on a copy of the
site grown to N posts (benchmarks/synth.py), reporting in absolute seconds and ratios:

  floor        no-execution build; floor_full_excerpts: the same with Material converting
               whole posts for listings (RUNNABLE_FULL_EXCERPTS=1), run right after it
  convert      characters handed to Markdown.convert ÷ characters of the pages' Markdown
  index        search/search_index.json, raw and gzipped (total and per post)
  cold, warm, prose, module   as above (skipped with --no-cold, which also serves
               without execution)
  serve        `mkdocs serve --livereload`: seconds from saving an edit until the served
               page shows it (prose edit twice; module edit: also the executed pages)

Results are merged into benchmarks/results-scale.json under N.
"""

from __future__ import annotations

import argparse
import gzip
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
COPIED = ("docs", "snippets", "hooks", "mkdocs.yml", "plugins")  # plugins: this checkout's
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


def index_size(site: Path, posts: int) -> dict:
    data = (site / "site/search/search_index.json").read_bytes()
    packed = len(gzip.compress(data, 9))
    return {"raw": len(data), "gz": packed, "gz_per_post": round(packed / posts)}


def convert_count(site: Path, **env: str) -> dict:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    environ.update({"NO_MKDOCS_2_WARNING": "1", "RUNNABLE_OFF": "1", **env})
    process = subprocess.run(
        [sys.executable, str(site / "benchmarks/convert_count.py")],
        cwd=site,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(process.stdout.strip().splitlines()[-1])


def engine_elapsed(log: str) -> float | None:
    """The engine's wall time for the last execution in a serve log ("elapsed 12s")."""
    found = re.findall(r"elapsed (\d+(?:\.\d+)?)s", log)
    return float(found[-1]) if found else None


def scale(posts: int, *, cold: bool, module: str, output: Path) -> int:
    """One synthetic run at `posts` posts (see the module docstring)."""
    from serve import Server, append_paragraph, comment_in_section
    from synth import make_site

    result: dict = {"posts": posts, "cold_phases": cold, "load_before": os.getloadavg()}
    log = lambda text: print(text, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="runnable-scale-") as tmp:
        synthetic = make_site(ROOT, Path(tmp) / "site", posts=posts)
        site = synthetic.root
        slug = next(s for s in reversed(synthetic.posts) if s.startswith(module.replace("_", "-")))
        post, mod = synthetic.post(slug), synthetic.module(slug)
        section = re.search(r'--8<-- "snippets/\w+\.py:(\w+)"', post.read_text("utf-8"))[1]
        off, full = {"RUNNABLE_OFF": "1"}, {"RUNNABLE_OFF": "1", "RUNNABLE_FULL_EXCERPTS": "1"}

        short_count, full_count = convert_count(site), convert_count(site, **full)
        result["convert"] = {
            "excerpts_shortened": short_count,
            "full_excerpts": full_count,
            "ratio_to_pages": short_count["ratio"],
            "ratio_to_sources": short_count["ratio_to_sources"],
            "full_ratio_to_sources": full_count["ratio_to_sources"],
        }
        log(
            f"convert ÷ sources: {full_count['ratio_to_sources']} → {short_count['ratio_to_sources']}"
        )
        pairs = []
        for _ in range(2):  # alternate, so both see the same load
            pairs.append((build(site, env=full), build(site, env=off)))
        floor_full = statistics.median(p[0] for p in pairs)
        floor = statistics.median(p[1] for p in pairs)
        result["floor"] = {
            "seconds": floor,
            "full_excerpts_seconds": floor_full,
            "ratio": statistics.median(p[1] / p[0] for p in pairs),
            "per_post": floor / posts,
        }
        result["index_no_execution"] = index_size(site, posts)
        log(f"floor {floor:.1f}s, with full excerpts {floor_full:.1f}s")

        times: dict[str, float] = {}
        checks: dict[str, list[str]] = {}
        if cold:
            shutil.rmtree(site / ".cache", ignore_errors=True)
            times["cold"] = build(site)
            result["index"] = index_size(site, posts)
            times["warm"] = build(site)
            checks["warm"] = executed(site)
            touch(post, "\n\n（基准测试追加的一句话。）\n")
            times["prose"] = build(site)
            checks["prose"] = executed(site)
            touch(mod, "\n# benchmark edit\n")
            times["module"] = build(site)
            checks["module"] = executed(site)
            result["expected_module_pages"] = dependents(site, mod.stem)
            log(", ".join(f"{k} {v:.1f}s" for k, v in times.items()))
        result["builds"] = times
        result["build_ratios"] = {k: v / floor for k, v in times.items()}
        result["checks"] = checks

        serve: dict = {"execution": cold}
        with Server(site, env={} if cold else off) as server:
            serve["first_build"] = server.first_build
            url = f"blog/{slug}/"
            for n in range(2):
                mark = f"PROSE{n}X{time.time_ns()}"
                serve[f"prose_{n + 1}"] = server.time_edit(
                    url, append_paragraph(post, f"（{mark}）"), mark
                )
                serve[f"prose_{n + 1}_cpu"] = server.last_cpu
            mark = f"MODULE{time.time_ns()}"
            serve["module"] = server.time_edit(url, comment_in_section(mod, section, mark), mark)
            serve["module_cpu"] = server.last_cpu
            report = json.loads(server.get("runnable/report.json"))
            serve["module_executed"] = {
                p["page"]: p["seconds"] for p in report["pages"] if p["status"] == "executed"
            }
            serve["module_engine_elapsed"] = engine_elapsed(server.output())
        result["serve"] = serve
        log(
            f"serve: prose {serve['prose_1']:.2f}s, {serve['prose_2']:.2f}s (CPU "
            f"{serve['prose_1_cpu']:.2f}s, {serve['prose_2_cpu']:.2f}s); module "
            f"{serve['module']:.2f}s (executed {serve['module_executed']}, engine elapsed "
            f"{serve['module_engine_elapsed']}s)"
        )
    result["load_after"] = os.getloadavg()
    merged = json.loads(output.read_text("utf-8")) if output.exists() else {}
    merged[str(posts)] = result
    output.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    ok = not checks or (
        not checks["warm"]
        and not checks["prose"]
        and checks["module"] == result["expected_module_pages"]
    )
    return 0 if ok and list(serve["module_executed"]) in ([], [f"blog/posts/{slug}.md"]) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--posts", type=int, help="synthetic mode: a copy of the site with N posts")
    parser.add_argument(
        "--no-cold", action="store_true", help="synthetic mode: skip the builds that execute"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--module", default="upsampling", help="snippets module to edit")
    parser.add_argument(
        "--mdexec-rounds", type=int, default=1, help="rounds that also time markdown-exec"
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results.json")
    args = parser.parse_args()
    if args.posts:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        output = args.json.with_name("results-scale.json")
        return scale(args.posts, cold=not args.no_cold, module=args.module, output=output)

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
