"""The bot's `/metrics` and `/healthz`, served from the real bot connected to the fake Discord."""

from __future__ import annotations

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from devtools.redis_server import throwaway_redis
from devtools.rq_threads import ThreadWorkers
from tests.bot.conftest import World
from tests.bot.test_cancel_and_faults import ask
from tests.conftest import free_port


async def get(url: str) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=5) as http:
        return await http.get(url)


async def samples(url: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for family in text_string_to_metric_families((await get(f"{url}/metrics")).text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


async def test_metrics_count_requests_and_deliveries(world: World, workers: ThreadWorkers) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    world.settings = world.settings.model_copy(update={"bot_http_port": port})
    async with world.bot():
        before = await samples(url)
        status = await ask(world)
        await world.wait(lambda: "Solved" in status.content, "solved")
        after = await samples(url)
        health = await get(f"{url}/healthz")
    delivered = "fathom_deliveries_total{result=delivered}"
    assert after[delivered] == before.get(delivered, 0.0) + 1
    assert after["fathom_discord_requests_total{}"] > before["fathom_discord_requests_total{}"]
    assert health.status_code == 200
    assert health.text.strip() == "ok"


async def test_healthz_goes_unhealthy_when_redis_stops(world: World) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with throwaway_redis() as server:
        world.settings = world.settings.model_copy(
            update={"bot_http_port": port, "redis_url": server.url()}
        )
        async with world.bot():
            healthy = await get(f"{url}/healthz")
            server.stop()
            unhealthy = await get(f"{url}/healthz")
            server.start()
    assert healthy.status_code == 200
    assert unhealthy.status_code == 503
    assert "Redis does not answer" in unhealthy.text
