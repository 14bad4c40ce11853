"""Every post in Chromium, as a reader sees it: loading, math, outputs, copy, search, layout."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from site_helpers import Post, has_math, mkdocs_config, plugin_config, posts
from test_site_budgets import BROWSER_EXTRA_ELEMENTS, DOM_ELEMENTS

POSTS = posts()
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
PHRASES_PER_POST = 3
# Full-page screenshots are for people to look at, not checks; CI, where nobody can look at
# them, turns them off with RUNNABLE_SCREENSHOTS=0 (they cost about a third of a visit).
SCREENSHOTS = os.environ.get("RUNNABLE_SCREENSHOTS", "1") != "0"

# Shows an element that sits in an inactive tab or a closed <details>, as a reader would.
REVEAL = """el => {
  for (let a = el; a; a = a.parentElement) {
    if (a.tagName === 'DETAILS') a.open = true;
    if (a.classList && a.classList.contains('tabbed-block')) {
      const index = [...a.parentElement.children].indexOf(a);
      const set = a.closest('.tabbed-set');
      const label = set && set.querySelectorAll(':scope > .tabbed-labels > label')[index];
      if (label) label.click();
    }
  }
}"""

# Boxes of formulas and runnable blocks, each revealed first if it is in a tab or <details>.
MEASURE = f"""() => {{
  const reveal = {REVEAL};
  const shown = el => {{
    if (!el.checkVisibility()) reveal(el);
    const box = el.getBoundingClientRect();
    return el.checkVisibility() && box.width > 0 && box.height > 0;
  }};
  const math = [...document.querySelectorAll('article math')].map(m => {{
    const visible = shown(m), box = m.getBoundingClientRect();
    return {{text: m.textContent.trim().slice(0, 40), visible, width: box.width, height: box.height}};
  }});
  const counts = {{}}, hidden = [];
  for (const name of ['runnable-source', 'runnable-output', 'runnable-figure', 'runnable-error']) {{
    const blocks = [...document.querySelectorAll('article .' + name)];
    counts[name] = blocks.length;
    blocks.forEach((el, i) => {{ if (!shown(el)) hidden.push(`.${{name}} #${{i + 1}}`); }});
  }}
  return {{math, counts, hidden, leftover_tex: document.querySelectorAll('article .arithmatex').length}};
}}"""

# The palette toggle Material shows now (one label per palette, the others hidden).
PALETTE_TOGGLE = "[data-md-component=palette] label:not([hidden])"

# For each figure, which of its images the palette shows ("light", "dark"; "" for none).
FIGURES_SHOWN = """() => [...document.querySelectorAll('article .runnable-figure')].map(f =>
  [...f.querySelectorAll('img')].filter(i => i.checkVisibility())
    .map(i => i.getAttribute('src').split('#only-').pop()).join(' '))"""

# Records each time Material marks the page as switching palettes (it then restyles every
# element): `window.switching` lists "set" and "removed", in order.
RECORD_SWITCHING = """window.switching = [];
new MutationObserver(records => records.forEach(r => window.switching.push(
  r.target.hasAttribute('data-md-color-switching') ? 'set' : 'removed')))
  .observe(document,
           {attributes: true, subtree: true, attributeFilter: ['data-md-color-switching']});"""

# Lets every block of the article render, as it does once a reader scrolls to it (blocks
# off screen are skipped, `content-visibility: auto`, and clip what sticks out of them).
RENDER_ALL = "article.md-content__inner * { content-visibility: visible !important; }"

# Elements that stick out of the viewport without a scrolling or clipping box around them.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth, found = [];
  const clips = a => ['auto', 'scroll', 'hidden', 'clip'].includes(getComputedStyle(a).overflowX)
    && a.getBoundingClientRect().right <= width + 0.5;
  for (const el of document.body.querySelectorAll('*')) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.right <= width + 0.5) continue;
    let clipped = getComputedStyle(el).position === 'fixed';  // fixed boxes do not scroll
    for (let a = el.parentElement; a && a !== document.body && !clipped; a = a.parentElement)
      clipped = clips(a) || getComputedStyle(a).position === 'fixed';
    if (clipped) continue;
    const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
      + [...el.classList].map(c => '.' + c).join('');
    found.push(`${name} (right edge ${Math.round(box.right)}px)`);
  }
  return found.slice(0, 10);
}"""


