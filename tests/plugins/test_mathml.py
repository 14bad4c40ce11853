"""LaTeX → MathML details that latex2mathml leaves to us."""

from __future__ import annotations

import re

import pytest

from plugins.runnable.mathml import to_mathml

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
        (r"\exp(x)", ["exp", "&#x00028;", "x", "&#x00029;"]),
        (r"\log_2 n", ["log", "2", "n"]),  # a subscripted name is left as latex2mathml sets it
    ],
)
def test_function_names_get_tex_spacing(latex: str, expected: list[str]) -> None:
    assert _tokens(latex) == expected
