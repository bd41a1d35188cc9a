"""`/solve` in a server channel, end to end."""

from __future__ import annotations

from devtools.fakediscord import MessageRecord
from devtools.rq_threads import ThreadWorkers
from simulator.server import SimulatorServer
from tests.bot.conftest import World


def has_button(message: MessageRecord, prefix: str) -> bool:
    return any(custom_id.startswith(prefix) for custom_id in message.custom_ids())


async def test_solve_in_a_channel_threads_progress_and_delivers_images(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 400.0
    fake_tgi.config.completion_tokens = 400
    fake = world.fake
    async with world.bot():
        interaction = await fake.send_slash_command(
            "solve",
            user=world.student,
            channel=world.channel,
            options={"question": "What is $1+1$? @everyone <@&1>"},
        )
        ack = await fake.wait_for_ack(interaction)
        thread = await world.thread()
        final = await world.wait(
            lambda: next((m for m in world.posts(thread) if has_button(m, "fathom:again:")), None),
            "the solution's last message",
        )
        status = world.posts(world.channel)[0]
        await world.wait(lambda: "Solved" in status.content, "the final status")
        [confirmation] = await fake.wait_for_responses(interaction)

    assert ack["type"] == 5
    assert ack["at"] < 3.0
    assert confirmation.ephemeral
    assert f"<#{thread.id}>" in confirmation.content
    assert status.thread_id == thread.id
    assert thread.name.startswith("What is $1+1$?")
    assert f"<@{world.student.id}> asked" in status.content
    shown = [revision.content for revision in status.revisions]
    assert "Queued" in shown[0]
    assert any(("Thinking" in text and "▰" in text) or "▱" in text for text in shown)
    assert "Solved" in shown[-1]
    assert status.components == []  # Cancel is gone once it is over
    solution = world.posts(thread)
    assert solution[-1] is final
    assert any(a.filename.endswith(".png") for m in solution for a in m.attachments)
    assert has_button(final, "fathom:reasoning:")
    everything = [*world.posts(world.channel), *solution, confirmation]
    for message in everything:
        assert message.allowed_mentions is not None
        assert message.allowed_mentions.get("parse") == []
        assert not message.pings_anyone
    assert fake.self_inflicted_429s == 0
