"""RQ job `worker.render.vote.vote_on_samples`: the end of a consensus job (cons@k).

The end of a consensus job's last sample puts this job on the render queue (see
`fathom.consensus`). It reads every sample's result, groups their final answers into equivalence
classes (`worker.equivalence`: math-verify both ways, on a warm pool kept by this long-lived
render worker), votes, and ends the consensus job with the written solution of a sample in the
winning class, drawn like any solution, and the vote beside it (`SolveResult.consensus`).

Honest outcomes: a tie is reported as one (the class that appeared first is shown), samples
without a final answer and failed samples are counted apart, and when no sample has a final
answer the job ends without one (with the work of a sample that wrote some), or failed, with the
samples' most common failure, when none finished at all.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

import redis
from rq import get_current_job
from rq.job import Job

from fathom.consensus import claim_end, load_record
from fathom.contract import (
    AnswerVotes,
    Consensus,
    ConsensusRecord,
    Failure,
    FailureCode,
    Rendering,
    SolveResult,
    SolveStatus,
    Timings,
)
from fathom.events import end_job, load_result
from fathom.settings import get_settings
from worker.equivalence import AnswerChecker, group_answers, vote
from worker.render.job import draw_and_end

log = logging.getLogger(__name__)

GROUPING_SHARE = 0.25
"""Share of the vote job's time limit that comparing answers may take; past it, the rest are
grouped by their text only (and the result says so)."""
VOTE_LOST = "The samples were solved, but comparing their answers failed; please ask again."
NONE_FINISHED = "None of the {samples} samples could be solved: {reason}"

_checker: AnswerChecker | None = None
_checker_lock = threading.Lock()


def answer_checker() -> AnswerChecker:
    """The render worker's warm checker, made on first use and closed when the process ends."""
    global _checker
    if _checker is None:
        _checker = AnswerChecker()
        atexit.register(_checker.close)
    return _checker


def sample_answer(result: SolveResult | None) -> str | None:
    """A sample's final answer, or None when it has none to vote with."""
    if result is None or result.status is not SolveStatus.SOLVED:
        return None
    answer = (result.answer or "").strip()
    return answer or None


def decide(
    record: ConsensusRecord,
    results: Sequence[SolveResult | None],
    groups: Sequence[Sequence[int]],
    *,
    compared_by_text_only: bool = False,
) -> SolveResult:
    """The consensus job's outcome from its samples' results (None: lost) and the equivalence
    classes of their answers. Pure."""
    samples = record.samples
    tally = vote(groups, samples)
    statuses = [r.status if r is not None else SolveStatus.FAILED for r in results]
    no_answer = sum(
        1
        for index, status in enumerate(statuses)
        if status in (SolveStatus.NO_ANSWER, SolveStatus.TRUNCATED)
        or (status is SolveStatus.SOLVED and sample_answer(results[index]) is None)
    )
    failed = sum(1 for s in statuses if s in (SolveStatus.FAILED, SolveStatus.CANCELLED))
    ordered = sorted(groups, key=len, reverse=True)  # stable: first to appear first among equals
    chosen: int | None = None
    if tally.winners:
        chosen = next(i for i in tally.winners[0] if results[i] is not None)
    else:
        chosen = next(
            (
                i
                for i, r in enumerate(results)
                if r is not None
                and r.status in (SolveStatus.NO_ANSWER, SolveStatus.TRUNCATED, SolveStatus.SOLVED)
                and r.solution.strip()
            ),
            None,
        )
    summary = Consensus(
        samples=samples,
        votes=tally.votes,
        no_answer=no_answer,
        failed=failed,
        tied=tally.tied,
        answers=[
            AnswerVotes(answer=sample_answer(results[g[0]]) or "", votes=len(g)) for g in ordered
        ],
        chosen_sample=chosen,
        compared_by_text_only=compared_by_text_only,
    )
    request = record.request
    found = [r for r in results if r is not None]
    base = SolveResult(
        job_id=record.job_id,
        status=SolveStatus.FAILED,
        question=request.question,
        origin=request.origin,
        enqueued_at=request.enqueued_at,
        completion_tokens=sum(r.completion_tokens or 0 for r in found) or None,
        model_id=next((r.model_id for r in found if r.model_id), None),
        simulated=any(r.simulated for r in found),
        attempts=max((r.attempts for r in found), default=1),
        consensus=summary,
    )
    if chosen is None:
        return base.model_copy(update={"failure": _common_failure(found, samples)})
    pick = results[chosen]
    assert pick is not None
    status = pick.status if tally.winners else _without_answer(results)
    queued = [r.timings.queued_s for r in found if r.timings.queued_s is not None]
    return base.model_copy(
        update={
            "status": status,
            "answer": pick.answer if tally.winners else None,
            "solution": pick.solution,
            "reasoning": pick.reasoning,
            "finish_reason": pick.finish_reason,
            "prompt_tokens": pick.prompt_tokens,
            "budget_tokens": pick.budget_tokens,
            "seed": pick.seed,
            "timings": Timings(
                queued_s=min(queued) if queued else None,
                prepare_s=pick.timings.prepare_s,
                ttft_s=pick.timings.ttft_s,
                generation_s=pick.timings.generation_s,
            ),
        }
    )


