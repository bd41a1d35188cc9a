"""TGI's own routes (/generate, /generate_stream, the compat POST /) through huggingface_hub's
text_generation and as raw bytes."""

from __future__ import annotations

import json

import httpx2
import pytest
from huggingface_hub import AsyncInferenceClient
from huggingface_hub.errors import OverloadedError, ValidationError

from simulator.server import SimulatorServer

PROMPT = "<｜begin▁of▁sentence｜><｜User｜>Solve for $x$: $3x + 7 = 22$.<｜Assistant｜><think>\n"


async def test_text_generation_stream_with_details(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    stream = await client.text_generation(
        PROMPT,
        stream=True,
        details=True,
        max_new_tokens=4000,
        seed=5,
        temperature=0.6,
        return_full_text=False,
    )
    events = [event async for event in stream]
    assert [e.index for e in events] == list(range(1, len(events) + 1))
    assert all(e.details is None and e.generated_text is None for e in events[:-1])
    last = events[-1]
    assert last.details is not None
    assert last.details.finish_reason == "eos_token"
    assert last.details.generated_tokens == len(events)
    assert last.details.seed == 5
    assert last.token.special  # the EOS token, left out of generated_text
    assert last.generated_text == "".join(e.token.text for e in events[:-1])
    assert last.generated_text is not None
    assert "\\boxed{5}" in last.generated_text.rsplit("</think>", 1)[1]


async def test_text_generation_non_stream_details(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    out = await client.text_generation(
        PROMPT, details=True, max_new_tokens=7, return_full_text=False
    )
    assert out.details is not None
    assert out.details.finish_reason == "length"
    assert out.details.generated_tokens == 7 == len(out.details.tokens)
    assert out.details.seed is None  # greedy: no sampling parameter was given
    assert out.generated_text == "".join(t.text for t in out.details.tokens)


async def test_compat_route_returns_full_text_by_default(fake_tgi: SimulatorServer) -> None:
    # TGI's POST / prepends the prompt for text-generation models unless told otherwise.
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        full = await http.post("/", json={"inputs": "Q?", "parameters": {"max_new_tokens": 2}})
        bare = await http.post(
            "/generate", json={"inputs": "Q?", "parameters": {"max_new_tokens": 2}}
        )
    assert full.json()[0]["generated_text"].startswith("Q?")
    assert "details" not in bare.json()
    assert not bare.json()["generated_text"].startswith("Q?")


async def test_generate_stream_wire_format(fake_tgi: SimulatorServer) -> None:
    body = {"inputs": PROMPT, "parameters": {"max_new_tokens": 2, "details": True}}
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        response = await http.post("/generate_stream", json=body)
    assert response.headers["content-type"] == "text/event-stream"
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""  # no [DONE] on this route
    first, last = (json.loads(b.removeprefix("data: ")) for b in blocks[:-1])
    assert list(first) == ["index", "token", "generated_text", "details"]
    assert list(first["token"]) == ["id", "text", "logprob", "special"]
    assert first["generated_text"] is None
    assert first["details"] is None
    assert last["details"]["finish_reason"] == "length"
    assert last["details"]["input_length"] > 0


async def test_generate_stream_overloaded_is_an_in_stream_error(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.overloaded = True
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        raw = await http.post("/generate_stream", json={"inputs": PROMPT})
    assert raw.status_code == 200
    assert raw.text == 'data: {"error":"Model is overloaded","error_type":"overloaded"}\n\n'
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)

    async def drain() -> None:
        stream = await client.text_generation(PROMPT, stream=True)
        async for _ in stream:
            pass

    with pytest.raises(OverloadedError):
        await drain()
    with pytest.raises(OverloadedError):
        await client.text_generation(PROMPT)


async def test_text_generation_validation_error(fake_tgi: SimulatorServer) -> None:
    client = AsyncInferenceClient(base_url=fake_tgi.url, timeout=10)
    with pytest.raises(ValidationError, match="`temperature` must be strictly positive"):
        await client.text_generation(PROMPT, temperature=-1.0)


async def test_budget_validation_follows_tgi(fake_tgi: SimulatorServer) -> None:
    fake_tgi.config.max_total_tokens = 40
    fake_tgi.config.max_input_tokens = 30
    long_input = {"inputs": " ".join(["word"] * 35)}  # 35 tokens + BOS
    async with httpx2.AsyncClient(base_url=fake_tgi.url) as http:
        too_long = await http.post("/generate", json=long_input)
        over_budget = await http.post(
            "/generate",
            json={"inputs": " ".join(["word"] * 20), "parameters": {"max_new_tokens": 25}},
        )
        fake_tgi.config.max_total_tokens = 2000
        # TGI checks only the first 1,024-token chunk of max_new_tokens against the context.
        huge_max = await http.post(
            "/generate", json={"inputs": "word", "parameters": {"max_new_tokens": 5000}}
        )
    assert too_long.status_code == 422
    assert too_long.json() == {
        "error": "Input validation error: `inputs` must have less than 30 tokens. Given: 36",
        "error_type": "validation",
    }
    assert over_budget.status_code == 422
    assert over_budget.json()["error"] == (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 40. "
        "Given: 21 `inputs` tokens and 25 `max_new_tokens`"
    )
    assert huge_max.status_code == 200