def newest_first(count: int) -> list[Post]:
    return sorted(POSTS, key=lambda p: p.date, reverse=True)[:count]


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"data", "blob", "about"} or parts.hostname == "127.0.0.1"


@dataclass
class Visit:
    """What happened while a post was open in Chromium at desktop size."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    math: list[dict] = field(default_factory=list)
    leftover_tex: int = 0
    hidden_blocks: list[str] = field(default_factory=list)
    block_counts: dict[str, int] = field(default_factory=dict)
    copies: list[tuple[int, str, str]] = field(default_factory=list)  # (index, expected, got)
    schemes: list[list[str]] = field(default_factory=list)  # [palette, root colour scheme]
    figures_shown: list[list[str]] = field(default_factory=list)  # per scheme, per figure
    switching: list[list[str]] = field(default_factory=list)  # at load, after the toggles


def open_page(browser, base_url: str, **options):
    """A fresh context and page that record every request and every console error."""
    context = browser.new_context(locale="zh-CN", color_scheme="light", **options)
    visit = Visit()
    context.on("request", lambda request: visit.requests.append(request.url))
    # Nothing leaves the machine: foreign requests are recorded above, then aborted here.
    context.route(
        "**/*", lambda route: route.continue_() if is_local(route.request.url) else route.abort()
    )
    page = context.new_page()
    page.on(
        "console",
        lambda m: (
            visit.console_errors.append(f"{m.text} ({m.location.get('url')})")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: visit.console_errors.append(f"uncaught: {error}"))
    return context, page, visit


# Reveals a code block and scrolls it into view (Material mounts a block's copy button when
# the block first comes into view: `content.lazy`), waits for that button and brings it into
# view, puts a sentinel on the clipboard, and returns the block's code and the button's
# centre (null after 5 s).
PREPARE_COPY = f"""(el, sentinel) => {{
  ({REVEAL})(el);
  el.scrollIntoView({{block: 'center'}});
  const code = el.querySelector('pre > code').textContent;
  const start = performance.now();
  return navigator.clipboard.writeText(sentinel).then(() => new Promise(resolve => {{
    (function poll() {{
      const button = el.querySelector('[data-clipboard-target]');
      if (button || performance.now() - start > 5000) {{
        if (button) button.scrollIntoView({{block: 'center'}});  // a long block's top is off screen
        const box = button && button.getBoundingClientRect();
        resolve([code, box && [box.x + box.width / 2, box.y + box.height / 2]]);
      }} else requestAnimationFrame(poll);
    }})();
  }}));
}}"""
# The clipboard's text once something replaced the sentinel (the sentinel after 5 s).
COPIED = """s => new Promise(resolve => {
  const start = performance.now();
  (function poll() {
    navigator.clipboard.readText().then(text =>
      text !== s || performance.now() - start > 5000 ? resolve(text) : setTimeout(poll, 10));
  })();
})"""


def check_copy_buttons(page, visit: Visit) -> None:
    """Click each runnable-source block's copy button as a reader would: a real mouse click
    at the button's centre (the copy needs one); what the clipboard then holds."""
    sources = page.locator("article .runnable-source")
    for index in range(sources.count()):
        sentinel = f"<clipboard before copy {index}>"
        code, centre = sources.nth(index).evaluate(PREPARE_COPY, sentinel)
        # Material copies the code element's text without trailing whitespace.
        expected = code.rstrip()
        if centre is None:
            visit.copies.append((index, expected, "<no copy button>"))
            continue
        page.mouse.click(*centre)
        visit.copies.append((index, expected, page.evaluate(COPIED, sentinel)))


def screenshot(page, path: Path) -> None:
    if SCREENSHOTS:
        page.screenshot(path=path, full_page=True)


# Under pytest-xdist a post's tests run in one process (see conftest.py): one visit each.
@pytest.fixture(scope="module", params=POSTS, ids=[p.slug for p in POSTS])
def post(request: pytest.FixtureRequest) -> Post:
    return request.param


