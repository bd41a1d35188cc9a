"""Names the bot derives from what people type: quotes of questions, job ids typed back."""

from __future__ import annotations

import pytest

from bot.logic.naming import job_id_prefix, quote, status_header


def test_a_quoted_question_cannot_swallow_the_status_line() -> None:
    header = status_header("```\n||spoiler x_1 * y_2", 42, public=True)
    status = header + "\n⏳ Waiting"
    assert "```" not in status.replace("\\`", "")
    assert "||" not in status.replace("\\|", "")
    assert status.startswith("**<@42> asked:**\n> \\`\\`\\`\n> \\|\\|spoiler x\\_1 \\* y\\_2")


def test_a_quote_reads_as_typed_with_latex_kept() -> None:
    assert quote("$\\frac{1}{2}$ + 3") == "> $\\\\frac{1}{2}$ + 3"
    assert quote("# heading\n- item") == "> \\# heading\n> \\- item"


@pytest.mark.parametrize("typed", ["3f9a", " 3f9a  ", "3f9a-b_c"])
def test_a_job_id_or_its_start_is_taken(typed: str) -> None:
    assert job_id_prefix(typed) == typed.strip()


@pytest.mark.parametrize(
    "typed", ["", "   ", "*", "?", "[a-f]", "../x", "\x00", "@everyone", "`x`", "a" * 65]
)
def test_anything_else_is_no_job_id(typed: str) -> None:
    assert job_id_prefix(typed) is None
