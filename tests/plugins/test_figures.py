"""Figures: content-addressed SVG files, a light and a dark one, Chinese text as paths."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fixture_site import Build, Site, fence
from hypothesis import given
from hypothesis import strategies as st
from noto_cjk_sans_otc import FONT_PATH

from plugins.runnable.figures import (
    CJK_FAMILY,
    DARK_BACKGROUND,
    DARK_FOREGROUND,
    GREY_SPREAD,
    MAX_DARK_LIGHTNESS,
    MIN_DARK_LIGHTNESS,
    dark_color,
)

ROOT = Path(__file__).resolve().parents[2]
TITLE = "学习率越大，损失下降越快"
LABELS = ("训练步数", "损失")
DRAW = f"""\
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([1, 2, 3], [3, 1, 2], label="Adam")
ax.plot([1, 2, 3], [2, 2, 1], "k--", label="基线")
ax.set(xlabel="{LABELS[0]}", ylabel="{LABELS[1]}")
ax.legend()
ax.grid(True)
fig.suptitle("{TITLE}")
"""
UNTITLED = "import matplotlib.pyplot as plt\nplt.plot([0, 1])"
IMG = re.compile(r"<img ([^>]*)>")
ATTR = re.compile(r'([\w-]+)="([^"]*)"')


def _images(html: str) -> list[dict[str, str]]:
    return [dict(ATTR.findall(tag)) for tag in IMG.findall(html)]


def _svgs(build: Build) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((build.site / "assets/runnable").glob("*"))}


@dataclass
class Builds:
    first: Build
    svgs: dict[str, bytes]  # the first build's figure files (the second replaces them)
    html: str  # the first build's p.md
    second: Build


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """One fixture site built twice from scratch (no cache)."""
    site = Site(tmp_path_factory.mktemp("figures") / "site-src")
    site.page("p.md", "# P\n\n" + fence(DRAW, 'source="above"'))
    site.page("deep/q.md", "# Q\n\n" + fence(UNTITLED, 'source="above" alt="一条直线"'))
    first = site.build(env={"RUNNABLE_NO_CACHE": "1"})
    assert first.returncode == 0, first.log
    svgs, html = _svgs(first), first.html("p/index.html")
    second = site.build(env={"RUNNABLE_NO_CACHE": "1"})
    assert second.returncode == 0, second.log
    return Builds(first, svgs, html, second)


def _files(builds: Builds) -> tuple[str, str]:
    """The light and the dark SVG of p.md's figure, as text."""
    light, dark = (img["src"].split("#")[0] for img in _images(builds.html))
    return tuple(builds.svgs[Path(src).name].decode() for src in (light, dark))


def test_figure_is_two_content_addressed_files(builds: Builds) -> None:
    """A fence's figure is two SVG files named by their SHA-256, one per palette, nothing inline."""
    html = builds.html
    figure = re.search(r'<figure class="runnable-figure">(.*?)</figure>', html, re.DOTALL)
    assert figure, "no runnable-figure on the page"
    assert "<svg" not in html
    images = _images(figure[1])
    assert [img["src"].rsplit("#", 1)[1] for img in images] == ["only-light", "only-dark"]
    for img in images:
        path, _ = img["src"].split("#")
        file = (builds.first.site / "p" / path).resolve()
        assert file.parent == (builds.first.site / "assets/runnable").resolve()
        body = builds.svgs[file.name]
        assert file.name == hashlib.sha256(body).hexdigest()[:20] + ".svg"
        assert body.startswith(b"<?xml") and b"<svg" in body
    assert len(builds.svgs) == 4  # two figures (p.md, deep/q.md), light and dark each


def test_img_attributes(builds: Builds) -> None:
    """Each <img> has width and height (CSS px of the SVG), alt, lazy loading, async decoding."""
    for img in _images(builds.html):
        assert img["loading"] == "lazy" and img["decoding"] == "async"
        assert img["alt"] == TITLE  # no alt option: the suptitle
        svg = builds.svgs[Path(img["src"].split("#")[0]).name].decode()
        size = re.search(r'<svg [^>]*width="([\d.]+)pt" height="([\d.]+)pt"', svg)
        assert (int(img["width"]), int(img["height"])) == (
            round(float(size[1]) * 4 / 3),
            round(float(size[2]) * 4 / 3),
        )


