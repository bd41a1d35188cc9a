"""Moderators and operators in control: `/queue`, `/fathom-settings`, the mod-log, and `fathom
queue` in a shell doing the same, against the fake Discord, real Redis and real RQ workers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from typing import Any

import discord
import pytest
import redis
from PIL import Image

from devtools.fakediscord import ChannelRecord, InteractionRecord, MessageRecord, UserRecord
from devtools.rq_threads import ThreadWorkers
from fathom import admin
from fathom.events import load_result
from fathom.queue import solve_queue
from simulator.server import SimulatorServer
from tests.bot.conftest import World
from tests.bot.test_cancel_and_faults import ask
from tests.bot.test_input_checks import nothing_enqueued


async def run(
    world: World,
    command: str,
    user: UserRecord,
    options: dict[str, Any] | None = None,
    channel: ChannelRecord | None = None,
) -> MessageRecord:
    """A moderator's command; its (first) reply."""
    interaction = await world.fake.send_slash_command(
        command, user=user, channel=channel or world.channel, options=options or {}
    )
    return await reply_to(world, interaction)


async def reply_to(world: World, interaction: InteractionRecord) -> MessageRecord:
    await world.fake.wait_for_ack(interaction)
    replies = await world.fake.wait_for_responses(interaction)
    return replies[-1]


def open_to_everyone(world: World) -> None:
    """What a server's admins may do in Integrations: offer the moderators' commands to every
    member, whatever their default permissions say (the bot must still refuse them)."""
    for command in ("queue", "fathom-settings"):
        world.fake.override_command_permissions(world.guild, command, everyone=True)


def admin_member(world: World) -> UserRecord:
    """A member whose role has Manage Server (and no moderator role)."""
    user = world.fake.create_user("admin")
    role = world.fake.create_role(world.guild, "admins", discord.Permissions(manage_guild=True))
    world.fake.add_member(world.guild, user, roles=[role])
    return user


def fathom_queue(*args: str) -> subprocess.CompletedProcess[str]:
    """`fathom queue ...` in a shell (the environment points at the test's Redis)."""
    return subprocess.run(
        [sys.executable, "-m", "cli", "queue", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )


def only_job(world: World) -> str:
    [ticket] = admin.guild_tickets(world.redis, world.guild.id)
    return ticket.job_id


async def test_a_member_without_rights_is_refused_and_nothing_changes(world: World) -> None:
    async with world.bot():
        open_to_everyone(world)
        for command in ("queue status", "queue pause", "queue clear", "fathom-settings show"):
            refusal = await run(world, command, world.student)
            assert refusal.ephemeral
            assert "Only this server's moderators" in refusal.content
    assert admin.guild_pause(world.redis, world.guild.id) is None
    assert admin.audit_log(world.redis) == []


async def test_the_moderator_role_and_manage_server_each_pass(world: World) -> None:
    async with world.bot():
        open_to_everyone(world)
        by_role = await run(world, "queue status", world.moderator)
        by_permission = await run(world, "queue status", admin_member(world))
        # Naming who moderates needs more than the moderator role.
        refused = await run(world, "fathom-settings roles", world.moderator, {"which": "moderator"})
    for status in (by_role, by_permission):
        assert status.ephemeral
        [embed] = status.embeds
        assert embed["title"] == "Queue status"
        names = [field["name"] for field in embed["fields"]]
        assert names[:3] == ["Waiting here (0)", "Being solved here (0)", "Failed here (24 h)"]
    assert "Only this server's admins" in refused.content


async def test_pause_refuses_new_questions_until_resumed(world: World) -> None:
    async with world.bot():
        open_to_everyone(world)
        paused = await run(world, "queue pause", world.moderator)
        asked = await world.fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "1+1?"}
        )
        refusal = await reply_to(world, asked)
        assert nothing_enqueued(world.redis, world)
        await run(world, "queue resume", world.moderator)
        status = await ask(world, "1+1?")
    assert "paused" in paused.content
    assert refusal.ephemeral
    assert "paused by the moderators" in refusal.content
    assert "Queued" in status.content
    assert solve_queue(world.redis, world.settings).count == 1
    actions = [entry.action for entry in admin.audit_log(world.redis, world.guild.id)]
    assert actions == ["resume", "pause"]


