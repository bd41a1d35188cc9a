"""The Unicode path must be exact: the text says the same mathematics as the typeset formula."""

from __future__ import annotations

import pytest

from worker.render.unicode import to_unicode


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        (r"x \equiv 3 \pmod{7}", "x ≡ 3 (mod 7)"),
        (r"x \equiv 3 \pmod 7", "x ≡ 3 (mod 7)"),
        (r"\sqrt{a^2 + b^2}", "√(a² + b²)"),
        (r"\frac{a+b}{2}", "(a + b)/2"),
        (r"\frac{\pi}{2}", "π/2"),
        (r"\frac12", "1/2"),
        (r"\dfrac{x}{y^2}", "x/y²"),
        (r"\frac{1}{\frac{1}{2}}", "1/(1/2)"),
        (r"\frac{-1}{2}", "(−1)/2"),
        (r"-\frac{1}{2}", "−1/2"),
        (r"\frac{(a+b)}{c}", "(a + b)/c"),
        (r"\sqrt{x^2}", "√(x²)"),
        (r"\sqrt[3]{8} = 2", "∛8 = 2"),
        (r"2\sqrt{2}", "2√2"),
        (r"x^{n+1}", "xⁿ⁺¹"),
        (r"a_{n+1} = a_n + 1", "aₙ₊₁ = aₙ + 1"),
        (r"x^{-1}", "x⁻¹"),
        (r"90^\circ", "90°"),
        (r"0 \le \theta < 2\pi", "0 ≤ θ < 2π"),
        (r"\sin^2 x + \cos^2 x = 1", "sin² x + cos² x = 1"),
        (r"\log_2 8 = 3", "log₂ 8 = 3"),
        (r"\left( 3, \frac{\pi}{2} \right)", "(3, π/2)"),
        (r"\{1, 2, 3\}", "{1, 2, 3}"),
        (r"f(x) = 3x - 2", "f(x) = 3x − 2"),
        (r"\text{if } x > 0", "if x > 0"),
        (r"\lfloor x \rfloor", "⌊x⌋"),
        (r"x \in \mathbb{R}", "x ∈ ℝ"),
        (r"n!", "n!"),
        (r"\frac{1}{2} + \frac{1}{3} = \frac{5}{6}", "1/2 + 1/3 = 5/6"),
    ],
)
def test_exact_conversions(tex: str, text: str) -> None:
    assert to_unicode(tex) == text


@pytest.mark.parametrize(
    "tex",
    [
        r"2\frac{1}{3}",  # a mixed number: "21/3" or "2 1/3" would be misread
        r"x\frac{1}{2}",  # "x1/2"
        r"\frac{1}{2}x",  # "1/2x" reads as 1/(2x)
        r"\frac12 x",
        r"\sqrt{2}x",  # "√2x" reads as √(2x)
        r"6 \div \frac{1}{2}",  # "6 ÷ 1/2" reads as (6 ÷ 1)/2
        r"\sin \frac{\pi}{2}",
        r"x^{q}",  # no superscript q in Unicode
        r"x^{\frac{1}{2}}",
        r"\binom{5}{2}",
        r"\boxed{5}",  # boxed answers are drawn, to be emphasised
        r"\overline{AB}",
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
        r"\frac{1}{2",  # unbalanced
        r"a \\ b",
        r"\unknowncommand",
        "x" * 400,  # too long for inline text
    ],
)
def test_ambiguous_or_unsupported_gives_none(tex: str) -> None:
    assert to_unicode(tex) is None