def test_alt_option_and_nested_page(builds: Builds) -> None:
    """alt="…" is the alt text; a page two levels deep gets a src that reaches the file."""
    build = builds.first
    images = _images(build.html("deep/q/index.html"))
    assert [img["alt"] for img in images] == ["一条直线", "一条直线"]
    for img in images:
        assert img["src"].startswith("../../assets/runnable/")
        assert (build.site / "deep/q" / img["src"].split("#")[0]).is_file()


def test_two_clean_builds_write_identical_figures(builds: Builds) -> None:
    """Two builds without the cache write the same SVG files, byte for byte, and the same HTML."""
    assert _svgs(builds.second) == builds.svgs
    assert builds.second.html("p/index.html") == builds.html


def test_chinese_text_is_paths_drawn_from_the_cjk_font(builds: Builds) -> None:
    """No <text> in any SVG (glyphs are paths); each Chinese character is a glyph of the CJK face."""
    from matplotlib import font_manager, ft2font

    from plugins.runnable.figures import register_font

    for body in builds.svgs.values():
        assert b"<text" not in body
    assert register_font()
    latin = ft2font.FT2Font(font_manager.findfont("DejaVu Sans"))
    entry = font_manager.fontManager.findfont(CJK_FAMILY, fallback_to_default=False)
    assert entry.path == str(FONT_PATH)  # the pinned font, even where the system has one
    cjk = ft2font.FT2Font(entry.path, face_index=entry.face_index)
    light, _ = _files(builds)
    for char in set(TITLE + "".join(LABELS)) - {" "}:
        if latin.get_char_index(ord(char)):
            continue  # drawn with DejaVu Sans
        index = cjk.get_char_index(ord(char))
        assert index, f"{char!r} is in neither font"
        assert f'id="{cjk.postscript_name}-{index:x}"' in light, f"{char!r} not drawn"


def test_dark_variant_has_no_white_and_light_text(builds: Builds) -> None:
    """The dark SVG has no white fill, a transparent background and text in the dark-page colour."""
    light, dark = _files(builds)
    assert "fill: #ffffff" in light
    assert "#ffffff" not in dark.lower()
    background = re.search(r'<g id="patch_1">\s*<path [^>]*style="([^"]*)"', dark)
    assert background and background[1] == "fill: none"
    foreground = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in DARK_FOREGROUND))
    assert f"fill: {foreground}" in dark  # glyphs (black on light) in the dark page's text colour
    assert "stroke: #1f77b4" in dark  # data colours (tab:blue) kept


def test_missing_glyph_fails_the_build(site: Site) -> None:
    """A label with a character no font has (tofu) fails the build instead of drawing a box."""
    code = 'import matplotlib.pyplot as plt\nplt.title("\\U0001f980")'
    site.page("p.md", "# P\n\n" + fence(code, 'source="above"'))
    build = site.build()
    assert build.returncode != 0
    assert "docs/p.md" in build.log and "no font can draw" in build.log


@pytest.mark.parametrize(("label", "fails"), [("分布 $p_t$", True), ("分布 p_t", False)])
def test_chinese_in_a_mathtext_label_fails(label: str, fails: bool) -> None:
    """mathtext draws a whole `$...$` label with fonts that have no Chinese: tofu, so an error."""
    import matplotlib
    import matplotlib.pyplot as plt

    from plugins.runnable.figures import RC, MissingGlyphs, capture, register_font

    assert register_font()
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.set_title(label)
        if fails:
            with pytest.raises(MissingGlyphs, match="mathtext"):
                capture("salt")
            plt.close(fig)
        else:
            assert len(capture("salt")) == 1


@pytest.mark.parametrize(
    ("inches", "points", "readable"),
    # 358 px column: 10 pt is 13.3 px, so 9 px needs a figure ≤ 5.5 in; 14 pt allows 7.7 in
    [(5.0, 10, True), (6.5, 10, False), (6.5, 14, True), (4.0, 6, False)],
)
def test_text_too_small_for_a_phone(inches: float, points: float, readable: bool) -> None:
    """Text that a 390 px phone would shrink below 9 px is rejected, naming the text."""
    import matplotlib
    import matplotlib.pyplot as plt

    from plugins.runnable.figures import RC, TextTooSmall, capture

    with matplotlib.rc_context(RC):  # bbox="tight", as the build saves
        fig = plt.figure(figsize=(inches, 2))
        frame = fig.add_axes((0, 0, 1, 1), xticks=[], yticks=[])  # keeps the full width
        frame.text(0.5, 0.5, "a label", fontsize=points, ha="center")
        if readable:
            assert len(capture("salt")) == 1
        else:
            with pytest.raises(TextTooSmall, match=f"'a label' \\({points:g} pt\\)"):
                capture("salt")
            plt.close("all")


