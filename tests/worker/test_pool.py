"""`fathom worker` as operators run it: a subprocess supervising forking RQ workers, against
real Redis and the simulator. Kill, stop, warm shutdown and burst behave as RQ's forking
worker really does (the work horse in its own process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from rq import Worker
from rq.serializers import JSONSerializer

from fathom.contract import FailureCode, Phase, SolveRequest, SolveStatus
from fathom.events import job_events, load_result
from fathom.queue import enqueue_solve, fetch_job, solve_workers, stop_job
from fathom.settings import Settings
from simulator.server import SimulatorServer
from tests.worker.conftest import Configure, wait_for, worker_pool

QUESTION = "What is the sum of the first 100 positive integers?"


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def process_gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


@pytest.fixture
def pool_settings(configure: Configure, fake_tgi: SimulatorServer) -> Settings:
    # Recovery tuned for a test: registry entries expire 10 s after the last heartbeat.
    return configure(
        MODEL_URL=fake_tgi.url,
        WORKER_TTL_S=10,
        MAINTENANCE_INTERVAL_S=1,
        JOB_RETRIES=2,
        PROGRESS_INTERVAL_S=0.5,
    )


def test_job_of_a_killed_worker_finishes_on_another(
    redis_conn: redis.Redis, pool_settings: Settings, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    fake_tgi.config.tokens_per_s = 150
    fake_tgi.config.completion_tokens = 300
    with worker_pool(tmp_path, "-n", "1", "--render-workers", "0"):
        wait_for(lambda: solve_workers(redis_conn, pool_settings) == 1, 20, "the worker")
        job_id = enqueue_solve(
            redis_conn, SolveRequest(question=QUESTION, render=False), pool_settings
        )
        wait_for(lambda: fake_tgi.stats.generated_tokens >= 10, 20, "generation to start")
        job = fetch_job(redis_conn, job_id)
        assert job is not None
        first_worker = job.worker_name
        [worker] = [
            w
            for w in Worker.all(connection=redis_conn, serializer=JSONSerializer)
            if w.name == first_worker
        ]
        assert worker.pid is not None
        [horse] = children(worker.pid)

        os.kill(worker.pid, signal.SIGKILL)
        # The horse runs in its own process group (RQ calls setpgrp), yet it dies with its
        # worker, and the kernel closes its stream so the server frees the slot.
        wait_for(lambda: process_gone(horse), 5, "the work horse to die with its worker")
        assert fake_tgi.wait_until(lambda stats: stats.active_requests == 0, timeout=5)

        wait_for(lambda: load_result(redis_conn, job_id) is not None, 60, "the retried job")
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    job = fetch_job(redis_conn, job_id)
    assert job is not None
    assert job.worker_name != first_worker
    notes = [event.note for event in job_events(redis_conn, job_id)]
    assert "the worker was lost; trying again" in notes


def test_stop_job_kills_the_horse_and_records_cancelled(
    redis_conn: redis.Redis, pool_settings: Settings, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    fake_tgi.config.tokens_per_s = 100
    fake_tgi.config.completion_tokens = 2000
    with worker_pool(tmp_path, "-n", "1", "--render-workers", "0"):
        wait_for(lambda: solve_workers(redis_conn, pool_settings) == 1, 20, "the worker")
        job_id = enqueue_solve(
            redis_conn, SolveRequest(question=QUESTION, render=False), pool_settings
        )
        wait_for(lambda: fake_tgi.stats.generated_tokens >= 5, 20, "generation to start")
        assert stop_job(redis_conn, job_id)
        wait_for(lambda: load_result(redis_conn, job_id) is not None, 10, "the outcome")
        assert fake_tgi.wait_until(lambda stats: stats.active_requests == 0, timeout=5)
    result = load_result(redis_conn, job_id)
    assert result is not None
    assert result.status is SolveStatus.CANCELLED
    assert result.failure is not None
    assert result.failure.code is FailureCode.CANCELLED
    assert job_events(redis_conn, job_id)[-1].phase is Phase.CANCELLED
    assert fake_tgi.stats.disconnects == 1


def test_sigterm_lets_running_jobs_finish(
    redis_conn: redis.Redis, pool_settings: Settings, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    fake_tgi.config.tokens_per_s = 300
    fake_tgi.config.completion_tokens = 300
    with worker_pool(tmp_path, "-n", "2", "--render-workers", "1") as pool:
        wait_for(lambda: solve_workers(redis_conn, pool_settings) == 2, 20, "the workers")
        job_ids = [
            enqueue_solve(redis_conn, SolveRequest(question=QUESTION, render=False), pool_settings)
            for _ in range(2)
        ]
        wait_for(lambda: fake_tgi.stats.active_streams == 2, 20, "both jobs to stream")
        pool.send_signal(signal.SIGTERM)
        assert pool.wait(timeout=20) == 0
    for job_id in job_ids:
        result = load_result(redis_conn, job_id)
        assert result is not None
        assert result.status is SolveStatus.SOLVED


def test_burst_drains_the_queue_and_exits(
    redis_conn: redis.Redis, pool_settings: Settings, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    requests = [SolveRequest(question=f"{QUESTION} ({n})", render=False) for n in range(3)]
    job_ids = [enqueue_solve(redis_conn, request, pool_settings) for request in requests]
    with worker_pool(tmp_path, "-n", "2", "--render-workers", "0", "--burst") as pool:
        assert pool.wait(timeout=30) == 0
    statuses = [load_result(redis_conn, job_id) for job_id in job_ids]
    assert [r.status if r else None for r in statuses] == [SolveStatus.SOLVED] * 3
    assert solve_workers(redis_conn, pool_settings) == 0


def test_pool_without_redis_says_why(tmp_path: Path) -> None:
    env = {**os.environ, "FATHOM_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr


def test_pool_without_a_model_server_says_why(redis_conn: redis.Redis) -> None:
    env = {key: value for key, value in os.environ.items() if key != "FATHOM_MODEL_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "FATHOM_MODEL_URL is not set" in done.stderr
