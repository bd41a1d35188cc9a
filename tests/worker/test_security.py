"""Security properties of the queue and the model connection (docs/security.md): nothing on the
queue is pickled, and the model server's API key is sent, needed, and never written down."""

from __future__ import annotations

import json
import logging
import pickle
import zlib

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from fathom.contract import SolveRequest, SolveStatus
from fathom.events import load_result
from fathom.queue import enqueue_solve
from fathom.settings import Settings
from simulator.server import SimulatorServer
from tests.worker.conftest import Configure, solve_now

API_KEY = "sk-test-3f7c1d9e0b2a4c6e8f1a3b5d7e9f0a2c"


def work_everything(conn: redis.Redis, settings: Settings) -> None:
    """Solve and draw until both queues are empty."""
    queues = [
        Queue(name, connection=conn, serializer=JSONSerializer)
        for name in (settings.solve_queue, settings.render_queue)
    ]
    SimpleWorker(queues, connection=conn, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING"
    )


def pickled(value: bytes) -> bool:
    """A pickle (protocol 2+ starts with PROTO, 0x80), as stored or zlib-compressed (as RQ
    stores job data)."""
    if value.startswith(b"\x80"):
        return True
    try:
        return zlib.decompress(value).startswith(b"\x80")
    except zlib.error:
        return False


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def every_value(conn: redis.Redis) -> list[tuple[str, bytes]]:
    """Every value stored, under its key (and field or stream entry)."""
    found: list[tuple[str, bytes]] = []
    for raw_key in conn.scan_iter(count=1000):
        key = _bytes(raw_key).decode()
        kind = _bytes(conn.type(raw_key)).decode()
        values: list[tuple[str, object]] = []
        if kind == "string":
            values = [(key, conn.get(raw_key))]
        elif kind == "hash":
            values = [(f"{key} {_bytes(f).decode()}", v) for f, v in conn.hgetall(raw_key).items()]
        elif kind == "list":
            values = [(key, member) for member in conn.lrange(raw_key, 0, -1)]
        elif kind == "set":
            values = [(key, member) for member in conn.smembers(raw_key)]
        elif kind == "zset":
            values = [(key, member) for member in conn.zrange(raw_key, 0, -1)]
        elif kind == "stream":
            for entry_id, fields in conn.xrange(raw_key) or []:
                where = f"{key} {_bytes(entry_id).decode()}"
                values += [(f"{where} {_bytes(f).decode()}", v) for f, v in (fields or {}).items()]
        found += [(where, _bytes(value)) for where, value in values]
    return found


def test_nothing_on_the_queue_is_pickled(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    settings = configure(MODEL_URL=fake_tgi.url, JOB_RETRIES=0)
    # The first request fails mid-stream (its job fails), the second is solved and drawn.
    fake_tgi.config.fail_after_tokens = 5
    fake_tgi.config.fault_requests = 1
    failing = enqueue_solve(redis_conn, SolveRequest(question="What is 4+5?"), settings)
    solved = enqueue_solve(redis_conn, SolveRequest(question="What is 2+3?"), settings)
    work_everything(redis_conn, settings)
    outcomes = {job: load_result(redis_conn, job) for job in (solved, failing)}
    statuses = {job: result.status for job, result in outcomes.items() if result is not None}
    assert statuses[solved] is SolveStatus.SOLVED
    assert statuses[failing] is SolveStatus.FAILED

    values = every_value(redis_conn)
    assert len(values) > 20
    assert [where for where, value in values if pickled(value)] == []
    # And the jobs RQ stored are JSON (RQ compresses the serialized arguments).
    for job_id in (solved, failing):
        data = redis_conn.hget(f"rq:job:{job_id}", "data")
        assert isinstance(data, bytes)
        assert json.loads(zlib.decompress(data))


def test_the_helper_recognises_a_pickle() -> None:
    payload = pickle.dumps({"a": 1})
    assert pickled(payload)
    assert pickled(zlib.compress(payload))
    assert not pickled(json.dumps({"a": 1}).encode())


def test_the_model_api_key_is_sent_and_never_logged(
    redis_conn: redis.Redis,
    configure: Configure,
    fake_tgi: SimulatorServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_tgi.config.api_key = API_KEY
    settings = configure(MODEL_URL=fake_tgi.url, MODEL_API_KEY=API_KEY)
    with caplog.at_level(logging.DEBUG):
        result = solve_now(
            redis_conn, settings, SolveRequest(question="What is 6+7?", render=False)
        )
    assert result.status is SolveStatus.SOLVED
    assert API_KEY not in caplog.text
    assert all(API_KEY.encode() not in value for _, value in every_value(redis_conn))


def test_a_wrong_api_key_is_a_clear_failure(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.api_key = API_KEY
    settings = configure(MODEL_URL=fake_tgi.url, MODEL_API_KEY="sk-wrong", JOB_RETRIES=0)
    result = solve_now(redis_conn, settings, SolveRequest(question="What is 8+9?", render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert "credentials" in result.failure.message
    assert "FATHOM_MODEL_API_KEY" in result.failure.message
    assert "sk-wrong" not in result.model_dump_json()
