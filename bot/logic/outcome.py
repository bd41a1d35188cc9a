"""Honest, specific wording for how a job ended."""

from __future__ import annotations

import re

from rq.job import JobStatus

from bot.i18n import ENGLISH, N_, Texts
from bot.logic.pack import code_span
from bot.logic.progress import format_duration
from fathom.contract import Consensus, FailureCode, Rendering, SolveResult, SolveStatus

NOT_DRAWN = N_("The solution was found but drawing its formulas failed; here it is as plain text.")

FAILURE_TEXT: dict[FailureCode, str] = {
    FailureCode.MODEL_UNREACHABLE: N_(
        "The model server can't be reached right now (it is down or not started). Nothing "
        "was solved; please try again later."
    ),
    FailureCode.MODEL_LOADING: N_(
        "The model is still loading on its server. Nothing was solved; please try again in a "
        "few minutes."
    ),
    FailureCode.OVERLOADED: N_(
        "The model server stayed overloaded through every retry, so your question wasn't "
        "solved. Please try again in a little while."
    ),
    FailureCode.QUESTION_TOO_LONG: N_("Your question is too long for the model to work it out."),
    FailureCode.INVALID_REQUEST: N_("The model server refused this question as invalid."),
    FailureCode.STALLED: N_(
        "The model stopped sending text partway through, so the job was stopped."
    ),
    FailureCode.TIMED_OUT: N_("The solution took longer than the time limit and was stopped."),
    FailureCode.MODEL_ERROR: N_("The model server reported an error while solving."),
    FailureCode.CANCELLED: N_("Cancelled — nothing more will be sent for this question."),
    FailureCode.INTERNAL: N_("Something went wrong on our side while solving this question."),
}

DETAILED_CODES = frozenset(
    {FailureCode.QUESTION_TOO_LONG, FailureCode.INVALID_REQUEST, FailureCode.MODEL_ERROR}
)
"""Failures where the worker's own sentence adds something the asker can act on."""

_CANCELLED_BY = re.compile(r"^Cancelled by (a moderator|an operator) \((.*)\)\.$", re.DOTALL)
"""What `fathom.queue.cancel_job` stores when someone other than the asker cancels."""


def outcome_text(result: SolveResult, t: Texts = ENGLISH) -> str:
    """One or two sentences saying how the job ended (shown above, or instead of, the
    solution)."""
    status = result.status
    if status is SolveStatus.SOLVED:
        if result.rendering is Rendering.FAILED:
            return f"⚠️ {t.gettext(NOT_DRAWN)}"
        return t.gettext("✅ Solved.")
    if status is SolveStatus.NO_ANSWER:
        return t.gettext(
            "⚠️ The model finished but didn't give a final boxed answer — read the work below "
            "with care."
        )
    if status is SolveStatus.TRUNCATED:
        if result.budget_tokens:
            return t.gettext(
                "✂️ The model used its whole {budget}-token budget before finishing, so there is "
                "no final answer. The partial reasoning can still be opened."
            ).format(budget=t.number(result.budget_tokens))
        return t.gettext(
            "✂️ The model used its whole token budget before finishing, so there is no final "
            "answer. The partial reasoning can still be opened."
        )
    if status is SolveStatus.CANCELLED:
        by = result.failure.message if result.failure else ""
        who = _CANCELLED_BY.match(by)
        if who is not None:  # someone other than the asker
            if who[1] == "an operator":
                text = t.gettext("Cancelled by an operator ({name}).")
            else:
                text = t.gettext("Cancelled by a moderator ({name}).")
            more = t.gettext("Nothing more will be sent for this question.")
            return f"🚫 {text.format(name=who[2])} {more}"
        return f"🚫 {t.gettext(FAILURE_TEXT[FailureCode.CANCELLED])}"
    failure = result.failure
    if failure is None:
        return f"⚠️ {t.gettext(FAILURE_TEXT[FailureCode.INTERNAL])}"
    known = FAILURE_TEXT.get(failure.code)
    text = f"⚠️ {t.gettext(known) if known else failure.message}"
    if failure.code in DETAILED_CODES and failure.message.strip():
        text += f"\n-# {failure.message.strip()[:300]}"
    return text


AGREED_AFTER = N_(
    "Solved after {after} — {votes} of {samples} samples agree; the solution is {where}."
)
LISTED_ANSWERS = 5
"""Other answers named under a consensus answer (the rest are counted)."""
LOW_AGREEMENT = N_("⚠️ The samples disagree — treat this answer with care.")


