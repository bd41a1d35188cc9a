"""The render job on a real RQ worker and a real Redis."""

from __future__ import annotations

import json

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.contract import MessagePayload, Phase, SolveResult, SolveStatus
from fathom.events import job_events, latest_event, load_result, store_result
from fathom.settings import get_settings
from worker.render.job import MAX_SOLUTION_CHARS

RENDER_JOB = "worker.render.job.render_solution"
SOLUTION = (
    "We have $r = \\sqrt{0^2 + 3^2} = 3$.\n\n"
    "\\begin{align*}\nx &= 1 \\\\\ny &= 2\n\\end{align*}\n\n"
    "So the answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$."
)


def run_render_job(conn: redis.Redis, job_id: str) -> None:
    queue = Queue(get_settings().render_queue, connection=conn, serializer=JSONSerializer)
    queue.enqueue_call(RENDER_JOB, args=(job_id,))
    SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(burst=True)


def stored(conn: redis.Redis, result: SolveResult) -> None:
    store_result(conn, result, get_settings().result_ttl_s)


def test_render_job_stores_layout_and_files_then_publishes_done(redis_conn: redis.Redis) -> None:
    result = SolveResult(
        job_id="job-1",
        status=SolveStatus.SOLVED,
        question="q",
        answer=r"\left( 3, \frac{\pi}{2} \right)",
        solution=SOLUTION,
        reasoning="Let me think about polar coordinates.",
        completion_tokens=321,
    )
    stored(redis_conn, result)
    run_render_job(redis_conn, "job-1")

    raw_layout = redis_conn.get(keys.layout_key("job-1"))
    assert raw_layout is not None
    messages = [MessagePayload.model_validate(m) for m in json.loads(raw_layout)]
    files: dict[bytes, bytes] = redis_conn.hgetall(keys.files_key("job-1"))  # type: ignore[assignment]
    named = {name for m in messages for name in m.files}
    assert {name.decode() for name in files} == named
    assert files[b"answer.png"].startswith(b"\x89PNG")
    assert messages[0].content == "We have r = √(0² + 3²) = 3."
    assert messages[-1].files == ["answer.png"]
    for key in (keys.layout_key("job-1"), keys.files_key("job-1")):
        assert 0 < redis_conn.ttl(key) <= keys.JOB_KEY_TTL_S

    reloaded = load_result(redis_conn, "job-1")
    assert reloaded is not None
    assert reloaded.rendered
    event = latest_event(redis_conn, "job-1")
    assert event is not None
    assert event.phase is Phase.DONE
    assert event.tokens == 321
    assert event.note is None


def test_the_layout_never_carries_the_reasoning(redis_conn: redis.Redis) -> None:
    result = SolveResult(
        job_id="job-2",
        status=SolveStatus.SOLVED,
        question="q",
        answer="7",
        solution="It is $\\boxed{7}$.",
        reasoning="secret scratch work",
    )
    stored(redis_conn, result)
    run_render_job(redis_conn, "job-2")
    assert redis_conn.hexists(keys.files_key("job-2"), "reasoning.md") == 0
    assert redis_conn.hexists(keys.files_key("job-2"), "answer.png") == 1


def test_failed_rendering_still_publishes_done_unrendered(redis_conn: redis.Redis) -> None:
    result = SolveResult(
        job_id="job-3",
        status=SolveStatus.SOLVED,
        question="q",
        answer="1",
        solution="$x$ " * (MAX_SOLUTION_CHARS // 4 + 1),
    )
    stored(redis_conn, result)
    run_render_job(redis_conn, "job-3")
    event = latest_event(redis_conn, "job-3")
    assert event is not None
    assert event.phase is Phase.DONE
    assert event.note is not None
    assert "plain text" in event.note
    reloaded = load_result(redis_conn, "job-3")
    assert reloaded is not None
    assert not reloaded.rendered
    assert reloaded.solution == result.solution
    assert redis_conn.exists(keys.layout_key("job-3"), keys.files_key("job-3")) == 0


def test_missing_result_publishes_failed(redis_conn: redis.Redis) -> None:
    run_render_job(redis_conn, "job-gone")
    event = latest_event(redis_conn, "job-gone")
    assert event is not None
    assert event.phase is Phase.FAILED


def test_a_render_job_that_dies_still_ends_in_done(redis_conn: redis.Redis) -> None:
    # An unreadable stored result makes the job raise outside its own error handling, as a
    # crash would; after its one retry the failure callback must still publish DONE.
    from worker.jobs import enqueue_render
    from worker.render.job import RENDER_FAILED_NOTE

    redis_conn.set(keys.result_key("job-dies"), b"{not json")
    job = enqueue_render(redis_conn, "job-dies", get_settings())
    queue = Queue(get_settings().render_queue, connection=redis_conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True)

    assert job.get_status() == "failed"
    event = latest_event(redis_conn, "job-dies")
    assert event is not None
    assert event.phase is Phase.DONE
    assert event.note == RENDER_FAILED_NOTE
    assert [e.phase for e in job_events(redis_conn, "job-dies")] == [Phase.DONE]
