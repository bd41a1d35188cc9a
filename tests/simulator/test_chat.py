"""The chat route through the real huggingface_hub client and as raw bytes on the wire."""

from __future__ import annotations

import json

import httpx2
import pytest
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import HfHubHTTPError

from fathom.settings import FATHOM_INSTRUCTION
from simulator import SIMULATOR_MODEL_ID, is_simulator
from simulator.server import SimulatorServer

QUESTION = "What is the sum of the first 100 positive integers?"


def user(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"{question} {FATHOM_INSTRUCTION}"}]


async def sse_lines(server: SimulatorServer, body: dict[str, object]) -> list[str]:
    async with (
        httpx2.AsyncClient(base_url=server.url, timeout=10) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        return [line async for line in response.aiter_lines() if line]


async def test_stream_through_huggingface_hub(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    stream = await client.chat_completion(
        user(QUESTION), stream=True, max_tokens=2000, temperature=0.6, top_p=0.95, seed=7
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks)
    assert all(chunk.choices[0].delta.role == "assistant" for chunk in chunks)
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "stop"
    # R1 style: no opening <think> (the template ends the prompt with it), then the solution.
    assert "<think>" not in text
    reasoning, solution = text.rsplit("</think>", 1)
    assert "simulator" in reasoning
    assert "\\boxed{5050}" in solution
    # TGI echoes the request's model ("dummy" from huggingface_hub with a base_url): tell the
    # simulator by /info, never by a chunk's model.
    assert chunks[0].model == "dummy"


async def test_non_stream_through_huggingface_hub(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    out = await client.chat_completion(user(QUESTION), max_tokens=2000, seed=7, temperature=0.6)
    assert out.choices[0].finish_reason == "stop"
    assert out.choices[0].message.content is not None
    assert "</think>" in out.choices[0].message.content
    assert out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens


async def test_usage_chunk_has_empty_choices_then_done(fake_tgi: SimulatorServer) -> None:
    lines = await sse_lines(
        fake_tgi,
        {
            "messages": user(QUESTION),
            "stream": True,
            "max_tokens": 10,
            "stream_options": {"include_usage": True},
        },
    )
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    tokens, usage = events[:-1], events[-1]
    assert len(tokens) == 10
    assert tokens[-1]["choices"][0]["finish_reason"] == "length"
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == "" for e in events)
    assert all(e["usage"] is None for e in tokens)
    assert usage["choices"] == []
    assert usage["usage"]["completion_tokens"] == 10
    assert usage["usage"]["total_tokens"] == usage["usage"]["prompt_tokens"] + 10


async def test_without_include_usage_no_usage_chunk(fake_tgi: SimulatorServer) -> None:
    lines = await sse_lines(fake_tgi, {"messages": user(QUESTION), "stream": True, "max_tokens": 5})
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert len(events) == 5
    assert all(len(e["choices"]) == 1 for e in events)


async def test_eos_is_a_special_last_token_with_empty_content(fake_tgi: SimulatorServer) -> None:
    lines = await sse_lines(fake_tgi, {"messages": user(QUESTION), "stream": True})
    last = json.loads(lines[-2].removeprefix("data: "))
    assert last["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": "stop",
    }


async def test_seed_makes_output_deterministic(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    question = user("Find the number of ordered pairs of primes that sum to 40.")

    async def answer(seed: int | None) -> str:
        out = await client.chat_completion(question, seed=seed, temperature=0.6, max_tokens=500)
        content = out.choices[0].message.content
        assert content is not None
        return content

    assert await answer(3) == await answer(3)
    fake_tgi.config.completion_tokens = 400  # long enough for the reasoning to vary
    assert await answer(3) != await answer(4)


async def test_unknown_question_gets_an_honest_canned_answer(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    out = await client.chat_completion(user("How tall is the Eiffel tower in furlongs?"), seed=1)
    content = out.choices[0].message.content
    assert content is not None
    reasoning, solution = content.rsplit("</think>", 1)
    assert "not from a language model" in reasoning
    assert "different problem" in reasoning
    assert "\\boxed{" in solution


async def test_validation_error_non_stream_is_422(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.max_total_tokens = 100
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    with pytest.raises(HfHubHTTPError) as caught:
        await client.chat_completion(user(QUESTION), max_tokens=90)
    assert caught.value.response is not None
    assert caught.value.response.status_code == 422
    body = caught.value.response.json()
    assert body["error_type"] == "validation"
    assert body["error"].startswith("Input validation error: `inputs` tokens + `max_new_tokens`")


async def test_top_p_one_is_rejected(fake_tgi: SimulatorServer) -> None:
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        response = await http.post(
            "/v1/chat/completions", json={"messages": user(QUESTION), "top_p": 1.0}
        )
    assert response.status_code == 422
    assert response.json() == {
        "error": "Input validation error: `top_p` must be > 0.0 and < 1.0",
        "error_type": "validation",
    }


async def test_validation_error_in_a_stream_arrives_inside_a_200(
    fake_tgi: SimulatorServer,
) -> None:
    lines = await sse_lines(
        fake_tgi,
        {"messages": user(QUESTION), "stream": True, "stop": ["a", "b", "c", "d", "e"]},
    )
    assert lines == [
        'data: {"error":{"message":"Input validation error: `stop` supports up to 4 stop '
        'sequences. Given: 5","http_status_code":422}}',
        "data: [DONE]",
    ]


async def test_info_and_health(fake_tgi: SimulatorServer) -> None:
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        info = (await http.get("/info")).json()
        health = await http.get("/health")
    assert info["model_id"] == SIMULATOR_MODEL_ID
    assert is_simulator(info["model_id"])
    assert "simulator" in info["version"]
    assert info["max_total_tokens"] == 16384
    assert info["max_concurrent_requests"] == fake_tgi.config.max_concurrent_requests
    assert health.status_code == 200
    assert health.content == b""


async def test_tokenize_matches_usage_counts(fake_tgi: SimulatorServer) -> None:
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        templated = (await http.post("/chat_tokenize", json={"messages": user(QUESTION)})).json()
        chat = await http.post(
            "/v1/chat/completions", json={"messages": user(QUESTION), "max_tokens": 3}
        )
        raw = (await http.post("/tokenize", json={"inputs": "x^2 + 1 = 0"})).json()
    assert templated["templated_text"].endswith("<｜Assistant｜><think>\n")
    assert chat.json()["usage"]["prompt_tokens"] == len(templated["tokenize_response"])
    assert raw[0]["text"] == "<｜begin▁of▁sentence｜>"  # /tokenize adds BOS, as TGI does
    assert "".join(token["text"] for token in raw[1:]) == "x^2 + 1 = 0"
    assert [(t["start"], t["stop"]) for t in raw[1:3]] == [(0, 1), (1, 2)]


async def test_stop_sequence_ends_the_answer_there(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    out = await client.chat_completion(user(QUESTION), stop=["</think>"], seed=1)
    content = out.choices[0].message.content
    assert content is not None
    assert content.endswith("</think>")  # TGI keeps the stop sequence in the text
    assert out.choices[0].finish_reason == "stop_sequence"
