"""Fixes to Material's built JavaScript, applied to the site after each build (no MkDocs imports).

Each patch replaces exact minified expressions of the pinned Material (9.x) with their
fix. A Material whose files differ is reported, not half-patched: the caller warns. A
patched file drops its `sourceMappingURL` comment, since the map no longer matches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Patch:
    files: str  # glob, relative to the site folder
    what: str  # what readers get without it
    edits: tuple[tuple[str, str], ...]  # (minified original, fix)


# The search worker cuts a Chinese query into words of the index (`segment` in
# src/templates/assets/javascripts/integrations/search/query/segment/index.ts), but its
# loops stop one character short: a word that ends the query is never tried, so
# "视图追踪" searches 视图 only and "给定" everything that starts with 给.
SEGMENTER = Patch(
    "assets/javascripts/workers/search.*.min.js",
    "Chinese queries lose their last word",
    (
        (
            "for(let o=s+1;o<t.length;o++)t.slice(s,o)in e",
            "for(let o=s+1;o<=t.length;o++)t.slice(s,o)in e",
        ),
        ("n[a]&&a<t.length-1&&(i[s++]=a)", "n[a]&&a<t.length&&(i[s++]=a)"),
    ),
)

# The palette component (`mountPalette` in components/palette) marks the body
# `data-md-color-switching` while colours change, so that no transition runs, and removes
# the mark a frame later. It does so for the palette the page opens with too, when nothing
# changes: Material's `[data-md-color-switching] *` rule then restyles every element of
# the page twice during load (a long post: ~60 ms of a 2 GHz core, ~400 ms on Lighthouse's
# mobile CPU). The fix marks the body from the second palette on (a reader's toggle).
PALETTE = Patch(
    "assets/javascripts/bundle.*.min.js",
    "every page restyles twice while it loads",
    (
        (
            'i.subscribe(s=>{if(document.body.setAttribute("data-md-color-switching",""),',
            'i.subscribe(s=>{if(i.runnableSeen?document.body.setAttribute("data-md-color-switching",""):i.runnableSeen=1,',
        ),
    ),
)

# The same component adds a `<meta name="color-scheme">` to the head at load and sets it
# to the header's CSS `color-scheme` (light, or dark for slate), so that the page's canvas
# and scrollbars follow the palette. Chromium treats that change as a change of the
# platform's colours and restyles every element (a long post: ~50 ms of a 2 GHz core, one
# of the two longest tasks of the load on a phone). The fix leaves the meta out of the
# document; runnable.css gives the root element the slate palette's `color-scheme: dark`.
COLOR_SCHEME = Patch(
    "assets/javascripts/bundle.*.min.js",
    "every page restyles once more while it loads",
    (
        (
            'let o=x("meta",{name:"color-scheme"});document.head.appendChild(o);',
            'let o=x("meta",{name:"color-scheme"});',
        ),
    ),
)

# overrides/main.html starts Material's bundle after the browser has drawn the first frame,
# when the page has been parsed. The bundle's `watchDocument` waits for the document's
# `DOMContentLoaded`, which has passed by then, so nothing of Material would mount. The fix
# emits the document at once (in a task of its own, as the event would) when parsing is
# over, and waits for the event as before when it is not.
DOCUMENT_PARSED = Patch(
    "assets/javascripts/bundle.*.min.js",
    "Material mounts nothing when it starts after the page was parsed",
    (
        (
            'return h(document,"DOMContentLoaded",{once:!0}).subscribe(()=>e.next(document)),e}',
            'return document.readyState==="loading"?h(document,"DOMContentLoaded",{once:!0})'
            ".subscribe(()=>e.next(document)):setTimeout(()=>e.next(document)),e}",
        ),
    ),
)

PATCHES = (SEGMENTER, PALETTE, COLOR_SCHEME, DOCUMENT_PARSED)
SOURCE_MAP = "\n//# sourceMappingURL="


def patch_theme(site_dir: Path, patches: tuple[Patch, ...] = PATCHES) -> list[str]:
    """Apply `patches` to the built site in `site_dir`; what could not be patched, as text.

    Applying them again (a rebuild under `mkdocs serve`) changes nothing.
    """
    problems = []
    for patch in patches:
        files = sorted(site_dir.glob(patch.files))
        if not files:
            problems.append(f"{patch.files}: no such file ({patch.what})")
        for path in files:
            text = original = path.read_text(encoding="utf-8")
            missing = [old for old, new in patch.edits if new not in text and text.count(old) != 1]
            if missing:
                problems += [
                    f"{path.name}: {old!r} not found once ({patch.what})" for old in missing
                ]
                continue
            for old, new in patch.edits:  # an edit made before left no `old` to replace
                text = text.replace(old, new)
            if text != original:
                text = text.split(SOURCE_MAP, 1)[0] + "\n"
                path.write_text(text, encoding="utf-8")
    return problems
