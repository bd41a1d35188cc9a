"""Laying a solution out as Discord messages."""

from __future__ import annotations

import re

import pytest

from fathom.contract import MessagePayload
from tests.render.conftest import count_near, image
from worker.render.chain import Engine, Picture, Renderer
from worker.render.layout import ANSWER_FILE, DIAGRAM_NOTE, REASONING_FILE, layout_solution
from worker.render.mathjax import MathJaxEngine
from worker.render.mpl import MatplotlibEngine

ACCENT = (0xF0, 0xB2, 0x32)


def check_limits(messages: list[MessagePayload], files: dict[str, bytes]) -> None:
    named: list[str] = []
    for m in messages:
        content, names = m.content, m.files
        assert len(content) <= 2000
        assert len(names) <= 10
        assert content or names
        # A code block is never cut open: every message has whole fences.
        assert len(re.findall(r"^\s*```", content, flags=re.M)) % 2 == 0
        named.extend(names)
    assert sorted(named) == sorted(files)


def test_exact_inline_math_becomes_text(renderer: Renderer) -> None:
    solution = r"We have $r = \sqrt{0^2 + 3^2} = 3$ and $x \equiv 3 \pmod{7}$."
    out = layout_solution(solution, None, renderer=renderer)
    assert [m.content for m in out.messages] == ["We have r = √(0² + 3²) = 3 and x ≡ 3 (mod 7)."]
    assert out.files == {}
    assert out.stats.unicode_inline == 2


def test_unicode_text_is_escaped_for_markdown(renderer: Renderer) -> None:
    out = layout_solution(r"Let $|a_1|$ be", None, renderer=renderer)
    assert out.messages[0].content == r"Let \|a₁\| be"


def test_inexact_inline_math_turns_the_line_into_one_picture(renderer: Renderer) -> None:
    solution = "Intro line.\nThen $2\\frac{1}{3}$ cups, and $x$ more.\nLast line."
    out = layout_solution(solution, None, renderer=renderer)
    assert [(m.content, m.files) for m in out.messages] == [
        ("Intro line.", ["math-001.png"]),
        ("Last line.", []),
    ]
    assert out.stats.pictures["mathjax"] == 2


def test_pictures_follow_their_text_in_reading_order(renderer: Renderer) -> None:
    solution = "First\n\\[a^2 + b^2 = c^2\\]\nSecond\n$$\\int_0^1 x\\,dx$$\nThird"
    out = layout_solution(solution, None, renderer=renderer)
    assert [(m.content, m.files) for m in out.messages] == [
        ("First", ["math-001.png"]),
        ("Second", ["math-002.png"]),
        ("Third", []),
    ]


def test_consecutive_pictures_are_stacked_into_one(renderer: Renderer) -> None:
    solution = "So\n\\[x = 1\\]\n\n\\[y = \\frac{1}{2}\\]\nend"
    out = layout_solution(solution, None, renderer=renderer)
    assert [(m.content, m.files) for m in out.messages] == [("So", ["math-001.png"]), ("end", [])]
    single = renderer.formula("x = 1", display=True)
    assert isinstance(single, Picture)
    assert image(out.files["math-001.png"]).height > image(single.png).height


def test_final_answer_as_copyable_text_and_emphasised_picture(renderer: Renderer) -> None:
    out = layout_solution(
        r"Thus $\boxed{\frac{\pi}{2}}$.", r"\frac{\pi}{2}", "I thought hard.", renderer=renderer
    )
    last = out.messages[-1]
    assert last.content == r"**Answer:** π/2   (LaTeX: `\frac{\pi}{2}`)"
    assert last.files == [ANSWER_FILE, REASONING_FILE]
    assert out.files[REASONING_FILE] == b"I thought hard."
    assert count_near(image(out.files[ANSWER_FILE]), ACCENT) > 100
    check_limits(out.messages, out.files)


def test_answer_without_exact_text_is_given_as_latex(renderer: Renderer) -> None:
    out = layout_solution("x", r"\binom{5}{2}", renderer=renderer)
    assert out.messages[-1].content == r"**Answer:** `\binom{5}{2}`"


def test_reasoning_attached_without_an_answer(renderer: Renderer) -> None:
    out = layout_solution("No answer here.", None, "thinking", renderer=renderer)
    assert out.messages[-1].files == [REASONING_FILE]