async def test_only_operators_pause_every_worker(world: World) -> None:
    world.settings = world.settings.model_copy(update={"operator_ids": [world.moderator.id]})
    async with world.bot():
        open_to_everyone(world)
        refused = await run(world, "queue pause", admin_member(world), {"scope": "everywhere"})
        done = await run(world, "queue pause", world.moderator, {"scope": "everywhere"})
        assert admin.status(world.redis, world.settings, None).suspended
        await run(world, "queue resume", world.moderator, {"scope": "everywhere"})
    assert "Only the bot's operators" in refused.content
    assert "Every worker stops" in done.content
    assert not admin.status(world.redis, world.settings, None).suspended


async def test_cancel_a_waiting_question_by_its_id_tells_the_asker_who(world: World) -> None:
    async with world.bot():
        open_to_everyone(world)
        status = await ask(world)
        job_id = only_job(world)
        reply = await run(world, "queue cancel", world.moderator, {"job": job_id[:8]})
        thread = await world.thread()
        [notice] = await world.wait(lambda: world.posts(thread), "the cancellation notice")
        await world.wait(lambda: "Cancelled" in status.content, "the status")
    assert "1 taken off the queue" in reply.content
    assert "Cancelled by a moderator (moderator)." in notice.content
    assert solve_queue(world.redis, world.settings).count == 0


async def test_cancel_every_question_of_a_member_stops_the_running_one(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.tokens_per_s = 60.0
    fake_tgi.config.completion_tokens = 3000
    async with world.bot():
        open_to_everyone(world)
        status = await ask(world)
        await world.wait(lambda: "Thinking" in status.content, "thinking")
        assert await fake_tgi.wait_until_async(lambda stats: stats.active_streams == 1)
        reply = await run(world, "queue cancel", world.moderator, {"member": world.student})
        assert await fake_tgi.wait_until_async(lambda stats: stats.active_streams == 0)
        thread = await world.thread()
        notice = await world.wait(lambda: world.posts(thread), "the cancellation notice")
    assert "1 being stopped" in reply.content
    assert "Cancelled by a moderator (moderator)." in notice[0].content
    assert fake_tgi.stats.disconnects == 1


async def test_clear_drops_waiting_questions_only_once_confirmed(world: World) -> None:
    classmate_place = world.channel
    async with world.bot():
        open_to_everyone(world)
        await ask(world, "First?")
        asked = await world.fake.send_slash_command(
            "solve", user=world.classmate, channel=classmate_place, options={"question": "2?"}
        )
        await reply_to(world, asked)
        offer = await run(world, "queue clear", world.moderator)
        offered = offer.content
        kept = await world.fake.click_button(
            offer, _custom_id(offer, "Keep them"), user=world.moderator
        )
        await world.fake.wait_for_ack(kept)
        assert solve_queue(world.redis, world.settings).count == 2
        again = await run(world, "queue clear", world.moderator)
        confirm = await world.fake.click_button(
            again, _custom_id(again, "Drop them"), user=world.moderator
        )
        await world.fake.wait_for_ack(confirm)
        await world.wait(
            lambda: solve_queue(world.redis, world.settings).count == 0, "the queue emptied"
        )
    assert "Drop the 2 questions" in offered
    assert offer.ephemeral
    assert offer.content == "Nothing was dropped."
    assert again.content.startswith("Dropped 2 waiting questions")
    entries = admin.audit_log(world.redis, world.guild.id)
    assert [entry.action for entry in entries] == ["clear"]
    assert len(entries[0].job_ids) == 2


def _custom_id(message: MessageRecord, label: str) -> str:
    for row in message.components:
        for component in row.get("components", []):
            if component.get("label") == label:
                return str(component["custom_id"])
    raise LookupError(f"no button {label!r}")


async def test_block_and_unblock_a_member(world: World) -> None:
    async with world.bot():
        open_to_everyone(world)
        blocked = await run(
            world, "fathom-settings block", world.moderator, {"member": world.student}
        )
        asked = await world.fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "1+1?"}
        )
        refusal = await reply_to(world, asked)
        assert nothing_enqueued(world.redis, world)
        await run(world, "fathom-settings unblock", world.moderator, {"member": world.student})
        status = await ask(world, "1+1?")
    assert "blocked from asking here" in blocked.content
    assert "blocked you from asking" in refusal.content
    assert "Queued" in status.content


