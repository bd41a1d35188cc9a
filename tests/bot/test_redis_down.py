"""Found by the chaos suite: with Redis down, every command, click and DM still gets a clear
answer (nothing queued or changed) instead of silence; once Redis is back, questions go through."""

from __future__ import annotations

from devtools.redis_server import throwaway_redis
from tests.bot.conftest import World
from tests.bot.test_cancel_and_faults import ask, button


async def test_while_redis_is_down_everyone_is_told_so(world: World) -> None:
    with throwaway_redis() as server:
        world.settings = world.settings.model_copy(update={"redis_url": server.url()})
        async with world.bot():
            world.fake.override_command_permissions(world.guild, "queue", everyone=True)
            status = await ask(world, "First?")
            server.stop()
            asked = await world.fake.send_slash_command(
                "solve", user=world.classmate, channel=world.channel, options={"question": "2?"}
            )
            [refusal] = await world.fake.wait_for_responses(asked)
            click = await world.fake.click_button(
                status, button(status, "fathom:cancel:"), user=world.student
            )
            [clicked] = await world.fake.wait_for_responses(click)
            moderating = await world.fake.send_slash_command(
                "queue status", user=world.moderator, channel=world.channel
            )
            [moderated] = await world.fake.wait_for_responses(moderating)
            dm = world.fake.dm_channel(world.student)
            await world.fake.send_message(world.student, dm, "3 + 4?")
            [dm_reply] = await world.wait(lambda: world.posts(dm), "the DM's answer")
            server.start()
            again = await ask(world, "Back?")
    for reply in (refusal, clicked, moderated):
        assert reply.ephemeral
        assert "The queue is unavailable right now" in reply.content
    assert "The queue is unavailable right now" in dm_reply.content
    assert "Queued" in again.content
