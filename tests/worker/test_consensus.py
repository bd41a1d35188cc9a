"""Consensus jobs (cons@k): the vote on synthetic sample sets, and the whole path through the
queue — k samples on real RQ workers against the TGI simulator (which answers differently per
seed), their ends counted, the vote on the render queue, cancel and lost samples."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.consensus import ended_samples, load_record, sample_id
from fathom.contract import (
    ConsensusRecord,
    Failure,
    FailureCode,
    Phase,
    Rendering,
    SolveRequest,
    SolveResult,
    SolveStatus,
)
from fathom.events import decode_entries, job_events, load_result
from fathom.queue import CancelOutcome, cancel_job, enqueue_consensus, fetch_job, settle_consensus
from fathom.settings import Settings
from simulator.server import SimulatorServer
from tests.worker.conftest import work_burst
from worker.equivalence import AnswerChecker, group_answers
from worker.render.vote import decide, sample_answer

QUESTION = "What is the sum of the first 100 positive integers?"


# --- the vote, on synthetic samples -----------------------------------------------------------


def record(samples: int) -> ConsensusRecord:
    return ConsensusRecord(
        job_id="c",
        request=SolveRequest(question="q"),
        samples=samples,
        sample_ids=[sample_id("c", i) for i in range(samples)],
        vote_queue="render",
        vote_timeout_s=60,
        result_ttl_s=60,
    )


def solved(index: int, answer: str) -> SolveResult:
    return SolveResult(
        job_id=sample_id("c", index),
        status=SolveStatus.SOLVED,
        question="q",
        answer=answer,
        solution=f"Work of sample {index}: $\\boxed{{{answer}}}$",
        reasoning=f"reasoning {index}",
        seed=100 + index,
        completion_tokens=10,
    )


def ended(index: int, status: SolveStatus, *, solution: str = "") -> SolveResult:
    failure = None
    if status in (SolveStatus.FAILED, SolveStatus.CANCELLED):
        code = (
            FailureCode.MODEL_UNREACHABLE if status is SolveStatus.FAILED else FailureCode.CANCELLED
        )
        failure = Failure(code=code, message=f"sample {index} did not finish")
    return SolveResult(
        job_id=sample_id("c", index),
        status=status,
        question="q",
        solution=solution,
        failure=failure,
        completion_tokens=5,
    )


@pytest.fixture(scope="module")
def checker() -> Iterator[AnswerChecker]:
    with AnswerChecker() as shared:
        yield shared


def voted(results: list[SolveResult | None], checker: AnswerChecker) -> SolveResult:
    groups = group_answers([sample_answer(r) for r in results], checker)
    return decide(record(len(results)), results, groups)


def test_the_equivalent_majority_wins_with_a_sample_of_it_shown(checker: AnswerChecker) -> None:
    results: list[SolveResult | None] = [
        solved(0, "6"),
        solved(1, r"\frac{1}{2}"),
        solved(2, "0.5"),
        ended(3, SolveStatus.NO_ANSWER, solution="I could not finish."),
        solved(4, "1/2"),
        ended(5, SolveStatus.FAILED),
        solved(6, r"\dfrac{1}{2}"),
        solved(7, "6"),
    ]
    outcome = voted(results, checker)
    consensus = outcome.consensus
    assert consensus is not None
    assert (outcome.status, outcome.answer, outcome.seed) == (
        SolveStatus.SOLVED,
        r"\frac{1}{2}",
        101,
    )
    assert outcome.solution.startswith("Work of sample 1")
    assert (consensus.samples, consensus.votes, consensus.no_answer, consensus.failed) == (
        8,
        4,
        1,
        1,
    )
    assert not consensus.tied
    assert not consensus.low_agreement  # 4 of 8: half agree
    assert [(a.answer, a.votes) for a in consensus.answers] == [(r"\frac{1}{2}", 4), ("6", 2)]
    assert consensus.chosen_sample == 1
    assert outcome.completion_tokens == 6 * 10 + 2 * 5


def test_a_tie_is_reported_and_the_first_class_shown(checker: AnswerChecker) -> None:
    results: list[SolveResult | None] = [
        solved(0, "7"),
        solved(1, "x = 3"),
        solved(2, "3"),
        solved(3, "7"),
    ]
    outcome = voted(results, checker)
    assert outcome.consensus is not None
    assert outcome.consensus.tied
    assert outcome.answer == "7"
    assert outcome.consensus.votes == 2


def test_low_agreement_below_half(checker: AnswerChecker) -> None:
    results: list[SolveResult | None] = [
        solved(0, "1"),
        solved(1, "2"),
        solved(2, "2"),
        solved(3, "3"),
        solved(4, "4"),
        ended(5, SolveStatus.TRUNCATED),
    ]
    outcome = voted(results, checker)
    assert outcome.consensus is not None
    assert outcome.answer == "2"
    assert outcome.consensus.votes == 2
    assert outcome.consensus.low_agreement


def test_when_every_sample_failed_the_job_fails_with_their_reason(checker: AnswerChecker) -> None:
    results: list[SolveResult | None] = [ended(i, SolveStatus.FAILED) for i in range(3)] + [None]
    outcome = voted(results, checker)
    assert outcome.status is SolveStatus.FAILED
    assert outcome.failure is not None
    assert outcome.failure.code is FailureCode.MODEL_UNREACHABLE
    assert outcome.failure.message.startswith("None of the 4 samples could be solved")
    assert outcome.consensus is not None
    assert (outcome.consensus.votes, outcome.consensus.failed) == (0, 4)


def test_no_final_answer_anywhere_shows_the_work_without_an_answer(checker: AnswerChecker) -> None:
    results: list[SolveResult | None] = [
        ended(0, SolveStatus.FAILED),
        ended(1, SolveStatus.TRUNCATED, solution="Partial work."),
        ended(2, SolveStatus.TRUNCATED),
    ]
    outcome = voted(results, checker)
    assert outcome.status is SolveStatus.TRUNCATED
    assert outcome.answer is None
    assert outcome.solution == "Partial work."
    assert outcome.consensus is not None
    assert (outcome.consensus.no_answer, outcome.consensus.failed) == (2, 1)


# --- through the queue ------------------------------------------------------------------------


def run_render_queue(conn: redis.Redis, settings: Settings) -> None:
    queue = Queue(settings.render_queue, connection=conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING"
    )


def global_job_ids(conn: redis.Redis) -> set[str]:
    entries = decode_entries(conn.xrange(keys.EVENTS_STREAM))
    return {entry.event.job_id for entry in entries if entry.event is not None}


def test_k_samples_are_solved_grouped_voted_and_drawn_as_one_job(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.wrong_answer_rate = 0.0
    fake_tgi.config.rewritten_answer_rate = 0.5
    request = SolveRequest(question=QUESTION, seed=11)
    job_id = enqueue_consensus(redis_conn, request, 6, settings)
    ids = [sample_id(job_id, i) for i in range(6)]
    assert Queue(settings.solve_queue, connection=redis_conn).job_ids == ids
    work_burst(redis_conn, settings)
    assert len(ended_samples(redis_conn, job_id)) == 6
    assert fetch_job(redis_conn, job_id) is not None  # the vote, on the render queue
    run_render_queue(redis_conn, settings)

    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.rendering is Rendering.DONE
    assert result.answer in ("5050", "5{,}050")
    consensus = result.consensus
    assert consensus is not None
    assert (consensus.samples, consensus.votes, consensus.failed) == (6, 6, 0)
    seeds = {load_result(redis_conn, i).seed for i in ids}  # type: ignore[union-attr]
    assert seeds == set(range(11, 17))
    spelled = {load_result(redis_conn, i).answer for i in ids}  # type: ignore[union-attr]
    assert spelled == {"5050", "5{,}050"}  # written two ways, one class
    assert redis_conn.exists(keys.document_key(job_id))
    # The asker follows one job: its own progress shows the samples done.
    events = job_events(redis_conn, job_id)
    assert events[0].phase is Phase.QUEUED
    assert events[0].samples == 6
    assert any(e.phase is Phase.THINKING and e.samples_done for e in events)
    assert events[-1].phase is Phase.DONE
    assert global_job_ids(redis_conn) == {job_id}  # the samples are not announced


def test_a_failing_sample_does_not_sink_the_rest(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.wrong_answer_rate = 0.0
    fake_tgi.config.fail_after_tokens = 3
    fake_tgi.config.fault_requests = 2
    job_id = enqueue_consensus(
        redis_conn, SolveRequest(question=QUESTION, render=False), 5, settings
    )
    work_burst(redis_conn, settings)
    run_render_queue(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.consensus is not None
    assert (result.consensus.votes, result.consensus.failed) == (3, 2)


def test_cancel_while_queued_ends_the_job_and_every_sample_at_once(
    redis_conn: redis.Redis, settings: Settings
) -> None:
    job_id = enqueue_consensus(redis_conn, SolveRequest(question=QUESTION), 4, settings)
    assert (
        cancel_job(redis_conn, job_id, settings, by="a moderator (Ada)") is CancelOutcome.CANCELLED
    )
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.CANCELLED
    assert result.failure is not None
    assert result.failure.message == "Cancelled by a moderator (Ada)."
    assert Queue(settings.solve_queue, connection=redis_conn).count == 0
    assert len(ended_samples(redis_conn, job_id)) == 4
    # The vote the last sample's end enqueued finds the job ended and leaves it be.
    run_render_queue(redis_conn, settings)
    assert load_result(redis_conn, job_id) == result
    assert cancel_job(redis_conn, job_id, settings) is CancelOutcome.FINISHED


def test_lost_samples_are_settled_so_the_vote_runs(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    job_id = enqueue_consensus(
        redis_conn, SolveRequest(question=QUESTION, render=False), 3, settings
    )
    lost = fetch_job(redis_conn, sample_id(job_id, 2))
    assert lost is not None
    lost.delete()  # as if its worker vanished with it and RQ forgot it
    work_burst(redis_conn, settings)
    assert len(ended_samples(redis_conn, job_id)) == 2
    assert settle_consensus(redis_conn, job_id, settings)
    run_render_queue(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.consensus is not None
    assert result.consensus.failed == 1
    assert not settle_consensus(redis_conn, "never-enqueued", settings)


def test_the_record_is_stored_before_the_samples(
    redis_conn: redis.Redis, settings: Settings
) -> None:
    job_id = enqueue_consensus(redis_conn, SolveRequest(question=QUESTION, seed=5), 2, settings)
    stored = load_record(redis_conn, job_id)
    assert stored is not None
    assert stored.sample_ids == [sample_id(job_id, 0), sample_id(job_id, 1)]
    assert stored.vote_queue == settings.render_queue


def test_moderators_see_clear_and_retry_a_consensus_as_one_question(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    from fathom import admin
    from fathom.contract import Origin

    origin = Origin(source="discord", user_id=7, guild_id=42)
    request = SolveRequest(question=QUESTION, render=False, origin=origin)
    job_id = enqueue_consensus(redis_conn, request, 3, settings)
    [ticket] = admin.guild_tickets(redis_conn, 42)
    assert (ticket.job_id, ticket.samples) == (job_id, 3)
    status = admin.status(redis_conn, settings, 42)
    assert [(view.job_id, view.position) for view in status.queued] == [(job_id, 1)]
    assert admin.queued_jobs(redis_conn, 42, settings) == [job_id]
    actor = admin.Actor(kind="shell", name="root")
    outcomes = admin.clear_guild(redis_conn, 42, settings, actor)
    assert outcomes == {job_id: CancelOutcome.CANCELLED}
    assert Queue(settings.solve_queue, connection=redis_conn).count == 0
    assert admin.guild_tickets(redis_conn, 42) == []

    again = admin.retry_job(redis_conn, job_id, settings, actor, guild_id=42)
    assert load_record(redis_conn, again) is not None
    work_burst(redis_conn, settings)
    run_render_queue(redis_conn, settings)
    result = load_result(redis_conn, again)
    assert result is not None
    assert result.consensus is not None
    assert result.consensus.samples == 3
