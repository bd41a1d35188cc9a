"""What the worker asks the model server besides generation: which engine it is and its limits
(`discover`), the prompt's token count (`count_prompt_tokens`), and the request fields that
engine needs beside the OpenAI ones (`engine_fields`).

Each engine says its limits in its own place:

- TGI: `GET /info`, `max_total_tokens` (and `max_input_tokens`), `model_id`;
- llama.cpp: `GET /props`, `default_generation_settings.n_ctx` (per slot: `--ctx-size` divided
  by `--parallel`), `total_slots`, `model_alias`; or its `GET /v1/models`, `data[0].meta.n_ctx`;
- vLLM: `GET /v1/models`, `data[0].max_model_len`, `data[0].id`;

and counts a chat prompt its own way: TGI `POST /chat_tokenize`; llama.cpp `POST /apply-template`
then `POST /tokenize` with `add_special` (the count equals the `usage.prompt_tokens` it
reports); vLLM `POST /tokenize` with the messages. A server that says none of this gets the
configured context and a pessimistic estimate of the prompt (worker.prompt).
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx2

from fathom.contract import is_simulator
from fathom.settings import Settings
from worker.prompt import Message


class Engine(StrEnum):
    TGI = "TGI"
    LLAMA_CPP = "llama.cpp"
    VLLM = "vLLM"
    OTHER = "an OpenAI-compatible server"


CONFIGURATION = "configuration"
"""The source of limits that no server route gave."""


@dataclass(frozen=True, slots=True)
class ServerInfo:
    model_id: str
    context_tokens: int
    """Tokens one sequence may hold, prompt and answer together."""
    max_input_tokens: int | None
    """The server's own limit on the prompt, where it has one (TGI)."""
    simulated: bool
    """The server says it is the fathom simulator, not a model."""
    engine: Engine | None = None
    """None: the server did not say (the limits are the configured ones)."""
    source: str = CONFIGURATION
    """Where the limits came from: "TGI /info", "llama.cpp /props", "vLLM /v1/models"..."""
    slots: int | None = None
    """Sequences the server runs at once, where it says (llama.cpp's --parallel)."""

    def describe(self) -> str:
        """One line for logs and a future `fathom doctor`: where the limits came from and what
        they are, e.g. "llama.cpp /props: 16384-token context per slot, 2 slots, model M"."""
        if self.engine is None:
            return (
                f"{self.source}: {self.context_tokens}-token context (the server says no "
                "limits; FATHOM_CONTEXT_TOKENS)"
            )
        unit = "per slot" if self.engine is Engine.LLAMA_CPP else "per sequence"
        parts = [f"{self.context_tokens}-token context {unit}"]
        if self.max_input_tokens is not None:
            parts.append(f"prompts up to {self.max_input_tokens} tokens")
        if self.slots is not None:
            parts.append(f"{self.slots} slot{'s' if self.slots != 1 else ''}")
        parts.append(f"model {self.model_id}")
        return f"{self.source}: {', '.join(parts)}"


class ModelServerLoading(Exception):
    """The server answers but is not ready (HTTP 503: llama.cpp while it loads the model)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


TLS_CONTEXT = ssl.create_default_context()
"""Built once, when the pool imports the worker, and shared by every forked job: a fresh
httpx client would otherwise load the CA bundle again (~40 ms per client, per job)."""


async def _read_error_body(response: httpx2.Response) -> None:
    """Read an error answer's body even on a stream, so the raised error can quote it."""
    if response.status_code >= 400:
        await response.aread()