def test_markdown_stays_text(renderer: Renderer) -> None:
    solution = "## Step 1\n\n- **Add** the numbers: 2 + 3 = 5.\n- *Done*."
    out = layout_solution(solution, None, renderer=renderer)
    assert [m.content for m in out.messages] == [solution]


def test_diagrams_are_replaced_by_a_note(renderer: Renderer) -> None:
    out = layout_solution("See\n[asy]draw((0,0)--(1,1));[/asy]\nok", None, renderer=renderer)
    assert out.messages[0].content == f"See\n{DIAGRAM_NOTE}\nok"
    assert out.stats.diagrams == 1


def test_long_solutions_split_at_paragraph_boundaries(renderer: Renderer) -> None:
    paragraphs = [f"Step {i}. " + "word " * 60 for i in range(20)]
    out = layout_solution("\n\n".join(paragraphs), None, renderer=renderer)
    assert len(out.messages) > 1
    check_limits(out.messages, out.files)
    for m in out.messages:
        assert m.content.startswith("Step ")  # each message begins a paragraph
    assert " ".join(m.content for m in out.messages).count("Step ") == 20


def test_long_code_blocks_are_closed_and_reopened(renderer: Renderer) -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}  # $not math$" for i in range(300)) + "\n```"
    out = layout_solution(f"Code:\n{code}\nafter", None, renderer=renderer)
    check_limits(out.messages, out.files)
    bodies = [m.content for m in out.messages]
    assert sum(b.count("# $not math$") for b in bodies) == 300
    assert all("```python\n" in b for b in bodies if "# $not math$" in b)
    assert bodies[0].startswith("Code:\n```python\n")
    assert bodies[-1].endswith("```\nafter")


def test_a_huge_formula_falls_back_within_limits(renderer: Renderer) -> None:
    hostile = r"\[\sqrt{" + "x+" * 50_000 + r"}\]"
    out = layout_solution(f"Look:\n{hostile}\nend", None, renderer=renderer)
    check_limits(out.messages, out.files)
    assert out.stats.source_fallback == 1
    assert out.messages[-1].content.endswith("end")


def test_many_pictures_stay_within_file_limits(renderer: Renderer) -> None:
    solution = "\n".join(f"Step {i}:\n\\[x_{{{i}}} = {i}\\]" for i in range(30))
    out = layout_solution(solution, "29", renderer=renderer)
    check_limits(out.messages, out.files)
    assert out.stats.pictures["mathjax"] == 30


@pytest.mark.parametrize("solution", ["", "   \n\n  ", "$", "\\[", "```", "\\boxed{"])
def test_odd_input_never_raises(renderer: Renderer, solution: str) -> None:
    out = layout_solution(solution, None, renderer=renderer)
    assert out.messages
    check_limits(out.messages, out.files)


def test_public_entry_point_is_light_to_import() -> None:
    import subprocess
    import sys

    code = (
        "import sys, worker.render; "
        "print(any(m.startswith(('matplotlib', 'PIL')) for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_without_node_lines_are_drawn_by_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_NODE", "/nonexistent/node")
    engines: list[Engine] = [MathJaxEngine(), MatplotlibEngine()]
    solution = "So $2\\frac{1}{3}$ cups, **twice**.\n\\[x \\le \\tfrac12\\]"
    out = layout_solution(solution, "7", renderer=Renderer(engines))
    assert out.stats.pictures == {"matplotlib": 2}
    assert [m.files for m in out.messages] == [["math-001.png"], [ANSWER_FILE]]
    assert count_near(image(out.files[ANSWER_FILE]), ACCENT) > 40


def test_with_no_engine_math_is_shown_as_exact_text_or_source() -> None:
    out = layout_solution(
        "Mixed $2\\frac{1}{3}$ and $x^2$.\n\\[\\begin{pmatrix}1\\end{pmatrix}\\]\n\\[x \\le 3\\]",
        r"\frac{7}{3}",
        renderer=Renderer([]),
    )
    assert [m.content for m in out.messages] == [
        "Mixed `2\\frac{1}{3}` and x².\n```latex\n\\begin{pmatrix}1\\end{pmatrix}\n```\nx ≤ 3",
        "**Answer:** 7/3   (LaTeX: `\\frac{7}{3}`)",
    ]
    assert out.files == {}
    assert (out.stats.source_fallback, out.stats.unicode_fallback) == (2, 1)
