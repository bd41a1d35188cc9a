"""The bot's window: `/metrics` (Prometheus) and `/healthz` on one HTTP endpoint, served from
the bot's own event loop. The bot is one long-lived process, so its counters live in it; the
jobs' and queues' metrics are the worker pool's endpoint's (worker.observe)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry(auto_describe=True)
DISCORD_REQUESTS = Counter(
    "fathom_discord_requests", "Bot-token REST requests sent to Discord.", registry=REGISTRY
)
DISCORD_ERRORS = Counter(
    "fathom_discord_api_errors",
    "Bot-token REST requests Discord answered with an error, by HTTP status.",
    ["status"],
    registry=REGISTRY,
)
DELIVERIES = Counter(
    "fathom_deliveries",
    "Outcomes delivered to askers (delivered), or given up after every try (postponed).",
    ["result"],
    registry=REGISTRY,
)
FOLLOWING = Gauge(
    "fathom_bot_jobs_followed", "Jobs whose outcome the bot has not shown yet.", registry=REGISTRY
)
GATEWAY_LATENCY = Gauge(
    "fathom_discord_gateway_latency_seconds",
    "Heartbeat round trip to Discord's gateway.",
    registry=REGISTRY,
)

Check = Callable[[], Awaitable[tuple[bool, str]]]


async def start(host: str, port: int, check: Check) -> web.AppRunner:
    """Serve `/metrics` and `/healthz` (200 when `check` says healthy, else 503 and why)."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def healthz(_request: web.Request) -> web.Response:
        healthy, why = await check()
        return web.Response(text=why + "\n", status=200 if healthy else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("bot: /metrics and /healthz on %s:%d", host, port)
    return runner
