"""The build drops latex2mathml's redundant `<mrow>`s: Chromium must lay every formula out as before.

The oracle is Chromium's own layout of latex2mathml's full output: each formula of every
post is converted twice, with and without the dropped rows, and both are laid out in one
page with the site's stylesheet. Every token (letter, number, operator, space) must sit at
the same place in its formula, and both formulas must have the same size.

Text (`\texttt`, `<mtext>`) is left out of the tokens: in an `<mrow>` that opens with an
operator, Chromium draws the text right after the operator, without the operator's space,
and leaves that space at the end ($> \texttt{0x8000}$ showed as ">0x8000 "); without the
row it gets the space TeX gives it. The formula's size is the same either way.
"""

from __future__ import annotations

import html

import pytest
from site_helpers import ROOT, formulas, posts

from plugins.runnable import mathml

TOLERANCE = 0.01  # px

# The pairs whose two formulas differ in size, or in a token's box relative to the formula's
# top left corner, by more than `tolerance` px.
MOVED = """tolerance => {
  const boxes = math => {
    const origin = math.getBoundingClientRect();
    const tokens = [...math.querySelectorAll('mi, mn, mo, mspace')].flatMap(token => {
      const box = token.getBoundingClientRect();
      return [box.x - origin.x, box.y - origin.y, box.width, box.height];
    });
    return [origin.width, origin.height, ...tokens];
  };
  return [...document.querySelectorAll('div.pair')].flatMap((pair, index) => {
    const [a, b] = [...pair.querySelectorAll('math')].map(boxes);
    const same = a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tolerance);
    return same ? [] : [index];
  });
}"""


def both_ways(latex: str, display: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    convert = mathml.to_mathml.__wrapped__  # not the cache: the second call must convert again
    dropped = convert(latex, display=display)
    with monkeypatch.context() as patch:
        patch.setattr(mathml, "_without_redundant_rows", lambda markup: markup)
        kept = convert(latex, display=display)
    return dropped, kept


def test_formulas_lay_out_as_with_every_row(browser, monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = []
    every = {formula: None for post in posts() for formula in formulas(post.markdown)}
    for latex, display in every:
        try:
            pairs.append((latex, *both_ways(latex, display, monkeypatch)))
        except mathml.MathError:
            continue  # the $ of something that is no formula to arithmatex
    assert len(pairs) > 100, "the posts' formulas were not found"
    dropped = sum(kept.count("<mrow") - flat.count("<mrow") for _, flat, kept in pairs)
    assert dropped > len(pairs), "no rows were dropped: nothing is being checked"

    style = (ROOT / "docs" / "stylesheets" / "runnable.css").read_text(encoding="utf-8")
    body = "".join(f'<div class="pair">{flat}<br>{kept}</div>' for _, flat, kept in pairs)
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.set_content(f"<!doctype html><style>{style}</style><body>{body}</body>")
        page.evaluate("document.fonts.ready")
        moved = page.evaluate(MOVED, TOLERANCE)
    finally:
        page.close()

    moved = [html.unescape(pairs[index][0]) for index in moved]
    assert not moved, f"{len(moved)} formulas lay out differently without the rows: {moved[:5]}"
