"""LaTeX → MathML details that latex2mathml leaves to us."""

from __future__ import annotations

import html
import re
import string
import unicodedata

import pytest

from plugins.runnable.mathml import (
    MathError,
    _without_redundant_rows,
    convert_html,
    to_mathml,
)

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


@pytest.mark.parametrize(
    ("latex", "operator"),
    [(r"\max_{i} x_i", "max"), (r"\min_\theta L", "min"), (r"\sup_x f", "sup"),
     (r"\operatorname*{argmax}_k p_k", "argmax")],
)  # fmt: skip
def test_limits_go_underneath_in_display(latex: str, operator: str) -> None:
    """TeX sets these limits under the operator in display math and as a subscript inline:
    MathML Core does both for an <munder> whose base has movablelimits."""
    mathml = to_mathml(latex, display=True)
    assert f'<munder><mo movablelimits="true">{operator}</mo>' in mathml
    assert mathml.count("<munder>") == mathml.count("</munder>") == 1
    assert "<msub><mo" not in mathml


def test_argmax_without_star_keeps_its_limits_at_the_side() -> None:
    assert "<munder>" not in to_mathml(r"\operatorname{argmax}_k p_k", display=True)


def test_a_sized_delimiter_under_a_script_keeps_its_size() -> None:
    """\\big)^2: the script's base is the sized delimiter in its own <mrow> (Chromium sets a
    bare <mo> base at normal size), without operator spaces, like every \\big delimiter."""
    mathml = to_mathml(r"\big(a\big)^2", display=False)
    assert re.search(
        r"<msup><mrow><mo [^>]*minsize=\"1.2em\"[^>]*>\)</mo></mrow><mn>2</mn>", mathml
    )
    assert mathml.count('lspace="0" rspace="0"') == 2


def test_norm_bars_do_not_stretch() -> None:
    """\\lVert x\\rVert^2: both bars one size (Chromium stretched the first one only)."""
    mathml = to_mathml(r"\lVert z_{e,i} \rVert^2", display=True)
    assert mathml.count('<mo stretchy="false" lspace="0" rspace="0">&#x02016;</mo>') == 2


@pytest.mark.parametrize(
    ("latex", "accent"),
    [(r"\bar{x}", "&#x000AF;"), (r"\bar x", "&#x000AF;"), (r"\bar{\alpha}_t", "&#x000AF;"),
     (r"\hat{y}", "&#x002C6;"), (r"\hat x", "&#x002C6;")],
)  # fmt: skip
def test_bar_and_hat_are_fixed_size_accents(latex: str, accent: str) -> None:
    """One centred accent of the font's size, as TeX sets \\bar and \\hat (not stretched)."""
    mathml = to_mathml(latex, display=False)
    assert f'<mo stretchy="false">{accent}</mo></mover>' in mathml
    assert '<mover accent="true">' in mathml


def test_wide_accents_still_stretch() -> None:
    assert "&#x002C6;" not in to_mathml(r"\widehat{xy}", display=False)


@pytest.mark.parametrize(
    "latex", [r"\overline{\mathrm{VE}}_{\min}", r"\overline{x + \overline{y}}"]
)
def test_overline_is_a_border_over_the_whole_box(latex: str) -> None:
    """A fixed "―" covered the first letter only; the CSS border spans what it is over."""
    mathml = to_mathml(latex, display=True)
    assert "&#x02015;" not in mathml and "<mover" not in mathml
    box = mathml.split('<mrow class="runnable-overline">', 1)[1]
    letters = re.findall(r"<m[in][^>]*>([^<]*)</m[in]>", box)
    assert letters[:2] == (["V", "E"] if "VE" in latex else ["x", "y"])
    assert mathml.count('class="runnable-overline"') == latex.count(r"\overline")


@pytest.mark.parametrize(
    ("latex", "inside"),
    [
        ("x", "<mi>x</mi>"),
        (r"\frac{a}{2}", "<mfrac><mi>a</mi><mn>2</mn></mfrac>"),
        (r"x_{i}^{2}", "<msubsup><mi>x</mi><mi>i</mi><mn>2</mn></msubsup>"),
        (r"{a}{b}", "<mi>a</mi><mi>b</mi>"),
    ],
)
def test_rows_around_one_letter_or_number_are_dropped(latex: str, inside: str) -> None:
    """Neither the formula's outer <mrow> nor one around a lone <mi>/<mn> reaches the page
    (tests/site/test_site_math_layout.py checks in Chromium that nothing moves)."""
    mathml = to_mathml(latex, display=False)
    assert re.fullmatch(r"<math [^>]*>(.*)</math>", mathml)[1] == inside


@pytest.mark.parametrize(
    ("latex", "row"),
    [
        (r"\sum_{i=1}^n", "<mrow><mi>i</mi><mo>&#x0003D;</mo><mn>1</mn></mrow>"),  # a group
        (r"\frac{-}{x}", "<mrow><mo>&#x02212;</mo></mrow>"),  # an operator's row sets its space
    ],
)
def test_rows_that_group_or_hold_an_operator_stay(latex: str, row: str) -> None:
    assert row in to_mathml(latex, display=False)


def test_two_rows_side_by_side_are_no_outer_row() -> None:
    """`<mrow>…</mrow><mrow>…</mrow>` opens and closes with a row, and neither is the outer one."""
    mathml = '<math display="block"><mrow><mo>-</mo><mi>a</mi></mrow><mrow><mo>-</mo></mrow></math>'
    assert _without_redundant_rows(mathml) == mathml
