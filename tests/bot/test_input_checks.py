"""Every input check: an ephemeral (or, in a DM, a plain) specific reply, nothing enqueued."""

from __future__ import annotations

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot import keys as bot_keys
from devtools.fakediscord import InteractionRecord, MessageRecord, Upload
from tests.bot.conftest import World

PNG = Upload("problem.png", b"\x89PNG\r\n\x1a\n fake", "image/png")


def nothing_enqueued(conn: redis.Redis, world: World) -> bool:
    queue = Queue(world.settings.solve_queue, connection=conn, serializer=JSONSerializer)
    return queue.count == 0 and conn.hlen(bot_keys.PROMISED) == 0


async def slash(world: World, question: str) -> MessageRecord:
    interaction = await world.fake.send_slash_command(
        "solve", user=world.student, channel=world.channel, options={"question": question}
    )
    return await refusal(world, interaction)


async def refusal(world: World, interaction: InteractionRecord) -> MessageRecord:
    ack = await world.fake.wait_for_ack(interaction)
    [reply] = await world.fake.wait_for_responses(interaction)
    assert ack["type"] == 4  # answered at once, no deferral
    assert reply.ephemeral
    return reply


async def test_empty_question(world: World) -> None:
    async with world.bot():
        reply = await slash(world, "   ")
    assert "empty" in reply.content
    assert nothing_enqueued(world.redis, world)
    assert world.posts(world.channel) == []


async def test_too_long_question(world: World) -> None:
    limit = world.settings.max_question_chars
    async with world.bot():
        reply = await slash(world, "x" * (limit + 1))
    assert f"{limit + 1:,}" in reply.content
    assert f"{limit:,}" in reply.content
    assert nothing_enqueued(world.redis, world)


async def test_only_an_image_in_a_dm(world: World) -> None:
    async with world.bot():
        asked = await world.fake.send_dm(world.student, "", attachments=[PNG])
        dm = world.fake.dm_channel(world.student)
        [reply] = await world.wait(lambda: world.posts(dm), "the reply")
    assert "only read text" in reply.content
    assert reply.reference is not None
    assert int(reply.reference["message_id"]) == asked.id
    assert nothing_enqueued(world.redis, world)


async def test_only_an_image_through_the_context_menu(world: World) -> None:
    async with world.bot():
        picture = await world.fake.send_message(
            world.classmate, world.channel, "", attachments=[PNG]
        )
        interaction = await world.fake.send_message_command(
            "Solve with Fathom", user=world.student, target=picture
        )
        reply = await refusal(world, interaction)
    assert "only read text" in reply.content
    assert nothing_enqueued(world.redis, world)


async def test_the_pending_limit(world: World) -> None:
    world.settings = world.settings.model_copy(update={"max_pending_per_user": 2})
    async with world.bot():
        for question in ("1+1?", "2+2?"):
            interaction = await world.fake.send_slash_command(
                "solve", user=world.student, channel=world.channel, options={"question": question}
            )
            await world.fake.wait_for_responses(interaction)
        reply = await slash(world, "3+3?")
    assert "already have 2 questions" in reply.content
    queue = Queue(world.settings.solve_queue, connection=world.redis, serializer=JSONSerializer)
    assert queue.count == 2  # no workers: both still wait; the third was never enqueued


async def test_the_cooldown(world: World) -> None:
    world.settings = world.settings.model_copy(update={"question_cooldown_s": 30.0})
    async with world.bot():
        first = await world.fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "1+1?"}
        )
        await world.fake.wait_for_responses(first)
        reply = await slash(world, "2+2?")
        other = await world.fake.send_slash_command(
            "solve", user=world.classmate, channel=world.channel, options={"question": "3+3?"}
        )
        [accepted] = await world.fake.wait_for_responses(other)
    assert "Please wait 30 seconds" in reply.content or "Please wait 29 seconds" in reply.content
    assert "Queued" in accepted.content  # the cooldown is per user