async def test_per_server_limits_apply_and_bad_values_change_nothing(world: World) -> None:
    other = world.fake.create_text_channel(world.guild, "off-topic")
    async with world.bot():
        open_to_everyone(world)
        bad = await run(
            world,
            "fathom-settings set",
            world.moderator,
            {"setting": "max_pending_per_member", "value": "lots"},
        )
        too_big = await run(
            world,
            "fathom-settings set",
            world.moderator,
            {"setting": "max_pending_per_member", "value": "500"},
        )
        shown = await run(
            world,
            "fathom-settings set",
            world.moderator,
            {"setting": "max_question_chars", "value": "40"},
        )
        too_long = await world.fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "x" * 41}
        )
        long_refusal = await reply_to(world, too_long)
        await run(
            world, "fathom-settings set", world.moderator, {"setting": "daily_quota", "value": "1"}
        )
        await ask(world, "First of the day?")
        second = await world.fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "Again?"}
        )
        quota_refusal = await reply_to(world, second)
        await run(
            world, "fathom-settings channels", world.moderator, {"action": "add", "channel": other}
        )
        elsewhere = await world.fake.send_slash_command(
            "solve", user=world.classmate, channel=world.channel, options={"question": "Here?"}
        )
        channel_refusal = await reply_to(world, elsewhere)
    assert bad.content.startswith("Not changed — `max_pending_per_member`: expected a whole")
    assert too_big.content.startswith("Not changed — `max_pending_per_member`:")
    [embed] = shown.embeds
    assert "Question length: 40 characters" in embed["fields"][2]["value"]
    assert "the limit is 40" in long_refusal.content
    assert "your 1 questions for today" in quota_refusal.content
    assert f"<#{other.id}>" in channel_refusal.content
    changes = [
        e for e in admin.audit_log(world.redis, world.guild.id) if e.action.startswith("settings")
    ]
    assert [e.action for e in changes] == [
        "settings: channels",
        "settings: daily_quota",
        "settings: max_question_chars",
    ]
    assert changes[-1].before == {"max_question_chars": None}
    assert changes[-1].after == {"max_question_chars": 40}


async def test_stats_is_a_chart(world: World, workers: ThreadWorkers) -> None:
    async with world.bot():
        open_to_everyone(world)
        status = await ask(world)
        await world.wait(lambda: "Solved" in status.content, "solved")
        reply = await run(world, "queue stats", world.moderator)
    assert reply.ephemeral
    chart = Image.open(io.BytesIO(reply.file("queue-stats.png").data))
    assert chart.format == "PNG"
    assert chart.size[0] >= 600
    assert "1 question finished" in reply.content


async def test_every_action_is_posted_to_the_modlog_without_pinging(world: World) -> None:
    modlog = world.fake.create_text_channel(world.guild, "mod-log")
    async with world.bot():
        open_to_everyone(world)
        await run(world, "fathom-settings modlog", world.moderator, {"channel": modlog})
        await run(world, "queue pause", world.moderator)
        await run(world, "fathom-settings block", world.moderator, {"member": world.student})
        done = fathom_queue("resume", "--guild", str(world.guild.id))
        assert done.returncode == 0, done.stderr
        posts = await world.wait(
            lambda: world.posts(modlog) if len(world.posts(modlog)) >= 4 else None, "the posts"
        )
    texts = [post.content for post in posts]
    assert texts[0].startswith("**settings: mod-log** by a moderator (moderator)")
    assert f"→ `{{'modlog_channel_id': {modlog.id}}}`" in texts[0]
    assert texts[1].startswith("**pause** by a moderator (moderator)")
    assert texts[2].startswith("**block** by a moderator (moderator)")
    assert texts[3].startswith("**resume** by an operator (")
    assert all(not post.pings_anyone for post in posts)


