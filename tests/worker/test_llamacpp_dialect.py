"""The solve job against a llama.cpp server, fast: the simulator speaking llama.cpp's dialect
(the same paths run against the real llama-server in tests/engine)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import redis
from huggingface_hub import AsyncInferenceClient

from fathom.admin import model_views
from fathom.contract import FailureCode, SolveRequest, SolveStatus
from fathom.events import job_events, load_result
from fathom.queue import enqueue_solve, solve_workers
from simulator import SIMULATOR_MODEL_ID
from simulator.server import SimulatorServer
from tests.worker.conftest import Configure, solve_now, wait_for, work_burst, worker_pool
from worker.attempt import WAITING_FOR_SLOT
from worker.errors import NOTES, Unreachable

QUESTION = "What is the sum of the first 100 positive integers?"


def test_solves_with_the_slot_context_and_an_exact_prompt_count(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    settings = configure(MODEL_URL=fake_llamacpp.url)
    fake_llamacpp.config.completion_tokens = 400
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.SOLVED
    assert result.answer == "5050"
    assert result.finish_reason == "stop"
    assert result.simulated
    assert result.model_id == SIMULATOR_MODEL_ID
    # The server's default would send the reasoning apart; the worker asks for the plain text.
    assert result.reasoning.startswith("(Note: this text comes from the Fathom TGI simulator")
    assert "<think>" not in result.reasoning
    assert "\\boxed{5050}" in result.solution
    # max_tokens = the slot's context (/props) minus the prompt counted with /apply-template
    # and /tokenize, which is exactly what the server reports as used.
    assert result.prompt_tokens
    assert result.budget_tokens == 16384 - result.prompt_tokens


def test_waits_for_a_busy_slot_without_calling_it_a_stall(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    # llama.cpp sends nothing, not even headers, while every slot is busy. The job waits longer
    # than its stall limit for the slot, says so, and solves once the slot is free.
    settings = configure(MODEL_URL=fake_llamacpp.url, READ_TIMEOUT_S=0.5)
    fake_llamacpp.config.max_batch_size = 1
    fake_llamacpp.config.stall_after_tokens = 2
    fake_llamacpp.config.stall_s = 60.0
    fake_llamacpp.config.fault_requests = 1
    holding = threading.Event()
    release = threading.Event()

    async def hog() -> None:
        async with AsyncInferenceClient(base_url=fake_llamacpp.url) as client:
            stream = await client.chat_completion(
                [{"role": "user", "content": "hold the slot"}], stream=True
            )
            async for _chunk in stream:
                holding.set()
                await asyncio.to_thread(release.wait, 30)
                return

    hogger = threading.Thread(target=asyncio.run, args=(hog(),))
    hogger.start()
    assert holding.wait(10)
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), settings)

    def release_once_waiting() -> None:
        wait_for(
            lambda: any(e.note == WAITING_FOR_SLOT for e in job_events(redis_conn, job_id)),
            20,
            "the job to say it waits for a slot",
        )
        release.set()

    releaser = threading.Thread(target=release_once_waiting)
    releaser.start()
    try:
        work_burst(redis_conn, settings)
    finally:
        release.set()
        releaser.join()
        hogger.join()
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.attempts == 1
    assert fake_llamacpp.stats.overloaded == 0


def test_loading_server_is_waited_for(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    # llama.cpp listens while it loads and answers 503 everywhere (TGI refuses connections).
    settings = configure(
        MODEL_URL=fake_llamacpp.url,
        CONNECT_ATTEMPTS=20,
        CONNECT_BACKOFF_S=0.1,
        CONNECT_BACKOFF_MAX_S=0.2,
    )
    fake_llamacpp.set_loading(True)
    threading.Timer(0.6, fake_llamacpp.set_loading, args=(False,)).start()
    job_id = enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), settings)
    work_burst(redis_conn, settings)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.attempts > 1
    # The limits were read once the model was loaded, not the configured fallback.
    assert result.budget_tokens == 16384 - (result.prompt_tokens or 0)
    notes = {e.note for e in job_events(redis_conn, job_id)}
    assert NOTES[Unreachable.LOADING] in notes


def test_question_too_long_for_a_slot_fails_before_generating(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    fake_llamacpp.config.max_total_tokens = 1000
    settings = configure(MODEL_URL=fake_llamacpp.url)
    question = "Prove that the following holds. " + "Let x be a real number. " * 120
    result = solve_now(redis_conn, settings, SolveRequest(question=question, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.QUESTION_TOO_LONG
    assert "of the 1000 tokens" in result.failure.message
    assert fake_llamacpp.stats.requests == 0


def test_context_overflow_answered_by_the_server_fails_at_once(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    # The first attempt's stream is cut; the server comes back with smaller slots while the
    # job still trusts the limits it read: llama.cpp's immediate 400 must fail the job.
    settings = configure(MODEL_URL=fake_llamacpp.url)
    fake_llamacpp.config.drop_after_tokens = 5
    fake_llamacpp.config.fault_requests = 1

    def shrink_after_the_drop() -> None:
        if fake_llamacpp.wait_until(lambda stats: stats.dropped == 1):
            fake_llamacpp.config.max_total_tokens = 20

    shrinker = threading.Thread(target=shrink_after_the_drop)
    shrinker.start()
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    shrinker.join()
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.QUESTION_TOO_LONG
    assert f"about {result.prompt_tokens} of the 20 tokens" in result.failure.message
    assert result.attempts == 2


def test_answer_filling_the_slot_is_truncated(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    fake_llamacpp.config.max_total_tokens = 800
    fake_llamacpp.config.completion_tokens = 3000
    settings = configure(MODEL_URL=fake_llamacpp.url)
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.TRUNCATED
    assert result.finish_reason == "length"
    assert result.answer is None
    assert result.solution == ""
    assert result.completion_tokens == result.budget_tokens
    assert (result.prompt_tokens or 0) + (result.completion_tokens or 0) == 800


def test_error_after_the_stream_began_fails_without_retry(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer
) -> None:
    fake_llamacpp.config.fail_after_tokens = 5
    settings = configure(MODEL_URL=fake_llamacpp.url)
    result = solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False))
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code is FailureCode.MODEL_ERROR
    assert "simulated fault" in result.failure.message
    assert fake_llamacpp.stats.requests == 1


def test_pool_says_which_limits_it_uses_and_watches_the_slots(
    redis_conn: redis.Redis, configure: Configure, fake_llamacpp: SimulatorServer, tmp_path: Path
) -> None:
    settings = configure(MODEL_URL=fake_llamacpp.url)
    fake_llamacpp.config.max_batch_size = 1
    with worker_pool(tmp_path, "-n", "2", "--render-workers", "0"):
        wait_for(lambda: solve_workers(redis_conn, settings) == 2, 20, "the pool")
        wait_for(lambda: model_views(redis_conn), 20, "the model server's state")
        [view] = model_views(redis_conn)
    log = (tmp_path / "pool.log").read_text()
    assert (
        f"model server {fake_llamacpp.url}: llama.cpp /props: 16384-token context per slot, "
        f"1 slot, model {SIMULATOR_MODEL_ID}"
    ) in log
    assert "2 solve workers but 1 slots" in log
    assert view.engine == "llama.cpp"
    assert view.model_id == SIMULATOR_MODEL_ID
    assert view.healthy
    assert view.queue_size == 0
    assert view.batch_size == 0


def test_pool_on_tgi_says_so_too(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    settings = configure(MODEL_URL=fake_tgi.url)
    with worker_pool(tmp_path, "-n", "1", "--render-workers", "0"):
        wait_for(lambda: solve_workers(redis_conn, settings) == 1, 20, "the pool")
    log = (tmp_path / "pool.log").read_text()
    assert (
        f"model server {fake_tgi.url}: TGI /info: 16384-token context per sequence, prompts "
        f"up to 16383 tokens, model {SIMULATOR_MODEL_ID}"
    ) in log
