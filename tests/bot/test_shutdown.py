"""The real bot stops within its grace and names what did not end."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.bot.conftest import World, delivery
from tests.fathom.test_tasks import ignores_cancellation


async def test_the_bot_stops_within_its_grace_and_names_what_did_not_end(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.settings = world.settings.model_copy(update={"bot_stop_grace_s": 0.3})
    caplog.set_level(logging.ERROR, logger="bot.exts.delivery._cog")
    released = asyncio.Event()
    async with world.bot() as bot:
        # A delivery stuck in a call that ignores cancellation.
        stuck = asyncio.create_task(ignores_cancellation(released))
        delivery(bot).deliveries["stuck-job"] = stuck
        await asyncio.sleep(0)  # let it start
    released.set()
    await stuck
    assert bot.is_closed()
    assert any(
        "ignores_cancellation" in r.getMessage() and "did not end" in r.getMessage()
        for r in caplog.records
    )
