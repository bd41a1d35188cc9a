from __future__ import annotations

import pytest

from fathom.contract import SolveStatus
from worker.parse import ThinkTracker, last_boxed, parse_completion, split_reasoning

R1_COMPLETION = (
    "Okay, the sum 1 + 2 + ... + 100 pairs up into 50 pairs of 101.\n</think>\n\n"
    "Pair the terms: $1+100 = 2+99 = \\dots = 101$, fifty pairs.\n\n"
    "The sum is $50 \\cdot 101 = \\boxed{5050}$."
)


def test_r1_completion_splits_into_reasoning_solution_and_answer() -> None:
    parsed = parse_completion(R1_COMPLETION, "stop")
    assert parsed.status is SolveStatus.SOLVED
    assert parsed.answer == "5050"
    assert parsed.reasoning.startswith("Okay, the sum")
    assert "</think>" not in parsed.reasoning
    assert parsed.solution.startswith("Pair the terms")
    assert parsed.solution.endswith("\\boxed{5050}$.")


def test_split_is_on_the_last_think_close() -> None:
    text = "first thought </think> more thinking that mentions </think> again\n</think>\nAnswer"
    reasoning, solution, closed = split_reasoning(text)
    assert closed
    assert solution == "Answer"
    assert reasoning.endswith("mentions </think> again")


def test_a_leading_think_open_is_dropped() -> None:
    reasoning, solution, closed = split_reasoning("  <think>\nLet me see.\n</think>\nDone.")
    assert (reasoning, solution, closed) == ("Let me see.", "Done.", True)


def test_no_think_close_is_all_reasoning_and_no_answer() -> None:
    text = "Thinking... so the answer might be \\boxed{7} but let me check"
    parsed = parse_completion(text, "stop")
    assert parsed.status is SolveStatus.NO_ANSWER
    assert parsed.answer is None
    assert parsed.solution == ""
    assert parsed.reasoning == text


def test_length_finish_is_truncated_never_an_answer() -> None:
    parsed = parse_completion(R1_COMPLETION, "length")
    assert parsed.status is SolveStatus.TRUNCATED
    assert parsed.answer is None
    # What was written is kept, for the user to read as unfinished.
    assert "5050" in parsed.solution
    cut = parse_completion("Long reasoning that never ends", "length")
    assert (cut.status, cut.reasoning, cut.solution) == (
        SolveStatus.TRUNCATED,
        "Long reasoning that never ends",
        "",
    )


def test_solution_without_box_is_no_answer() -> None:
    parsed = parse_completion("think\n</think>\nThe answer is 12.", "stop")
    assert parsed.status is SolveStatus.NO_ANSWER
    assert parsed.answer is None
    assert parsed.solution == "The answer is 12."


def test_boxed_in_reasoning_only_is_not_the_answer() -> None:
    parsed = parse_completion("maybe \\boxed{3}\n</think>\nI could not decide.", "stop")
    assert parsed.status is SolveStatus.NO_ANSWER


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("first \\boxed{1}, then \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        (
            "\\boxed{\\left\\{ x : x^{2} > \\sqrt{y_{1}} \\right\\}}",
            "\\left\\{ x : x^{2} > \\sqrt{y_{1}} \\right\\}",
        ),
        ("$\\boxed {42}$", "42"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{a \\\\ b}", "a \\\\ b"),
        ("\\fbox{yes}", "yes"),
        ("\\boxed{ 7 } and an unclosed \\boxed{8", "7"),
        ("\\boxed{5} then the instruction echoed: \\boxed{}", "5"),
        ("\\boxedx{3}", None),
        ("\\boxed{}", None),
        ("no box here", None),
    ],
)
def test_last_boxed(text: str, answer: str | None) -> None:
    assert last_boxed(text) == answer


def test_empty_completion_is_no_answer() -> None:
    parsed = parse_completion("", "stop")
    assert (parsed.status, parsed.answer, parsed.reasoning, parsed.solution) == (
        SolveStatus.NO_ANSWER,
        None,
        "",
        "",
    )


def test_empty_box_after_think_is_no_answer() -> None:
    parsed = parse_completion("hmm\n</think>\nSo the answer is \\boxed{}.", "stop")
    assert parsed.status is SolveStatus.NO_ANSWER
    assert parsed.answer is None


@pytest.mark.parametrize(
    "chunks",
    [
        ["reason", "ing</think>", "written"],
        ["reasoning</", "think>written"],
        ["reasoning<", "/", "th", "ink", ">", "written"],
        ["reasoning", "</think", ">", "written"],
    ],
)
def test_tracker_sees_think_close_split_across_chunks(chunks: list[str]) -> None:
    tracker = ThinkTracker()
    switched = [tracker.feed(chunk) for chunk in chunks]
    assert tracker.writing
    assert switched.count(True) == 1
    assert switched.index(True) == next(
        i for i in range(len(chunks)) if "</think>" in "".join(chunks[: i + 1])
    )
    assert tracker.text == "".join(chunks)


def test_tracker_stays_thinking_on_near_misses() -> None:
    tracker = ThinkTracker()
    for chunk in ["a </thin", "g> b", "<think>", "</", "thinking>", "</ think>"]:
        tracker.feed(chunk)
    assert not tracker.writing


def test_reasoning_sent_apart_is_put_back_before_the_solution() -> None:
    # llama.cpp's default reasoning_format (and vLLM's reasoning parsers) send the reasoning
    # in a field of its own and drop `</think>`; the text reads as if it had been left alone.
    tracker = ThinkTracker()
    for piece in ["\nPair", " the terms", "."]:
        tracker.feed_reasoning(piece)
    assert not tracker.writing
    assert tracker.feed("\n\nThe sum is ")  # the written solution begins
    tracker.feed("$\\boxed{5050}$.")
    assert tracker.text == "\nPair the terms.</think>\n\nThe sum is $\\boxed{5050}$."
    parsed = parse_completion(tracker.text, "stop")
    assert (parsed.reasoning, parsed.answer) == ("Pair the terms.", "5050")


def test_reasoning_sent_apart_without_a_solution_stays_all_reasoning() -> None:
    tracker = ThinkTracker()
    tracker.feed_reasoning("\nStill thinking")
    parsed = parse_completion(tracker.text, "length")
    assert parsed.status is SolveStatus.TRUNCATED
    assert parsed.reasoning == "Still thinking"
    assert parsed.solution == ""
