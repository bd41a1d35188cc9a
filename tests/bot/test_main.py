"""`fathom bot` startup: the token check and where discord.py is pointed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import discord.gateway
import discord.http
import pytest
import redis

from bot.main import point_at_discord, run_bot
from devtools.fakediscord import FakeDiscord
from fathom.settings import Settings, get_settings
from simulator.server import SimulatorServer
from tests.conftest import free_port


@pytest.fixture
def restore_endpoints() -> Iterator[None]:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


def test_without_a_token_it_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FATHOM_DISCORD_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        assert run_bot() == 2
    finally:
        get_settings.cache_clear()
    assert "FATHOM_DISCORD_TOKEN" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_endpoints")
def test_a_proxy_or_fake_discord_is_used_when_configured() -> None:
    point_at_discord(
        Settings(
            discord_api_url="http://127.0.0.1:9999/api/v10/",
            discord_gateway_url="ws://127.0.0.1:9999/",
        )
    )
    assert discord.http.Route.BASE == "http://127.0.0.1:9999/api/v10"
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9999/"


@pytest.mark.usefixtures("restore_endpoints")
def test_discords_own_endpoints_stay_by_default() -> None:
    base = discord.http.Route.BASE
    point_at_discord(Settings())
    assert base == discord.http.Route.BASE


async def run_bot_process(fake: FakeDiscord, **env: str) -> tuple[int, str]:
    """`fathom bot` as its own process against the fake; its exit code and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "bot",
        env={**os.environ, **fake.env(), **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_a_refused_message_content_intent_says_what_to_tick(
    fake_discord: FakeDiscord, redis_conn: redis.Redis
) -> None:
    fake_discord.privileged_intents_enabled = 0
    code, stderr = await run_bot_process(fake_discord)
    assert code == 2
    assert "MESSAGE CONTENT INTENT" in stderr
    assert "FATHOM_DISCORD_MESSAGE_CONTENT_INTENT=false" in stderr


async def test_sigterm_stops_the_bot_cleanly(
    fake_discord: FakeDiscord, redis_conn: redis.Redis
) -> None:
    """`docker compose stop` sends SIGTERM: the bot closes its session and exits with 0."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "bot",
        env={**os.environ, **fake_discord.env()},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await fake_discord.wait_until_connected(timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert "stopping" in stderr.decode()


def run_bot_pointed_at(api_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FATHOM_DISCORD_TOKEN": "a-token",
        "FATHOM_DISCORD_API_URL": api_url,
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", "bot"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_no_route_to_discord_says_which(redis_conn: redis.Redis) -> None:
    refused = run_bot_pointed_at(f"http://127.0.0.1:{free_port()}/api/v10")
    unresolved = run_bot_pointed_at("https://discord.invalid/api/v10")
    assert refused.returncode == 3
    assert "cannot connect to 127.0.0.1" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert unresolved.returncode == 3
    assert "cannot resolve discord.invalid (DNS)" in unresolved.stderr
    assert "Traceback" not in unresolved.stderr


def test_tls_to_a_plain_http_server_says_so(
    redis_conn: redis.Redis, fake_tgi: SimulatorServer
) -> None:
    done = run_bot_pointed_at(fake_tgi.url.replace("http://", "https://") + "/api/v10")
    assert done.returncode == 3
    assert "the TLS connection to 127.0.0.1 failed" in done.stderr


async def test_a_bad_token_says_what_to_do(
    fake_discord: FakeDiscord, redis_conn: redis.Redis
) -> None:
    code, stderr = await run_bot_process(fake_discord, FATHOM_DISCORD_TOKEN="wrong")
    assert code == 2
    assert "Discord refused the token" in stderr
