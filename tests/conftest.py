"""Shared fixtures: a throwaway Redis server of the suite's own, flushed around each test, and
the settings that point at it. No test touches a Redis that someone else runs."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import redis

from devtools.redis_server import RedisServer, RedisServerMissing, executable, throwaway_redis

if TYPE_CHECKING:
    from devtools.fakediscord import FakeDiscord
    from simulator.server import SimulatorServer

# Nothing the tests start may fall back to a model server configured in the shell, and no pool or
# bot they start listens on the fixed /metrics ports (tests that look at them pick free ones).
os.environ.pop("FATHOM_MODEL_URL", None)
os.environ["FATHOM_WORKER_HTTP_PORT"] = "0"
os.environ["FATHOM_BOT_HTTP_PORT"] = "0"


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[RedisServer]:
    """The suite's own redis-server. Every process the tests start (workers, the bot, `fathom
    ask`) inherits FATHOM_REDIS_URL pointing at it."""
    try:
        executable()
    except RedisServerMissing as exc:
        pytest.exit(str(exc), returncode=3)
    with throwaway_redis() as server, pytest.MonkeyPatch.context() as env:
        env.setenv("FATHOM_REDIS_URL", server.url())
        yield server


@pytest.fixture
def redis_conn(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A connection to the suite's own server, flushed before and after the test."""
    conn = redis.Redis.from_url(redis_server.url())
    conn.flushall()
    try:
        yield conn
    finally:
        conn.flushall()
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def fake_tgi() -> Iterator[SimulatorServer]:
    """A started TGI simulator on a free loopback port, fast enough for tests (thousands of
    tokens/s, no time to first token, short answers). Change `fake_tgi.config` fields to inject
    faults; read `fake_tgi.stats` for its counters."""
    from simulator.server import SimulatorServer, fast_config

    with SimulatorServer(fast_config()) as server:
        yield server


@pytest.fixture
def fake_llamacpp() -> Iterator[SimulatorServer]:
    """The simulator speaking llama.cpp's dialect (`fathom fake-tgi --dialect llama.cpp`): four
    slots of 16,384 tokens, llama.cpp's default reasoning format ("auto"), as fast as
    `fake_tgi`."""
    from simulator.server import SimulatorServer, fast_config

    with SimulatorServer(fast_config(dialect="llama.cpp", max_batch_size=4)) as server:
        yield server


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A fake Discord on loopback, with discord.py pointed at it for the test."""
    from devtools.fakediscord import FakeDiscord

    async with FakeDiscord(interaction_deadline=3.0) as fake:
        with fake.point_discord_py():
            yield fake
