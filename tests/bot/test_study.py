"""Study mode end to end: a server turns it on with /fathom-settings, and every step of a
solution arrives behind a spoiler (pictures as SPOILER_ files), the final answer last; an
asker can turn it on or off for one question."""

from __future__ import annotations

from devtools.rq_threads import ThreadWorkers
from simulator.server import SimulatorServer
from tests.bot.conftest import World, delivery
from tests.bot.test_guild import has_button
from tests.bot.test_moderation import open_to_everyone, run


async def solve(world: World, **options: object) -> None:
    interaction = await world.fake.send_slash_command(
        "solve",
        user=world.student,
        channel=world.channel,
        options={"question": "What is the sum of the first 100 positive integers?", **options},
    )
    await world.fake.wait_for_ack(interaction)
    await world.fake.wait_for_responses(interaction)


async def test_a_server_in_study_mode_gets_every_step_behind_a_spoiler(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 2000.0
    fake_tgi.config.completion_tokens = 300
    async with world.bot() as bot:
        open_to_everyone(world)
        changed = await run(
            world,
            "fathom-settings set",
            world.moderator,
            {"setting": "study_mode", "value": "yes"},
        )
        await solve(world)
        thread = await world.thread()
        posts = await world.wait(
            lambda: (p := world.posts(thread)) and has_button(p[-1], "fathom:again:") and p,
            "the solution",
        )
        await world.wait(lambda: not delivery(bot).following(), "settled")
    assert "Study mode by default: yes" in changed.embeds[0]["fields"][2]["value"]
    text = "\n".join(post.content for post in posts)
    assert "📖 **Study mode:**" in posts[0].content
    steps = [line for line in text.split("\n") if line.strip() and not line.startswith("-#")]
    hidden = [line for line in steps if "||" in line]
    assert len(hidden) >= len(steps) - 1  # every step but the study note
    assert "**Final answer:** ||" in posts[-1].content
    names = [a.filename for post in posts for a in post.attachments]
    assert names
    assert all(name.startswith("SPOILER_") for name in names)


async def test_the_asker_can_turn_study_mode_off_for_one_question(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 2000.0
    fake_tgi.config.completion_tokens = 300
    async with world.bot() as bot:
        open_to_everyone(world)
        await run(
            world,
            "fathom-settings set",
            world.moderator,
            {"setting": "study_mode", "value": "yes"},
        )
        await solve(world, study=False)
        thread = await world.thread()
        posts = await world.wait(
            lambda: (p := world.posts(thread)) and has_button(p[-1], "fathom:again:") and p,
            "the solution",
        )
        await world.wait(lambda: not delivery(bot).following(), "settled")
    assert not any("||" in post.content for post in posts)
    assert not any(a.filename.startswith("SPOILER_") for post in posts for a in post.attachments)
