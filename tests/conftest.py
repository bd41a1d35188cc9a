"""Shared fixtures: a dedicated, flushed Redis database and the settings that point at it."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
import redis

if TYPE_CHECKING:
    from simulator.server import SimulatorServer
    from tests.fakediscord import FakeDiscord

TEST_REDIS_DB = int(os.environ.get("FATHOM_TEST_REDIS_DB", "13"))
TEST_REDIS_URL = f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"

# Every process the tests start (workers, the bot) inherits this: nothing touches DB 0.
os.environ["FATHOM_REDIS_URL"] = TEST_REDIS_URL
os.environ.pop("FATHOM_MODEL_URL", None)


@pytest.fixture
def redis_conn() -> Iterator[redis.Redis]:
    """A connection to the test database, flushed before and after the test."""
    conn = redis.Redis.from_url(TEST_REDIS_URL)
    conn.flushdb()
    try:
        yield conn
    finally:
        conn.flushdb()
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
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A fake Discord on loopback, with discord.py pointed at it for the test."""
    from tests.fakediscord import FakeDiscord

    async with FakeDiscord(interaction_deadline=3.0) as fake:
        with fake.point_discord_py():
            yield fake