@pytest.fixture(scope="module")
def visit(post: Post, browser, base_url: str, screenshots: Path) -> Visit:
    """Open the post once; measure math, outputs, copy buttons and the palette toggle."""
    context, page, visit = open_page(
        browser, base_url, viewport=DESKTOP, permissions=["clipboard-read", "clipboard-write"]
    )
    context.add_init_script(RECORD_SWITCHING)
    try:
        response = page.goto(base_url + post.url, wait_until="networkidle")
        assert response and response.ok, f"{post.url}: HTTP {response and response.status}"
        visit.switching.append(page.evaluate("window.switching"))
        screenshot(page, screenshots / f"{post.slug}.png")
        page.add_style_tag(content=RENDER_ALL)  # boxes as a reader who scrolled sees them
        measured = page.evaluate(MEASURE)
        visit.math, visit.leftover_tex = measured["math"], measured["leftover_tex"]
        visit.block_counts, visit.hidden_blocks = measured["counts"], measured["hidden"]
        check_copy_buttons(page, visit)
        # The body's palette, and the colour scheme of the root (canvas, scrollbars).
        scheme = """[document.body.getAttribute('data-md-color-scheme'),
                     getComputedStyle(document.documentElement).colorScheme]"""
        visit.schemes.append(page.evaluate(scheme))
        visit.figures_shown.append(page.evaluate(FIGURES_SHOWN))
        for _ in range(2):
            page.locator(PALETTE_TOGGLE).click()
            visit.schemes.append(page.evaluate(scheme))
            visit.figures_shown.append(page.evaluate(FIGURES_SHOWN))
            page.wait_for_function("window.switching.at(-1) === 'removed'", timeout=5000)
        visit.switching.append(page.evaluate("window.switching"))
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    return visit


def test_post_loads_only_local_resources(post: Post, visit: Visit) -> None:
    """The post makes requests to 127.0.0.1 only and logs no console error."""
    foreign = [url for url in visit.requests if not is_local(url)]
    assert not foreign, f"requests to other hosts: {foreign}"
    assert not visit.console_errors, f"console errors: {visit.console_errors}"


def test_formulas_render_as_mathml(post: Post, visit: Visit) -> None:
    """Every formula is a <math> element with a non-zero box; no TeX is left unconverted."""
    assert visit.leftover_tex == 0, f"{visit.leftover_tex} arithmatex wrappers left as TeX"
    if has_math(post.markdown):
        assert visit.math, "the Markdown has $...$ formulas but the page has no <math>"
    empty = [m["text"] for m in visit.math if not (m["visible"] and m["width"] and m["height"])]
    assert not empty, f"formulas with an empty box: {empty}"


def test_outputs_and_figures_are_visible(post: Post, visit: Visit) -> None:
    """Every code block, output, figure and expected error has a visible, non-empty box."""
    if post.fences():
        assert visit.block_counts["runnable-source"] + visit.block_counts["runnable-output"] > 0
    assert not visit.hidden_blocks, f"invisible blocks: {visit.hidden_blocks}"


def test_copy_button_copies_the_code(post: Post, visit: Visit) -> None:
    """The copy button of each runnable-source block puts exactly its code on the clipboard."""
    assert len(visit.copies) == visit.block_counts["runnable-source"]
    for index, expected, got in visit.copies:
        assert got == expected, f"code block {index + 1}: the clipboard differs from the code"


def test_palette_toggle_switches_scheme(post: Post, visit: Visit) -> None:
    """The palette toggle switches the page to the dark scheme and back; the page's canvas
    and scrollbars (the root's colour scheme) go dark with it."""
    assert [palette for palette, _ in visit.schemes] == ["default", "slate", "default"]
    assert [root == "dark" for _, root in visit.schemes] == [False, True, False]


def test_palette_restyles_the_page_only_when_it_changes(post: Post, visit: Visit) -> None:
    """Opening the page marks no palette switch (theme_patches.PALETTE); each toggle does,
    and the mark is removed again (transitions are off only while colours change)."""
    assert visit.switching == [[], ["set", "removed", "set", "removed"]]


def test_figures_follow_the_palette(post: Post, visit: Visit) -> None:
    """Each figure shows its light drawing on the light page and its dark one on the dark page."""
    figures = visit.block_counts["runnable-figure"]
    expected = [[scheme] * figures for scheme in ("light", "dark", "light")]
    assert visit.figures_shown == expected


