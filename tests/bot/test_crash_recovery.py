"""A bot that stops between Discord storing its status message and saving its promise (the
crash window chaos found): the next bot finishes taking the question from its draft — the same
status message (Discord drops the resent one by its nonce), a thread, the job, the answer."""

from __future__ import annotations

import asyncio

import redis

from bot import keys as bot_keys
from bot.logic.naming import CANCEL_PREFIX
from devtools.fakediscord import MessageRecord
from devtools.rq_threads import ThreadWorkers
from tests.bot.conftest import World
from tests.bot.test_entry_points import solution_end


async def test_a_question_cut_off_after_its_status_was_posted_is_answered_after_a_restart(
    world: World, workers: ThreadWorkers, redis_conn: redis.Redis
) -> None:
    fake = world.fake
    posted: list[MessageRecord] = []
    never = asyncio.Event()

    async def hang_up(message: MessageRecord) -> None:
        # Discord stored the status message; the bot never hears back (it is about to stop).
        if any(c.startswith(CANCEL_PREFIX) for c in message.custom_ids()):
            posted.append(message)
            await never.wait()

    fake.after_bot_message = hang_up
    async with world.bot():
        await fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "2+2?"}
        )
        await world.wait(lambda: posted, "the status message stored")
    fake.after_bot_message = None
    assert redis_conn.hlen(bot_keys.DRAFTS) == 1
    assert redis_conn.hlen(bot_keys.PROMISED) == 0

    async with world.bot():
        thread = await world.thread()
        await world.wait(lambda: solution_end(world, thread.id), "the answer after the restart")
        [status] = world.posts(world.channel)
        await world.wait(lambda: "Solved" in status.content, "the final status")
    never.set()

    assert world.posts(world.channel) == [status]
    assert status.id == posted[0].id
    assert thread.id == status.thread_id
    assert fake.nonce_hits == 1  # the resent status message was not posted twice
    assert redis_conn.hlen(bot_keys.DRAFTS) == 0
