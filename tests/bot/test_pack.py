"""The one packer: Markdown, pictures and files into Discord messages."""

from __future__ import annotations

import re

import pytest

from bot.logic.pack import (
    DISCORD_MESSAGE_LIMIT,
    MAX_FILES,
    Attachment,
    Outgoing,
    Picture,
    Piece,
    Text,
    answer_line,
    pack,
    split_markdown,
)


def fences_balanced(chunk: str) -> bool:
    return len(re.findall(r"^ {0,3}```", chunk, flags=re.MULTILINE)) % 2 == 0


def test_short_text_is_one_message() -> None:
    assert split_markdown("one\n\ntwo") == ["one\n\ntwo"]


def test_blank_text_is_no_message() -> None:
    assert split_markdown("  \n\n ") == []


def test_splits_at_paragraphs_within_the_limit() -> None:
    paragraphs = [f"Step {i}: " + "word " * 60 for i in range(30)]
    chunks = split_markdown("\n\n".join(paragraphs), limit=2000)
    assert all(len(c) <= 2000 for c in chunks)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.startswith("Step ")  # every cut is at a paragraph boundary
    assert "\n\n".join(chunks).split() == "\n\n".join(paragraphs).split()


def test_a_code_block_is_never_cut_open() -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}" for i in range(400)) + "\n```"
    text = "Intro paragraph.\n\n" + code + "\n\nOutro."
    chunks = split_markdown(text, limit=500)
    assert all(len(c) <= 500 for c in chunks)
    assert all(fences_balanced(c) for c in chunks)
    code_chunks = [c for c in chunks if c.startswith("```python")]
    assert len(code_chunks) > 1
    body = [line for c in code_chunks for line in c.split("\n```")[0].split("\n")[1:]]
    assert body == [f"x{i} = {i}" for i in range(400)]


def test_blank_lines_inside_a_code_block_do_not_split_it() -> None:
    text = "```\na\n\nb\n```"
    assert split_markdown(text) == [text]


def test_a_long_line_is_cut_at_spaces_and_a_long_word_hard() -> None:
    line = "alpha " * 100 + "x" * 130
    chunks = split_markdown(line, limit=100)
    assert all(len(c) <= 100 for c in chunks)
    assert "".join(chunks).replace(" ", "") == line.replace(" ", "")


@pytest.mark.parametrize("limit", [50, 200, 2000])
def test_nothing_is_lost(limit: int) -> None:
    text = "\n\n".join(
        ["Let $x = \\frac{a+b}{2}$.", "```\ncode  here\n```", "Answer: \\boxed{42} ✓"] * 20
    )
    chunks = split_markdown(text, limit=limit)
    assert all(len(c) <= limit for c in chunks)
    joined = "".join(chunks)
    for piece in ("\\frac{a+b}{2}", "\\boxed{42}", "code  here"):
        assert joined.count(piece) == 20


def check_limits(messages: list[Outgoing]) -> None:
    for message in messages:
        assert len(message.content) <= DISCORD_MESSAGE_LIMIT
        assert len(message.files) <= MAX_FILES
        assert message.content or message.files
        assert fences_balanced(message.content)


def test_every_picture_ends_the_message_with_the_text_before_it() -> None:
    pieces: list[Piece] = [
        Text("First"),
        Picture("math-001.png"),
        Text("Second"),
        Picture("math-002.png"),
        Text("Third"),
    ]
    assert pack(pieces) == [
        Outgoing("First", ("math-001.png",)),
        Outgoing("Second", ("math-002.png",)),
        Outgoing("Third"),
    ]


def test_a_picture_after_a_picture_stands_alone() -> None:
    assert pack([Picture("a.png"), Picture("b.png")]) == [
        Outgoing("", ("a.png",)),
        Outgoing("", ("b.png",)),
    ]


def test_long_text_before_a_picture_is_split_and_the_picture_ends_the_last_part() -> None:
    paragraphs = [f"Step {i}. " + "word " * 60 for i in range(20)]
    messages = pack([Text("\n\n".join(paragraphs)), Picture("p.png")])
    check_limits(messages)
    assert len(messages) > 1
    assert [m.files for m in messages] == [()] * (len(messages) - 1) + [("p.png",)]
    for message in messages:
        assert message.content.startswith("Step ")  # each message begins a paragraph
    assert " ".join(m.content for m in messages).count("Step ") == 20


