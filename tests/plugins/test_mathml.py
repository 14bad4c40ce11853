"""LaTeX → MathML details that latex2mathml leaves to us."""

from __future__ import annotations

import html
import re
import string
import unicodedata

import pytest

from plugins.runnable.mathml import MathError, convert_html, to_mathml

THIN = '<mspace width="0.1667em"></mspace>'


def _tokens(latex: str) -> list[str]:
    """The formula's leaf elements in order, the thin space written as "␣"."""
    mathml = to_mathml(latex, display=False).replace(THIN, "<mi>␣</mi>")
    return re.findall(r"<m[ino][^>]*>([^<]*)</m[ino]>", mathml)


@pytest.mark.parametrize(
    ("latex", "expected"),
    # TeX's spacing table: Ord–Op and Op–Ord get a thin space, Op–Open none
    [
        (r"\log P", ["log", "␣", "P"]),
        (r"L\log L", ["L", "␣", "log", "␣", "L"]),
        (r"2\sin x", ["2", "␣", "sin", "␣", "x"]),
        (r"\nabla_x \log p", ["&#x02207;", "x", "␣", "log", "␣", "p"]),
        (r"\exp(x)", ["exp", "&#x00028;", "x", "&#x00029;"]),
        (r"\log_2 n", ["log", "2", "n"]),  # a subscripted name is left as latex2mathml sets it
    ],
)
def test_function_names_get_tex_spacing(latex: str, expected: list[str]) -> None:
    assert _tokens(latex) == expected


def test_sized_double_bar_is_a_norm_sign() -> None:
    """`\\big\\|` comes out of latex2mathml as the text "\\|"; a reader must see ‖."""
    assert _tokens(r"\big\| x \big\|") == ["&#x02016;", "x", "&#x02016;"]


@pytest.mark.parametrize(
    "latex", [r"\begin{aligned} a &= b \\ c &= d \end{aligned}", r"a \\ b", r"\foo x"]
)
def test_what_would_show_wrong_fails(latex: str) -> None:
    """Rows latex2mathml leaves as "&" and newlines browsers ignore, or unknown commands."""
    with pytest.raises(MathError):
        to_mathml(latex, display=True)


@pytest.mark.parametrize(
    ("command", "name"),
    [(r"\mathbb", "DOUBLE-STRUCK"), (r"\mathcal", "SCRIPT"), (r"\mathbf", "BOLD")],
)
@pytest.mark.parametrize("letter", string.ascii_letters)
def test_styled_letters_are_their_own_characters(command: str, name: str, letter: str) -> None:
    """𝔼, 𝒩, 𝐱 as characters: Chromium ignores mathvariant (Unicode names are the oracle)."""
    mathml = to_mathml(f"{command}{{{letter}}}", display=False)
    (char,) = re.findall(r"<mi>([^<]*)</mi>", html.unescape(mathml))
    case = "CAPITAL" if letter.isupper() else "SMALL"
    assert unicodedata.name(char).endswith(f"{name} {case} {letter.upper()}")


def test_a_dollar_left_in_the_prose_fails() -> None:
    """A space just inside a dollar ("$x + $") is no formula to arithmatex: readers saw LaTeX."""
    errors: list[MathError] = []
    convert_html('<p>损失 $L = \\big(x\\big) + $ 码本损失</p><p title="$t">b</p>', errors)
    assert [error.latex for error in errors] == ["$L = \\big(x\\big) + $"]


def test_dollars_in_code_and_formulas_are_fine() -> None:
    errors: list[MathError] = []
    page = '<pre><code>$ ls</code></pre><p><code>$HOME</code> <span class="arithmatex">\\(x\\)</span></p>'
    assert "<math" in convert_html(page, errors)
    assert errors == []
