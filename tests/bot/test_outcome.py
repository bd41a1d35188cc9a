from __future__ import annotations

import pytest
from rq.job import JobStatus

from bot.logic.compose import REASONING_FILE, SIMULATED_NOTE, compose
from bot.logic.naming import message_nonce, quote, status_header, thread_name
from bot.logic.outcome import (
    NEVER_QUEUED,
    WORKER_LOST,
    final_status,
    lost_reason,
    outcome_text,
)
from fathom.contract import (
    AnswerBlock,
    Document,
    Failure,
    FailureCode,
    ImageBlock,
    Rendering,
    SolveResult,
    SolveStatus,
    TextBlock,
    Timings,
)


def result(status: SolveStatus, **fields: object) -> SolveResult:
    return SolveResult.model_validate(
        {"job_id": "j1", "status": status, "question": "1+1?", **fields}
    )


def failed(code: FailureCode, message: str = "detail") -> SolveResult:
    return result(SolveStatus.FAILED, failure=Failure(code=code, message=message))


@pytest.mark.parametrize(
    ("res", "words"),
    [
        (result(SolveStatus.TRUNCATED, budget_tokens=16000), ["16,000-token", "partial"]),
        (failed(FailureCode.MODEL_UNREACHABLE), ["can't be reached", "down or not started"]),
        (failed(FailureCode.MODEL_LOADING), ["still loading", "few minutes"]),
        (failed(FailureCode.OVERLOADED), ["overloaded", "retry"]),
        (result(SolveStatus.CANCELLED), ["Cancelled"]),
        (result(SolveStatus.SOLVED, rendering=Rendering.FAILED), ["plain text"]),
        (failed(FailureCode.QUESTION_TOO_LONG, "needs 20,000 tokens"), ["too long", "20,000"]),
        (result(SolveStatus.NO_ANSWER), ["didn't give a final boxed answer"]),
    ],
)
def test_each_outcome_is_specific(res: SolveResult, words: list[str]) -> None:
    text = outcome_text(res)
    for word in words:
        assert word in text


def test_final_status_says_where_and_how_long() -> None:
    res = result(SolveStatus.SOLVED, timings=Timings(total_s=75.0))
    assert final_status(res, thread=True) == (
        "✅ Solved after 1:15 — the solution is in the thread."
    )
    assert "Not solved" in final_status(failed(FailureCode.OVERLOADED), thread=False)


DRAWN = Document(
    blocks=[
        TextBlock(markdown="Step 1"),
        ImageBlock(file="math-001.png", alt="x", width=10, height=10),
        AnswerBlock(latex="2", text="2", file="answer.png"),
    ]
)


def test_a_drawn_solution_is_its_document_with_buttons_on_the_last() -> None:
    res = result(SolveStatus.SOLVED, solution="x", answer="2", reasoning="r", rendering="done")
    messages = compose(res, DRAWN, attach_reasoning=False)
    assert [(m.content, m.files) for m in messages] == [
        ("Step 1", ("math-001.png",)),
        ("**Final answer:** 2", ("answer.png",)),
    ]
    assert messages[0].buttons == ()
    assert messages[1].buttons == ("reasoning", "again")


def test_the_reasoning_attached_replaces_its_button() -> None:
    res = result(SolveStatus.SOLVED, solution="x", reasoning="r", rendering="done")
    messages = compose(res, DRAWN, attach_reasoning=True)
    assert messages[-1].files == ("answer.png", REASONING_FILE)
    assert messages[-1].buttons == ("again",)


def test_plain_text_when_not_drawn_marks_the_final_answer() -> None:
    res = result(SolveStatus.SOLVED, solution="We add.\n\nSo $1+1=2$.", answer="2", reasoning="r")
    messages = compose(res, None, attach_reasoning=True)
    assert len(messages) == 1
    assert messages[0].content == "We add.\n\nSo $1+1=2$.\n\n**Final answer:** `2`"
    assert messages[0].files == (REASONING_FILE,)
    assert messages[0].buttons == ("again",)


def test_a_drawing_failure_says_so_then_gives_the_plain_solution() -> None:
    res = result(SolveStatus.SOLVED, solution="The work.", rendering="failed")
    [message] = compose(res, None, attach_reasoning=False)
    first, second = message.content.split("\n\n")
    assert "plain text" in first
    assert second == "The work."
    assert "couldn't be drawn" in final_status(res, thread=False)


def test_a_missing_document_falls_back_to_plain_text() -> None:
    res = result(SolveStatus.SOLVED, solution="The work.", answer="1", rendering="done")
    [message] = compose(res, None, attach_reasoning=False)
    assert message.content == "The work.\n\n**Final answer:** `1`"


def test_truncated_is_one_message_with_the_reasoning_button() -> None:
    res = result(SolveStatus.TRUNCATED, reasoning="Let me think" * 100)
    [message] = compose(res, None, attach_reasoning=False)
    assert "budget" in message.content
    assert message.buttons == ("reasoning", "again")


def test_too_long_offers_no_solve_again() -> None:
    [message] = compose(failed(FailureCode.QUESTION_TOO_LONG), None, attach_reasoning=False)
    assert message.buttons == ()


def test_a_simulated_answer_says_so() -> None:
    res = result(SolveStatus.SOLVED, solution="S", answer="1", simulated=True)
    assert compose(res, None, attach_reasoning=False)[-1].content.endswith(SIMULATED_NOTE)


def test_thread_name_is_short_and_plain() -> None:
    assert thread_name("**Solve** `x^2 = 4`") == "Solve x^2 = 4"
    long = thread_name("word " * 50)
    assert len(long) <= 100
    assert long.endswith("…")
    assert thread_name("```\n```") == "Question"


