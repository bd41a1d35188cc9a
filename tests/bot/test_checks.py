from __future__ import annotations

import pytest

from bot.logic.checks import Attachment, Limits, check_question, check_quota

LIMITS = Limits(max_question_chars=50, max_pending=2, cooldown_s=10.0)


def test_a_plain_question_passes() -> None:
    assert check_question("What is 1 + 1?", (), LIMITS) is None


@pytest.mark.parametrize(
    "text",
    [
        "Solve $x^2 - 5x + 6 = 0$ for x ∈ ℝ",
        "```\nprint(2**10)\n```",
        "\\int_0^1 x^2\\,dx = ?",
        "Combien fait 7 × 8 ? 🤔",
    ],
)
def test_unicode_code_and_latex_are_fine(text: str) -> None:
    assert check_question(text, (), LIMITS) is None


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_an_empty_question_is_refused(text: str) -> None:
    reason = check_question(text, (), LIMITS)
    assert reason is not None
    assert "empty" in reason


def test_too_long_says_the_length_and_the_limit() -> None:
    reason = check_question("x" * 51, (), LIMITS)
    assert reason is not None
    assert "51" in reason
    assert "50" in reason


def test_exactly_the_limit_passes() -> None:
    assert check_question("x" * 50, (), LIMITS) is None


@pytest.mark.parametrize(
    "attachment",
    [Attachment("photo.JPG"), Attachment("scan", content_type="image/png")],
)
def test_only_an_image_says_that_images_cannot_be_read(attachment: Attachment) -> None:
    reason = check_question("", (attachment,), LIMITS)
    assert reason is not None
    assert "images" in reason
    assert "type" in reason


def test_only_a_non_image_file_asks_for_the_text() -> None:
    reason = check_question(" ", (Attachment("problem.pdf", "application/pdf"),), LIMITS)
    assert reason is not None
    assert "paste" in reason


def test_text_with_an_image_is_taken() -> None:
    assert check_question("see the triangle", (Attachment("t.png"),), LIMITS) is None


def test_quota_allows_below_the_limit_without_cooldown() -> None:
    assert check_quota(1, 0.0, LIMITS) is None


def test_quota_refuses_at_the_pending_limit() -> None:
    reason = check_quota(2, 0.0, LIMITS)
    assert reason is not None
    assert "limit is 2" in reason


def test_cooldown_rounds_the_wait_up() -> None:
    reason = check_quota(0, 3.2, LIMITS)
    assert reason is not None
    assert "4 seconds" in reason
    one = check_quota(0, 0.2, LIMITS)
    assert one is not None
    assert "1 second " in one
