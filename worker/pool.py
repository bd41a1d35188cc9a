"""`fathom worker`: a pool of RQ workers sized for the model server's concurrency.

One RQ worker runs one job at a time and a solve job spends its life waiting on the model's
stream, while the model server batches dozens of sequences: so the pool runs `workers` solve
workers (one per sequence the server batches) plus `render_workers` for the rendering queue.

Each worker is RQ's forking `Worker` (a work horse per job, so a stop or a crash takes only
that job down) with the JSON serializer and dead-worker recovery tuned from RQ's ~10 minutes
down to under a minute. The supervisor imports the solve job before forking, so every worker
and horse shares those pages instead of importing them again per job.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import importlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

import httpx2
import redis
from rq import Queue, SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from fathom.settings import Settings, get_settings
from worker.warmup import warm_up

log = logging.getLogger("fathom.worker")

SOLVE, RENDER = "solve", "render"
PRELOAD = {SOLVE: "worker.jobs", RENDER: "worker.render.job"}
"""Modules each kind of worker imports before its first job (render's brings matplotlib, which
the solve workers never load)."""
RESPAWN_PAUSE_S = 1.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies: a work horse whose worker was
    killed must not go on streaming a job that RQ will hand to another worker, and a worker
    must not outlive its supervisor unmanaged."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


class FathomWorker(Worker):
    """RQ's forking worker (for solve jobs) with faster abandoned-job detection.

    A running job's entry in the started registry is refreshed every
    `job_monitoring_interval` seconds and expires `get_heartbeat_ttl` seconds later; the next
    maintenance (every `maintenance_interval`) requeues an expired job if it has retries left.
    RQ adds a fixed 60 s to that TTL; here the grace is `worker_ttl`, so a job whose worker was
    SIGKILLed is back on the queue within interval + worker_ttl + maintenance_interval.
    """

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        interval = float(self.job_monitoring_interval)
        if job.timeout and job.timeout > 0:
            interval = min(job.timeout - working_time, interval)
        return int(interval) + int(self.worker_ttl)

    def setup_work_horse_signals(self) -> None:
        super().setup_work_horse_signals()  # type: ignore[no-untyped-call]
        _die_with_parent()


class RenderWorker(SimpleWorker):
    """Runs rendering jobs in the worker process itself: the MathJax node process and the
    render cache then live across jobs instead of being started again in every work horse.
    A render job is short and bounded (`render_job_timeout_s`), which is also how soon a
    job whose render worker died is noticed."""


def make_worker(role: str, conn: redis.Redis, settings: Settings) -> Worker | SimpleWorker:
    queue_name = settings.solve_queue if role == SOLVE else settings.render_queue
    worker_class: type[Worker | SimpleWorker] = FathomWorker if role == SOLVE else RenderWorker
    return worker_class(
        [Queue(queue_name, connection=conn, serializer=JSONSerializer)],
        connection=conn,
        serializer=JSONSerializer,
        name=f"{socket.gethostname()}.{os.getpid()}.{role}",
        worker_ttl=settings.worker_ttl_s,
        maintenance_interval=settings.maintenance_interval_s,
        job_monitoring_interval=max(1, settings.worker_ttl_s // 3),
    )


def _worker_main(role: str, burst: bool) -> None:
    """Body of one worker process (forked from the supervisor)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _die_with_parent()
    settings = get_settings()
    if role == RENDER:
        importlib.import_module(PRELOAD[RENDER])
    conn = redis.Redis.from_url(settings.redis_url)
    make_worker(role, conn, settings).work(burst=burst, logging_level="INFO")


@dataclass
class _Child:
    role: str
    process: BaseProcess


class WorkerPool:
    """Starts the workers, restarts any that die, and shuts them down warmly on SIGTERM/SIGINT
    (each finishes its current job; a second signal stops them at once)."""

    def __init__(self, solve_workers: int, render_workers: int, burst: bool) -> None:
        self.counts = {SOLVE: solve_workers, RENDER: render_workers}
        self.burst = burst
        self.children: list[_Child] = []
        self.stop_signals = 0
        self._context = multiprocessing.get_context("fork")

    def _start(self, role: str) -> None:
        process = self._context.Process(
            target=_worker_main, args=(role, self.burst), name=f"fathom-{role}-worker"
        )
        process.start()
        self.children.append(_Child(role, process))

    def _start_role(self, role: str) -> None:
        for _ in range(self.counts[role]):
            self._start(role)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_signals += 1
        how = "warm" if self.stop_signals == 1 else "cold"
        log.info("%s: %s shutdown of %d workers", signal.Signals(signum).name, how, self._alive())
        for child in self.children:
            if child.process.is_alive() and child.process.pid is not None:
                os.kill(child.process.pid, signal.SIGTERM)

    def _alive(self) -> int:
        return sum(child.process.is_alive() for child in self.children)

    def _reap(self) -> list[str]:
        """Forget dead children; return the roles of those that died."""
        dead = [child for child in self.children if not child.process.is_alive()]
        for child in dead:
            child.process.join()
            self.children.remove(child)
        return [child.role for child in dead]

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        # In burst mode the render workers start once the solve workers are done, so they see
        # every rendering job the solves enqueued.
        self._start_role(SOLVE)
        if not self.burst:
            self._start_role(RENDER)
        render_started = not self.burst
        log.info("pool: %d solve + %d render workers", self.counts[SOLVE], self.counts[RENDER])
        while True:
            for role in self._reap():
                if not self.burst and not self.stop_signals:
                    log.warning("pool: a %s worker died; starting another", role)
                    time.sleep(RESPAWN_PAUSE_S)
                    self._start(role)
            if (
                self.burst
                and not render_started
                and not any(child.role == SOLVE for child in self.children)
            ):
                render_started = True
                if not self.stop_signals:
                    self._start_role(RENDER)
            if not self.children and (self.stop_signals or (self.burst and render_started)):
                log.info("pool: all workers stopped")
                return 0
            time.sleep(0.2)


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    conn = redis.Redis.from_url(settings.redis_url)
    try:
        conn.ping()
    except redis.RedisError as exc:
        print(f"fathom worker: cannot reach Redis at {settings.redis_url}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    importlib.import_module(PRELOAD[SOLVE])
    try:
        asyncio.run(warm_up())
    except (OSError, httpx2.HTTPError, ValueError) as exc:  # only slower first jobs
        log.warning("pool: HTTP warm-up failed (%s)", exc)
    solve_workers = args.workers if args.workers is not None else settings.workers
    render_workers = (
        args.render_workers if args.render_workers is not None else settings.render_workers
    )
    if solve_workers and not settings.model_url:
        print(
            "fathom worker: FATHOM_MODEL_URL is not set; point it at TGI or another "
            "OpenAI-compatible server (`fathom fake-tgi` for a local simulator)",
            file=sys.stderr,
        )
        return 2
    return WorkerPool(solve_workers, render_workers, burst=args.burst).run()
