"""`fathom ask` run as a newcomer and an operator run it: the installed console script in a
subprocess, against real Redis, real workers and the TGI simulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis

from fathom.contract import SolveResult, SolveStatus
from fathom.queue import fetch_job, solve_workers
from fathom.settings import Settings
from simulator.server import SimulatorServer
from tests.conftest import free_port
from tests.worker.conftest import Configure, wait_for, worker_pool

FATHOM = Path(sys.executable).with_name("fathom")
QUESTION = "What is the sum of the first 100 positive integers?"


def fathom_ask(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The environment (FATHOM_* set by the test) passes through, as in a shell."""
    return subprocess.run(
        [str(FATHOM), "ask", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(os.environ),
    )


def test_fresh_machine_gets_a_solution_from_the_simulator_and_is_told_so(
    redis_conn: redis.Redis,
) -> None:
    assert "FATHOM_MODEL_URL" not in os.environ
    done = fathom_ask(QUESTION, "--json", "--seed", "3")
    assert done.returncode == 0, done.stderr
    result = SolveResult.model_validate_json(done.stdout)
    assert result.status is SolveStatus.SOLVED
    assert result.simulated
    assert result.answer
    assert result.solution
    assert result.reasoning
    assert result.seed == 3
    assert result.finish_reason == "stop"
    assert result.prompt_tokens
    assert result.completion_tokens
    assert result.timings.total_s
    fields = json.loads(done.stdout)
    for name in ("status", "answer", "solution", "reasoning", "finish_reason", "job_id"):
        assert name in fields
    assert "SIMULATION, not the model" in done.stderr
    assert "starting a temporary worker" in done.stderr
    assert "thinking" in done.stderr  # progress went to stderr, the JSON alone to stdout
    # The private queue and its temporary worker are gone.
    assert not any(b"-ask-" in name for name in redis_conn.smembers("rq:queues"))


def test_plain_output_prints_the_solution_and_answer(redis_conn: redis.Redis) -> None:
    done = fathom_ask(QUESTION, "--reasoning")
    assert done.returncode == 0, done.stderr
    assert "--- reasoning ---" in done.stdout
    assert "--- solution ---" in done.stdout
    assert "\nAnswer: " in done.stdout
    assert "SIMULATED" in done.stderr


def test_operator_smoke_test_goes_through_the_running_pool(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    settings = configure(MODEL_URL=fake_tgi.url)
    with worker_pool(tmp_path, "-n", "1", "--render-workers", "0"):
        wait_for(lambda: solve_workers(redis_conn, settings) == 1, 20, "the pool")
        done = fathom_ask(QUESTION, "--json")
    assert done.returncode == 0, done.stderr
    assert "temporary" not in done.stderr
    assert "SIMULATION, not the model" not in done.stderr
    result = SolveResult.model_validate_json(done.stdout)
    assert result.status is SolveStatus.SOLVED
    # The URL points at a simulator, and the result says so.
    assert result.simulated
    assert "SIMULATED" in done.stderr
    job = fetch_job(redis_conn, result.job_id)
    assert job is not None
    assert job.origin == settings.solve_queue


def test_a_temporary_worker_is_started_when_none_listens(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer
) -> None:
    settings: Settings = configure(MODEL_URL=fake_tgi.url)
    done = fathom_ask(QUESTION)
    assert done.returncode == 0, done.stderr
    assert f"no worker listens on queue {settings.solve_queue!r}" in done.stderr
    assert fake_tgi.stats.completed == 1
    assert solve_workers(redis_conn, settings) == 0


def test_unreachable_model_fails_with_a_one_line_reason(
    redis_conn: redis.Redis, configure: Configure
) -> None:
    configure(MODEL_URL=f"http://127.0.0.1:{free_port()}", CONNECT_ATTEMPTS=2)
    done = fathom_ask(QUESTION, "--json")
    assert done.returncode == 1
    result = SolveResult.model_validate_json(done.stdout)
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.code.value == "model_unreachable"
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("fathom ask: failed: The model server at http://127.0.0.1:")


def test_redis_down_fails_with_a_one_line_reason(configure: Configure) -> None:
    configure(REDIS_URL="redis://127.0.0.1:1/0")
    done = fathom_ask(QUESTION)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr


def test_empty_question_is_a_usage_error(redis_conn: redis.Redis) -> None:
    done = fathom_ask("   ")
    assert done.returncode == 2
    assert "the question is empty" in done.stderr


def test_asking_as_a_pool_starts_waits_for_whichever_worker_takes_the_job(
    redis_conn: redis.Redis, configure: Configure, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    # `fathom ask` sees no worker yet and starts a temporary one; the pool's worker may take the
    # job first, and the temporary worker then leaves with the queue empty. The answer must
    # still come back, wherever it was solved.
    settings: Settings = configure(MODEL_URL=fake_tgi.url)
    fake_tgi.config.tokens_per_s = 200
    fake_tgi.config.completion_tokens = 400
    with worker_pool(tmp_path, "-n", "1", "--render-workers", "0"):
        done = fathom_ask(QUESTION, "--json")
        assert done.returncode == 0, done.stderr
        result = SolveResult.model_validate_json(done.stdout)
        assert result.status is SolveStatus.SOLVED
        wait_for(lambda: solve_workers(redis_conn, settings) == 1, 20, "the pool's worker")
    assert fake_tgi.stats.completed == 1


def test_samples_give_one_answer_with_the_vote(redis_conn: redis.Redis) -> None:
    done = fathom_ask(QUESTION, "--json", "--samples", "3", "--seed", "5", timeout=120)
    assert done.returncode == 0, done.stderr
    result = SolveResult.model_validate_json(done.stdout)
    assert result.status is SolveStatus.SOLVED
    assert result.consensus is not None
    assert result.consensus.samples == 3
    assert result.consensus.votes == result.consensus.answers[0].votes
    assert sum(votes.votes for votes in result.consensus.answers) <= 3
    assert "as 3 samples" in done.stderr
    assert "3/3 samples done" in done.stderr
    # The private queues (solve and render) are gone.
    assert not any(b"-ask-" in name for name in redis_conn.smembers("rq:queues"))


def test_more_samples_than_configured_is_bad_input(redis_conn: redis.Redis) -> None:
    done = fathom_ask(QUESTION, "--samples", "99")
    assert done.returncode == 2
    assert "--samples must be between 1 and 8" in done.stderr
