"""Material's JavaScript as the built site ships it: the search worker's Chinese query
segmenter and the palette component, patched."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import material
import pytest

from plugins.runnable.theme_patches import (
    COLOR_SCHEME,
    DOCUMENT_PARSED,
    PALETTE,
    PATCHES,
    SEGMENTER,
    patch_theme,
)

BUNDLE_PATCHES = (PALETTE, COLOR_SCHEME, DOCUMENT_PARSED)

ASSETS = Path(material.__file__).parent / "templates"
SEGMENT = re.compile(
    r"function \w+\(t,e\)\{let r=new Set,n=new Uint16Array.*?return r\.has\(\"\"\)\?new Set\(\[t\]\):r\}"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site folder holding the pinned Material's files that the patches change."""
    for patch in PATCHES:
        for path in ASSETS.glob(patch.files):
            target = tmp_path / path.relative_to(ASSETS)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
    return tmp_path


def worker_text(site: Path) -> str:
    (worker,) = (site / "assets/javascripts/workers").glob("search.*.min.js")
    return worker.read_text(encoding="utf-8")


def test_the_pinned_worker_is_patched_once(site: Path) -> None:
    assert patch_theme(site, (SEGMENTER,)) == []
    patched = worker_text(site)
    assert all(new in patched and old not in patched for old, new in SEGMENTER.edits)
    assert patch_theme(site, (SEGMENTER,)) == []  # a second build (serve) changes nothing
    assert worker_text(site) == patched


@pytest.mark.parametrize(
    "patch", BUNDLE_PATCHES, ids=["palette", "color-scheme", "document-parsed"]
)
def test_the_pinned_bundle_is_patched_once(site: Path, patch) -> None:
    (bundle,) = (site / "assets/javascripts").glob("bundle.*.min.js")
    original = bundle.read_text(encoding="utf-8")
    assert patch_theme(site, (patch,)) == []
    patched = bundle.read_text(encoding="utf-8")
    for old, new in patch.edits:
        assert original.count(old) == 1 and old not in patched and patched.count(new) == 1
    # The map describes the original; the patched file no longer points to it.
    assert "sourceMappingURL" in original and "sourceMappingURL" not in patched
    assert patch_theme(site, (patch,)) == []
    assert bundle.read_text(encoding="utf-8") == patched


def test_the_bundle_takes_all_of_its_patches(site: Path) -> None:
    """PALETTE, COLOR_SCHEME and DOCUMENT_PARSED edit one file, one after the other."""
    (bundle,) = (site / "assets/javascripts").glob("bundle.*.min.js")
    assert patch_theme(site, BUNDLE_PATCHES) == []
    patched = bundle.read_text(encoding="utf-8")
    edits = [edit for patch in BUNDLE_PATCHES for edit in patch.edits]
    assert all(old not in patched and new in patched for old, new in edits)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    assert patch_theme(tmp_path) == [
        f"{patch.files}: no such file ({patch.what})" for patch in PATCHES
    ]


def test_a_different_worker_is_reported(tmp_path: Path) -> None:
    workers = tmp_path / "assets/javascripts/workers"
    workers.mkdir(parents=True)
    (workers / "search.0000.min.js").write_text("function segment(){}", encoding="utf-8")
    assert len(patch_theme(tmp_path, (SEGMENTER,))) == len(SEGMENTER.edits)


def segment(site: Path, query: str, words: list[str]) -> set[str]:
    """The worker's own segment function, run by node on `query` with an index of `words`."""
    (function,) = SEGMENT.findall(worker_text(site))
    script = f"const segment = {function};\nconsole.log(JSON.stringify([...segment({json.dumps(query)}, {json.dumps(dict.fromkeys(words, 1))})]))"
    result = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True)
    return set(json.loads(result.stdout))


@pytest.mark.skipif(
    shutil.which("node") is None, reason="needs node to run the worker's JavaScript"
)
@pytest.mark.parametrize(
    ("query", "words", "expected"),
    [
        ("视图追踪", ["视图", "追踪"], {"视图", "追踪"}),  # the last word was dropped
        ("给定的", ["给定", "的", "给"], {"给定", "的"}),  # a last one-character word too
        ("反向传播算法", ["反向", "传播", "算法"], {"反向", "传播", "算法"}),
        ("梯度", ["梯度", "梯"], {"梯度"}),  # one word: was cut to its first character
    ],
)
def test_every_word_of_the_query_is_searched(
    site: Path, query: str, words: list[str], expected: set[str]
) -> None:
    """Each query is a concatenation of index words: all of them must be searched."""
    original = segment(site, query, words)
    patch_theme(site, (SEGMENTER,))
    assert segment(site, query, words) == expected
    assert original != expected  # what readers got before the patch