async def test_the_shell_commands_do_what_the_discord_ones_do(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    guild = str(world.guild.id)
    fake_tgi.config.tokens_per_s = 30.0
    fake_tgi.config.completion_tokens = 3000
    async with world.bot():
        open_to_everyone(world)
        assert fathom_queue("pause", "--guild", guild).returncode == 0
        asked = await world.fake.send_slash_command(
            "solve", user=world.student, channel=world.channel, options={"question": "1+1?"}
        )
        refusal = await reply_to(world, asked)
        assert fathom_queue("resume", "--guild", guild).returncode == 0
        status = await ask(world)
        await world.wait(lambda: "Thinking" in status.content, "thinking")
        shown = fathom_queue("status", "--guild", guild, "--json")
        job_id = only_job(world)
        cancelled = fathom_queue("cancel", job_id, "--guild", guild)
        thread = await world.thread()
        [notice] = await world.wait(lambda: world.posts(thread), "the cancellation notice")
        await world.wait(lambda: load_result(world.redis, job_id) is not None, "the outcome")
        fake_tgi.config.tokens_per_s = 20000.0
        fake_tgi.config.completion_tokens = 120
        again = fathom_queue("retry", job_id)
        retry_status = await world.wait(
            lambda: next((m for m in world.posts(thread) if "Asked again" in m.content), None),
            "the retry's status message",
        )
        delivered = await world.wait(
            lambda: next(
                (m for m in world.posts(thread) if m.id > retry_status.id and m.attachments),
                None,
            ),
            "the retried answer",
            within=30.0,
        )
        await world.wait(lambda: "Solved" in retry_status.content, "the retry solved")
    assert "paused by the moderators" in refusal.content
    snapshot = json.loads(shown.stdout)
    assert {"queued", "running", "failed", "workers", "paused"} <= set(snapshot)
    assert [view["job_id"] for view in snapshot["running"]] == [job_id]
    assert cancelled.returncode == 0
    assert "Cancelled by an operator (" in notice.content
    assert again.returncode == 0, again.stderr
    assert "asked again as" in again.stdout
    assert retry_status.reference is None  # in the thread, not a reply
    assert delivered.channel_id == thread.id


async def test_failed_lists_the_reason_and_retry_runs_it_again(
    world: World, workers: ThreadWorkers, fake_tgi: SimulatorServer
) -> None:
    fake_tgi.config.fail_after_tokens = 3
    fake_tgi.config.fault_requests = 1
    async with world.bot():
        open_to_everyone(world)
        status = await ask(world)
        await world.wait(lambda: "Not solved" in status.content, "the failure")
        job_id = only_job_finished(world)
        failed = await run(world, "queue failed", world.moderator)
        retried = await run(world, "queue retry", world.moderator, {"job": job_id[:10]})
        thread = await world.thread()
        answer = await world.wait(
            lambda: next((m for m in world.posts(thread) if m.attachments), None),
            "the retried answer",
            within=30.0,
        )
    assert job_id[:8] in failed.content
    assert "The model server reported an error" in failed.content or "failed" in failed.content
    assert "Queued again" in retried.content
    assert answer.channel_id == thread.id


def only_job_finished(world: World) -> str:
    [outcome] = admin.outcomes(world.redis, world.guild.id, 0)
    return outcome.job_id


def test_shell_status_without_redis_says_why() -> None:
    env = {**os.environ, "FATHOM_REDIS_URL": "redis://127.0.0.1:1/0"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "queue", "status"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert done.returncode == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr


@pytest.mark.parametrize("guild", [None, 42])
def test_shell_status_json_has_the_fields_operators_script_against(
    redis_conn: redis.Redis, guild: int | None
) -> None:
    args = ["status", "--json"] + ([] if guild is None else ["--guild", str(guild)])
    done = fathom_queue(*args)
    assert done.returncode == 0, done.stderr
    snapshot = json.loads(done.stdout)
    assert {"queued", "running", "failed", "workers", "paused", "depth", "models"} <= set(snapshot)


async def test_cancel_picked_from_a_menu_of_this_servers_questions(world: World) -> None:
    async with world.bot():
        open_to_everyone(world)
        await ask(world, "Pick me?")
        job_id = only_job(world)
        menu = await run(world, "queue cancel", world.moderator)
        [select] = [
            component
            for row in menu.components
            for component in row.get("components", [])
            if component.get("type") == 3
        ]
        options = [option["value"] for option in select["options"]]
        chosen = await world.fake.choose(
            menu, str(select["custom_id"]), [job_id], user=world.moderator
        )
        await world.fake.wait_for_ack(chosen)
        thread = await world.thread()
        notice = await world.wait(lambda: world.posts(thread), "the cancellation notice")
    assert options == [job_id]
    assert menu.content.startswith("Cancelled: 1 taken off the queue")
    assert "Cancelled by a moderator (moderator)." in notice[0].content
