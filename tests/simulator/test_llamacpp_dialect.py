"""The simulator's llama.cpp dialect, seen through the client the worker uses: what a real
llama-server sends (docs/notes/llamacpp-wire.md; tests/engine checks the two side by side)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from huggingface_hub import (
    AsyncInferenceClient,
    ChatCompletionInputStreamOptions,
    ChatCompletionStreamOutput,
)
from huggingface_hub.errors import BadRequestError, HfHubHTTPError, UnknownError

from simulator import SIMULATOR_MODEL_ID
from simulator.server import SimulatorServer, fast_config
from simulator.tokenizer import BOS, count_tokens

MESSAGES = [{"role": "user", "content": "What is the sum of the first 100 positive integers?"}]


async def chat(
    server: SimulatorServer, **kwargs: Any
) -> tuple[list[ChatCompletionStreamOutput], str]:
    """Every chunk of a streamed answer and the content it adds up to."""
    async with AsyncInferenceClient(base_url=server.url, timeout=10) as client:
        stream = await client.chat_completion(
            MESSAGES,
            stream=True,
            stream_options=ChatCompletionInputStreamOptions(include_usage=True),
            **kwargs,
        )
        chunks: list[ChatCompletionStreamOutput] = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return chunks, text


async def test_chunks_have_llamacpps_shape(fake_llamacpp: SimulatorServer) -> None:
    chunks, text = await chat(
        fake_llamacpp, max_tokens=400, extra_body={"reasoning_format": "none"}
    )
    *choice_chunks, usage_chunk = chunks
    first, *text_chunks, finish = choice_chunks
    # role once, in an opening chunk without text; later deltas carry no role
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content is None
    assert all(c.choices[0].delta.role is None for c in [*text_chunks, finish])
    assert all(c.choices[0].delta.content for c in text_chunks)
    # the finish in a chunk of its own, with an empty delta; EOS is "stop"
    assert finish.choices[0].finish_reason == "stop"
    assert finish.choices[0].delta.content is None
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert getattr(usage_chunk, "timings", None) is not None
    # reasoning_format "none": the prompt's `<think>\n` opens the content
    assert text.startswith("<think>\n")
    assert "</think>" in text
    ids = {c.id for c in chunks}
    assert len(ids) == 1
    assert ids.pop().startswith("chatcmpl-")
    assert {c.model for c in chunks} == {SIMULATOR_MODEL_ID}


async def test_auto_reasoning_format_moves_the_reasoning_out(
    fake_llamacpp: SimulatorServer,
) -> None:
    assert fake_llamacpp.config.reasoning_format == "auto"  # llama.cpp's default
    chunks, text = await chat(fake_llamacpp, max_tokens=400)
    reasoning = "".join(
        getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices
    )
    assert reasoning.startswith("\n(Note: this text comes from the Fathom TGI simulator")
    assert "</think>" not in reasoning + text  # swallowed
    assert "\\boxed{" in text
    assert chunks[-2].choices[0].finish_reason == "stop"


async def test_prompt_progress_chunks(fake_llamacpp: SimulatorServer) -> None:
    chunks, text = await chat(
        fake_llamacpp,
        max_tokens=5,
        extra_body={"reasoning_format": "none", "return_progress": True},
    )
    progress = [getattr(c, "prompt_progress", None) for c in chunks]
    reports = [p for p in progress if p is not None]
    assert len(reports) == 2
    assert reports[0]["processed"] == 0
    assert reports[1]["processed"] == reports[1]["total"]
    # with progress, the prompt's `<think>\n` comes in the first report, before any token
    assert chunks[1].choices[0].delta.content == "<think>\n"
    assert progress[1] is not None
    assert text.startswith("<think>\n")


async def test_props_models_and_unknown_routes(fake_llamacpp: SimulatorServer) -> None:
    async with httpx2.AsyncClient(base_url=fake_llamacpp.url) as http:
        props = (await http.get("/props")).json()
        models = (await http.get("/v1/models")).json()
        info = await http.get("/info")
        health = await http.get("/health")
    assert props["default_generation_settings"]["n_ctx"] == 16384
    assert props["total_slots"] == 4
    assert props["model_alias"] == SIMULATOR_MODEL_ID
    [model] = models["data"]
    assert model["owned_by"] == "llamacpp"
    assert model["meta"]["n_ctx"] == 16384
    assert "max_model_len" not in model
    assert info.status_code == 404
    assert info.json() == {
        "error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}
    }
    assert health.json() == {"status": "ok"}


async def test_apply_template_and_tokenize_count_the_prompt(
    fake_llamacpp: SimulatorServer,
) -> None:
    async with httpx2.AsyncClient(base_url=fake_llamacpp.url) as http:
        rendered = (await http.post("/apply-template", json={"messages": MESSAGES})).json()
        body = {"content": rendered["prompt"], "add_special": True}
        tokens = (await http.post("/tokenize", json=body)).json()["tokens"]
    assert not rendered["prompt"].startswith(BOS)
    assert rendered["prompt"].endswith("<｜Assistant｜><think>\n")
    chunks, _ = await chat(fake_llamacpp, max_tokens=3)
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens == len(tokens) == count_tokens(BOS + rendered["prompt"])


async def test_prompt_filling_the_slot_is_a_400_before_any_stream() -> None:
    with SimulatorServer(fast_config(dialect="llama.cpp", max_total_tokens=512)) as server:
        client = AsyncInferenceClient(base_url=server.url, timeout=10)
        with pytest.raises(BadRequestError) as caught:
            await client.chat_completion([{"role": "user", "content": "x " * 600}], stream=True)
        assert caught.value.response is not None
        error = caught.value.response.json()["error"]
        assert error["type"] == "exceed_context_size_error"
        assert error["n_ctx"] == 512
        assert error["n_prompt_tokens"] > 512
        assert server.stats.requests == 0


async def test_answer_beyond_the_slot_ends_with_length_not_an_error() -> None:
    config = fast_config(dialect="llama.cpp", max_total_tokens=300, completion_tokens=2000)
    with SimulatorServer(config) as server:
        chunks, _ = await chat(server, max_tokens=10_000)
    usage = chunks[-1].usage
    assert usage is not None
    assert chunks[-2].choices[0].finish_reason == "length"
    assert usage.total_tokens == 300


async def test_stop_string_is_cut_and_finishes_as_stop(fake_llamacpp: SimulatorServer) -> None:
    fields = {"reasoning_format": "none"}
    _, whole = await chat(fake_llamacpp, max_tokens=400, seed=5, extra_body=fields)
    stop = whole[40:52]
    chunks, text = await chat(fake_llamacpp, max_tokens=400, seed=5, stop=[stop], extra_body=fields)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert text == whole[: whole.index(stop)]


async def test_busy_slots_queue_the_request_without_sending_anything() -> None:
    config = fast_config(dialect="llama.cpp", max_batch_size=1, stall_after_tokens=2, stall_s=30)
    config.fault_requests = 1
    with SimulatorServer(config) as server:
        hog = asyncio.create_task(chat(server, max_tokens=20))
        assert await server.wait_until_async(lambda s: s.stalls == 1)
        async with httpx2.AsyncClient(base_url=server.url, timeout=10) as http:
            request = {"messages": MESSAGES, "stream": True, "max_tokens": 5}
            queued = asyncio.create_task(http.post("/v1/chat/completions", json=request))
            assert await server.wait_until_async(lambda s: s.queued == 1)
            async with httpx2.AsyncClient(base_url=server.url) as look:
                metrics = (await look.get("/metrics")).text
            assert "llamacpp:requests_deferred 1" in metrics
            assert not queued.done()  # not even the headers
            hog.cancel()
            response = await queued
        with pytest.raises(asyncio.CancelledError):
            await hog
        assert server.stats.overloaded == 0
    assert response.status_code == 200
    assert response.text.endswith("data: [DONE]\n\n")


async def test_error_after_the_stream_began_ends_it_without_done() -> None:
    with SimulatorServer(fast_config(dialect="llama.cpp", fail_after_tokens=3)) as server:
        with pytest.raises(UnknownError, match="server_error"):
            await chat(server)
        async with httpx2.AsyncClient(base_url=server.url) as http:
            raw = await http.post(
                "/v1/chat/completions", json={"messages": MESSAGES, "stream": True}
            )
    last = raw.text.strip().splitlines()[-1]
    assert json.loads(last.removeprefix("data: "))["error"]["type"] == "server_error"
    assert "[DONE]" not in raw.text


async def test_loading_answers_503_on_every_route(fake_llamacpp: SimulatorServer) -> None:
    fake_llamacpp.set_loading(True)
    loading = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    async with httpx2.AsyncClient(base_url=fake_llamacpp.url) as http:
        for answer in [await http.get("/health"), await http.get("/props")]:
            assert answer.status_code == 503
            assert answer.json() == loading
    client = AsyncInferenceClient(base_url=fake_llamacpp.url, timeout=10)
    with pytest.raises(HfHubHTTPError) as caught:
        await client.chat_completion(MESSAGES)
    assert caught.value.response.status_code == 503
    fake_llamacpp.set_loading(False)
    chunks, _ = await chat(fake_llamacpp, max_tokens=3)
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 3


async def test_keepalive_pings_only_once_the_answer_started() -> None:
    config = fast_config(dialect="llama.cpp", keepalive_s=0.05, stall_after_tokens=3, stall_s=0.3)
    with SimulatorServer(config) as server:
        async with httpx2.AsyncClient(base_url=server.url) as http:
            raw = await http.post(
                "/v1/chat/completions",
                json={"messages": MESSAGES, "stream": True, "max_tokens": 10},
            )
    lines = raw.text.split("\n\n")
    assert lines[0].startswith("data: {")  # the first thing sent is the role chunk
    assert ":" in lines  # pings while the answer stalled
