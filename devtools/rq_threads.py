"""RQ workers in threads of this process, and settings that compress time, for tests and
benchmarks that run the bot and the workers in one process (devtools: never imported by what
runs in production)."""

from __future__ import annotations

import threading

import redis
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty

from fathom.settings import Settings

# Compressed time: fast retries, frequent progress, quick status edits.
FAST_BOT_ENV = {
    "FATHOM_CONNECT_ATTEMPTS": "2",
    "FATHOM_CONNECT_BACKOFF_S": "0.05",
    "FATHOM_CONNECT_BACKOFF_MAX_S": "0.1",
    "FATHOM_OVERLOAD_ATTEMPTS": "2",
    "FATHOM_OVERLOAD_BACKOFF_S": "0.05",
    "FATHOM_OVERLOAD_BACKOFF_MAX_S": "0.1",
    "FATHOM_PROGRESS_INTERVAL_S": "0.05",
    "FATHOM_READ_TIMEOUT_S": "5",
    "FATHOM_JOB_RETRIES": "0",
    "FATHOM_QUESTION_COOLDOWN_S": "0",
    "FATHOM_MAX_PENDING_PER_USER": "3",
    "FATHOM_STATUS_EDIT_INTERVAL_S": "0.1",
    "FATHOM_CHANNEL_EDIT_INTERVAL_S": "0.05",
    "FATHOM_BOT_EDITS_PER_S": "40",
    "FATHOM_EDIT_TICK_S": "0.02",
    "FATHOM_QUEUE_POSITION_REFRESH_S": "0.2",
    "FATHOM_EVENTS_BLOCK_MS": "50",
}


class QuietSimpleWorker(SimpleWorker):
    """RQ's in-process worker, runnable in a thread: signal handlers and SIGALRM timeouts
    belong to the main thread, so no handlers and a timer-based job timeout. Its command
    listener polls every 50 ms instead of every minute: RQ joins it at the end of each burst for
    up to a second, which a worker looping over bursts would pay before every job."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    def subscribe(self) -> None:
        self.pubsub = self.connection.pubsub()  # type: ignore[no-untyped-call]  # redis-py
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        # RQ declares the attribute as None and assigns it the same way.
        self.pubsub_thread = self.pubsub.run_in_thread(  # type: ignore[assignment]
            sleep_time=0.05, daemon=True, exception_handler=self._pubsub_exception_handler
        )


class ThreadWorkers:
    """Solve and render workers looping in background threads until stopped."""

    def __init__(self, settings: Settings, solve: int = 2) -> None:
        self.settings = settings
        self._stop = threading.Event()
        queues = [settings.solve_queue] * solve + [settings.render_queue]
        self._threads = [
            threading.Thread(target=self._loop, args=(name,), daemon=True) for name in queues
        ]

    def _loop(self, queue_name: str) -> None:
        conn = redis.Redis.from_url(self.settings.redis_url)
        queue = Queue(queue_name, connection=conn, serializer=JSONSerializer)
        while not self._stop.is_set():
            QuietSimpleWorker([queue], connection=conn, serializer=JSONSerializer).work(
                burst=True, logging_level="WARNING"
            )
            self._stop.wait(0.02)
        conn.close()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
