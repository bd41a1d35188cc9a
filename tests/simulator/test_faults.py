"""Fault injection, each seen through the client the worker uses (huggingface_hub 2.x)."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import HfHubHTTPError, UnknownError

from simulator.server import SimulatorServer, fast_config

MESSAGES = [{"role": "user", "content": "What is the sum of the first 100 positive integers?"}]


async def drain_chat(server: SimulatorServer, read_timeout: float = 10, **kwargs: object) -> str:
    client = AsyncInferenceClient(base_url=server.url, timeout=read_timeout)
    stream = await client.chat_completion(MESSAGES, stream=True, **kwargs)  # type: ignore[call-overload]
    return "".join([chunk.choices[0].delta.content or "" async for chunk in stream])


async def test_overloaded_stream_is_a_422_coded_error_inside_a_200(
    fake_tgi: SimulatorServer,
) -> None:
    fake_tgi.config.overloaded = True
    with pytest.raises(UnknownError, match="overloaded"):
        await drain_chat(fake_tgi)
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        raw = await http.post("/v1/chat/completions", json={"messages": MESSAGES, "stream": True})
    assert raw.status_code == 200
    assert raw.text == (
        'data: {"error":{"message":"Model is overloaded","http_status_code":422}}\n\n'
        "data: [DONE]\n\n"
    )


async def test_overloaded_non_stream_is_429(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.overloaded = True
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    with pytest.raises(HfHubHTTPError) as caught:
        await client.chat_completion(MESSAGES)
    assert caught.value.response is not None
    assert caught.value.response.status_code == 429
    assert caught.value.response.json() == {
        "error": "Model is overloaded",
        "error_type": "overloaded",
    }


async def test_requests_beyond_max_concurrent_are_rejected_at_once() -> None:
    config = fast_config(max_concurrent_requests=1, tokens_per_s=50.0)
    with SimulatorServer(config) as server:
        first = asyncio.create_task(drain_chat(server, max_tokens=20))
        assert await server.wait_until_async(lambda s: s.active_requests == 1)
        with pytest.raises(UnknownError, match="overloaded"):
            await drain_chat(server)
        server.config.tokens_per_s = 20000.0
        await first
        assert server.stats.overloaded == 1
        assert await drain_chat(server, max_tokens=3)  # the slot is free again


async def test_faults_for_the_next_requests_only(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.overloaded = True
    fake_tgi.config.fault_requests = 2
    for _ in range(2):
        with pytest.raises(UnknownError, match="overloaded"):
            await drain_chat(fake_tgi)
    assert "</think>" in await drain_chat(fake_tgi)
    assert fake_tgi.config.fault_requests == 0


async def test_connection_refused_while_loading(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    port = fake_tgi.port
    fake_tgi.set_loading(True)
    with pytest.raises(httpx2.ConnectError):
        await client.chat_completion(MESSAGES)
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get("/health")
    fake_tgi.set_loading(False)
    assert fake_tgi.port == port
    out = await client.chat_completion(MESSAGES, max_tokens=3)
    assert out.choices[0].finish_reason == "length"


async def test_loading_at_start_then_listening() -> None:
    with SimulatorServer(fast_config(loading_s=0.3)) as server:
        assert not server.listening
        async with httpx2.AsyncClient(base_url=server.url) as http:
            with pytest.raises(httpx2.ConnectError):
                await http.get("/health")
            await asyncio.sleep(0.3)
            for _ in range(100):  # until it listens, within 2 s
                try:
                    health = await http.get("/health")
                    break
                except httpx2.ConnectError:
                    await asyncio.sleep(0.02)
            assert health.status_code == 200


async def test_unhealthy_health_is_503(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.healthy = False
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        response = await http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"error": "unhealthy", "error_type": "healthcheck"}


async def test_drop_mid_stream(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.drop_after_tokens = 3
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    received: list[str] = []

    async def receive() -> None:
        stream = await client.chat_completion(MESSAGES, stream=True)
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")

    with pytest.raises(httpx2.RemoteProtocolError):
        await receive()
    assert len(received) == 3
    assert fake_tgi.stats.dropped == 1
    assert await fake_tgi.wait_until_async(lambda s: s.active_requests == 0)


async def test_drop_of_a_non_stream_request(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.drop_after_tokens = 0
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    with pytest.raises(httpx2.RemoteProtocolError):
        await client.chat_completion(MESSAGES)


async def test_stall_trips_the_clients_read_timeout(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.stall_after_tokens = 2
    fake_tgi.config.stall_s = 2.0
    with pytest.raises(httpx2.ReadTimeout):
        await drain_chat(fake_tgi, read_timeout=0.2)
    # The client gave up: the simulator sees the disconnect and frees the slot.
    assert await fake_tgi.wait_until_async(lambda s: s.active_requests == 0 and s.disconnects == 1)


async def test_keepalive_comments_continue_through_a_stall(fake_tgi: SimulatorServer) -> None:
    # As in TGI: the SSE layer sends ":" while generation is stuck, so a per-read timeout
    # longer than the keep-alive interval never fires on a stall.
    fake_tgi.config.keepalive_s = 0.05
    fake_tgi.config.stall_after_tokens = 1
    fake_tgi.config.stall_s = 0.4
    body = {"messages": MESSAGES, "stream": True, "max_tokens": 3}
    async with httpx2.AsyncClient(base_url=fake_tgi.url, timeout=0.2) as http:
        response = await http.post("/v1/chat/completions", json=body)
    blocks = response.text.split("\n\n")
    assert blocks[0].startswith("data: {")
    assert blocks.count(":") >= 3
    assert blocks[-2:] == ["data: [DONE]", ""]
    # huggingface_hub skips the comments, and its 0.2 s read timeout never fires.
    assert await drain_chat(fake_tgi, read_timeout=0.2, max_tokens=3)
    assert fake_tgi.stats.stalls == 2


async def test_generation_failure_mid_stream(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.fail_after_tokens = 2
    body = {"messages": MESSAGES, "stream": True}
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        chat = await http.post("/v1/chat/completions", json=body)
        generate = await http.post("/generate_stream", json={"inputs": "Q"})
    chat_events = chat.text.split("\n\n")
    assert json.loads(chat_events[2].removeprefix("data: ")) == {
        "error": {
            "message": "Request failed during generation: simulated fault",
            "http_status_code": 422,
        }
    }
    assert chat_events[3:] == ["data: [DONE]", ""]
    assert json.loads(generate.text.split("\n\n")[2].removeprefix("data: ")) == {
        "error": "Request failed during generation: simulated fault",
        "error_type": "generation",
    }


async def test_client_disconnect_frees_the_slot() -> None:
    config = fast_config(max_concurrent_requests=1, tokens_per_s=20.0)
    with SimulatorServer(config) as server:
        body = {"messages": MESSAGES, "stream": True}
        async with (
            httpx2.AsyncClient(base_url=server.url) as http,
            http.stream("POST", "/v1/chat/completions", json=body) as response,
        ):
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    break  # leave after the first token; closing the stream disconnects
        assert await server.wait_until_async(
            lambda s: s.active_requests == 0 and s.active_streams == 0 and s.running == 0
        )
        assert server.stats.disconnects == 1
        assert server.stats.completed == 0
        generated = server.stats.generated_tokens
        await asyncio.sleep(0.2)
        assert server.stats.generated_tokens == generated  # generation stopped
        server.config.tokens_per_s = 20000.0
        assert await drain_chat(server, max_tokens=3)


async def test_non_stream_client_timeout_frees_the_slot() -> None:
    with SimulatorServer(fast_config(tokens_per_s=20.0)) as server:
        async with httpx2.AsyncClient(base_url=server.url, timeout=0.2) as http:
            with pytest.raises(httpx2.ReadTimeout):
                await http.post("/v1/chat/completions", json={"messages": MESSAGES})
        assert await server.wait_until_async(lambda s: s.active_requests == 0)
        assert server.stats.disconnects == 1
