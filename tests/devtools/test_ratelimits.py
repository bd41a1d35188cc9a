"""Rate limits: injected 429s that discord.py retries, headers that pace it, real 429s counted."""

from __future__ import annotations

import time

import aiohttp
import discord

from devtools.fakediscord import FakeDiscord
from devtools.fakediscord.client import running

EDIT_ROUTE = "/channels/{channel_id}/messages/{message_id}"


def make_client() -> discord.Client:
    return discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)


async def test_injected_429_is_retried_by_discord_py(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    client = make_client()
    async with running(client, fake_discord):
        text_channel = client.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        sent = await text_channel.send("progress 0%")
        fake_discord.fail_next("PATCH", EDIT_ROUTE, count=2, retry_after=0.05)
        await sent.edit(content="progress 50%")

    edits = fake_discord.requests_to("PATCH", f"PATCH {EDIT_ROUTE}")
    assert [r.status for r in edits] == [429, 429, 200]
    assert all(r.injected for r in edits[:2])
    assert fake_discord.injected_429s == 2
    assert fake_discord.self_inflicted_429s == 0
    assert fake_discord.messages[sent.id].content == "progress 50%"


async def test_headers_pace_discord_py_without_429s(fake_discord: FakeDiscord) -> None:
    fake_discord.limiter.rules[f"PATCH {EDIT_ROUTE}"] = (2, 0.3)
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    client = make_client()
    async with running(client, fake_discord):
        text_channel = client.get_channel(channel.id)
        assert isinstance(text_channel, discord.TextChannel)
        sent = await text_channel.send("0")
        started = time.monotonic()
        for step in range(1, 6):
            await sent.edit(content=str(step))
        elapsed = time.monotonic() - started

    assert fake_discord.self_inflicted_429s == 0
    assert elapsed >= 0.5  # five edits through a 2-per-0.3 s bucket wait out two resets
    assert [r.content for r in fake_discord.messages[sent.id].edits] == ["1", "2", "3", "4", "5"]


async def test_a_client_ignoring_headers_earns_counted_429s(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.create_guild()
    channel = fake_discord.create_text_channel(guild)
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    url = f"{fake_discord.api_url}/channels/{channel.id}/messages"
    async with aiohttp.ClientSession(headers=headers) as session:
        statuses = []
        for i in range(6):
            async with session.post(url, json={"content": str(i)}) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert response.headers["Via"]
                    assert response.headers["Content-Type"] == "application/json"
                    body = await response.json()
                    assert body["global"] is False
                    assert body["retry_after"] > 0
                else:
                    assert response.headers["X-RateLimit-Limit"] == "5"
                    assert int(response.headers["X-RateLimit-Remaining"]) == 4 - i
    assert statuses == [200] * 5 + [429]
    assert fake_discord.self_inflicted_429s == 1


async def test_global_limit_applies_to_bot_routes_only(fake_discord: FakeDiscord) -> None:
    fake_discord.limiter.global_per_second = 3
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        statuses = []
        for _ in range(4):
            async with session.get(f"{fake_discord.api_url}/users/@me") as response:
                statuses.append(response.status)
                last = await response.json()
    assert statuses == [200, 200, 200, 429]
    assert last["global"] is True
