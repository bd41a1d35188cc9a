"""Shared fixtures: a dedicated, flushed Redis database and the settings that point at it."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import redis

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