def test_command_line_reports_figures(tmp_path: Path) -> None:
    """`python -m plugins.runnable page.md --figures DIR` prints each figure and writes its SVGs."""
    page = tmp_path / "p.md"
    page.write_text("# P\n\n" + fence(DRAW, 'source="above"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNABLE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, "-m", "plugins.runnable", "p.md", "--figures", "figs"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr
    assert re.search(rf"\[figure 1: {TITLE}; SVG [\d,]+ B light, [\d,]+ B dark\]", process.stdout)
    light, dark = (
        (tmp_path / f"figs/p-fence-1-1-{scheme}.svg").read_text(encoding="utf-8")
        for scheme in ("light", "dark")
    )
    assert light.rstrip().endswith("</svg>") and dark.rstrip().endswith("</svg>") and light != dark
    assert "figs/p-fence-1-1-{light,dark}.svg" in process.stdout


def _grey(level: float) -> tuple[float, float, float, float]:
    return (level, level, level, 1.0)


def test_dark_color_mirrors_greys() -> None:
    """Black becomes the dark page's text colour, white its background; alpha is kept."""
    assert dark_color(_grey(0.0)) == pytest.approx((*DARK_FOREGROUND, 1.0))
    assert dark_color(_grey(1.0)) == pytest.approx((*DARK_BACKGROUND, 1.0))
    assert dark_color((0.0, 0.0, 0.0, 0.3))[3] == 0.3


@given(st.floats(0, 1), st.floats(0, 1))
def test_dark_color_reverses_the_order_of_greys(a: float, b: float) -> None:
    """A darker grey on the light figure is a lighter grey on the dark one (and stays grey)."""
    da, db = dark_color(_grey(a)), dark_color(_grey(b))
    if a < b:
        assert sum(da[:3]) >= sum(db[:3])
    assert max(da[:3]) - min(da[:3]) < 0.06


@given(st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
def test_dark_color_keeps_colours_apart_from_the_page(
    rgba: tuple[float, float, float, float],
) -> None:
    """Non-grey colours: pastels turn dark (fills under text), the rest is visible; alpha kept."""
    import colorsys

    r, g, b, a = dark_color(rgba)
    assert a == rgba[3]
    if max(rgba[:3]) - min(rgba[:3]) < GREY_SPREAD:
        return
    before = colorsys.rgb_to_hls(*rgba[:3])[1]
    after = colorsys.rgb_to_hls(r, g, b)[1]
    if before > MAX_DARK_LIGHTNESS:
        assert after < MIN_DARK_LIGHTNESS  # dark enough for light text on it
    else:
        assert after >= MIN_DARK_LIGHTNESS - 1e-9  # light enough to see on the dark page


def test_tab10_is_unchanged() -> None:
    """matplotlib's default data colours are light enough for the dark page: kept as they are."""
    from matplotlib.colors import to_rgba

    for name in ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"):
        assert dark_color(to_rgba(name)) == pytest.approx(to_rgba(name))


def test_to_dark_keeps_what_is_drawn_over_colour_mapped_data() -> None:
    """Cell values and markers on a heatmap keep their colours; the axes' own text is re-coloured."""
    from matplotlib.colors import to_hex
    from matplotlib.figure import Figure

    from plugins.runnable.figures import to_dark

    fig = Figure()
    heat, plain = fig.subplots(1, 2)
    heat.imshow([[0, 1], [1, 0]], cmap="Blues")
    value = heat.text(0, 0, "0", color="white")
    marker = heat.plot([0], [1], "k.")[0]
    line = plain.plot([0, 1], color="black")[0]
    heat.set_title("热力图")
    to_dark(fig)
    assert to_hex(value.get_color()) == "#ffffff"
    assert to_hex(marker.get_color()) == "#000000"
    foreground = to_hex(DARK_FOREGROUND)
    assert to_hex(line.get_color()) == foreground
    assert to_hex(heat.title.get_color()) == foreground
    assert fig.patch.get_facecolor()[3] == 0  # transparent: the page shows through
