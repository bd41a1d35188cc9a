"""`/solve … samples:k` end to end: k samples on real workers against the simulator (which
answers differently per seed), one status message following them, one answer with its
agreement, the caps and quotas counted k-fold, and Cancel closing every sample's stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from bot import keys as bot_keys
from bot.guild_settings import GuildSettings
from devtools.fakediscord import MessageRecord
from devtools.rq_threads import ThreadWorkers
from fathom.contract import SolveStatus
from fathom.events import load_result
from fathom.settings import Settings
from simulator.server import SimulatorServer
from tests.bot.conftest import World, delivery
from tests.bot.test_cancel_and_faults import button
from tests.bot.test_guild import has_button
from tests.bot.test_input_checks import nothing_enqueued


@pytest.fixture
def three_workers(bot_settings: Settings) -> Iterator[ThreadWorkers]:
    pool = ThreadWorkers(bot_settings, solve=3)
    pool.start()
    yield pool
    pool.stop()


def set_rules(world: World, **chosen: Any) -> None:
    rules = GuildSettings.model_validate_json(
        world.redis.get(bot_keys.guild_settings(world.guild.id)) or b"{}"
    )
    updated = rules.model_copy(update=chosen)
    world.redis.set(bot_keys.guild_settings(world.guild.id), updated.model_dump_json())


async def ask_samples(world: World, samples: int, question: str = "What is 6*7?") -> MessageRecord:
    """/solve with samples; the asker's (ephemeral) reply."""
    interaction = await world.fake.send_slash_command(
        "solve",
        user=world.student,
        channel=world.channel,
        options={"question": question, "samples": samples},
    )
    await world.fake.wait_for_ack(interaction)
    replies = await world.fake.wait_for_responses(interaction)
    return replies[-1]


def only_promise(conn: redis.Redis) -> str:
    [job_id] = conn.hkeys(bot_keys.PROMISED)
    return job_id.decode() if isinstance(job_id, bytes) else str(job_id)


async def test_samples_are_followed_as_one_question_and_answered_with_their_agreement(
    world: World, three_workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 400.0
    fake_tgi.config.completion_tokens = 300
    fake_tgi.config.wrong_answer_rate = 0.0
    fake_tgi.config.rewritten_answer_rate = 0.5
    async with world.bot() as bot:
        reply = await ask_samples(world, 3)
        job_id = only_promise(world.redis)
        status = world.posts(world.channel)[0]
        await world.wait(lambda: "Sampling" in status.content, "the samples' progress")
        sampling = status.content
        thread = await world.thread()
        await world.wait(lambda: "Solved" in status.content, "the final status", within=30)
        await world.wait(lambda: not delivery(bot).following(), "settled")
    posts = world.posts(thread)
    assert "(3 samples)" in reply.content
    assert "of 3 samples done" in sampling
    assert "3 of 3 samples agree" in status.content
    assert "**3 of 3 samples agree** on this answer." in posts[0].content
    assert sum(has_button(m, "fathom:again:") for m in posts) == 1
    assert len(world.posts(world.channel)) == 1  # one status message for the whole
    result = load_result(world.redis, job_id)
    assert result is not None
    assert result.status is SolveStatus.SOLVED
    assert result.consensus is not None
    assert result.consensus.votes == 3


async def test_more_samples_than_the_server_allows_are_refused_and_nothing_queued(
    world: World,
) -> None:
    set_rules(world, max_samples=2)
    async with world.bot():
        refusal = await ask_samples(world, 3)
    assert refusal.ephemeral
    assert "the most allowed here is 2" in refusal.content
    assert nothing_enqueued(world.redis, world)


async def test_samples_count_against_the_daily_quota_each(world: World) -> None:
    set_rules(world, daily_quota=4)
    async with world.bot():
        first = await ask_samples(world, 3)
        second = await ask_samples(world, 2, "What is 5*5?")
    assert "Queued" in first.content
    assert second.ephemeral
    assert "counts 2 towards your 4 questions a day here, and 1 is left" in second.content
    assert world.redis.hlen(bot_keys.PROMISED) == 1


async def test_cancel_stops_every_sample_and_closes_their_streams(
    world: World, three_workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 40.0
    fake_tgi.config.completion_tokens = 3000
    fake = world.fake
    async with world.bot():
        await ask_samples(world, 3)
        job_id = only_promise(world.redis)
        status = world.posts(world.channel)[0]
        await world.wait(lambda: fake_tgi.stats.active_streams == 3, "three samples streaming")
        click = await fake.click_button(
            status, button(status, "fathom:cancel:"), user=world.student
        )
        [reply] = await fake.wait_for_responses(click)
        await world.wait(lambda: fake_tgi.stats.active_streams == 0, "every stream closed")
        await world.wait(lambda: "Cancelled" in status.content, "the status says cancelled")
        thread = await world.thread()
        [notice] = await world.wait(lambda: world.posts(thread), "the cancellation notice")
    assert "Stopping" in reply.content
    assert "Cancelled" in notice.content
    result = load_result(world.redis, job_id)
    assert result is not None
    assert result.status is SolveStatus.CANCELLED
    assert fake_tgi.stats.disconnects >= 3
