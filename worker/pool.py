"""`fathom worker`: RQ's own WorkerPool, sized for the model server's concurrency.

One RQ worker runs one job at a time and a solve job spends its life waiting on the model's
stream, while the model server batches dozens of sequences: so the pool runs `workers` solve
workers (one per sequence the server batches) plus `render_workers` for the rendering queue.

RQ's WorkerPool starts, respawns and stops the workers; what it is given here keeps today's
guarantees:
- solve workers are RQ's forking `Worker` (a work horse per job, so a stop or a crash takes only
  that job down), with dead-worker recovery tuned from RQ's ~10 minutes down to under a minute
  (`SolveWorker`), and a work horse that dies with its worker (Linux PDEATHSIG);
- render workers are `SimpleWorker`s, so the MathJax node process, the render cache and the
  answer-checking pool of consensus votes (two spawned math-verify processes, warmed up at
  start) live across jobs; they form a second WorkerPool (one pool runs one worker class), in a
  process of its own that the first pool stops with itself (`render_workers` = 0 runs none);
- the supervisor imports the solve job and warms the HTTP path before forking, so every worker
  and horse shares those pages;
- in burst mode the render pool starts once the solve pool is done, so it sees every rendering
  job the solves enqueued;
- beside the pools, a process serves `/metrics` and `/healthz` and watches the model server's
  health and load for the moderators (worker.observe).
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import logging
import multiprocessing
import os
import signal
import sys
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import httpx2
import redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker_pool import WorkerPool

from fathom.settings import Settings, get_settings
from worker.logs import configure as configure_logs
from worker.model_server import ModelServerLoading, discover_configured
from worker.observe import Expected
from worker.observe import run as observe
from worker.warmup import warm_up

log = logging.getLogger("fathom.worker")

SOLVE_JOBS = "worker.jobs"
RENDER_JOBS = "worker.render.job"
VOTE_JOBS = "worker.render.vote"
"""Modules each kind of worker imports before its first job (rendering brings matplotlib, which
the solve workers never load)."""
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies: a work horse whose worker was
    killed must not go on streaming a job that RQ will hand to another worker, and a worker
    must not outlive its pool unmanaged."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


class JSONQueue(Queue):
    """RQ's WorkerPool builds its queues without a serializer: jobs here are JSON."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)


def _tuning(settings: Settings) -> dict[str, int]:
    return {
        "worker_ttl": settings.worker_ttl_s,
        "maintenance_interval": settings.maintenance_interval_s,
        "job_monitoring_interval": max(1, settings.worker_ttl_s // 3),
    }


class _Unscheduled:
    """RQ's WorkerPool starts every worker `with_scheduler=True`; nothing here is scheduled
    (retries are immediate), and a scheduler is one more child process per worker."""

    def work(self, *args: Any, **kwargs: Any) -> bool:
        kwargs["with_scheduler"] = False
        worked: bool = super().work(*args, **kwargs)  # type: ignore[misc]
        return worked


class SolveWorker(_Unscheduled, Worker):
    """RQ's forking worker with faster abandoned-job detection.

    A running job's entry in the started registry is refreshed every
    `job_monitoring_interval` seconds and expires `get_heartbeat_ttl` seconds later; the next
    maintenance (every `maintenance_interval`) requeues an expired job if it has retries left.
    RQ adds a fixed 60 s to that TTL; here the grace is `worker_ttl`, so a job whose worker was
    SIGKILLed is back on the queue within interval + worker_ttl + maintenance_interval.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, **_tuning(get_settings())})
        _die_with_parent()  # runs in the worker process the pool forked

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + int(self.worker_ttl)

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        _die_with_parent()


class RenderWorker(_Unscheduled, SimpleWorker):
    """Runs rendering jobs in the worker process itself: the MathJax node process and the
    render cache then live across jobs instead of being started again in every work horse.
    A render job is short and bounded (`render_job_timeout_s`), which is also how soon a
    job whose render worker died is noticed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, **_tuning(get_settings())})
        _die_with_parent()
        importlib.import_module(RENDER_JOBS)
        # Consensus votes run here too: their answer-checking pool starts warming up now.
        importlib.import_module(VOTE_JOBS).answer_checker().start()


