"""The simulator's llama.cpp dialect against the real llama-server, side by side: the same
requests to both, the same shapes back (which keys, in which order of events, which finish,
which error bodies). Texts differ (canned solutions vs. a scripted noise model) and are left
out; consecutive events of the same shape count once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from simulator.server import SimulatorServer, fast_config
from tests.engine.conftest import CTX_SIZE, SOLVING_GRAMMAR, engine

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


@pytest.fixture(scope="module")
def real(llama_server_binary: Path, tiny_model: Path) -> Iterator[str]:
    with engine(llama_server_binary, tiny_model, "--grammar", SOLVING_GRAMMAR) as url:
        yield url


@pytest.fixture(scope="module")
def simulated() -> Iterator[str]:
    config = fast_config(
        dialect="llama.cpp", max_total_tokens=CTX_SIZE, max_batch_size=1, completion_tokens=60
    )
    with SimulatorServer(config) as server:
        yield server.url


def shape(event: str) -> object:
    """An SSE event's shape: its keys and, per choice, the delta's keys and the finish."""
    if not event.startswith("data: "):
        return event
    data = event.removeprefix("data: ")
    if data == "[DONE]":
        return data
    payload = json.loads(data)
    choices = tuple(
        (tuple(choice["delta"]), choice["finish_reason"]) for choice in payload.get("choices", [])
    )
    if "error" in payload:
        return ("error", tuple(payload["error"]))
    return (tuple(payload), choices)


def stream_shapes(url: str, body: dict[str, Any]) -> list[object]:
    request = {"messages": MESSAGES, "stream": True, "seed": 3, **body}
    raw = httpx2.post(f"{url}/v1/chat/completions", json=request, timeout=30)
    assert raw.status_code == 200, raw.text
    assert raw.headers["content-type"] == "text/event-stream"
    shapes: list[object] = []
    for event in raw.text.split("\n\n"):
        if event and (not shapes or shape(event) != shapes[-1]):
            shapes.append(shape(event))
    return shapes


@pytest.mark.parametrize("reasoning_format", ["none", "auto"])
@pytest.mark.parametrize("progress", [False, True])
@pytest.mark.parametrize("usage", [False, True])
def test_streams_have_the_same_shape(
    real: str, simulated: str, reasoning_format: str, progress: bool, usage: bool
) -> None:
    body: dict[str, Any] = {"reasoning_format": reasoning_format, "return_progress": progress}
    if usage:
        body["stream_options"] = {"include_usage": True}
    assert stream_shapes(simulated, body) == stream_shapes(real, body)


def test_a_cut_answer_has_the_same_shape(real: str, simulated: str) -> None:
    body = {"reasoning_format": "none", "max_tokens": 5, "stream_options": {"include_usage": True}}
    shapes = stream_shapes(real, body)
    assert shapes == stream_shapes(simulated, body)
    finishes = [choice[1] for s in shapes if isinstance(s, tuple) for choice in s[1]]
    assert [f for f in finishes if f is not None] == ["length"]


def answers(url: str) -> dict[str, Any]:
    """The non-generating routes the worker reads, and the error answers it classifies."""
    too_long = {"messages": [{"role": "user", "content": "a " * CTX_SIZE}], "stream": True}
    with httpx2.Client(base_url=url, timeout=30) as http:
        props = http.get("/props").json()
        models = http.get("/v1/models").json()
        rendered = http.post("/apply-template", json={"messages": MESSAGES}).json()
        tokens = http.post("/tokenize", json={"content": "a", "add_special": True}).json()
        overflow = http.post("/v1/chat/completions", json=too_long)
        info = http.get("/info")
        invalid = http.post("/v1/chat/completions", json={"messages": MESSAGES, "n": 2})
        not_json = http.post(
            "/v1/chat/completions",
            content=b"{nope",
            headers={"content-type": "application/json"},
        )
    return {
        "props": props,
        "model": models["data"][0],
        "prompt": rendered["prompt"],
        "tokens": tokens["tokens"],
        "overflow": (overflow.status_code, overflow.json()),
        "info": (info.status_code, info.json()),
        "invalid": (invalid.status_code, invalid.json()),
        "not_json": (not_json.status_code, not_json.json()),
    }


def test_routes_and_error_answers_have_the_same_shape(real: str, simulated: str) -> None:
    sim, live = answers(simulated), answers(real)
    # /props: what the worker reads, where it reads it
    for side in (sim, live):
        assert side["props"]["default_generation_settings"]["n_ctx"] == CTX_SIZE
        assert side["props"]["total_slots"] == 1
        assert isinstance(side["props"]["model_alias"], str)
    assert set(sim["props"]) <= set(live["props"])
    # /v1/models: the same entry, meta.n_ctx per slot
    assert list(sim["model"]) == list(live["model"])
    assert list(sim["model"]["meta"]) == list(live["model"]["meta"])
    assert sim["model"]["meta"]["n_ctx"] == live["model"]["meta"]["n_ctx"] == CTX_SIZE
    # the template without BOS, tokenizing with it
    assert sim["prompt"] == live["prompt"]
    assert len(sim["tokens"]) == len(live["tokens"]) == 2
    # errors: the same statuses, types and fields
    for name in ("overflow", "info", "invalid", "not_json"):
        (sim_status, sim_body), (live_status, live_body) = sim[name], live[name]
        assert sim_status == live_status, name
        assert set(sim_body["error"]) == set(live_body["error"]), name
        assert sim_body["error"]["type"] == live_body["error"]["type"], name
    assert sim["overflow"][1]["error"]["n_ctx"] == live["overflow"][1]["error"]["n_ctx"]
    assert sim["info"] == live["info"]
    assert sim["invalid"] == live["invalid"]