def consensus_text(consensus: Consensus, *, hide_answers: bool = False, t: Texts = ENGLISH) -> str:
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
        lines.append(
            t.gettext("🗳️ None of the {samples} samples gave a final answer.").format(
                samples=samples
            )
        )
    elif consensus.tied:
        split = ", ".join(f"{shown(a.answer)} ({a.votes})" for a in tied)
        lines.append(
            t.gettext(
                "⚖️ The samples are split: {split} of {samples}. The solution shown is the first "
                "answer to appear."
            ).format(split=split, samples=samples)
        )
    else:
        lines.append(
            t.gettext("🗳️ **{votes} of {samples} samples agree** on this answer.").format(
                votes=consensus.votes, samples=samples
            )
        )
    if consensus.votes and consensus.low_agreement:
        lines.append(t.gettext(LOW_AGREEMENT))
    details: list[str] = []
    others = consensus.answers[len(tied) if consensus.tied else 1 :] if consensus.votes else []
    if others:
        named = ", ".join(f"{shown(a.answer)} ({a.votes})" for a in others[:LISTED_ANSWERS])
        more = len(others) - LISTED_ANSWERS
        if more > 0:
            details.append(
                t.gettext("Other answers: {named} and {more} more").format(named=named, more=more)
            )
        else:
            details.append(t.gettext("Other answers: {named}").format(named=named))
    if consensus.no_answer:
        details.append(
            t.ngettext(
                "{count} sample without a final answer",
                "{count} samples without a final answer",
                consensus.no_answer,
            ).format(count=consensus.no_answer)
        )
    if consensus.failed:
        details.append(
            t.ngettext("{count} sample failed", "{count} samples failed", consensus.failed).format(
                count=consensus.failed
            )
        )
    if details:
        text = "; ".join(details)
        lines.append(f"-# {text[0].upper()}{text[1:]}.")
    if consensus.compared_by_text_only:
        lines.append(
            "-# "
            + t.gettext("Time ran out while comparing: some answers were compared by text only.")
        )
    return "\n".join(lines)


def has_reasoning(result: SolveResult) -> bool:
    return bool(result.reasoning.strip())


def has_solution(result: SolveResult) -> bool:
    """Whether there is written work to deliver (also without a final answer)."""
    return result.status in (SolveStatus.SOLVED, SolveStatus.NO_ANSWER)


def final_status(result: SolveResult, *, thread: bool, t: Texts = ENGLISH) -> str:
    """The last text of a job's status message; `thread`: the outcome went into the thread
    (else below the status message)."""
    took = result.timings.total_s
    after = format_duration(took) if took is not None else None
    status = result.status
    consensus = result.consensus
    where = t.gettext("in the thread") if thread else t.gettext("below")

    def timed(icon: str, with_time: str, without: str, **values: object) -> str:
        if after is not None:
            return f"{icon} " + t.gettext(with_time).format(after=after, where=where, **values)
        return f"{icon} " + t.gettext(without).format(where=where, **values)

    if status is SolveStatus.SOLVED and consensus is not None and consensus.votes:
        votes = {"votes": consensus.votes, "samples": consensus.samples}
        if consensus.tied:
            return timed(
                "⚖️",
                N_("Solved after {after}, but the samples are split — the answers are {where}."),
                N_("Solved, but the samples are split — the answers are {where}."),
            )
        if consensus.low_agreement:
            return timed(
                "⚠️",
                N_(
                    "Solved after {after}, but only {votes} of {samples} samples agree — the "
                    "solution is {where}."
                ),
                N_(
                    "Solved, but only {votes} of {samples} samples agree — the solution is {where}."
                ),
                **votes,
            )
        return timed(
            "✅",
            AGREED_AFTER,
            N_("Solved — {votes} of {samples} samples agree; the solution is {where}."),
            **votes,
        )
    if status is SolveStatus.SOLVED and result.rendering is Rendering.FAILED:
        return timed(
            "⚠️",
            N_("Solved after {after}, but the formulas couldn't be drawn — plain text {where}."),
            N_("Solved, but the formulas couldn't be drawn — plain text {where}."),
        )
    if status is SolveStatus.SOLVED:
        return timed(
            "✅",
            N_("Solved after {after} — the solution is {where}."),
            N_("Solved — the solution is {where}."),
        )
    if status is SolveStatus.NO_ANSWER:
        return timed(
            "⚠️",
            N_("Finished after {after} without a final boxed answer — the work is {where}."),
            N_("Finished without a final boxed answer — the work is {where}."),
        )
    if status is SolveStatus.TRUNCATED:
        return timed(
            "✂️",
            N_(
                "Stopped at the token budget after {after}, without a final answer — details "
                "{where}."
            ),
            N_("Stopped at the token budget, without a final answer — details {where}."),
        )
    if status is SolveStatus.CANCELLED:
        return "🚫 " + t.gettext("Cancelled.")
    return "⚠️ " + t.gettext("Not solved — the reason is {where}.").format(where=where)


NEVER_QUEUED = "The question was lost before a worker took it; please ask again."
WORKER_LOST = "The worker solving this question stopped without an answer; please ask again."
"""Stored in the job's result (read by operators, in English); the asker reads
FAILURE_TEXT[INTERNAL] in their language."""


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
