"""Running the Discord bot (`fathom bot`)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.client import FathomBot
from fathom.settings import Settings, get_settings

DISCORD_API_URL = "https://discord.com/api/v10"
DISCORD_GATEWAY_URL = "wss://gateway.discord.gg/"

log = logging.getLogger(__name__)


def point_at_discord(settings: Settings) -> None:
    """Send REST calls and the gateway connection where the settings say (a REST proxy, or
    a fake Discord in tests) instead of Discord's own endpoints."""
    if settings.discord_api_url.rstrip("/") != DISCORD_API_URL:
        Route.BASE = settings.discord_api_url.rstrip("/")
    if settings.discord_gateway_url != DISCORD_GATEWAY_URL:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


async def serve(bot: FathomBot, token: str) -> None:
    """Run the bot until its session ends or SIGTERM/SIGINT arrives (`docker compose stop`,
    Ctrl-C); then close it: the gateway is closed cleanly and stopping takes at most
    bot_stop_grace_s plus the closing of the connections."""
    loop = asyncio.get_running_loop()
    closing: set[asyncio.Task[None]] = set()

    def close() -> None:
        log.info("stopping")
        closing.add(loop.create_task(bot.close()))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, close)
    async with bot:
        await bot.start(token)
    # start() returns once the gateway is closed, before FathomBot.close() has closed Redis.
    await asyncio.gather(*closing)


def unreachable(exc: BaseException, api_url: str) -> str:
    """Why Discord could not be reached, in words: name resolution, a refused connection, TLS."""
    host = yarl.URL(api_url).host or api_url
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return (
            f"cannot resolve {host} (DNS): check this host's DNS and network, or "
            "FATHOM_DISCORD_API_URL."
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return (
            f"the TLS connection to {host} failed ({exc}): a proxy intercepting HTTPS, a wrong "
            "system clock or missing CA certificates; or FATHOM_DISCORD_API_URL names an "
            "http:// server with https://."
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            f"cannot connect to {host} ({exc.os_error.strerror or exc.os_error}): a firewall, no "
            "route to the internet, or a REST proxy (FATHOM_DISCORD_API_URL) that is down."
        )
    return f"lost the connection to Discord ({type(exc).__name__}: {exc})."


def run_bot() -> int:
    settings = get_settings()
    if settings.discord_token is None or not settings.discord_token.get_secret_value():
        print(
            "fathom bot: no Discord bot token — set FATHOM_DISCORD_TOKEN to the token of your "
            "application's bot (Discord developer portal → Bot → Reset Token).",
            file=sys.stderr,
        )
        return 2
    point_at_discord(settings)
    discord.utils.setup_logging(level=logging.INFO)
    try:
        asyncio.run(serve(FathomBot(settings), settings.discord_token.get_secret_value()))
    except discord.LoginFailure:
        print(
            "fathom bot: Discord refused the token (FATHOM_DISCORD_TOKEN): copy it again from "
            "the developer portal (Bot → Reset Token).",
            file=sys.stderr,
        )
        return 2
    except (aiohttp.ClientError, OSError) as exc:
        print(f"fathom bot: {unreachable(exc, settings.discord_api_url)}", file=sys.stderr)
        return 3
    except discord.PrivilegedIntentsRequired:
        print(
            "fathom bot: Discord refused the Message Content intent. Turn on MESSAGE CONTENT "
            "INTENT (developer portal → Bot → Privileged Gateway Intents), or set "
            "FATHOM_DISCORD_MESSAGE_CONTENT_INTENT=false (follow-ups in a thread then need a "
            "reply to the bot's message).",
            file=sys.stderr,
        )
        return 2
    return 0
