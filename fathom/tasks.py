"""Stopping background tasks within a bounded time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_INTERVAL_S = 0.25
"""How often a task that is still running is cancelled again while stopping."""


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], grace_s: float
) -> set[asyncio.Task[Any]]:
    """Cancel `tasks` and wait up to `grace_s` seconds for them to end; returns those that did
    not.

    One cancellation is not always enough: on Python 3.11 `asyncio.wait_for` returns the
    result instead of raising when the cancellation arrives just as the awaited operation
    completes (CPython gh-86296, fixed in 3.12), and redis.asyncio sends every command through
    it, so a task cancelled at that moment runs on. Tasks still running are therefore
    cancelled again every RECANCEL_INTERVAL_S until the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace_s
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_INTERVAL_S, remaining))
    return pending
