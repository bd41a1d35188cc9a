"""The pool's window: one HTTP endpoint with `/metrics` (Prometheus) and `/healthz`, and the
watch on the model server, in a process of its own beside the worker pools.

`/metrics` is collected when Prometheus scrapes (as rq-exporter does): the queues and workers
as RQ keeps them in Redis, the jobs' counters and histograms (fathom.metrics, counted in Redis
by the jobs), and the model server's health and load from the last look. `/healthz` answers
200 while Redis answers and this host's workers are alive, 503 otherwise, with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from rq import Queue, Worker

from fathom import metrics
from fathom.admin import ModelView, publish_model_view
from fathom.queue import fetch_job, render_queue, solve_queue
from fathom.settings import Settings
from worker.model_server import http_client
from worker.monitor import REQUEST_TIMEOUT_S, WATCH_INTERVAL_S, look

log = logging.getLogger(__name__)

HELP = {
    metrics.JOBS: "Jobs ended, by outcome and failure reason.",
    metrics.TOKENS: "Completion tokens the model generated for ended jobs.",
    metrics.WAIT: "Seconds a job waited for a worker.",
    metrics.SOLVE: "Seconds from a worker taking a job to its answer.",
    metrics.RENDER: "Seconds a render job took.",
}


@dataclass
class Expected:
    """What this host's pool runs."""

    solve_workers: int
    render_workers: int
    hostname: str = field(default_factory=socket.gethostname)


class PoolCollector:
    def __init__(
        self, conn: redis.Redis, settings: Settings, last_look: Callable[[], ModelView | None]
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.last_look = last_look

    def collect(self) -> Iterator[Metric]:
        yield from self._queues()
        yield from self._workers()
        yield from _jobs(metrics.read(self.conn))
        view = self.last_look()
        if view is not None:
            yield from _model(view)

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("fathom_queue_jobs", "Jobs waiting on a queue.", labels=["queue"])
        oldest = GaugeMetricFamily(
            "fathom_queue_oldest_wait_seconds",
            "How long the job at the head of a queue has waited.",
            labels=["queue"],
        )
        now = time.time()
        for queue in (
            solve_queue(self.conn, self.settings),
            render_queue(self.conn, self.settings),
        ):
            depth.add_metric([queue.name], queue.count)
            head = self.conn.lindex(queue.key, 0)
            job = None if head is None else fetch_job(self.conn, _text(head))
            waited = 0.0
            if job is not None and job.enqueued_at is not None:
                waited = max(0.0, now - job.enqueued_at.timestamp())
            oldest.add_metric([queue.name], waited)
        yield depth
        yield oldest

    def _queues_watched(self) -> tuple[Queue, Queue]:
        return solve_queue(self.conn, self.settings), render_queue(self.conn, self.settings)

    def _workers(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "fathom_workers", "Live RQ workers, by queue and state.", labels=["queue", "state"]
        )
        for queue in (
            solve_queue(self.conn, self.settings),
            render_queue(self.conn, self.settings),
        ):
            states = {"busy": 0, "idle": 0}
            for worker in Worker.all(connection=self.conn, queue=queue):
                state = "busy" if worker.get_state() == "busy" else "idle"
                states[state] += 1
            for state, n in states.items():
                family.add_metric([queue.name, state], n)
        yield family


def _jobs(values: dict[str, float]) -> Iterator[Metric]:
    """Counters and histograms from the Redis hash (fathom.metrics)."""
    jobs = CounterMetricFamily(
        metrics.JOBS.removesuffix("_total"), HELP[metrics.JOBS], labels=["outcome", "reason"]
    )
    tokens = CounterMetricFamily(metrics.TOKENS.removesuffix("_total"), HELP[metrics.TOKENS])
    tokens.add_metric([], values.get(metrics.field(metrics.TOKENS), 0.0))
    histograms: dict[str, dict[str, Any]] = {}
    for raw, value in sorted(values.items()):
        name, labels = metrics.parse_field(raw)
        if name == metrics.JOBS:
            jobs.add_metric([labels.get("outcome", ""), labels.get("reason", "")], value)
        elif name.endswith("_bucket"):
            histograms.setdefault(name.removesuffix("_bucket"), {}).setdefault("buckets", {})[
                labels["le"]
            ] = value
        elif name.endswith("_sum"):
            histograms.setdefault(name.removesuffix("_sum"), {})["sum"] = value
    yield jobs
    yield tokens
    for name, parts in histograms.items():
        buckets = sorted(parts.get("buckets", {}).items(), key=lambda item: float(item[0]))
        family = HistogramMetricFamily(name, HELP.get(name, name))
        family.add_metric([], buckets=buckets, sum_value=parts.get("sum", 0.0))
        yield family


def _model(view: ModelView) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "fathom_model_server_up", "1 while the model server answers /health.", labels=["server"]
    )
    up.add_metric([view.name], 1.0 if view.healthy else 0.0)
    yield up
    for name, value, what in (
        ("fathom_model_server_queue", view.queue_size, "Requests waiting in the model server."),
        ("fathom_model_server_batch", view.batch_size, "Sequences the model server decodes."),
    ):
        if value is not None:
            family = GaugeMetricFamily(name, what, labels=["server"])
            family.add_metric([view.name], value)
            yield family