def http_client(timeout: float | None = None, api_key: str | None = None) -> httpx2.AsyncClient:
    """An HTTP client for the model server (also huggingface_hub's client factory). With
    `api_key`, every request carries it: llama.cpp's `--api-key` guards `/props` and
    `/tokenize` as well as generation (TGI's guards generation only)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    return httpx2.AsyncClient(
        verify=TLS_CONTEXT,
        follow_redirects=True,
        timeout=timeout,
        headers=headers,
        event_hooks={"response": [_read_error_body]},
    )


def _json_body(response: httpx2.Response) -> Any:
    """The JSON of a 200 answer; None for an error status or a body that is not JSON (a server
    without the route, or a proxy page)."""
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- what each engine's answer says (pure) --------------------------------------------------


def info_from_tgi(body: Any) -> ServerInfo | None:
    """TGI's `GET /info`, or None if the body is not one."""
    body = _dict(body)
    context = _positive(body.get("max_total_tokens"))
    if context is None:
        return None
    model_id = str(body.get("model_id") or "")
    return ServerInfo(
        model_id=model_id,
        context_tokens=context,
        max_input_tokens=_positive(body.get("max_input_tokens")),
        simulated=is_simulator(model_id),
        engine=Engine.TGI,
        source="TGI /info",
    )


def info_from_llamacpp_props(body: Any) -> ServerInfo | None:
    """llama.cpp's `GET /props`, or None if the body is not one. `n_ctx` is per slot."""
    body = _dict(body)
    context = _positive(_dict(body.get("default_generation_settings")).get("n_ctx"))
    if context is None:
        return None
    model_id = str(body.get("model_alias") or body.get("model_path") or "")
    return ServerInfo(
        model_id=model_id,
        context_tokens=context,
        max_input_tokens=None,
        simulated=is_simulator(model_id),
        engine=Engine.LLAMA_CPP,
        source="llama.cpp /props",
        slots=_positive(body.get("total_slots")),
    )


def info_from_models(body: Any) -> ServerInfo | None:
    """An OpenAI `GET /v1/models` list whose first model says its context: vLLM's
    `max_model_len`, or llama.cpp's `meta.n_ctx` (per slot). None otherwise."""
    data = _dict(body).get("data")
    first = _dict(data[0]) if isinstance(data, list) and data else {}
    model_id = str(first.get("id") or "")
    owner = str(first.get("owned_by") or "")
    if (context := _positive(first.get("max_model_len"))) is not None:
        engine = Engine.VLLM if owner == "vllm" else Engine.OTHER
    elif (context := _positive(_dict(first.get("meta")).get("n_ctx"))) is not None:
        engine = Engine.LLAMA_CPP
    else:
        return None
    label = owner or "OpenAI-compatible" if engine is Engine.OTHER else str(engine)
    return ServerInfo(
        model_id=model_id,
        context_tokens=context,
        max_input_tokens=None,
        simulated=is_simulator(model_id),
        engine=engine,
        source=f"{label} /v1/models",
    )


# --- asking the server --------------------------------------------------------------------


