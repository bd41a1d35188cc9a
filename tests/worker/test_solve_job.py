"""The solve job end to end: fathom.queue → Redis → an RQ worker → huggingface_hub → the TGI
simulator, and every failure the model server can throw at it."""

from __future__ import annotations

import threading

import httpx2
import redis
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, UnknownError
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from fathom import keys
from fathom.contract import (
    RENDER_JOB_FUNC,
    SOLVE_JOB_FUNC,
    FailureCode,
    Phase,
    Rendering,
    SolveRequest,
    SolveStatus,
    Turn,
)
from fathom.events import job_events, load_result
from fathom.queue import CancelOutcome, cancel_job, enqueue_solve
from fathom.settings import Settings, get_settings
from simulator import SIMULATOR_MODEL_ID
from simulator.server import SimulatorServer
from tests.conftest import free_port
from tests.worker.conftest import Configure, solve_now, work_burst
from worker.errors import JobFailed, RetryLater, Trouble, Unreachable, classify, gave_up

QUESTION = "What is the sum of the first 100 positive integers?"


def test_solves_through_the_queue_and_reports_progress(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.completion_tokens = 400
    request = SolveRequest(question=QUESTION, render=False, seed=7)
    job_id = enqueue_solve(redis_conn, request, settings)
    work_burst(redis_conn, settings)

    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.answer
    assert result.answer in result.solution
    assert result.reasoning
    assert "</think>" not in result.reasoning
    assert result.finish_reason == "stop"
    assert result.simulated
    assert result.model_id == SIMULATOR_MODEL_ID
    assert result.seed == 7
    assert result.prompt_tokens
    assert result.completion_tokens
    # max_tokens = the server's context minus the prompt, counted by its /chat_tokenize.
    assert result.budget_tokens == fake_tgi.config.max_total_tokens - result.prompt_tokens
    timings = result.timings
    assert timings.queued_s is not None
    assert timings.prepare_s is not None
    assert timings.ttft_s is not None
    assert timings.generation_s is not None
    assert timings.total_s
    assert timings.tokens_per_s
    # RQ's own return value (JSON) is the stored result.
    job = Queue(settings.solve_queue, connection=redis_conn, serializer=JSONSerializer).fetch_job(
        job_id
    )
    assert job is not None
    assert job.return_value() == result.model_dump(mode="json")

    phases = [event.phase for event in job_events(redis_conn, job_id)]
    assert phases[0] is Phase.QUEUED
    assert phases[-1] is Phase.DONE
    assert phases.index(Phase.THINKING) < phases.index(Phase.WRITING)
    assert phases.count(Phase.DONE) == 1
    last_progress = [e for e in job_events(redis_conn, job_id) if e.phase is Phase.WRITING][-1]
    assert 0 < last_progress.tokens <= (result.completion_tokens or 0)
    assert last_progress.budget_tokens == result.budget_tokens


def test_follow_up_sends_history_as_turns(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    first = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    follow_up = SolveRequest(
        question="And of the first 200?",
        history=[Turn(question=QUESTION, solution=first.solution)],
        render=False,
    )
    second = solve_now(redis_conn, settings, follow_up)
    assert second.status is SolveStatus.SOLVED
    # The earlier solution went into the prompt (the reasoning did not).
    assert second.prompt_tokens
    assert first.prompt_tokens
    assert second.prompt_tokens > first.prompt_tokens + len(first.solution) // 8
    assert second.prompt_tokens < first.prompt_tokens + len(first.solution + first.reasoning) // 3


def test_length_finish_is_truncated_not_an_answer(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.max_total_tokens = 700
    fake_tgi.config.max_input_tokens = 600
    fake_tgi.config.completion_tokens = 3000
    settings = configure(MODEL_URL=fake_tgi.url)
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.TRUNCATED
    assert result.finish_reason == "length"
    assert result.answer is None
    assert result.completion_tokens == result.budget_tokens


def test_unreachable_server_fails_after_bounded_retries(
    redis_conn: redis.Redis, configure: Configure
) -> None:
    settings = configure(MODEL_URL=f"http://127.0.0.1:{free_port()}")
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), settings)
    work_burst(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.MODEL_UNREACHABLE
    assert "could not be reached (3 tries over" in result.failure.message
    assert "nothing accepts the connection" in result.failure.message
    history = job_events(redis_conn, job_id)
    assert history[-1].phase is Phase.FAILED
    assert history[-1].note == result.failure.message
    assert sum("connection refused" in (e.note or "") for e in history) == 2


def test_a_host_name_that_does_not_resolve_is_told_apart(
    redis_conn: redis.Redis, configure: Configure
) -> None:
    settings = configure(MODEL_URL="http://model-server.invalid:80", CONNECT_ATTEMPTS=2)
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.failure is not None
    assert result.failure.code is FailureCode.MODEL_UNREACHABLE
    assert "host name does not resolve" in result.failure.message


def test_a_server_loading_its_model_is_told_apart_from_one_that_is_down() -> None:
    request = httpx2.Request("POST", "http://tgi/v1/chat/completions")
    loading = classify(
        HfHubHTTPError("x", response=httpx2.Response(503, text="Loading model", request=request)),
        get_settings(),
    )
    refused = classify(httpx2.ConnectError("refused", request=request), get_settings())
    assert isinstance(loading, RetryLater)
    assert isinstance(refused, RetryLater)
    assert (loading.cause, refused.cause) == (Unreachable.LOADING, Unreachable.REFUSED)
    assert gave_up(Trouble.CONNECT, 8, "http://tgi", 95.0, loading.cause).code is (
        FailureCode.MODEL_LOADING
    )
    down = gave_up(Trouble.CONNECT, 8, "http://tgi", 95.0, refused.cause)
    assert down.code is FailureCode.MODEL_UNREACHABLE
    assert "could not be reached (8 tries over 95 s)" in down.message


def test_worker_without_a_model_url_fails_at_once(
    redis_conn: redis.Redis, configure: Configure
) -> None:
    settings = configure()
    assert settings.model_url is None
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.MODEL_UNREACHABLE
    assert "FATHOM_MODEL_URL" in result.failure.message


def test_server_still_loading_is_waited_for(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    settings = configure(
        MODEL_URL=fake_tgi.url,
        CONNECT_ATTEMPTS=20,
        CONNECT_BACKOFF_S=0.1,
        CONNECT_BACKOFF_MAX_S=0.2,
    )
    fake_tgi.set_loading(True)
    threading.Timer(0.6, fake_tgi.set_loading, args=(False,)).start()
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.SOLVED
    assert result.attempts > 1


def test_overload_is_retried_without_failing_the_job(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.overloaded = True
    fake_tgi.config.fault_requests = 2
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), settings)
    work_burst(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.attempts == 3
    assert fake_tgi.stats.overloaded == 2
    notes = [e.note for e in job_events(redis_conn, job_id) if e.note]
    assert notes.count("model server busy, retrying") == 2


def test_overload_that_never_ends_fails_as_overloaded(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.overloaded = True
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.OVERLOADED
    assert fake_tgi.stats.overloaded == 4


def test_question_too_long_fails_at_once_with_a_reason(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.max_total_tokens = 1000
    fake_tgi.config.max_input_tokens = 999
    settings = configure(MODEL_URL=fake_tgi.url)
    question = "Prove that the following holds. " + "Let x be a real number. " * 120
    result = solve_now(redis_conn, settings, SolveRequest(question=question, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.QUESTION_TOO_LONG
    assert "Shorten" in result.failure.message
    assert "1000 tokens" in result.failure.message
    assert result.attempts == 1
    assert fake_tgi.stats.requests == 0  # never sent to generation


def test_server_side_validation_error_fails_at_once(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    # The first attempt's stream is cut; before the retry the server restarts with a smaller
    # input limit while the job still trusts the /info it read: the server's own (in-stream)
    # validation error must fail the job, not be retried.
    fake_tgi.config.drop_after_tokens = 5
    fake_tgi.config.fault_requests = 1

    def shrink_after_the_drop() -> None:
        if fake_tgi.wait_until(lambda stats: stats.dropped == 1):
            fake_tgi.config.max_input_tokens = 10

    shrinker = threading.Thread(target=shrink_after_the_drop)
    shrinker.start()
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    shrinker.join()
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.QUESTION_TOO_LONG
    assert result.attempts == 2
    assert fake_tgi.stats.validation_errors == 1


def test_generation_error_fails_without_retry(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.fail_after_tokens = 5
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.MODEL_ERROR
    assert fake_tgi.stats.requests == 1


def test_dropped_stream_is_retried(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.drop_after_tokens = 5
    fake_tgi.config.fault_requests = 1
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.SOLVED
    assert result.attempts == 2
    assert fake_tgi.stats.dropped == 1


def test_stall_fails_as_stalled_even_with_keepalives(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    # Keep-alive comments keep coming (as TGI sends them), so only the job's own stall clock
    # can notice that no text arrives.
    fake_tgi.config.keepalive_s = 0.1
    fake_tgi.config.stall_after_tokens = 10
    fake_tgi.config.stall_s = 10.0
    settings = configure(MODEL_URL=fake_tgi.url, READ_TIMEOUT_S=0.6)
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.STALLED
    assert result.completion_tokens == 10
    assert result.reasoning  # what came before the stall is kept
    assert fake_tgi.wait_until(lambda stats: stats.active_requests == 0)
    assert fake_tgi.stats.disconnects == 1


def test_job_over_its_time_limit_stops_cleanly(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 50
    fake_tgi.config.completion_tokens = 2000
    job_id = "slow-job"
    request = SolveRequest(question=QUESTION, render=False)
    # RQ's hard limit is 3 s; the job stops itself a little before, and stores why.
    Queue(settings.solve_queue, connection=redis_conn, serializer=JSONSerializer).enqueue_call(
        SOLVE_JOB_FUNC, args=(request.model_dump(mode="json"),), job_id=job_id, timeout=3
    )
    work_burst(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.TIMED_OUT
    assert 0 < (result.completion_tokens or 0) < 2000
    assert fake_tgi.wait_until(lambda stats: stats.active_requests == 0)
    assert job_events(redis_conn, job_id)[-1].phase is Phase.FAILED


def test_cancel_closes_the_stream_and_frees_the_slot(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 100
    fake_tgi.config.completion_tokens = 5000
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), settings)
    outcomes: list[CancelOutcome] = []

    def cancel_once_streaming() -> None:
        assert fake_tgi.wait_until(lambda stats: stats.generated_tokens >= 10, timeout=10)
        outcomes.append(cancel_job(redis_conn, job_id, settings))

    canceller = threading.Thread(target=cancel_once_streaming)
    canceller.start()
    work_burst(redis_conn, settings)
    canceller.join()

    assert outcomes == [CancelOutcome.STOPPING]
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.CANCELLED
    assert result.failure is not None
    assert result.failure.code is FailureCode.CANCELLED
    assert fake_tgi.wait_until(lambda stats: stats.active_requests == 0)
    assert fake_tgi.stats.disconnects == 1
    assert job_events(redis_conn, job_id)[-1].phase is Phase.CANCELLED


def test_cancel_of_a_queued_job_takes_it_off_the_queue(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), settings)
    assert cancel_job(redis_conn, job_id, settings) is CancelOutcome.CANCELLED
    work_burst(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.CANCELLED
    assert fake_tgi.stats.requests == 0
    assert redis_conn.exists(keys.cancel_key(job_id))
    assert cancel_job(redis_conn, "no-such-job", settings) is CancelOutcome.UNKNOWN


def test_unreadable_payload_is_stored_as_invalid(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    Queue(settings.solve_queue, connection=redis_conn, serializer=JSONSerializer).enqueue_call(
        SOLVE_JOB_FUNC, args=({"question": "", "history": "nope"},), job_id="bad-job"
    )
    work_burst(redis_conn, settings)
    result = load_result(redis_conn, "bad-job")
    assert result is not None
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.INVALID_REQUEST
    assert fake_tgi.stats.requests == 0


def test_render_request_hands_over_to_the_render_queue(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=True), settings)
    work_burst(redis_conn, settings)
    assert job_events(redis_conn, job_id)[-1].phase is Phase.RENDERING
    stored = load_result(redis_conn, job_id)
    assert stored is not None
    assert stored.rendering is Rendering.PENDING
    assert not stored.final
    render_queue = Queue(settings.render_queue, connection=redis_conn, serializer=JSONSerializer)
    [render_job] = render_queue.get_jobs()
    assert render_job.func_name == RENDER_JOB_FUNC
    assert render_job.args == [job_id]


def test_rendering_job_takes_the_solution_to_done(
    redis_conn: redis.Redis, settings: Settings, fake_tgi: SimulatorServer
) -> None:
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=True), settings)
    work_burst(redis_conn, settings)
    render_queue = Queue(settings.render_queue, connection=redis_conn, serializer=JSONSerializer)
    SimpleWorker([render_queue], connection=redis_conn, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING"
    )
    phases = [event.phase for event in job_events(redis_conn, job_id)]
    assert phases[-2:] == [Phase.RENDERING, Phase.DONE]
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.rendering is Rendering.DONE
    assert redis_conn.exists(keys.document_key(job_id))


def _http_error(status: int, body: str) -> HfHubHTTPError:
    request = httpx2.Request("POST", "http://tgi/v1/chat/completions")
    return HfHubHTTPError("error", response=httpx2.Response(status, text=body, request=request))


def test_classify_retries_only_transient_errors(settings: Settings) -> None:
    def kind(exc: Exception) -> str:
        verdict = classify(exc, settings)
        return verdict.kind if isinstance(verdict, RetryLater) else verdict.code.value

    request = httpx2.Request("GET", "http://tgi/info")
    assert kind(httpx2.ConnectError("refused", request=request)) == "connect"
    assert kind(_http_error(429, '{"error":"Model is overloaded"}')) == "overloaded"
    assert kind(_http_error(503, "loading")) == "connect"
    assert kind(_http_error(401, "no")) == "model_error"
    assert (
        kind(_http_error(422, "Input validation error: `inputs` must have less than 10 tokens"))
        == "question_too_long"
    )
    assert kind(_http_error(422, "Template error: bad role")) == "invalid_request"
    in_stream = {
        "message": "Input validation error: `inputs` tokens + `max_new_tokens` must be "
        "<= 16384. Given: 16000 `inputs` tokens and 1000 `max_new_tokens`",
        "http_status_code": 422,
    }
    # The client raises TGI's in-stream error object as is (a dict, not a str).
    assert kind(UnknownError(in_stream)) == "question_too_long"  # type: ignore[arg-type]
    overloaded = {"message": "Model is overloaded", "http_status_code": 422}
    assert kind(UnknownError(overloaded)) == (  # type: ignore[arg-type]
        "overloaded"
    )
    assert kind(InferenceTimeoutError("read timed out")) == "stalled"
    assert isinstance(classify(UnknownError("CUDA error"), settings), JobFailed)