@dataclass
class PhoneVisit:
    """What a post showed at 390 px: its size, its width, and when it fetched the search index."""

    elements: int = 0  # in Chromium, after Material's JavaScript ran
    index_on_load: bool = False
    index_on_search: bool = False
    widths: tuple[int, int] = (0, 0)  # the page's scroll width, the viewport's
    culprits: list[str] = field(default_factory=list)  # what sticks out, if the page is wider


@pytest.fixture(scope="module")
def phone(post: Post, browser, base_url: str, screenshots: Path) -> PhoneVisit:
    """Open the post once at 390 px; measure it, then open search as a reader would."""
    context, page, visit = open_page(browser, base_url, viewport=PHONE, is_mobile=True)
    phone = PhoneVisit()

    def fetched_index() -> bool:
        return any("search_index" in url for url in visit.requests)

    try:
        response = page.goto(base_url + post.url, wait_until="networkidle")
        assert response and response.ok, f"{post.url}: HTTP {response and response.status}"
        phone.elements = page.evaluate("document.getElementsByTagName('*').length")
        phone.index_on_load = fetched_index()
        page.add_style_tag(content=RENDER_ALL)
        screenshot(page, screenshots / f"{post.slug}-390px.png")
        phone.widths = tuple(
            page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
        )
        if phone.widths[0] > phone.widths[1]:  # why
            phone.culprits = page.evaluate(OVERFLOWING)
        if SCREENSHOTS:  # the phone in the dark scheme, for people to look at the figures
            page.locator(PALETTE_TOGGLE).click()
            screenshot(page, screenshots / f"{post.slug}-390px-dark.png")
        # The request is enough: building the index is the search tests' business.
        try:
            with page.expect_request(lambda request: "search_index" in request.url):
                page.locator("label.md-header__button[for='__search']").click()
        except PlaywrightTimeout:
            pass  # not requested: the test says so
        phone.index_on_search = fetched_index()
    finally:
        context.close()
    return phone


def test_no_horizontal_scroll_on_a_phone(phone: PhoneVisit) -> None:
    """At 390 px wide the page body does not scroll sideways (wide blocks scroll inside)."""
    width, viewport = phone.widths
    assert width <= viewport, f"page is {width}px wide in {viewport}px: {phone.culprits}"


def test_post_loads_no_search_index_until_search(phone: PhoneVisit) -> None:
    """In Chromium a post stays within the DOM budget and fetches the search index only once
    the reader opens search."""
    limit = DOM_ELEMENTS + BROWSER_EXTRA_ELEMENTS
    assert phone.elements <= limit, f"{phone.elements} elements in Chromium > {limit}"
    assert not phone.index_on_load, "search index fetched on load"
    assert phone.index_on_search, "search index not fetched when search opened"


# The elements painted on the first screen of a phone: [index in the document, name, top,
# left] each.
FIRST_SCREEN = """() => [...document.body.getElementsByTagName('*')].flatMap((el, i) => {
  const box = el.getBoundingClientRect();
  const painted = box.width > 0 && box.height > 0 && box.top < innerHeight && box.bottom > 0;
  const name = el.tagName.toLowerCase() + [...el.classList].map(c => '.' + c).join('');
  return painted ? [[i, name, Math.round(box.top), Math.round(box.left)]] : [];
})"""