def test_nonce_is_stable_and_short() -> None:
    assert message_nonce("job", 1) == message_nonce("job", 1)
    assert message_nonce("job", 1) != message_nonce("job", 2)
    assert len(message_nonce("x" * 64, 9)) <= 25


def test_status_header_quotes_the_question() -> None:
    header = status_header("line1\nline2", 42, public=True)
    assert header == "**<@42> asked:**\n> line1\n> line2"
    assert len(quote("y" * 1000)) <= 302


@pytest.mark.parametrize(
    ("exists", "status", "expected"),
    [
        (False, None, NEVER_QUEUED),
        (True, JobStatus.FAILED, WORKER_LOST),
        (True, JobStatus.STOPPED, WORKER_LOST),
        (True, JobStatus.CANCELED, WORKER_LOST),
        (True, JobStatus.QUEUED, None),
        (True, JobStatus.STARTED, None),
        (True, JobStatus.SCHEDULED, None),
        (True, JobStatus.FINISHED, None),
    ],
)
def test_a_promise_is_lost_only_when_no_result_can_come(
    exists: bool, status: JobStatus | None, expected: str | None
) -> None:
    assert lost_reason(exists, status) == expected


def consensus_result(votes: int, answers: list[tuple[str, int]], **fields: object) -> SolveResult:
    consensus = {
        "samples": 8,
        "votes": votes,
        "answers": [{"answer": a, "votes": v} for a, v in answers],
        **fields,
    }
    status = SolveStatus.SOLVED if votes else SolveStatus.NO_ANSWER
    return result(
        status,
        answer=answers[0][0] if votes else None,
        solution="Work.",
        consensus=consensus,
        timings=Timings(total_s=62.0),
    )


def test_a_consensus_answer_says_how_many_samples_agree() -> None:
    res = consensus_result(6, [("\\frac{1}{2}", 6), ("2", 1)], no_answer=1)
    [message] = compose(res, None, attach_reasoning=False)
    assert message.content.startswith("🗳️ **6 of 8 samples agree** on this answer.\n")
    assert "-# Other answers: `2` (1); 1 sample without a final answer." in message.content
    assert "disagree" not in message.content
    assert final_status(res, thread=True) == (
        "✅ Solved after 1:02 — 6 of 8 samples agree; the solution is in the thread."
    )


def test_low_agreement_is_flagged_in_the_reply_and_the_status() -> None:
    res = consensus_result(3, [("7", 3), ("3", 2), ("1", 1), ("9", 1)], failed=1)
    [message] = compose(res, None, attach_reasoning=False)
    assert "**3 of 8 samples agree**" in message.content
    assert "⚠️ The samples disagree — treat this answer with care." in message.content
    assert "Other answers: `3` (2), `1` (1), `9` (1); 1 sample failed." in message.content
    assert final_status(res, thread=True).startswith(
        "⚠️ Solved after 1:02, but only 3 of 8 samples agree"
    )


def test_a_tie_is_shown_as_a_tie() -> None:
    res = consensus_result(4, [("7", 4), ("3", 4)], tied=True)
    [message] = compose(res, None, attach_reasoning=False)
    assert "⚖️ The samples are split: `7` (4), `3` (4) of 8." in message.content
    assert "Other answers" not in message.content
    assert final_status(res, thread=False).startswith("⚖️ Solved after 1:02, but the samples")


def test_no_sample_with_a_final_answer_says_so() -> None:
    res = consensus_result(0, [], no_answer=5, failed=3)
    [message] = compose(res, None, attach_reasoning=False)
    assert "didn't give a final boxed answer" in message.content
    assert "None of the 8 samples gave a final answer." in message.content
    assert "5 samples without a final answer; 3 samples failed." in message.content


def test_a_single_answer_flags_a_missing_or_truncated_final_answer_only() -> None:
    solved = compose(
        result(SolveStatus.SOLVED, solution="x", answer="2"), None, attach_reasoning=False
    )
    assert "⚠️" not in solved[0].content
    for status, words in (
        (SolveStatus.NO_ANSWER, "didn't give a final boxed answer"),
        (SolveStatus.TRUNCATED, "no final answer"),
    ):
        [message] = compose(result(status, solution="x"), None, attach_reasoning=False)
        assert words in message.content


def test_study_mode_hides_every_step_and_the_answer_last() -> None:
    document = Document(
        blocks=[
            TextBlock(markdown="First, add the numbers."),
            ImageBlock(file="f1.png", alt="1+1", width=10, height=10),
            TextBlock(markdown="So the sum is 2."),
            AnswerBlock(latex="2", text="2", file="answer.png"),
        ]
    )
    res = result(SolveStatus.SOLVED, solution="x", answer="2", rendering=Rendering.DONE)
    messages = compose(res, document, attach_reasoning=False, study=True)
    text = "\n".join(m.content for m in messages)
    assert messages[0].content.startswith("📖 **Study mode:**")
    assert "||First, add the numbers.||" in text
    assert "||So the sum is 2.||" in text
    assert messages[-1].content.endswith("**Final answer:** ||2||")
    assert [f for m in messages for f in m.files] == ["SPOILER_f1.png", "SPOILER_answer.png"]
    plain = compose(res, document, attach_reasoning=False)
    assert "||" not in "\n".join(m.content for m in plain)


def test_study_mode_hides_the_answers_a_consensus_names() -> None:
    res = consensus_result(5, [("7", 5), ("3", 3)])
    [message] = compose(res, None, attach_reasoning=False, study=True)
    assert "Other answers: ||`3`|| (3)." in message.content
    assert "**Final answer:** ||`7`||" in message.content
