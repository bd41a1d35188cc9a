"""The worker against a real inference engine: llama.cpp's own llama-server with the tiny
Fathom-shaped model. The whole path: discovery (/props), the prompt counted by the engine, the
streamed answer with the model card's sampling and the budget as max_tokens, the parse, the
engine's own error answers and queueing, and `fathom ask` through a worker pool.

The model's weights are noise: by itself it never ends (the answer runs to max_tokens); with a
server-wide default grammar (conftest) it writes a scripted R1-shaped answer and stops on EOS."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import redis
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import BadRequestError

from fathom.admin import model_views
from fathom.contract import FailureCode, SolveRequest, SolveResult, SolveStatus
from fathom.events import job_events, load_result
from fathom.queue import enqueue_solve, solve_workers
from tests.cli.test_ask import fathom_ask
from tests.engine.conftest import ALIAS, CTX_SIZE, SOLVING_GRAMMAR, UNFINISHED_GRAMMAR, engine
from tests.worker.conftest import Configure, solve_now, wait_for, work_burst, worker_pool
from worker.attempt import WAITING_FOR_SLOT
from worker.errors import JobFailed, classify
from worker.model_server import Engine, info_from_models

QUESTION = "What is 2+2?"
SLOTS = 2


@pytest.fixture(scope="module")
def solving_url(llama_server_binary: Path, tiny_model: Path) -> Iterator[str]:
    """Two slots of CTX_SIZE, the scripted answer, /metrics, and llama.cpp's default
    reasoning format ("auto"): the worker must ask for the plain text itself."""
    with engine(
        llama_server_binary,
        tiny_model,
        "--grammar",
        SOLVING_GRAMMAR,
        "--metrics",
        ctx_size=CTX_SIZE * SLOTS,
        parallel=SLOTS,
        reasoning_format=None,
    ) as url:
        yield url


def solve(redis_conn: redis.Redis, configure: Configure, url: str, **env: object) -> SolveResult:
    settings = configure(MODEL_URL=url, **env)
    return solve_now(redis_conn, settings, SolveRequest(question=QUESTION, render=False, seed=11))


def test_solved_answer_with_the_slot_context_and_the_model_cards_sampling(
    redis_conn: redis.Redis, configure: Configure, solving_url: str
) -> None:
    result = solve(redis_conn, configure, solving_url)
    assert result.status is SolveStatus.SOLVED
    assert result.answer == "4"
    assert result.finish_reason == "stop"
    assert result.model_id == ALIAS
    assert not result.simulated
    assert result.reasoning.startswith("Adding ")
    assert result.reasoning.endswith(" gives the sum.")
    assert result.solution == "The sum is $2+2=4$, so the answer is $\\boxed{4}$."
    # max_tokens = the slot's context (/props: --ctx-size / --parallel) minus the prompt the
    # engine counted (/apply-template + /tokenize), which is what it reports as used
    assert result.prompt_tokens
    assert result.budget_tokens == CTX_SIZE - result.prompt_tokens
    # what the engine was asked for, as its /slots shows it
    slots = httpx2.get(f"{solving_url}/slots", timeout=10).json()
    used = [slot["params"] for slot in slots if "params" in slot]  # an idle slot has none
    [params] = [p for p in used if p["seed"] == result.seed]
    assert params["temperature"] == pytest.approx(0.6)
    assert params["top_p"] == pytest.approx(0.95)
    assert (params["top_k"], params["min_p"]) == (0, 0.0)  # the model card's sampling alone
    assert params["n_predict"] == result.budget_tokens
    assert params["reasoning_format"] == "none"


def test_its_models_list_alone_also_gives_the_slot_context(llama_url: str) -> None:
    # What a proxy that passes only the OpenAI routes leaves of llama.cpp's limits.
    info = info_from_models(httpx2.get(f"{llama_url}/v1/models", timeout=10).json())
    assert info is not None
    assert (info.engine, info.source) == (Engine.LLAMA_CPP, "llama.cpp /v1/models")
    assert info.context_tokens == CTX_SIZE


def test_the_api_key_goes_with_every_request(
    redis_conn: redis.Redis, configure: Configure, llama_server_binary: Path, tiny_model: Path
) -> None:
    # llama.cpp's --api-key guards every route but /health: /props and /tokenize included.
    with engine(
        llama_server_binary, tiny_model, "--grammar", SOLVING_GRAMMAR, "--api-key", "s3cret"
    ) as url:
        assert httpx2.get(f"{url}/props", timeout=10).status_code == 401
        result = solve(redis_conn, configure, url, MODEL_API_KEY="s3cret")
    assert result.status is SolveStatus.SOLVED
    assert result.model_id == ALIAS  # from /props
    assert result.prompt_tokens
    assert result.budget_tokens == CTX_SIZE - result.prompt_tokens  # counted by /tokenize


def test_an_answer_without_think_close_has_no_final_answer(
    redis_conn: redis.Redis, configure: Configure, llama_server_binary: Path, tiny_model: Path
) -> None:
    with engine(llama_server_binary, tiny_model, "--grammar", UNFINISHED_GRAMMAR) as url:
        result = solve(redis_conn, configure, url)
    assert result.status is SolveStatus.NO_ANSWER
    assert result.finish_reason == "stop"
    assert result.answer is None
    assert result.solution == ""
    assert result.reasoning.startswith("Still thinking about ")
    assert result.reasoning.endswith(" no end in sight.")


def test_an_answer_that_fills_the_slot_is_truncated(
    redis_conn: redis.Redis, configure: Configure, llama_url: str
) -> None:
    result = solve(redis_conn, configure, llama_url)
    assert result.status is SolveStatus.TRUNCATED
    assert result.finish_reason == "length"
    assert result.answer is None
    assert result.reasoning
    assert result.completion_tokens == result.budget_tokens
    assert (result.prompt_tokens or 0) + (result.completion_tokens or 0) == CTX_SIZE


def test_a_busy_slot_is_waited_for_not_taken_for_a_stall(
    redis_conn: redis.Redis, configure: Configure, llama_server_binary: Path, tiny_model: Path
) -> None:
    # One slot, held by an answer that never ends (--context-shift); llama.cpp sends the
    # queued job nothing at all, for longer than its stall limit, until the slot is free.
    holding = threading.Event()
    release = threading.Event()

    async def hog(url: str) -> None:
        async with AsyncInferenceClient(base_url=url) as client:
            stream = await client.chat_completion([{"role": "user", "content": "x"}], stream=True)
            async for _chunk in stream:
                holding.set()
                await asyncio.to_thread(release.wait, 60)
                return

    with engine(llama_server_binary, tiny_model, "--context-shift") as url:
        settings = configure(MODEL_URL=url, READ_TIMEOUT_S=0.5)
        hogger = threading.Thread(target=asyncio.run, args=(hog(url),))
        hogger.start()
        try:
            assert holding.wait(30)
            job_id = enqueue_solve(
                redis_conn, SolveRequest(question=QUESTION, render=False), settings
            )

            def release_once_waiting() -> None:
                wait_for(
                    lambda: any(e.note == WAITING_FOR_SLOT for e in job_events(redis_conn, job_id)),
                    30,
                    "the job to say it waits for a slot",
                )
                release.set()

            releaser = threading.Thread(target=release_once_waiting)
            releaser.start()
            work_burst(redis_conn, settings)
        finally:
            release.set()
            hogger.join()
        releaser.join()
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.TRUNCATED  # the noise model runs to max_tokens
    assert result.attempts == 1
    assert result.completion_tokens == result.budget_tokens


async def test_the_engines_context_overflow_fails_the_question_as_too_long(
    configure: Configure, llama_url: str
) -> None:
    async with AsyncInferenceClient(base_url=llama_url, timeout=30) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.chat_completion(
                [{"role": "user", "content": "a " * CTX_SIZE}], stream=True, max_tokens=8
            )
    verdict = classify(caught.value, configure())
    assert isinstance(verdict, JobFailed)
    assert verdict.code is FailureCode.QUESTION_TOO_LONG
    assert f"of the {CTX_SIZE} tokens the model can handle" in verdict.message


def test_fathom_ask_through_a_worker_pool(
    redis_conn: redis.Redis, configure: Configure, solving_url: str, tmp_path: Path
) -> None:
    settings = configure(MODEL_URL=solving_url)
    with worker_pool(tmp_path, "-n", str(SLOTS), "--render-workers", "0"):
        wait_for(lambda: solve_workers(redis_conn, settings) == SLOTS, 30, "the pool")
        done = fathom_ask(QUESTION, "--json")
        wait_for(lambda: model_views(redis_conn), 30, "the model server's state")
        [view] = model_views(redis_conn)
    assert done.returncode == 0, done.stderr
    result = SolveResult.model_validate_json(done.stdout)
    assert result.status is SolveStatus.SOLVED
    assert result.answer == "4"
    assert not result.simulated
    assert "SIMULAT" not in done.stderr
    assert "temporary" not in done.stderr  # the pool's workers took it
    stored = load_result(redis_conn, result.job_id)
    assert stored is not None
    assert stored.answer == "4"
    log = (tmp_path / "pool.log").read_text()
    assert (
        f"model server {solving_url}: llama.cpp /props: {CTX_SIZE}-token context per slot, "
        f"{SLOTS} slots, model {ALIAS}"
    ) in log
    assert f"{CTX_SIZE} tokens per sequence, less than the 16384" in log
    assert (view.engine, view.model_id, view.healthy) == ("llama.cpp", ALIAS, True)
    assert view.queue_size is not None  # from llama.cpp's /metrics
