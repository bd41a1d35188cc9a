"""Segmenting a model's Markdown + LaTeX into prose, math, code and diagrams."""

from __future__ import annotations

import pytest

from worker.render.segment import CodeBlock, Diagram, Math, Prose, segment


def maths(text: str) -> list[tuple[str, bool]]:
    return [(s.tex, s.display) for s in segment(text) if isinstance(s, Math)]


def test_inline_and_display_delimiters() -> None:
    text = r"Let $x=1$ and \(y=2\). Then $$x+y=3$$ and \[x-y=-1\] done."
    assert maths(text) == [("x=1", False), ("y=2", False), ("x+y=3", True), ("x-y=-1", True)]


def test_prose_between_math_is_kept_verbatim() -> None:
    segs = segment(r"**Step 1.** Let $x$ be\[x^2\]where")
    assert segs == [
        Prose("**Step 1.** Let "),
        Math("x", False, "$x$"),
        Prose(" be"),
        Math("x^2", True, r"\[x^2\]"),
        Prose("where"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10 in total.",
        "Prices: $3, $4.50 and $12.",
        "A stray $ sign.",
        "Between $ 5 $ spaces.",
        "Two paragraphs $a\n\nb$ never join.",
    ],
)
def test_currency_and_stray_dollars_stay_prose(text: str) -> None:
    assert maths(text) == []
    assert "".join(s.text for s in segment(text) if isinstance(s, Prose)) == text


def test_escaped_dollar_is_a_literal_dollar() -> None:
    assert segment(r"It costs \$5, and $x$ apples.") == [
        Prose("It costs $5, and "),
        Math("x", False, "$x$"),
        Prose(" apples."),
    ]


def test_currency_before_real_math() -> None:
    assert maths("Pay $5 now, then $x^2$ later.") == [("x^2", False)]


def test_escaped_dollar_inside_math() -> None:
    assert maths(r"Total: $\$5 + \$3$.") == [(r"\$5 + \$3", False)]


def test_unmatched_display_delimiters_stay_prose() -> None:
    text = r"Open \[ never closed, and $$ too"
    assert maths(text) == []
    assert segment(text) == [Prose(text)]


@pytest.mark.parametrize(
    "env", ["align*", "aligned", "cases", "pmatrix", "array", "gather", "equation*"]
)
def test_bare_environments_are_display_math(env: str) -> None:
    arg = "{cc}" if env == "array" else ""
    body = rf"\begin{{{env}}}{arg} a & b \\ c & d \end{{{env}}}"
    assert maths(f"So\n{body}\nthus") == [(body, True)]


def test_nested_environments_end_at_the_matching_end() -> None:
    body = r"\begin{align*} f &= \begin{cases} 1 \\ 2 \end{cases} \\ g &= 3 \end{align*}"
    assert maths(body + " after") == [(body, True)]


def test_non_math_environment_is_prose() -> None:
    assert maths(r"\begin{itemize} \item x \end{itemize}") == []


def test_bare_boxed_alone_on_a_line_is_display() -> None:
    assert maths("The answer is\n\\boxed{\\frac{1}{2}}.\n") == [(r"\boxed{\frac{1}{2}}", True)]
    assert maths("so \\boxed{7} wins") == [(r"\boxed{7}", False)]


def test_unbalanced_boxed_stays_prose() -> None:
    assert maths(r"\boxed{oops") == []


def test_code_blocks_and_spans_are_opaque() -> None:
    text = "Run\n```python\nprice = '$5' + '$x$'\n```\nthen `$y$` and $z$"
    segs = segment(text)
    assert segs[1] == CodeBlock("```python\nprice = '$5' + '$x$'\n```\n")
    assert maths(text) == [("z", False)]


def test_unclosed_code_block_runs_to_the_end() -> None:
    segs = segment("text\n```\n$x$ never closed")
    assert segs == [Prose("text\n"), CodeBlock("```\n$x$ never closed")]


def test_asy_diagram_is_set_aside() -> None:
    segs = segment('See [asy]draw((0,0)--(1,1));\nlabel("$A$");[/asy] here $x$.')
    assert isinstance(segs[1], Diagram)
    assert maths('[asy]label("$A$");[/asy] $x$') == [("x", False)]


def test_markdown_stays_text() -> None:
    text = "# Solution\n\n1. **First**, add.\n2. *Then* subtract.\n> quoted"
    assert segment(text) == [Prose(text)]


def test_double_backslash_in_prose_is_not_an_escape() -> None:
    assert maths(r"line\\ break $x$") == [("x", False)]
