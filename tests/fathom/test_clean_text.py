"""What reaches the model is what a reader sees: `clean_text` and the models that use it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from fathom.contract import SolveRequest, Turn, clean_text


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ("2\x00+2", "2+2"),
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("\x1b]0;title\x07x", "x"),
        ("a\x7fb\x85c\x9bd", "abcd"),
        ("x\u202e01\u202c", "x01"),
        ("\u2067rtl\u2069", "rtl"),
        ("1\u200b2\ufeff3\u2060", "123"),
        ("a\u2062b", "ab"),
        ("hidden\U000e0041\U000e0042", "hidden"),
        ("soft\u00adhyphen", "softhyphen"),
        ("one\rtwo\r\nthree", "one\ntwo\nthree"),
        ("lone \ud800 surrogate", "lone \ufffd surrogate"),
    ],
)
def test_what_cannot_be_seen_is_removed(typed: str, seen: str) -> None:
    assert clean_text(typed) == seen


@pytest.mark.parametrize(
    "kept",
    [
        "tab\there\nnewline",
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian needs the non-joiner
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # a family emoji needs the joiners
        "\u0627\u200f\u0628",  # right-to-left mark
        "Tính tổng $\\frac{1}{2}$ 求解 ∑ √2",
    ],
)
def test_what_a_reader_sees_stays(kept: str) -> None:
    assert clean_text(kept) == kept


def test_jobs_carry_only_clean_text() -> None:
    request = SolveRequest(
        question="What is 2\x00+2?\x1b[0m",
        history=[Turn(question="1\u200b+1?", solution="\u202e2")],
    )
    assert request.question == "What is 2+2?"
    assert request.history[0] == Turn(question="1+1?", solution="2")


def test_a_question_of_invisible_characters_only_is_no_question() -> None:
    with pytest.raises(ValidationError):
        SolveRequest(question="\x00\u200b\x1b[2J")
