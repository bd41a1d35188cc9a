"""Run a real discord.py client against the fake inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord

from devtools.fakediscord.server import FakeDiscord


@contextlib.asynccontextmanager
async def running(
    client: discord.Client, fake: FakeDiscord, *, ready_timeout: float = 10.0
) -> AsyncIterator[discord.Client]:
    """Start `client` (login + gateway) as a task, wait for on_ready, close it afterwards.

    Build the client inside `fake.point_discord_py()` (the `fake_discord` fixture does this)
    and pass `guild_ready_timeout=0.05` or so: discord.py waits that long after the last
    GUILD_CREATE before it fires on_ready (2 s by default).
    """
    task = asyncio.create_task(client.start(fake.token), name="discord-client")
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait(
            {ready, task}, timeout=ready_timeout, return_when="FIRST_COMPLETED"
        )
        if task in done:
            ready.cancel()
            task.result()  # re-raise the login or connection failure
            raise RuntimeError("the client stopped before it was ready")
        if ready not in done:
            ready.cancel()
            raise TimeoutError(f"client not ready after {ready_timeout}s")
        yield client
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
            await asyncio.wait_for(task, timeout=5)