def health(conn: redis.Redis, settings: Settings, expected: Expected) -> tuple[bool, str]:
    """Whether this host's pool is healthy, and why not."""
    try:
        conn.ping()
    except redis.RedisError as exc:
        return False, f"Redis does not answer: {exc}"
    needed = (
        (solve_queue(conn, settings), expected.solve_workers),
        (render_queue(conn, settings), expected.render_workers),
    )
    for queue, count in needed:
        if count <= 0:
            continue
        mine = [
            worker
            for worker in Worker.all(connection=conn, queue=queue)
            if worker.hostname == expected.hostname
        ]
        if not mine:
            return False, f"no live worker of this pool on queue {queue.name}"
    return True, "ok"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


def serve(
    conn: redis.Redis,
    settings: Settings,
    expected: Expected,
    last_look: Callable[[], ModelView | None],
) -> None:
    """The HTTP endpoint, until the process ends (runs in a thread)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PoolCollector(conn, settings, last_look))
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            healthy, why = health(conn, settings, expected)
            status = "200 OK" if healthy else "503 Service Unavailable"
            start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
            return [why.encode() + b"\n"]
        served: Iterable[bytes] = metrics_app(environ, start_response)
        return served

    with make_server(
        settings.http_host, settings.worker_http_port, app, handler_class=_Quiet
    ) as server:
        log.info(
            "pool: /metrics and /healthz on %s:%d", settings.http_host, settings.worker_http_port
        )
        server.serve_forever()


def _serve_or_say(
    conn: redis.Redis,
    settings: Settings,
    expected: Expected,
    last_look: Callable[[], ModelView | None],
) -> None:
    try:
        serve(conn, settings, expected, last_look)
    except OSError as exc:
        log.error(
            "pool: /metrics and /healthz cannot listen on port %d (%s)",
            settings.worker_http_port,
            exc,
        )


def run(settings: Settings, expected: Expected) -> None:
    """The observer process: the endpoint in a thread, the model server looked at every
    WATCH_INTERVAL_S (and published for the moderators)."""
    conn = redis.Redis.from_url(settings.redis_url)
    last: list[ModelView] = []

    def last_look() -> ModelView | None:
        return last[-1] if last else None

    if settings.worker_http_port:
        threading.Thread(
            target=_serve_or_say, args=(conn, settings, expected, last_look), daemon=True
        ).start()
    if not settings.model_url or not expected.solve_workers:
        threading.Event().wait()  # nothing to watch: only serve
        return
    asyncio.run(_watch(conn, settings, last))


async def _watch(conn: redis.Redis, settings: Settings, last: list[ModelView]) -> None:
    api_key = settings.model_api_key
    secret = api_key.get_secret_value() if api_key else None
    async with http_client(REQUEST_TIMEOUT_S, secret) as http:
        while True:
            view = await look(http, settings)
            last[:] = [view]
            try:
                publish_model_view(conn, view, int(3 * WATCH_INTERVAL_S))
            except redis.RedisError as exc:
                log.warning("cannot publish the model server's state: %s", exc)
            await asyncio.sleep(WATCH_INTERVAL_S)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
