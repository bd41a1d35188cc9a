from __future__ import annotations

import re

import pytest

from bot.logic.split import split_message


def fences_balanced(chunk: str) -> bool:
    return len(re.findall(r"^ {0,3}```", chunk, flags=re.MULTILINE)) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_message("one\n\ntwo") == ["one\n\ntwo"]


def test_blank_text_is_no_message() -> None:
    assert split_message("  \n\n ") == []


def test_splits_at_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Step {i}: " + "word " * 60 for i in range(30)]
    chunks = split_message("\n\n".join(paragraphs), limit=2000)
    assert all(len(c) <= 2000 for c in chunks)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.startswith("Step ")  # every cut is at a paragraph boundary
    assert "\n\n".join(chunks).split() == "\n\n".join(paragraphs).split()


def test_a_code_block_is_never_cut_open() -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(400)) + "\n```"
    text = "Intro paragraph.\n\n" + code + "\n\nOutro."
    chunks = split_message(text, limit=500)
    assert all(len(c) <= 500 for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    code_chunks = [c for c in chunks if c.startswith("```python")]
    assert len(code_chunks) > 1
    body = [line for c in code_chunks for line in c.split("\n```")[0].split("\n")[1:]]
    assert body == [f"x{i} = {i}" for i in range(400)]


def test_blank_lines_inside_a_code_block_do_not_split_it() -> None:
    text = "```\na\n\nb\n```"
    assert split_message(text) == [text]


def test_a_long_line_is_cut_at_spaces_and_a_long_word_hard() -> None:
    line = "alpha " * 100 + "x" * 130
    chunks = split_message(line, limit=100)
    assert all(len(c) <= 100 for c in chunks)
    assert "".join(chunks).replace(" ", "") == line.replace(" ", "")


@pytest.mark.parametrize("limit", [50, 200, 2000])
def test_nothing_is_lost(limit: int) -> None:
    text = "\n\n".join(
        ["Let $x = \\frac{a+b}{2}$.", "```\ncode  here\n```", "Answer: \\boxed{42} ✓"] * 20
    )
    chunks = split_message(text, limit=limit)
    assert all(len(c) <= limit for c in chunks)
    joined = "".join(chunks)
    for piece in ("\\frac{a+b}{2}", "\\boxed{42}", "code  here"):
        assert joined.count(piece) == 20
