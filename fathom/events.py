"""Job progress, results and documents in Redis: the durable channel from the workers to the
bot. Streams, not pub/sub: a consumer that starts later still sees what happened.

One codec reads stream entries (`decode_entries`), for every reader (the bot's asyncio client
included), and one function writes a job's end (`end_job`), for every path that ends a job.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import redis
from pydantic import ValidationError
from redis.typing import EncodableT, FieldT

from fathom import keys, metrics
from fathom.contract import (
    Document,
    Outcome,
    Phase,
    ProgressEvent,
    Rendering,
    SolveResult,
    SolveStatus,
)

EVENT_FIELD = b"event"
"""The stream entry field holding a ProgressEvent as JSON."""


@dataclass(frozen=True, slots=True)
class StreamEntry:
    entry_id: bytes
    event: ProgressEvent | None
    """None for an entry that is not a readable event (skipped by every reader)."""


def decode_event(fields: object) -> ProgressEvent | None:
    """The event in a stream entry's fields; None when they hold no readable event."""
    if not isinstance(fields, Mapping):
        return None
    raw = fields.get(EVENT_FIELD, fields.get(EVENT_FIELD.decode()))
    if not isinstance(raw, bytes | str):
        return None
    try:
        return ProgressEvent.model_validate_json(raw)
    except ValidationError:
        return None


def decode_entries(items: Sequence[tuple[object, object]] | None) -> list[StreamEntry]:
    """Entries as XRANGE / XREVRANGE (and each stream of XREADGROUP) return them, from the
    synchronous or the asyncio client."""
    return [
        StreamEntry(
            entry_id=entry_id if isinstance(entry_id, bytes) else str(entry_id).encode(),
            event=decode_event(fields),
        )
        for entry_id, fields in items or []
    ]


def publish_event(conn: redis.Redis, event: ProgressEvent, *, announce: bool = True) -> None:
    """Append the event to the job's own stream and (`announce`) to the global stream the bot
    consumes; the samples of a consensus job are not announced, their whole is.

    Both are bounded: the job's stream keeps its newest entries and expires with the job; the
    global stream is trimmed approximately to EVENTS_STREAM_MAXLEN.
    """
    fields: dict[FieldT, EncodableT] = {EVENT_FIELD: event.model_dump_json()}
    stream = keys.progress_stream(event.job_id)
    pipe = conn.pipeline(transaction=False)
    pipe.xadd(stream, fields, maxlen=keys.PROGRESS_STREAM_MAXLEN, approximate=False)
    pipe.expire(stream, keys.JOB_KEY_TTL_S)
    if announce:
        pipe.xadd(keys.EVENTS_STREAM, fields, maxlen=keys.EVENTS_STREAM_MAXLEN, approximate=True)
    pipe.execute()


def job_entries(conn: redis.Redis, job_id: str, after: bytes | None = None) -> list[StreamEntry]:
    """The job's retained progress entries, oldest first (only those after `after`)."""
    start = "-" if after is None else b"(" + after
    return decode_entries(conn.xrange(keys.progress_stream(job_id), min=start))


def job_events(conn: redis.Redis, job_id: str) -> list[ProgressEvent]:
    """The job's retained progress events, oldest first."""
    return [entry.event for entry in job_entries(conn, job_id) if entry.event is not None]


def latest_event(conn: redis.Redis, job_id: str) -> ProgressEvent | None:
    entries = decode_entries(conn.xrevrange(keys.progress_stream(job_id), count=1))
    return entries[0].event if entries else None


def store_result(conn: redis.Redis, result: SolveResult, ttl_s: int) -> None:
    conn.set(keys.result_key(result.job_id), result.model_dump_json(), ex=ttl_s)


def load_result(conn: redis.Redis, job_id: str) -> SolveResult | None:
    raw = conn.get(keys.result_key(job_id))
    return None if raw is None else SolveResult.model_validate_json(raw)


def terminal_phase(status: SolveStatus) -> Phase:
    if status is SolveStatus.CANCELLED:
        return Phase.CANCELLED
    if status is SolveStatus.FAILED:
        return Phase.FAILED
    return Phase.DONE


