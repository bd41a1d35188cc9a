"""Cancel (queued and running), honest outcomes, a 429 mid-delivery, a restart mid-job."""

from __future__ import annotations

import re

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from bot import keys as bot_keys
from devtools.fakediscord import MessageRecord
from devtools.rq_threads import ThreadWorkers
from fathom import keys
from fathom.settings import get_settings
from simulator.server import SimulatorServer
from tests.bot.conftest import World, delivery
from tests.bot.test_guild import has_button
from tests.conftest import free_port


def button(message: MessageRecord, prefix: str) -> str:
    return next(c for c in message.custom_ids() if c.startswith(prefix))


def queued(conn: redis.Redis, world: World) -> int:
    return Queue(world.settings.solve_queue, connection=conn, serializer=JSONSerializer).count


async def ask(world: World, question: str = "What is 6*7?") -> MessageRecord:
    """/solve in the channel; returns the status message."""
    interaction = await world.fake.send_slash_command(
        "solve", user=world.student, channel=world.channel, options={"question": question}
    )
    await world.fake.wait_for_ack(interaction)
    await world.fake.wait_for_responses(interaction)
    found: list[MessageRecord] = await world.wait(lambda: world.posts(world.channel)[-1:], "status")
    return found[0]


async def test_cancel_while_queued_by_the_asker_not_by_a_classmate(world: World) -> None:
    fake = world.fake
    async with world.bot():
        status = await ask(world)
        cancel = button(status, "fathom:cancel:")
        refused = await fake.click_button(status, cancel, user=world.classmate)
        [refusal] = await fake.wait_for_responses(refused)
        assert queued(world.redis, world) == 1
        click = await fake.click_button(status, cancel, user=world.student)
        [reply] = await fake.wait_for_responses(click)
        thread = await world.thread()
        notice = await world.wait(lambda: world.posts(thread), "the cancellation notice")
        await world.wait(lambda: "Cancelled" in status.content, "the status says cancelled")
    assert refusal.ephemeral
    assert "Only the person who asked" in refusal.content
    assert reply.ephemeral
    assert "still waiting" in reply.content
    assert queued(world.redis, world) == 0
    assert "Cancelled" in notice[0].content
    assert status.components == []