def test_long_code_blocks_are_closed_and_reopened_keeping_the_text_around() -> None:
    code = "```python\n" + "\n".join(f"x{i} = {i}  # $not math$" for i in range(300)) + "\n```"
    messages = pack([Text(f"Code:\n{code}\nafter")])
    check_limits(messages)
    bodies = [m.content for m in messages]
    assert sum(b.count("# $not math$") for b in bodies) == 300
    assert all("```python\n" in b for b in bodies if "# $not math$" in b)
    assert bodies[0].startswith("Code:\n```python\n")
    assert bodies[-1].endswith("```\nafter")


def test_an_unclosed_code_block_is_closed() -> None:
    assert split_markdown("Code:\n```\nx = 1") == ["Code:\n```\nx = 1\n```"]


def test_files_go_on_the_last_message_while_there_is_room() -> None:
    messages = pack([Text("Answer"), Picture("answer.png"), Attachment("reasoning.md")])
    assert messages == [Outgoing("Answer", ("answer.png", "reasoning.md"))]
    crowded = [Picture(f"p{i}.png") for i in range(3)]
    assert pack([*crowded, Attachment("r.md")])[-1].files == ("p2.png", "r.md")


def test_many_pictures_stay_within_file_limits() -> None:
    pieces = [piece for i in range(30) for piece in (Text(f"Step {i}:"), Picture(f"{i}.png"))]
    messages = pack(pieces)
    check_limits(messages)
    assert [file for m in messages for file in m.files] == [f"{i}.png" for i in range(30)]


def test_blank_text_makes_no_message() -> None:
    assert pack([Text("  \n\n ")]) == []


def test_the_answer_line_is_exact_text_with_its_latex_where_they_differ() -> None:
    assert answer_line("42", "42") == "**Final answer:** 42"
    assert (
        answer_line(r"\frac{\pi}{2}", "π/2") == r"**Final answer:** π/2   (LaTeX: `\frac{\pi}{2}`)"
    )
    assert answer_line(r"\binom{5}{2}") == r"**Final answer:** `\binom{5}{2}`"
    assert answer_line("a*b", "a*b") == r"**Final answer:** a\*b"
    assert answer_line("a`b") == "**Final answer:** `` a`b ``"
    assert len(answer_line("x" * 5000)) <= DISCORD_MESSAGE_LIMIT


# --- study mode: spoilers ---------------------------------------------------------------------


def test_hidden_text_is_a_spoiler_line_by_line_with_line_markup_in_front() -> None:
    markdown = (
        "Let $|x| = 3$, so $x = \\pm 3$.\n\n"
        "- first `a||b`\n"
        "1. then\n"
        "## Answer\n\n"
        "```\ncode | here\n```"
    )
    [message] = pack([Text(markdown, hidden=True)])
    assert message.content.split("\n") == [
        "||Let $\\|x\\| = 3$, so $x = \\pm 3$.||",
        "",
        "- ||first `a||b`||",
        "1. ||then||",
        "## ||Answer||",
        "",
        "```",
        "code | here",
        "```",
    ]


def test_a_hidden_line_too_long_for_one_message_is_cut_before_it_is_hidden() -> None:
    line = " ".join(["word"] * 1200)
    messages = pack([Text(line, hidden=True)])
    assert len(messages) > 1
    for message in messages:
        assert len(message.content) <= DISCORD_MESSAGE_LIMIT
        assert message.content.startswith("||")
        assert message.content.endswith("||")


def test_hidden_pictures_are_sent_as_spoiler_files() -> None:
    messages = pack([Text("Step one", hidden=True), Picture("p1.png", hidden=True)])
    assert messages == [Outgoing("||Step one||", ("SPOILER_p1.png",))]


def test_a_hidden_answer_keeps_its_label_visible() -> None:
    assert answer_line("42", "42", hidden=True) == "**Final answer:** ||42||"
    assert answer_line("|x|", hidden=True) == "**Final answer:** ||`|x|`||"
