from __future__ import annotations

import pytest

from bot.logic.progress import (
    JobProgress,
    estimate_wait_s,
    format_duration,
    format_eta,
    progress_bar,
    status_text,
)
from fathom.contract import Phase


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (7.9, "0:07"), (201, "3:21"), (3723, "1:02:03")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_progress_bar_fills_with_the_budget() -> None:
    assert progress_bar(0, 100, width=10) == "▱" * 10 + " 0%"
    assert progress_bar(30, 100, width=10) == "▰" * 3 + "▱" * 7 + " 30%"
    assert progress_bar(500, 100, width=10) == "▰" * 10 + " 100%"


def test_no_bar_without_a_budget() -> None:
    assert progress_bar(10, None) == ""
    assert progress_bar(10, 0) == ""


def test_wait_counts_waves_of_workers() -> None:
    assert estimate_wait_s(1, workers=4, solve_s=60) == 60
    assert estimate_wait_s(4, workers=4, solve_s=60) == 60
    assert estimate_wait_s(5, workers=4, solve_s=60) == 120
    assert estimate_wait_s(9, workers=4, solve_s=60) == 180


def test_eta_wording() -> None:
    assert format_eta(30) == "under a minute"
    assert format_eta(61) == "about 2 min"
    assert format_eta(3 * 3600) == "about 3 h"


def test_queued_shows_the_position_and_eta() -> None:
    text = status_text(JobProgress(phase=Phase.QUEUED, position=3), eta_s=130)
    assert "#3 in line" in text
    assert "about 3 min" in text


def test_thinking_shows_tokens_elapsed_and_a_bar_against_the_budget() -> None:
    progress = JobProgress(phase=Phase.THINKING, tokens=4096, budget_tokens=16000, elapsed_s=42)
    text = status_text(progress)
    assert "4,096 tokens" in text
    assert "0:42" in text
    assert "25%" in text
    assert "16,000-token budget" in text


def test_writing_and_rendering_and_a_note() -> None:
    writing = status_text(
        JobProgress(phase=Phase.WRITING, tokens=9000, elapsed_s=61, note="model busy, retrying")
    )
    assert writing.startswith("✍️ Writing")
    assert "model busy, retrying" in writing
    assert "Laying out" in status_text(JobProgress(phase=Phase.RENDERING))
