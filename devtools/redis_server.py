"""A throwaway `redis-server` of our own for tests and benchmarks: a free loopback port, a
temporary directory, stopped (and its data gone) when done. It never touches a Redis that
someone else runs, so an operator's data and a live worker pool are safe from `bin/test`.

Started through pytest-redis's executor (mirakuru underneath), which builds the command line
and waits until the server answers.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from port_for import get_port
from pytest_redis.executor import RedisExecutor

MISSING = (
    "redis-server is not installed; the tests and benchmarks start a throwaway one of their "
    "own. Install it first: `sudo apt-get install redis-server` (Debian/Ubuntu), "
    "`brew install redis` (macOS), or set FATHOM_REDIS_SERVER to its path."
)


class RedisServerMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class RedisServer:
    executor: RedisExecutor
    datadir: Path
    password: str | None = None

    @property
    def port(self) -> int:
        return int(self.executor.port)

    def url(self, db: int = 0) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        """Stop the server (SIGTERM; what it holds is gone). `start()` brings it back on the
        same port and directory, with its append-only file if it had one."""
        self.executor.stop()

    def start(self) -> None:
        self.executor.start()


def executable(explicit: str | None = None) -> str:
    """The redis-server to run: `explicit`, $FATHOM_REDIS_SERVER, or the one on PATH."""
    found = explicit or os.environ.get("FATHOM_REDIS_SERVER") or shutil.which("redis-server")
    if not found or not Path(found).exists():
        raise RedisServerMissing(MISSING)
    return found


@contextlib.contextmanager
def throwaway_redis(
    *, appendonly: bool = False, password: str | None = None, databases: int = 16
) -> Iterator[RedisServer]:
    """A fresh redis-server on a free loopback port; stopped and deleted on exit."""
    datadir = Path(tempfile.mkdtemp(prefix="fathom-redis-"))
    port = get_port(None)
    assert port is not None
    executor = RedisExecutor(
        executable=executable(),
        databases=databases,
        redis_timeout=30,
        loglevel="warning",
        host="127.0.0.1",
        port=port,
        password=password,
        appendonly="yes" if appendonly else "no",
        datadir=datadir,
        startup_timeout=30,
    )
    try:
        with executor:
            yield RedisServer(executor, datadir, password)
    finally:
        shutil.rmtree(datadir, ignore_errors=True)
