"""A synthetic N-post copy of this repository, for measuring how costs grow with the blog.

`make_site(ROOT, dest, posts=36)` copies the repository's files (what git tracks or would
track) to `dest` and adds copies of the real posts until the blog has `posts` posts. Copy
`c` of post `<slug>` is a separate article with its own name throughout, as DESIGN.md's
"one name, three files" asks:

  docs/blog/posts/<slug>-c<c>.md      front matter `slug: <slug>-c<c>`, title marked (副本 c)
  snippets/<module>_c<c>.py           the module plus one constant naming the copy
  tests/snippets/test_<module>_c<c>.py  the module's tests, importing the copy

Every `snippets/<module>.py` / `snippets.<module>` reference in the copied files points at
the copy's module, and the added constant makes the module's text (so every page's cache
key) distinct. The copies are otherwise the real posts: the same code, prose and figures.

    python benchmarks/synth.py /tmp/site36 --posts 36
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

POSTS = Path("docs/blog/posts")
# Never copied: build outputs and caches (also when the source is not a git checkout).
SKIPPED = re.compile(r"^(\.git|\.nox|\.cache|site|\.venv|.*__pycache__|.*\.egg-info)(/|$)")


@dataclass
class SyntheticSite:
    root: Path
    posts: list[str] = field(default_factory=list)  # slugs, real ones first
    copies: dict[str, str] = field(default_factory=dict)  # copy's slug -> real slug

    def post(self, slug: str) -> Path:
        return self.root / POSTS / f"{slug}.md"

    def module(self, slug: str) -> Path:
        return self.root / "snippets" / f"{slug.replace('-', '_')}.py"


def _files(src_root: Path) -> list[str]:
    """The repository's files: tracked, or untracked but not ignored (all files without git)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=src_root,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8")
        names = [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(src_root).as_posix() for p in src_root.rglob("*") if p.is_file()]
    return sorted(n for n in names if not SKIPPED.match(n) and (src_root / n).is_file())


def _renamed(text: str, module: str, new: str) -> str:
    """`text` with every reference to `snippets/<module>.py` or `snippets.<module>` renamed."""
    return re.sub(rf"\bsnippets([./]){module}\b", rf"snippets\g<1>{new}", text)


def _retitled(post: str, slug: str, new_slug: str, copy: int) -> str:
    post = re.sub(rf"(?m)^slug: {re.escape(slug)}\s*$", f"slug: {new_slug}", post, count=1)
    return re.sub(r"(?m)^# (.+)$", rf"# \g<1>（副本 {copy}）", post, count=1)


def make_site(src_root: Path, dest: Path, posts: int = 36) -> SyntheticSite:
    """Copy the repository at `src_root` to `dest` (must not exist) with `posts` posts."""
    src_root, dest = Path(src_root).resolve(), Path(dest)
    for name in _files(src_root):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src_root / name, target)
    real = sorted(p.stem for p in (dest / POSTS).glob("*.md"))
    if posts < len(real):
        raise ValueError(f"posts={posts}: the site already has {len(real)} real posts")
    site = SyntheticSite(dest, posts=list(real))
    for index in range(len(real), posts):
        slug, copy = real[index % len(real)], index // len(real)
        new_slug = f"{slug}-c{copy}"
        module, new = slug.replace("-", "_"), new_slug.replace("-", "_")
        text = (dest / POSTS / f"{slug}.md").read_text(encoding="utf-8")
        site.post(new_slug).write_text(
            _retitled(_renamed(text, module, new), slug, new_slug, copy), encoding="utf-8"
        )
        source = (dest / "snippets" / f"{module}.py").read_text(encoding="utf-8")
        site.module(new_slug).write_text(
            _renamed(source, module, new).rstrip("\n")
            + f"\n\nSYNTHETIC_COPY = {copy}  # copy {copy} of snippets/{module}.py (benchmarks)\n",
            encoding="utf-8",
        )
        test = dest / "tests/snippets" / f"test_{module}.py"
        if test.is_file():
            (test.parent / f"test_{new}.py").write_text(
                _renamed(test.read_text(encoding="utf-8"), module, new), encoding="utf-8"
            )
        site.posts.append(new_slug)
        site.copies[new_slug] = slug
    return site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--posts", type=int, default=36)
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parent.parent)
    args = parser.parse_args()
    site = make_site(args.source, args.dest, posts=args.posts)
    print(f"{site.root}: {len(site.posts)} posts ({len(site.copies)} copies)")


if __name__ == "__main__":
    main()
