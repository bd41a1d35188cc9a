"""`fathom bot` startup: the token check and where discord.py is pointed."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import discord.gateway
import discord.http
import pytest

from bot.main import point_at_discord, run
from fathom.settings import Settings, get_settings


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
        assert run(argparse.Namespace()) == 2
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
