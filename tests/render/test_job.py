"""The render job on a real RQ worker and a real Redis."""

from __future__ import annotations

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.contract import (
    RENDER_JOB_FUNC,
    AnswerBlock,
    Document,
    ImageBlock,
    Phase,
    Rendering,
    SolveResult,
    SolveStatus,
    TextBlock,
)
from fathom.events import job_events, latest_event, load_result, store_result
from fathom.queue import enqueue_render
from fathom.settings import get_settings
from worker.render.job import MAX_SOLUTION_CHARS, RESULT_LOST

SOLUTION = (
    "We have $r = \\sqrt{0^2 + 3^2} = 3$.\n\n"
    "\\begin{align*}\nx &= 1 \\\\\ny &= 2\n\\end{align*}\n\n"
    "So the answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$."
)


def run_render_job(conn: redis.Redis, job_id: str) -> None:
    queue = Queue(get_settings().render_queue, connection=conn, serializer=JSONSerializer)
    queue.enqueue_call(RENDER_JOB_FUNC, args=(job_id,))
    SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(burst=True)


def stored(conn: redis.Redis, result: SolveResult) -> None:
    """As the solve job hands a solution over: rendering pending."""
    pending = result.model_copy(update={"rendering": Rendering.PENDING})
    store_result(conn, pending, get_settings().result_ttl_s)


def test_render_job_stores_the_document_and_its_pictures_then_ends_the_job(
    redis_conn: redis.Redis,
) -> None:
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

    raw = redis_conn.get(keys.document_key("job-1"))
    assert raw is not None
    document = Document.model_validate_json(raw)
    files: dict[bytes, bytes] = redis_conn.hgetall(keys.files_key("job-1"))  # type: ignore[assignment]
    assert {name.decode() for name in files} == set(document.files)
    assert files[b"answer.png"].startswith(b"\x89PNG")
    first, *_middle, last = document.blocks
    assert first == TextBlock(markdown="We have r = √(0² + 3²) = 3.")
    assert isinstance(last, AnswerBlock)
    assert last.file == "answer.png"
    assert any(isinstance(block, ImageBlock) for block in document.blocks)
    for key in (keys.document_key("job-1"), keys.files_key("job-1")):
        assert 0 < redis_conn.ttl(key) <= keys.JOB_KEY_TTL_S

    reloaded = load_result(redis_conn, "job-1")
    assert reloaded is not None
    assert reloaded.rendering is Rendering.DONE
    event = latest_event(redis_conn, "job-1")
    assert event is not None
    assert event.phase is Phase.DONE
    assert event.tokens == 321
    assert event.note is None


def test_the_document_never_carries_the_reasoning(redis_conn: redis.Redis) -> None:
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


def test_failed_rendering_still_ends_the_job_as_plain_text(redis_conn: redis.Redis) -> None:
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
    assert reloaded.rendering is Rendering.FAILED
    assert reloaded.solution == result.solution
    assert redis_conn.exists(keys.document_key("job-3"), keys.files_key("job-3")) == 0


def test_missing_result_ends_the_job_as_failed_and_says_why(redis_conn: redis.Redis) -> None:
    run_render_job(redis_conn, "job-gone")
    event = latest_event(redis_conn, "job-gone")
    assert event is not None
    assert event.phase is Phase.FAILED
    result = load_result(redis_conn, "job-gone")
    assert result is not None
    assert result.failure is not None
    assert result.failure.message == RESULT_LOST


def test_a_job_that_already_ended_is_not_drawn_again(redis_conn: redis.Redis) -> None:
    ended = SolveResult(job_id="job-4", status=SolveStatus.SOLVED, question="q", solution="x")
    store_result(redis_conn, ended, get_settings().result_ttl_s)
    run_render_job(redis_conn, "job-4")
    assert job_events(redis_conn, "job-4") == []
    assert redis_conn.exists(keys.document_key("job-4")) == 0


def test_a_render_job_that_dies_still_ends_the_job(redis_conn: redis.Redis) -> None:
    # An unreadable stored result makes the job raise outside its own error handling, as a
    # crash would; after its one retry the failure callback must still end the job, once.
    redis_conn.set(keys.result_key("job-dies"), b"{not json")
    job = enqueue_render(redis_conn, "job-dies", get_settings())
    queue = Queue(get_settings().render_queue, connection=redis_conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True)

    assert job.get_status() == "failed"
    assert [e.phase for e in job_events(redis_conn, "job-dies")] == [Phase.FAILED]
    result = load_result(redis_conn, "job-dies")
    assert result is not None
    assert result.failure is not None
    assert result.failure.message == RESULT_LOST
