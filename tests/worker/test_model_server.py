"""Which engine and which limits: worker.model_server's discovery. TGI and llama.cpp are asked
through the simulator's two dialects (and the real llama-server in tests/engine); vLLM's answer
is read from the shape its OpenAI server declares (vllm/entrypoints/openai/protocol.py,
`ModelCard`), as no vLLM runs here."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from simulator import SIMULATOR_MODEL_ID
from simulator.server import SimulatorServer
from worker.model_server import (
    Engine,
    ServerInfo,
    count_prompt_tokens,
    discover,
    http_client,
    info_from_models,
)

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


async def limits(url: str) -> tuple[ServerInfo, int | None]:
    """What discovery says about the server at `url`, and its count of MESSAGES."""
    async with http_client(5) as http:
        info = await discover(
            http, url, default_model_id="FractalAIResearch/Fathom-R1-14B", default_context=16384
        )
        return info, await count_prompt_tokens(http, url, info, MESSAGES)


VLLM_MODELS = {
    "object": "list",
    "data": [
        {
            "id": "FractalAIResearch/Fathom-R1-14B",
            "object": "model",
            "created": 1767225600,
            "owned_by": "vllm",
            "root": "FractalAIResearch/Fathom-R1-14B",
            "parent": None,
            "max_model_len": 16384,
            "permission": [],
        }
    ],
}


async def test_tgi_limits_come_from_info(fake_tgi: SimulatorServer) -> None:
    info, count = await limits(fake_tgi.url)
    assert (info.engine, info.source) == (Engine.TGI, "TGI /info")
    assert (info.context_tokens, info.max_input_tokens) == (16384, 16383)
    assert info.model_id == SIMULATOR_MODEL_ID
    assert info.simulated
    assert count is not None
    assert count > 0
    assert info.describe() == (
        "TGI /info: 16384-token context per sequence, prompts up to 16383 tokens, "
        f"model {SIMULATOR_MODEL_ID}"
    )


async def test_llamacpp_limits_come_from_props(fake_llamacpp: SimulatorServer) -> None:
    fake_llamacpp.config.max_total_tokens = 8192
    info, count = await limits(fake_llamacpp.url)
    assert (info.engine, info.source) == (Engine.LLAMA_CPP, "llama.cpp /props")
    assert (info.context_tokens, info.max_input_tokens, info.slots) == (8192, None, 4)
    assert count is not None
    assert count > 0
    assert info.describe() == (
        f"llama.cpp /props: 8192-token context per slot, 4 slots, model {SIMULATOR_MODEL_ID}"
    )


def test_vllm_limits_come_from_its_models_list() -> None:
    info = info_from_models(VLLM_MODELS)
    assert info is not None
    assert (info.engine, info.source) == (Engine.VLLM, "vLLM /v1/models")
    assert (info.context_tokens, info.model_id) == (16384, "FractalAIResearch/Fathom-R1-14B")
    assert not info.simulated
    assert info.describe() == (
        "vLLM /v1/models: 16384-token context per sequence, model FractalAIResearch/Fathom-R1-14B"
    )


@pytest.fixture
async def silent_server() -> AsyncIterator[str]:
    """An OpenAI-compatible server that says nothing about its limits: an OpenAI model list
    without a context length, and 404 for every other route."""

    async def models(request: web.Request) -> web.Response:
        model = {"id": "m", "object": "model", "created": int(time.time()), "owned_by": "me"}
        return web.json_response({"object": "list", "data": [model]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


async def test_a_server_that_says_nothing_gets_the_configuration(silent_server: str) -> None:
    info, count = await limits(silent_server)
    assert info.engine is None
    assert info.source == "configuration"
    assert (info.context_tokens, info.model_id) == (16384, "FractalAIResearch/Fathom-R1-14B")
    assert count is None  # the caller estimates
    assert info.describe().startswith("configuration: 16384-token context")