def first_screen(browser, url: str, html: str | None = None) -> dict[tuple[int, str], tuple]:
    """Where a page's elements sit at 390 px (top, left), scripts off; `html` replaces the
    page's HTML."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, java_script_enabled=False)
    if html is not None:
        context.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        return {
            (index, name): (top, left) for index, name, top, left in page.evaluate(FIRST_SCREEN)
        }
    finally:
        context.close()


# Every post has the same template: the newest post stands for all of them.
@pytest.mark.parametrize("path", ["", newest_first(1)[0].url], ids=["home", "post"])
def test_first_screen_does_not_shift_while_the_page_arrives(
    path: str, site_dir: Path, browser, base_url: str
) -> None:
    """A browser paints a page before all of it has arrived. What it paints of the first
    screen then (here: the HTML cut after the article's second paragraph) stays where the
    whole page has it: no layout shift as the rest arrives."""
    html = (site_dir / path / "index.html").read_text(encoding="utf-8")
    article = html.index("<article")
    cut = html.index("</p>", html.index("</p>", article) + 4) + 4
    url = base_url + path
    whole, partial = first_screen(browser, url), first_screen(browser, url, html[:cut])
    moved = [
        f"{name} (#{index}) at {place}, then {whole.get((index, name), 'off screen')}"
        for (index, name), place in partial.items()
        if whole.get((index, name)) != place
    ]
    assert not moved, "the first screen moves as the page arrives: " + "; ".join(moved[:5])


# Before the page's scripts: count the frames the browser draws; note the count and the
# root's classes when the parser inserts Material's bundle tag (a script, or the preload
# of overrides/main.html; a mutation record, delivered before a script runs) and when the bundle finishes (its last statement sets
# window.component$).
WHEN_MATERIAL_RUNS = """
window.__frames = 0;
(function frame() {
  window.__frames++;
  requestAnimationFrame(frame);
})();
new MutationObserver((records, observer) => {
  if (document.querySelector("script[src*='/bundle.'], link[href*='/bundle.']")) {
    window.__framesAtScript = window.__frames;
    window.__classesAtScript = document.documentElement.className;
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true});
Object.defineProperty(window, "component$", {
  configurable: true,
  set(value) {
    window.__material = [window.__framesAtScript, window.__frames];
    window.__classes = [window.__classesAtScript, document.documentElement.className];
    Object.defineProperty(window, "component$", {value, writable: true, configurable: true});
  },
});
"""
DOCUMENT_EMITS = """new Promise(resolve => {
  window.document$.subscribe(() => resolve(true));
  setTimeout(() => resolve(false), 5000);
})"""


@pytest.mark.parametrize("path", ["", newest_first(1)[0].url], ids=["home", "post"])
def test_material_runs_after_the_first_frame(path: str, browser, base_url: str) -> None:
    """The browser draws a frame between the parser's coming to Material's bundle tag and
    the bundle's running (overrides/main.html), so the page's first style and layout is not
    part of the script's long task; the bundle finds the root's classes as it would set
    them; and it still mounts its components (theme_patches.DOCUMENT_PARSED)."""
    context, page, visit = open_page(browser, base_url, viewport=PHONE, is_mobile=True)
    try:
        page.add_init_script(WHEN_MATERIAL_RUNS)
        page.goto(base_url + path, wait_until="load")
        page.wait_for_function("window.__material !== undefined")
        at_script, at_end = page.evaluate("window.__material")
        assert at_end > at_script, "Material ran before the browser drew a frame"
        # The root's classes were set in the head (overrides/main.html): Material's change
        # of them would restyle the whole parsed page.
        at_script, at_end = (set(c.split()) for c in page.evaluate("window.__classes"))
        assert at_script == at_end == {"js", "js-focus-visible"}
        # Material mounts its components when its document$ emits (true at once if it has).
        assert page.evaluate(DOCUMENT_EMITS)
        assert not visit.console_errors
    finally:
        context.close()


# -- search -----------------------------------------------------------------------------

CJK_WORD = re.compile(r"[\u4e00-\u9fff]+")


class ParagraphText(HTMLParser):
    """The text of the <p> elements of a page's article (code and math left out)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._article = self._p = 0
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self._article += 1
        elif tag == "p" and self._article:
            self._p += 1
            self.paragraphs.append("")
        elif tag in {"code", "math", "script", "style"}:
            self._skip += 1
            if self._p:
                self.paragraphs[-1] += "\n"  # a phrase does not run across left-out code

    def handle_endtag(self, tag):
        if tag == "article":
            self._article -= 1
        elif tag == "p" and self._p:
            self._p -= 1
        elif tag in {"code", "math", "script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if self._p and not self._skip:
            self.paragraphs[-1] += data


@cache  # each post's text is read once, not once for every other post
def paragraph_text(path: Path) -> str:
    parser = ParagraphText()
    parser.feed(path.read_text(encoding="utf-8"))
    return "\n".join(parser.paragraphs)


@cache
def indexed_words(site_dir: Path) -> dict[str, list[str]]:
    """Each page's Chinese words in the order of its text, as the build's jieba cut them."""
    index = json.loads((site_dir / "search" / "search_index.json").read_text(encoding="utf-8"))
    separator = re.compile(index["config"]["separator"])
    words: dict[str, list[str]] = {}
    for doc in index["docs"]:
        tokens = separator.split(doc["title"] + " " + doc["text"])
        page = words.setdefault(doc["location"].split("#")[0], [])
        page += [t if CJK_WORD.fullmatch(t) else "" for t in tokens]  # "": not a word
    return words


def search_phrases(post: Post, site_dir: Path) -> list[str]:
    """Words only this post uses (as the build's jieba cut them), from its paragraphs.

    Search ranks pages by the words of a query (Material cuts a Chinese query into the
    index's words and ORs them), so a phrase of common words ranks a dozen pages above the
    post even when the phrase as a whole is unique to it; a reader searches for what is
    particular to a post. Typed alone, such a word is the query's last word, which
    Material's query segmenter dropped (searching its first character only, "给定" as
    给*) until the build patched its worker (`theme_patches.SEGMENTER`): this checks the patch.
    """
    words = indexed_words(site_dir)
    elsewhere = {w for p in POSTS if p is not post for w in words[p.url]}
    paragraphs = paragraph_text(post.html_path(site_dir))
    candidates = []
    for word in words[post.url]:
        if (
            len(word) >= 2
            and word not in elsewhere
            and word in paragraphs  # body text, not a heading or code
            and word not in candidates
        ):
            candidates.append(word)
    assert len(candidates) >= PHRASES_PER_POST, f"too few words only this post uses: {candidates}"
    # spread over the whole post: one from each part
    step = len(candidates) / PHRASES_PER_POST
    return [candidates[int(step * (i + 0.5))] for i in range(PHRASES_PER_POST)]


@pytest.fixture(scope="module")
def search_page(browser, base_url: str):
    context, page, visit = open_page(browser, base_url, viewport=DESKTOP)
    page.goto(base_url, wait_until="networkidle")
    yield page, visit
    context.close()


def search(page, phrase: str) -> list[str]:
    """Type `phrase` into the search box like a reader; the result links' paths."""
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("")
    box.press("End")
    page.wait_for_selector(".md-search-result__item", state="detached", timeout=20_000)
    box.fill(phrase)
    box.press("End")  # Material's search listens to key events, not to fill()
    page.wait_for_selector(".md-search-result__item", timeout=20_000)
    links = page.locator(".md-search-result__item > a").all()
    return [urlsplit(link.get_attribute("href")).path for link in links]


def test_search_finds_post_by_phrases(post: Post, site_dir: Path, search_page) -> None:
    """Searching for phrases from the post's body lists the post among the results."""
    page, visit = search_page
    root = urlsplit(page.url).path
    missed = []
    for phrase in search_phrases(post, site_dir):
        found = search(page, phrase)
        if root + post.url not in found:
            missed.append(f"{phrase!r} -> {found}")
    assert not missed, "search misses the post for: " + "; ".join(missed)
    assert not visit.console_errors, f"console errors: {visit.console_errors}"


# -- home page and feed -----------------------------------------------------------------


def test_home_page_lists_latest_posts(browser, base_url: str) -> None:
    """The home page links to the newest posts (one listing page), newest first."""
    context, page, visit = open_page(browser, base_url, viewport=DESKTOP)
    try:
        page.goto(base_url, wait_until="networkidle")
        hrefs = page.eval_on_selector_all(
            "article .md-post__content h2 a", "links => links.map(a => a.href)"
        )
    finally:
        context.close()
    listed = [h.removeprefix(base_url) for h in hrefs]
    per_page = plugin_config("blog").get("pagination_per_page", 10)
    expected = newest_first(per_page)
    assert sorted(listed) == sorted(p.url for p in expected)
    dates = {p.url: p.date for p in POSTS}
    assert [dates[u] for u in listed] == sorted((dates[u] for u in listed), reverse=True)
    assert not [u for u in visit.requests if not is_local(u)]
    assert not visit.console_errors, f"console errors: {visit.console_errors}"


def test_rss_feed_lists_every_post(site_dir: Path) -> None:
    """feed_rss_created.xml is well-formed RSS whose items link to every post."""
    channel = ET.parse(site_dir / "feed_rss_created.xml").getroot().find("channel")
    assert channel is not None
    links = {item.findtext("link") for item in channel.iter("item")}
    site_url = mkdocs_config()["site_url"]
    length = plugin_config("rss").get("length", 20)
    assert links == {site_url + p.url for p in newest_first(length)}
