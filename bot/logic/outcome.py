"""Honest, specific wording for how a job ended."""

from __future__ import annotations

from rq.job import JobStatus

from bot.logic.pack import code_span
from bot.logic.progress import format_duration
from fathom.contract import Consensus, FailureCode, Rendering, SolveResult, SolveStatus

NOT_DRAWN = "The solution was found but drawing its formulas failed; here it is as plain text."

FAILURE_TEXT: dict[FailureCode, str] = {
    FailureCode.MODEL_UNREACHABLE: (
        "The model server isn't reachable right now (it may still be starting up). "
        "Nothing was solved; please try again in a few minutes."
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


LISTED_ANSWERS = 5
"""Other answers named under a consensus answer (the rest are counted)."""
LOW_AGREEMENT = "⚠️ The samples disagree — treat this answer with care."


def _samples(count: int) -> str:
    return f"{count} sample" if count == 1 else f"{count} samples"


def consensus_text(consensus: Consensus, *, hide_answers: bool = False) -> str:
    """How the samples of a consensus job voted, for the top of its reply: the agreement, a
    tie, low agreement flagged, the other answers, samples without an answer or failed.
    `hide_answers` (study mode) puts the answers named here behind spoilers."""

    def shown(answer: str) -> str:
        span = code_span(answer) if answer else "—"
        return f"||{span}||" if hide_answers else span

    lines: list[str] = []
    samples = consensus.samples
    tied = [a for a in consensus.answers if consensus.votes and a.votes == consensus.votes]
    if not consensus.votes:
        lines.append(f"🗳️ None of the {samples} samples gave a final answer.")
    elif consensus.tied:
        split = ", ".join(f"{shown(a.answer)} ({a.votes})" for a in tied)
        lines.append(
            f"⚖️ The samples are split: {split} of {samples}. The solution shown is the first "
            "answer to appear."
        )
    else:
        lines.append(f"🗳️ **{consensus.votes} of {samples} samples agree** on this answer.")
    if consensus.votes and consensus.low_agreement:
        lines.append(LOW_AGREEMENT)
    details: list[str] = []
    others = consensus.answers[len(tied) if consensus.tied else 1 :] if consensus.votes else []
    if others:
        named = ", ".join(f"{shown(a.answer)} ({a.votes})" for a in others[:LISTED_ANSWERS])
        more = len(others) - LISTED_ANSWERS
        details.append(f"other answers: {named}" + (f" and {more} more" if more > 0 else ""))
    if consensus.no_answer:
        details.append(f"{_samples(consensus.no_answer)} without a final answer")
    if consensus.failed:
        details.append(f"{_samples(consensus.failed)} failed")
    if details:
        text = "; ".join(details)
        lines.append(f"-# {text[0].upper()}{text[1:]}.")
    if consensus.compared_by_text_only:
        lines.append("-# Time ran out while comparing: some answers were compared by text only.")
    return "\n".join(lines)


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
    consensus = result.consensus
    if status is SolveStatus.SOLVED and consensus is not None and consensus.votes:
        agree = f"{consensus.votes} of {consensus.samples} samples agree"
        if consensus.tied:
            return f"⚖️ Solved{after}, but the samples are split — the answers are {where}."
        if consensus.low_agreement:
            return f"⚠️ Solved{after}, but only {agree} — the solution is {where}."
        return f"✅ Solved{after} — {agree}; the solution is {where}."
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
