"""fathom.tasks: lost cancellations are repeated, and what never ends is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import random

import redis
import redis.asyncio as aioredis

from devtools.redis_server import RedisServer
from fathom.tasks import cancel_and_wait


async def swallows_one_cancellation(ended: asyncio.Event) -> None:
    """What a task does when `asyncio.wait_for` (Python 3.11) eats its cancellation."""
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.sleep(3600)
    try:
        await asyncio.sleep(3600)
    finally:
        ended.set()


async def ignores_cancellation(released: asyncio.Event) -> None:
    while not released.is_set():
        try:
            await released.wait()
        except asyncio.CancelledError:
            continue


async def test_a_task_that_loses_a_cancellation_is_cancelled_again() -> None:
    ended = asyncio.Event()
    task = asyncio.create_task(swallows_one_cancellation(ended))
    await asyncio.sleep(0)
    assert await cancel_and_wait([task], grace_s=10) == set()
    assert ended.is_set()
    assert task.cancelled()


async def test_a_task_that_never_ends_is_left_behind_after_the_grace() -> None:
    released = asyncio.Event()
    stubborn = asyncio.create_task(ignores_cancellation(released))
    obedient = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    left = await cancel_and_wait([stubborn, obedient], grace_s=0.3)
    released.set()
    await stubborn
    assert left == {stubborn}
    assert obedient.cancelled()


async def read_events_forever(conn: aioredis.Redis) -> None:
    while True:
        await conn.xreadgroup("readers", "reader", {"events": ">"}, count=10, block=20)


async def test_a_loop_of_redis_reads_always_ends_when_stopped(
    redis_conn: redis.Redis, redis_server: RedisServer
) -> None:
    """redis.asyncio sends each command through asyncio.wait_for, which can lose a
    cancellation on Python 3.11: cancel such a loop at many moments, and it must always end."""
    redis_conn.xgroup_create("events", "readers", id="0", mkstream=True)
    conn = aioredis.Redis.from_url(redis_server.url())
    try:
        for _ in range(20):
            reader = asyncio.create_task(read_events_forever(conn))
            await asyncio.sleep(random.uniform(0.0, 0.05))
            assert await cancel_and_wait([reader], grace_s=10) == set()
    finally:
        await conn.aclose()