class FathomPool(WorkerPool):
    """A WorkerPool that also stops the processes of its sibling pools when it is told to stop
    (the init system signals only the supervisor)."""

    def __init__(self, *args: Any, siblings: list[BaseProcess], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.siblings = siblings

    def request_stop(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]
        for sibling in self.siblings:
            if sibling.is_alive() and sibling.pid is not None:
                os.kill(sibling.pid, signal.SIGTERM)


def _pool(
    queue: str,
    count: int,
    worker_class: type[SolveWorker | RenderWorker],
    conn: redis.Redis,
    siblings: list[BaseProcess],
) -> FathomPool:
    return FathomPool(
        [queue],
        connection=conn,
        num_workers=count,
        worker_class=worker_class,
        serializer=JSONSerializer,
        queue_class=JSONQueue,
        siblings=siblings,
    )


def _run_pool(pool: FathomPool, burst: bool) -> None:
    pool.start(burst=burst, logging_level="INFO")


def _run_sibling(pool: FathomPool) -> None:
    _die_with_parent()
    _run_pool(pool, burst=False)


def _observe(settings: Settings, expected: Expected) -> None:
    _die_with_parent()
    observe(settings, expected)


ANNOUNCE_TIMEOUT_S = 5.0


async def model_server_report(settings: Settings, solve_count: int) -> list[str]:
    """What the pool says at start about its model server: the engine and the limits the jobs
    will use, and where they were read (or that the server does not answer yet); warnings
    when the server's slots or context do not fit the pool."""
    url = (settings.model_url or "").rstrip("/")
    try:
        info = await discover_configured(settings, ANNOUNCE_TIMEOUT_S)
    except (httpx2.HTTPError, ModelServerLoading) as exc:
        reason = str(exc) or type(exc).__name__
        return [f"model server {url}: not ready yet ({reason}); every job asks it again"]
    lines = [f"model server {url}: {info.describe()}"]
    if info.slots is not None and solve_count > info.slots:
        lines.append(
            f"model server {url}: {solve_count} solve workers but {info.slots} slots: the "
            "jobs beyond the slots wait in the server's queue; give it --parallel "
            f"{solve_count} (and a context {solve_count} times the per-slot one) or run "
            f"{info.slots} workers"
        )
    if info.context_tokens < settings.context_tokens:
        lines.append(
            f"model server {url}: {info.context_tokens} tokens per sequence, less than the "
            f"{settings.context_tokens} the model is evaluated with: long answers end truncated"
        )
    return lines


def run_pool(workers: int | None, render_workers: int | None, burst: bool) -> int:
    """`fathom worker`: the pools, sized by the arguments or else the settings."""
    settings = get_settings()
    configure_logs(settings)
    conn = redis.Redis.from_url(settings.redis_url)
    try:
        conn.ping()
    except redis.RedisError as exc:
        print(f"fathom worker: cannot reach Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    solve_count = workers if workers is not None else settings.workers
    render_count = render_workers if render_workers is not None else settings.render_workers
    if solve_count and not settings.model_url:
        print(
            "fathom worker: FATHOM_MODEL_URL is not set; point it at TGI or another "
            "OpenAI-compatible server (`fathom fake-tgi` for a local simulator)",
            file=sys.stderr,
        )
        return 2
    importlib.import_module(SOLVE_JOBS)
    try:
        asyncio.run(warm_up())
    except (OSError, httpx2.HTTPError, ValueError) as exc:  # only slower first jobs
        log.warning("pool: HTTP warm-up failed (%s)", exc)
    log.info("pool: %d solve + %d render workers", solve_count, render_count)
    if solve_count and settings.model_url:
        for line in asyncio.run(model_server_report(settings, solve_count)):
            log.info("%s", line)
    siblings: list[BaseProcess] = []
    pools = [
        _pool(queue, count, worker_class, conn, siblings)
        for queue, count, worker_class in (
            (settings.solve_queue, solve_count, SolveWorker),
            (settings.render_queue, render_count, RenderWorker),
        )
        if count
    ]
    if not pools:
        print("fathom worker: no workers to run (-n 0 and --render-workers 0)", file=sys.stderr)
        return 2
    if burst:
        for pool in pools:
            _run_pool(pool, burst=True)
        return 0
    first, *others = pools
    fork = multiprocessing.get_context("fork")
    starts: list[BaseProcess] = [
        fork.Process(target=_run_sibling, args=(other,), name="fathom-render-pool")
        for other in others
    ]
    expected = Expected(solve_workers=solve_count, render_workers=render_count)
    starts.append(fork.Process(target=_observe, args=(settings, expected), name="fathom-observe"))
    for process in starts:
        process.start()
        siblings.append(process)
    _run_pool(first, burst=False)
    for process in siblings:
        process.join()
    log.info("pool: all workers stopped")
    return 0