async def test_a_moderator_cancels_a_running_job_and_the_reasoning_stays_readable(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 60.0
    fake_tgi.config.completion_tokens = 3000
    fake = world.fake
    async with world.bot():
        status = await ask(world)
        # Tokens already streamed (the first "Thinking" is shown before the request is sent).
        await world.wait(lambda: re.search(r"Thinking · [1-9]", status.content), "thinking")
        click = await fake.click_button(
            status, button(status, "fathom:cancel:"), user=world.moderator
        )
        [reply] = await fake.wait_for_responses(click)
        thread = await world.thread()
        [notice] = await world.wait(lambda: world.posts(thread), "the cancellation notice")
        await world.wait(lambda: "Cancelled" in status.content, "the status says cancelled")
        show = await fake.click_button(
            notice, button(notice, "fathom:reasoning:"), user=world.classmate
        )
        [reasoning] = await fake.wait_for_responses(show)
    assert "Stopping" in reply.content
    assert "Cancelled by a moderator (moderator)." in notice.content
    assert reasoning.ephemeral
    assert "partial" in reasoning.content
    assert reasoning.file("reasoning.md").data.strip()


async def test_truncated_at_the_budget_says_so_with_the_partial_reasoning(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.max_total_tokens = 700
    fake_tgi.config.completion_tokens = 2000
    async with world.bot():
        status = await ask(world)
        thread = await world.thread()
        [notice] = await world.wait(lambda: world.posts(thread), "the outcome")
        await world.wait(lambda: "token budget" in status.content, "the final status")
    assert "budget" in notice.content
    assert "no final answer" in notice.content
    assert has_button(notice, "fathom:reasoning:")
    assert has_button(notice, "fathom:again:")


async def test_model_server_down_is_a_short_specific_message(
    world: World, workers: ThreadWorkers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FATHOM_MODEL_URL", f"http://127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    async with world.bot():
        status = await ask(world)
        thread = await world.thread()
        [notice] = await world.wait(lambda: world.posts(thread), "the outcome")
        await world.wait(lambda: "Not solved" in status.content, "the final status")
    assert "can't be reached" in notice.content
    assert len(notice.content) < 300


async def test_a_429_mid_delivery_is_retried_and_nothing_is_sent_twice(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 300.0
    fake_tgi.config.completion_tokens = 600
    fake = world.fake
    async with world.bot() as bot:
        status = await ask(world)
        thread = await world.thread()
        await world.wait(lambda: "Thinking" in status.content, "thinking")
        fake.fail_next("POST", "/channels/{channel_id}/messages", count=1, retry_after=0.3)
        await world.wait(lambda: "Solved" in status.content, "the final status")
        await world.wait(lambda: not delivery(bot).following(), "settled")
    job_id = _delivered_job(world.redis)
    sent = int(world.redis.hget(bot_keys.delivery_key(job_id), "sent") or 0)
    posts = world.posts(thread)
    assert fake.injected_429s == 1
    assert [r for r in fake.requests if r.injected and r.rate_limited]
    assert len(posts) == sent
    assert len({m.nonce for m in posts}) == len(posts)
    assert sum(has_button(m, "fathom:again:") for m in posts) == 1


async def test_a_restart_while_the_job_runs_resumes_and_delivers_once(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 300.0
    fake_tgi.config.completion_tokens = 900
    async with world.bot():
        status = await ask(world)
        thread = await world.thread()
        await world.wait(lambda: "Thinking" in status.content, "thinking")
    edits_before = len(status.revisions)
    async with world.bot() as bot:
        await world.wait(lambda: "Solved" in status.content, "the final status", within=30)
        await world.wait(lambda: not delivery(bot).following(), "settled")
    posts = world.posts(thread)
    assert len(status.revisions) > edits_before + 1  # it went on updating after the restart
    assert sum(has_button(m, "fathom:again:") for m in posts) == 1
    assert world.redis.hlen(bot_keys.PROMISED) == 0


async def test_a_job_that_ends_while_the_bot_is_down_is_delivered_once_after(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 300.0
    fake_tgi.config.completion_tokens = 300
    async with world.bot():
        status = await ask(world)
        thread = await world.thread()
    await world.wait(
        lambda: world.redis.exists(keys.document_key(_only_promise(world.redis))), "rendered"
    )
    assert world.posts(thread) == []
    async with world.bot() as bot:
        await world.wait(lambda: "Solved" in status.content, "the final status")
        await world.wait(lambda: not delivery(bot).following(), "settled")
    async with world.bot():  # and a second restart sends nothing more
        pass
    posts = world.posts(thread)
    assert sum(has_button(m, "fathom:again:") for m in posts) == 1
    assert not world.redis.exists(keys.document_key(_delivered_job(world.redis)))


def _only_promise(conn: redis.Redis) -> str:
    [job_id] = conn.hkeys(bot_keys.PROMISED)
    return _text(job_id)


def _delivered_job(conn: redis.Redis) -> str:
    [key] = [_text(k) for k in conn.scan_iter(bot_keys.job_key("*")) if _text(k).count(":") == 3]
    return key.rsplit(":", 1)[1]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def test_a_job_rq_ended_without_a_result_is_reported_not_awaited_forever(
    world: World,
) -> None:
    # An operator cancels the queued job with RQ's own tools: no worker ever stores a result
    # or publishes an event for it, so only the bot's reconciliation can tell the asker.
    from bot.logic.outcome import FAILURE_TEXT, WORKER_LOST
    from fathom.contract import FailureCode, SolveStatus
    from fathom.events import load_result
    from fathom.queue import fetch_job

    world.settings = world.settings.model_copy(update={"lost_job_after_s": 0.0})
    async with world.bot() as bot:
        status = await ask(world)
        job_id = _only_promise(world.redis)
        job = fetch_job(world.redis, job_id)
        assert job is not None
        job.cancel()
        await delivery(bot).reconcile()
        thread = await world.thread()
        notice = await world.wait(lambda: world.posts(thread), "the notice")
        await world.wait(lambda: not delivery(bot).following(), "settled")
    assert FAILURE_TEXT[FailureCode.INTERNAL] in notice[0].content
    assert not has_button(status, "fathom:cancel:")
    # The job's end is written like any other, for everyone who looks later.
    result = load_result(world.redis, job_id)
    assert result is not None
    assert result.status is SolveStatus.FAILED
    assert result.failure is not None
    assert result.failure.message == WORKER_LOST
