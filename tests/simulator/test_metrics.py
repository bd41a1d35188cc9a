"""/metrics: TGI's metric names with the simulator's real counts."""

from __future__ import annotations

import asyncio
import re

import httpx2

from simulator.server import SimulatorServer, fast_config

MESSAGES = [{"role": "user", "content": "Compute $7 \\cdot 8$."}]


def sample(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} missing from /metrics"
    return float(match.group(1))


async def test_metrics_count_successes_and_failures(fake_tgi: SimulatorServer) -> None:
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        for _ in range(2):
            ok = await http.post("/v1/chat/completions", json={"messages": MESSAGES})
            assert ok.status_code == 200
        bad = await http.post("/v1/chat/completions", json={"messages": MESSAGES, "top_p": 2})
        fake_tgi.config.overloaded = True
        busy = await http.post("/generate", json={"inputs": "Q"})
        metrics = await http.get("/metrics")
    assert (bad.status_code, busy.status_code) == (422, 429)
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert sample(text, "tgi_request_success") == 2
    assert sample(text, 'tgi_request_failure{err="validation"}') == 1
    assert sample(text, 'tgi_request_failure{err="overloaded"}') == 1
    assert sample(text, "tgi_request_duration_count") == 2
    assert sample(text, "tgi_request_queue_duration_count") == 2
    assert sample(text, "tgi_request_generated_tokens_count") == 2
    assert sample(text, 'tgi_request_generated_tokens_bucket{le="+Inf"}') == 2
    assert sample(text, "tgi_request_generated_tokens_sum") == fake_tgi.stats.generated_tokens
    assert sample(text, "tgi_queue_size") == 0
    assert sample(text, "tgi_batch_current_size") == 0


async def test_metrics_show_the_batch_and_the_queue() -> None:
    with SimulatorServer(fast_config(tokens_per_s=20.0, max_batch_size=1)) as server:
        body = {"messages": MESSAGES, "max_tokens": 1000}
        async with httpx2.AsyncClient(base_url=server.url, timeout=0.5) as http:
            calls = [
                asyncio.create_task(http.post("/v1/chat/completions", json=body)) for _ in range(2)
            ]
            assert await server.wait_until_async(lambda s: s.running == 1 and s.queued == 1)
            text = (await http.get("/metrics")).text
            for call in calls:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        assert sample(text, "tgi_batch_current_size") == 1
        assert sample(text, "tgi_queue_size") == 1
        assert await server.wait_until_async(lambda s: s.active_requests == 0)