def _without_answer(results: Sequence[SolveResult | None]) -> SolveStatus:
    """TRUNCATED when every sample that wrote something was cut at the budget."""
    wrote = [r.status for r in results if r is not None and r.solution.strip()]
    if wrote and all(s is SolveStatus.TRUNCATED for s in wrote):
        return SolveStatus.TRUNCATED
    return SolveStatus.NO_ANSWER


def _common_failure(found: Sequence[SolveResult], samples: int) -> Failure:
    failures = [r.failure for r in found if r.failure is not None]
    if not failures:
        return Failure(
            code=FailureCode.INTERNAL,
            message=NONE_FINISHED.format(samples=samples, reason="their results were lost."),
        )
    code, _ = Counter(f.code for f in failures).most_common(1)[0]
    first = next(f for f in failures if f.code is code)
    return Failure(code=code, message=NONE_FINISHED.format(samples=samples, reason=first.message))


def vote_on_samples(job_id: str) -> None:
    job = get_current_job()
    settings = get_settings()
    conn = job.connection if job is not None else redis.Redis.from_url(settings.redis_url)
    record = load_record(conn, job_id)
    if record is None:
        log.error("vote %s: no consensus record (expired?)", job_id)
        return
    if not claim_end(conn, job_id, "vote"):  # cancelled
        return
    stored = load_result(conn, job_id)
    if stored is not None and stored.final:  # a retry of a vote that ended it already
        return
    results = [load_result(conn, sample) for sample in record.sample_ids]
    answers = [sample_answer(r) for r in results]
    limit = job.timeout if job is not None and job.timeout else record.vote_timeout_s
    deadline = time.monotonic() + max(1.0, GROUPING_SHARE * float(limit))
    with _checker_lock:
        groups = group_answers(answers, answer_checker(), deadline=deadline)
    late = time.monotonic() >= deadline
    if late:
        log.warning("vote %s: comparing ran out of time; grouped by text", job_id)
    outcome = decide(record, results, groups, compared_by_text_only=late)
    log.info(
        "vote %s: %d of %d samples agree%s",
        job_id,
        outcome.consensus.votes if outcome.consensus else 0,
        record.samples,
        " (tied)" if outcome.consensus and outcome.consensus.tied else "",
    )
    drawable = outcome.status in (SolveStatus.SOLVED, SolveStatus.NO_ANSWER, SolveStatus.TRUNCATED)
    if record.request.render and drawable and outcome.solution.strip():
        draw_and_end(conn, outcome.model_copy(update={"rendering": Rendering.PENDING}))
        return
    end_job(conn, outcome, ttl_s=record.result_ttl_s)


def on_vote_failure(
    job: Job,
    connection: redis.Redis,
    exc_type: type[BaseException] | None,
    exc_value: BaseException | None,
    traceback: TracebackType | None,
) -> None:
    """RQ failure callback: the vote died without ending the consensus job (its render worker
    crashed or RQ's time limit fired). On its last try, end the job as failed."""
    if job.retries_left:
        return
    job_id = str(job.args[0])
    stored = load_result(connection, job_id)
    if stored is not None and stored.final:
        return
    record = load_record(connection, job_id)
    if record is None:
        return
    request = record.request
    log.warning("vote %s: died (%s); ending the job", job_id, exc_type)
    lost = SolveResult(
        job_id=job_id,
        status=SolveStatus.FAILED,
        question=request.question,
        origin=request.origin,
        enqueued_at=request.enqueued_at,
        failure=Failure(code=FailureCode.INTERNAL, message=VOTE_LOST),
    )
    end_job(connection, lost, ttl_s=record.result_ttl_s)