def end_job(
    conn: redis.Redis, result: SolveResult, *, ttl_s: int, note: str | None = None
) -> SolveResult:
    """Write the job's outcome: the result, timed to the moment it is stored, then the terminal
    event (DONE, FAILED or CANCELLED, from the status) that tells the bot to deliver it.

    Every path that ends a job ends it here: the solve job, RQ's failure and stop callbacks,
    a cancel while queued, the render job, and the bot for a job that was lost.
    """
    if not result.final:
        raise ValueError(f"job {result.job_id}: rendering is still pending")
    stored_at = time.time()
    total_s = (
        round(stored_at - result.enqueued_at, 4)
        if result.enqueued_at is not None
        else result.timings.total_s
    )
    result = result.model_copy(
        update={
            "timings": result.timings.model_copy(update={"total_s": total_s}),
            "finished_at": stored_at,
        }
    )
    store_result(conn, result, ttl_s)
    if result.sample_of is not None:
        # A sample of a consensus job: it is counted towards the vote, not delivered. (Imported
        # here: fathom.consensus publishes through this module.)
        from fathom.consensus import sample_ended

        publish_event(conn, _terminal_event(result, total_s, note), announce=False)
        sample_ended(conn, result)
        return result
    _count(conn, result)
    guild_id = result.origin.guild_id
    if guild_id is not None:
        _record_outcome(conn, guild_id, result)
    publish_event(conn, _terminal_event(result, total_s, note))
    return result


def _terminal_event(result: SolveResult, total_s: float | None, note: str | None) -> ProgressEvent:
    if note is None and result.failure is not None:
        note = result.failure.message
    return ProgressEvent(
        job_id=result.job_id,
        phase=terminal_phase(result.status),
        tokens=result.completion_tokens or 0,
        budget_tokens=result.budget_tokens,
        elapsed_s=total_s or 0.0,
        attempt=result.attempts,
        note=note,
        samples=result.consensus.samples if result.consensus else None,
        samples_done=result.consensus.samples if result.consensus else 0,
    )


def _count(conn: redis.Redis, result: SolveResult) -> None:
    """The job's end in the metrics (fathom.metrics)."""
    pipe = conn.pipeline(transaction=False)
    reason = result.failure.code.value if result.failure else "none"
    metrics.count(pipe, metrics.JOBS, outcome=result.status.value, reason=reason)
    if result.completion_tokens:
        metrics.count(pipe, metrics.TOKENS, result.completion_tokens)
    timings = result.timings
    if timings.queued_s is not None:
        metrics.observe(pipe, metrics.WAIT, timings.queued_s, metrics.TIME_BUCKETS_S)
    if timings.total_s is not None and timings.queued_s is not None and result.completion_tokens:
        solve_s = timings.total_s - timings.queued_s
        metrics.observe(pipe, metrics.SOLVE, solve_s, metrics.TIME_BUCKETS_S)
    pipe.execute()


def _record_outcome(conn: redis.Redis, guild_id: int, result: SolveResult) -> None:
    """The job leaves its server's list of unfinished jobs and joins its finished ones."""
    outcomes = keys.guild_outcomes(guild_id)
    pipe = conn.pipeline(transaction=False)
    pipe.hdel(keys.guild_jobs(guild_id), result.job_id)
    pipe.zadd(outcomes, {Outcome.of(result).model_dump_json(): result.finished_at})
    pipe.zremrangebyscore(outcomes, "-inf", result.finished_at - keys.GUILD_OUTCOMES_KEEP_S)
    pipe.zremrangebyrank(outcomes, 0, -keys.GUILD_OUTCOMES_MAX - 1)
    pipe.expire(outcomes, keys.GUILD_OUTCOMES_KEEP_S)
    pipe.execute()


def store_document(
    conn: redis.Redis, job_id: str, document: Document, files: Mapping[str, bytes]
) -> None:
    """The drawn solution and its pictures, beside the job; they expire with its progress."""
    pipe = conn.pipeline(transaction=True)
    pipe.delete(keys.files_key(job_id))
    if files:
        pictures: dict[FieldT, EncodableT] = {name: png for name, png in files.items()}
        pipe.hset(keys.files_key(job_id), mapping=pictures)
        pipe.expire(keys.files_key(job_id), keys.JOB_KEY_TTL_S)
    pipe.set(keys.document_key(job_id), document.model_dump_json(), ex=keys.JOB_KEY_TTL_S)
    pipe.execute()


def hand_over_to_rendering(conn: redis.Redis, result: SolveResult, ttl_s: int) -> None:
    """Store the solved (not yet drawn) result and announce RENDERING: the render job ends the
    job with `end_job`."""
    if result.rendering is not Rendering.PENDING:
        raise ValueError(f"job {result.job_id}: nothing to render")
    store_result(conn, result, ttl_s)
    publish_event(
        conn,
        ProgressEvent(
            job_id=result.job_id,
            phase=Phase.RENDERING,
            tokens=result.completion_tokens or 0,
            budget_tokens=result.budget_tokens,
            elapsed_s=round(time.time() - (result.enqueued_at or time.time()), 4),
            attempt=result.attempts,
        ),
    )