async def _get_all(http: httpx2.AsyncClient, urls: list[str]) -> list[httpx2.Response]:
    """GET the URLs at once; every request has ended before a transport error is raised."""
    answers = await asyncio.gather(*(http.get(url) for url in urls), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return [answer for answer in answers if isinstance(answer, httpx2.Response)]


def _unavailable(responses: list[httpx2.Response]) -> None:
    for response in responses:
        if response.status_code == 503:
            raise ModelServerLoading(503, response.text[:200])


async def discover(
    http: httpx2.AsyncClient, base_url: str, *, default_model_id: str, default_context: int
) -> ServerInfo:
    """The engine behind `base_url` and the context one sequence may use, with where that was
    read (`ServerInfo.source`): TGI `/info` and llama.cpp `/props` (asked at once), then
    `/v1/models` (vLLM's `max_model_len`, llama.cpp's `meta.n_ctx`), else the configuration.

    Raises httpx2 transport errors (nothing listens yet) and ModelServerLoading (a 503: the
    server listens but is still loading) to the caller, which retries.
    """
    info_answer, props_answer = await _get_all(http, [f"{base_url}/info", f"{base_url}/props"])
    _unavailable([info_answer, props_answer])
    found = info_from_tgi(_json_body(info_answer)) or info_from_llamacpp_props(
        _json_body(props_answer)
    )
    if found is None:
        [models_answer] = await _get_all(http, [f"{base_url}/v1/models"])
        _unavailable([models_answer])
        found = info_from_models(_json_body(models_answer))
    if found is None:
        return ServerInfo(default_model_id, default_context, None, simulated=False)
    return found if found.model_id else dataclasses.replace(found, model_id=default_model_id)


async def discover_configured(settings: Settings, timeout_s: float) -> ServerInfo:
    """`discover` on the configured model server, with its API key, on a client of its own
    (what the pool says at start and `fathom doctor` checks)."""
    api_key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    async with http_client(timeout_s, api_key) as http:
        return await discover(
            http,
            (settings.model_url or "").rstrip("/"),
            default_model_id=settings.model_id,
            default_context=settings.context_tokens,
        )


async def count_with_chat_tokenize(
    http: httpx2.AsyncClient, base_url: str, messages: list[Message]
) -> int | None:
    """Tokens of the templated prompt from TGI's /chat_tokenize; None where the server has no
    such route (or no tokenizer)."""
    body = _json_body(await http.post(f"{base_url}/chat_tokenize", json={"messages": messages}))
    tokens = _dict(body).get("tokenize_response")
    return len(tokens) if isinstance(tokens, list) else None


async def _count_llamacpp(
    http: httpx2.AsyncClient, base_url: str, messages: list[Message]
) -> int | None:
    template = await http.post(f"{base_url}/apply-template", json={"messages": messages})
    rendered = _json_body(template)
    prompt = _dict(rendered).get("prompt")
    if not isinstance(prompt, str):
        return None
    # /apply-template leaves out the BOS that tokenizing adds back (add_special).
    body = _json_body(
        await http.post(f"{base_url}/tokenize", json={"content": prompt, "add_special": True})
    )
    tokens = _dict(body).get("tokens")
    return len(tokens) if isinstance(tokens, list) else None


async def _count_vllm(
    http: httpx2.AsyncClient, base_url: str, model_id: str, messages: list[Message]
) -> int | None:
    request = {"model": model_id, "messages": messages, "add_generation_prompt": True}
    body = _json_body(await http.post(f"{base_url}/tokenize", json=request))
    return _positive(_dict(body).get("count"))


async def count_prompt_tokens(
    http: httpx2.AsyncClient, base_url: str, info: ServerInfo, messages: list[Message]
) -> int | None:
    """Tokens of the templated prompt, counted by the server the way its engine offers; None
    where it offers no way (the caller estimates)."""
    if info.engine is Engine.LLAMA_CPP:
        return await _count_llamacpp(http, base_url, messages)
    if info.engine is Engine.VLLM:
        return await _count_vllm(http, base_url, info.model_id, messages)
    if info.engine in (Engine.TGI, None):
        return await count_with_chat_tokenize(http, base_url, messages)
    return None


LLAMACPP_FIELDS: dict[str, object] = {
    # The text exactly as generated, `<think>`...`</think>` included, as TGI sends it: the
    # server's default ("auto") would move the reasoning to `reasoning_content` and swallow
    # `</think>`, which leaves a reasoning that is only whitespace indistinguishable from none.
    "reasoning_format": "none",
    # Chunks while the prompt is evaluated (minutes on a CPU for a long one), so the worker can
    # tell a slow prompt from a stalled stream.
    "return_progress": True,
    # The model card's sampling is temperature and top_p alone; llama.cpp would otherwise add
    # its own defaults (top_k 40, min_p 0.05). 0 turns each off.
    "top_k": 0,
    "min_p": 0.0,
}


def engine_fields(info: ServerInfo) -> dict[str, object] | None:
    """Request fields beside the OpenAI ones that this engine needs (huggingface_hub's
    `extra_body`); None for engines that need none."""
    if info.engine is Engine.LLAMA_CPP:
        return dict(LLAMACPP_FIELDS)
    return None
