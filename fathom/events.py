"""Writing and reading job progress and results in Redis (the durable channel from workers to
the bot). Streams, not pub/sub: a consumer that starts later still sees what happened."""

from __future__ import annotations

import redis

from fathom import keys
from fathom.contract import ProgressEvent, SolveResult


def publish_event(conn: redis.Redis, event: ProgressEvent) -> None:
    """Append the event to the job's own stream and to the global stream the bot consumes.

    Both are bounded: the job's stream keeps its newest entries and expires with the job; the
    global stream is trimmed approximately to EVENTS_STREAM_MAXLEN.
    """
    payload = event.model_dump_json()
    stream = keys.progress_stream(event.job_id)
    pipe = conn.pipeline(transaction=False)
    pipe.xadd(stream, {"event": payload}, maxlen=keys.PROGRESS_STREAM_MAXLEN, approximate=False)
    pipe.expire(stream, keys.JOB_KEY_TTL_S)
    pipe.xadd(
        keys.EVENTS_STREAM,
        {"event": payload},
        maxlen=keys.EVENTS_STREAM_MAXLEN,
        approximate=True,
    )
    pipe.execute()


def latest_event(conn: redis.Redis, job_id: str) -> ProgressEvent | None:
    entries = conn.xrevrange(keys.progress_stream(job_id), count=1)
    if not entries:
        return None
    _entry_id, fields = entries[0]
    if not fields or b"event" not in fields:
        return None
    return ProgressEvent.model_validate_json(fields[b"event"])


def job_events(conn: redis.Redis, job_id: str) -> list[ProgressEvent]:
    """The job's retained progress events, oldest first."""
    entries = conn.xrange(keys.progress_stream(job_id)) or []
    return [
        ProgressEvent.model_validate_json(fields[b"event"])
        for _entry_id, fields in entries
        if fields and b"event" in fields
    ]


def store_result(conn: redis.Redis, result: SolveResult, ttl_s: int) -> None:
    conn.set(keys.result_key(result.job_id), result.model_dump_json(), ex=ttl_s)


def load_result(conn: redis.Redis, job_id: str) -> SolveResult | None:
    raw = conn.get(keys.result_key(job_id))
    if raw is None:
        return None
    return SolveResult.model_validate_json(raw)
