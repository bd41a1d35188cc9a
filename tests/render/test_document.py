"""Drawing a solution into a neutral Document (how the bot posts it is tested in
tests/bot/test_pack.py)."""

from __future__ import annotations

import pytest

from fathom.contract import AnswerBlock, Document, ImageBlock, TextBlock
from tests.render.conftest import count_near, image
from worker.render.chain import Engine, Picture, RenderCache, Renderer
from worker.render.document import ANSWER_FILE, DIAGRAM_NOTE, DrawnSolution, draw_solution
from worker.render.mpl import MatplotlibEngine

ACCENT = (0xF0, 0xB2, 0x32)


def shapes(document: Document) -> list[tuple[str, str]]:
    """Each block as (kind, its text or file)."""
    out: list[tuple[str, str]] = []
    for block in document.blocks:
        if isinstance(block, TextBlock):
            out.append(("text", block.markdown))
        elif isinstance(block, ImageBlock):
            out.append(("image", block.file))
        else:
            out.append(("answer", block.latex))
    return out


def check_files(drawn: DrawnSolution) -> None:
    """Every file the document names is drawn, and nothing else is."""
    assert sorted(drawn.document.files) == sorted(drawn.files)
    for block in drawn.document.blocks:
        if isinstance(block, ImageBlock):
            assert image(drawn.files[block.file]).size == (block.width, block.height)


@pytest.fixture
def mpl_renderer() -> Renderer:
    """Draws without node: enough where only the structure of the document matters."""
    engines: list[Engine] = [MatplotlibEngine()]
    return Renderer(engines, RenderCache())


def test_exact_inline_math_becomes_text(mpl_renderer: Renderer) -> None:
    solution = r"We have $r = \sqrt{0^2 + 3^2} = 3$ and $x \equiv 3 \pmod{7}$."
    out = draw_solution(solution, None, renderer=mpl_renderer)
    assert shapes(out.document) == [("text", "We have r = √(0² + 3²) = 3 and x ≡ 3 (mod 7).")]
    assert out.files == {}
    assert out.stats.unicode_inline == 2


def test_unicode_text_is_escaped_for_markdown(mpl_renderer: Renderer) -> None:
    out = draw_solution(r"Let $|a_1|$ be", None, renderer=mpl_renderer)
    assert shapes(out.document) == [("text", r"Let \|a₁\| be")]


def test_inexact_inline_math_turns_the_line_into_one_picture(renderer: Renderer) -> None:
    solution = "Intro line.\nThen $2\\frac{1}{3}$ cups, and $x$ more.\nLast line."
    out = draw_solution(solution, None, renderer=renderer)
    assert shapes(out.document) == [
        ("text", "Intro line."),
        ("image", "math-001.png"),
        ("text", "Last line."),
    ]
    [picture] = [b for b in out.document.blocks if isinstance(b, ImageBlock)]
    assert picture.alt == "Then $2\\frac{1}{3}$ cups, and $x$ more."
    assert out.stats.pictures["mathjax"] == 2
    check_files(out)


def test_pictures_follow_their_text_in_reading_order(mpl_renderer: Renderer) -> None:
    solution = "First\n\\[a^2 + b^2 = c^2\\]\nSecond\n$$\\int_0^1 x\\,dx$$\nThird"
    out = draw_solution(solution, None, renderer=mpl_renderer)
    assert shapes(out.document) == [
        ("text", "First"),
        ("image", "math-001.png"),
        ("text", "Second"),
        ("image", "math-002.png"),
        ("text", "Third"),
    ]
    check_files(out)


def test_consecutive_pictures_are_stacked_into_one(renderer: Renderer) -> None:
    solution = "So\n\\[x = 1\\]\n\n\\[y = \\frac{1}{2}\\]\nend"
    out = draw_solution(solution, None, renderer=renderer)
    assert shapes(out.document) == [("text", "So"), ("image", "math-001.png"), ("text", "end")]
    [picture] = [b for b in out.document.blocks if isinstance(b, ImageBlock)]
    assert picture.alt == "\\[x = 1\\]\n\\[y = \\frac{1}{2}\\]"
    single = renderer.formula("x = 1", display=True)
    assert isinstance(single, Picture)
    assert image(out.files["math-001.png"]).height > image(single.png).height


def test_the_final_answer_is_text_and_an_emphasised_picture(renderer: Renderer) -> None:
    out = draw_solution(r"Thus $\boxed{\frac{\pi}{2}}$.", r"\frac{\pi}{2}", renderer=renderer)
    last = out.document.blocks[-1]
    assert last == AnswerBlock(latex=r"\frac{\pi}{2}", text="π/2", file=ANSWER_FILE)
    assert count_near(image(out.files[ANSWER_FILE]), ACCENT) > 100
    check_files(out)


def test_an_answer_without_exact_text_keeps_only_its_latex(mpl_renderer: Renderer) -> None:
    out = draw_solution("x", r"\binom{5}{2}", renderer=mpl_renderer)
    last = out.document.blocks[-1]
    assert isinstance(last, AnswerBlock)
    assert (last.latex, last.text) == (r"\binom{5}{2}", None)


def test_markdown_stays_text(mpl_renderer: Renderer) -> None:
    solution = "## Step 1\n\n- **Add** the numbers: 2 + 3 = 5.\n- *Done*."
    out = draw_solution(solution, None, renderer=mpl_renderer)
    assert shapes(out.document) == [("text", solution)]


def test_diagrams_are_replaced_by_a_note(mpl_renderer: Renderer) -> None:
    out = draw_solution("See\n[asy]draw((0,0)--(1,1));[/asy]\nok", None, renderer=mpl_renderer)
    assert shapes(out.document) == [("text", f"See\n{DIAGRAM_NOTE}\nok")]
    assert out.stats.diagrams == 1


def test_an_unclosed_code_block_is_closed(mpl_renderer: Renderer) -> None:
    out = draw_solution("Code:\n```python\nx = 1", None, renderer=mpl_renderer)
    assert shapes(out.document) == [("text", "Code:\n```python\nx = 1\n```")]


def test_a_huge_formula_falls_back_to_its_source(mpl_renderer: Renderer) -> None:
    hostile = r"\[\sqrt{" + "x+" * 50_000 + r"}\]"
    out = draw_solution(f"Look:\n{hostile}\nend", None, renderer=mpl_renderer)
    assert out.stats.source_fallback == 1
    assert out.files == {}
    [text] = out.document.blocks
    assert isinstance(text, TextBlock)
    assert text.markdown.startswith("Look:\n```latex\n\\sqrt{x+x+")
    assert text.markdown.endswith("```\nend")


def test_many_pictures_each_get_a_file(renderer: Renderer) -> None:
    solution = "\n".join(f"Step {i}:\n\\[x_{{{i}}} = {i}\\]" for i in range(30))
    out = draw_solution(solution, "29", renderer=renderer)
    assert out.stats.pictures["mathjax"] == 30
    assert len([b for b in out.document.blocks if isinstance(b, ImageBlock)]) == 30
    check_files(out)


@pytest.mark.parametrize("solution", ["", "   \n\n  ", "$", "\\[", "```", "\\boxed{"])
def test_odd_input_never_raises(mpl_renderer: Renderer, solution: str) -> None:
    out = draw_solution(solution, None, renderer=mpl_renderer)
    check_files(out)
