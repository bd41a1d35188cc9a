"""Running solve jobs for real: the job enqueued through fathom.queue, a real RQ worker, the
real huggingface_hub client and the TGI simulator (the `fake_tgi` fixture)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer

from fathom.contract import SolveRequest, SolveResult
from fathom.events import load_result
from fathom.queue import enqueue_solve
from fathom.settings import Settings, get_settings
from simulator.server import SimulatorServer

FAST_RETRIES = {
    "FATHOM_CONNECT_ATTEMPTS": "3",
    "FATHOM_CONNECT_BACKOFF_S": "0.05",
    "FATHOM_CONNECT_BACKOFF_MAX_S": "0.1",
    "FATHOM_OVERLOAD_ATTEMPTS": "4",
    "FATHOM_OVERLOAD_BACKOFF_S": "0.05",
    "FATHOM_OVERLOAD_BACKOFF_MAX_S": "0.1",
    "FATHOM_PROGRESS_INTERVAL_S": "0.01",
    "FATHOM_READ_TIMEOUT_S": "5",
}

Configure = Callable[..., Settings]


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """Set FATHOM_* variables (fast retries by default) for this process and the workers it
    starts; returns the settings they give."""

    def apply(**env: Any) -> Settings:
        for name, value in {**FAST_RETRIES, **env}.items():
            monkeypatch.setenv(name if name.startswith("FATHOM_") else f"FATHOM_{name}", str(value))
        get_settings.cache_clear()
        return get_settings()

    get_settings.cache_clear()
    yield apply
    get_settings.cache_clear()


@pytest.fixture
def settings(configure: Configure, fake_tgi: SimulatorServer) -> Settings:
    return configure(MODEL_URL=fake_tgi.url)


def work_burst(conn: redis.Redis, settings: Settings) -> None:
    """Run an in-process RQ worker until the solve queue is empty."""
    queue = Queue(settings.solve_queue, connection=conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
        burst=True, logging_level="WARNING"
    )


def solve_now(conn: redis.Redis, settings: Settings, request: SolveRequest) -> SolveResult:
    job_id = enqueue_solve(conn, request, settings)
    work_burst(conn, settings)
    result = load_result(conn, job_id)
    assert result is not None
    return result


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@contextmanager
def worker_pool(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`fathom worker ARGS` in a subprocess (the environment carries the test's settings)."""
    log = (tmp_path / "pool.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()
