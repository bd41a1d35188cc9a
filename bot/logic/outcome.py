"""Honest, specific wording for how a job ended."""

from __future__ import annotations

from rq.job import JobStatus

from bot.logic.progress import format_duration
from fathom.contract import FailureCode, Rendering, SolveResult, SolveStatus

NOT_DRAWN = "The solution was found but drawing its formulas failed; here it is as plain text."

FAILURE_TEXT: dict[FailureCode, str] = {
    FailureCode.MODEL_UNREACHABLE: (
        "The model server can't be reached right now (it is down or not started). Nothing "
        "was solved; please try again later."
    ),
    FailureCode.MODEL_LOADING: (
        "The model is still loading on its server. Nothing was solved; please try again in a "
        "few minutes."
    ),
    FailureCode.OVERLOADED: (
        "The model server stayed overloaded through every retry, so your question wasn't "
        "solved. Please try again in a little while."
    ),
    FailureCode.QUESTION_TOO_LONG: "Your question is too long for the model to work it out.",
    FailureCode.INVALID_REQUEST: "The model server refused this question as invalid.",
    FailureCode.STALLED: "The model stopped sending text partway through, so the job was stopped.",
    FailureCode.TIMED_OUT: "The solution took longer than the time limit and was stopped.",
    FailureCode.MODEL_ERROR: "The model server reported an error while solving.",
    FailureCode.CANCELLED: "Cancelled — nothing more will be sent for this question.",
    FailureCode.INTERNAL: "Something went wrong on our side while solving this question.",
}

DETAILED_CODES = frozenset(
    {FailureCode.QUESTION_TOO_LONG, FailureCode.INVALID_REQUEST, FailureCode.MODEL_ERROR}
)
"""Failures where the worker's own sentence adds something the asker can act on."""


def outcome_text(result: SolveResult) -> str:
    """One or two sentences saying how the job ended (shown above, or instead of, the
    solution)."""
    status = result.status
    if status is SolveStatus.SOLVED:
        return f"⚠️ {NOT_DRAWN}" if result.rendering is Rendering.FAILED else "✅ Solved."
    if status is SolveStatus.NO_ANSWER:
        return (
            "⚠️ The model finished but didn't give a final boxed answer — read the work "
            "below with care."
        )
    if status is SolveStatus.TRUNCATED:
        budget = f"{result.budget_tokens:,}-token" if result.budget_tokens else "token"
        return (
            f"✂️ The model used its whole {budget} budget before finishing, so there is no "
            "final answer. The partial reasoning can still be opened."
        )
    if status is SolveStatus.CANCELLED:
        by = result.failure.message if result.failure else ""
        if by.startswith("Cancelled by "):  # someone other than the asker
            return f"🚫 {by} Nothing more will be sent for this question."
        return f"🚫 {FAILURE_TEXT[FailureCode.CANCELLED]}"
    failure = result.failure
    if failure is None:
        return f"⚠️ {FAILURE_TEXT[FailureCode.INTERNAL]}"
    text = f"⚠️ {FAILURE_TEXT.get(failure.code, failure.message)}"
    if failure.code in DETAILED_CODES and failure.message.strip():
        text += f"\n-# {failure.message.strip()[:300]}"
    return text


def has_reasoning(result: SolveResult) -> bool:
    return bool(result.reasoning.strip())


def has_solution(result: SolveResult) -> bool:
    """Whether there is written work to deliver (also without a final answer)."""
    return result.status in (SolveStatus.SOLVED, SolveStatus.NO_ANSWER)


def final_status(result: SolveResult, *, where: str) -> str:
    """The last text of a job's status message; `where` says where the outcome was sent
    (e.g. "in the thread", "below")."""
    took = result.timings.total_s
    after = f" after {format_duration(took)}" if took is not None else ""
    status = result.status
    if status is SolveStatus.SOLVED and result.rendering is Rendering.FAILED:
        return f"⚠️ Solved{after}, but the formulas couldn't be drawn — plain text {where}."
    if status is SolveStatus.SOLVED:
        return f"✅ Solved{after} — the solution is {where}."
    if status is SolveStatus.NO_ANSWER:
        return f"⚠️ Finished{after} without a final boxed answer — the work is {where}."
    if status is SolveStatus.TRUNCATED:
        return f"✂️ Stopped at the token budget{after}, without a final answer — details {where}."
    if status is SolveStatus.CANCELLED:
        return "🚫 Cancelled."
    return f"⚠️ Not solved — the reason is {where}."


NEVER_QUEUED = "The question was lost before a worker took it; please ask again."
WORKER_LOST = "The worker solving this question stopped without an answer; please ask again."


def lost_reason(job_exists: bool, status: JobStatus | None) -> str | None:
    """Why a promised job that has no stored result will never get one, or None while it
    still may: its RQ job never existed (a crash between promising and enqueueing), or RQ
    ended it without our job code storing a result (a work horse killed outright, an operator
    cancelling it with RQ's own tools)."""
    if not job_exists:
        return NEVER_QUEUED
    if status in (JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED):
        return WORKER_LOST
    return None
