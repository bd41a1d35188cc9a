from __future__ import annotations

import redis

from fathom import keys
from fathom.contract import Phase, ProgressEvent, SolveResult, SolveStatus
from fathom.events import latest_event, load_result, publish_event, store_result


def test_progress_is_durable_and_bounded(redis_conn: redis.Redis) -> None:
    for tokens in range(keys.PROGRESS_STREAM_MAXLEN + 20):
        publish_event(redis_conn, ProgressEvent(job_id="j1", phase=Phase.THINKING, tokens=tokens))
    publish_event(redis_conn, ProgressEvent(job_id="j1", phase=Phase.DONE, tokens=999))
    # A consumer that arrives after the fact still sees the outcome.
    latest = latest_event(redis_conn, "j1")
    assert latest is not None
    assert latest.phase is Phase.DONE
    assert redis_conn.xlen(keys.progress_stream("j1")) == keys.PROGRESS_STREAM_MAXLEN
    assert 0 < redis_conn.ttl(keys.progress_stream("j1")) <= keys.JOB_KEY_TTL_S
    assert redis_conn.xlen(keys.EVENTS_STREAM) == keys.PROGRESS_STREAM_MAXLEN + 21


def test_no_event_for_unknown_job(redis_conn: redis.Redis) -> None:
    assert latest_event(redis_conn, "nope") is None
    assert load_result(redis_conn, "nope") is None


def test_result_round_trip_with_ttl(redis_conn: redis.Redis) -> None:
    result = SolveResult(job_id="j2", status=SolveStatus.SOLVED, question="q", answer="2")
    store_result(redis_conn, result, ttl_s=60)
    assert load_result(redis_conn, "j2") == result
    assert 0 < redis_conn.ttl(keys.result_key("j2")) <= 60
