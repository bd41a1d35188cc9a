"""What the worker asks the model server besides generation: its limits (`GET /info`) and the
prompt's token count (`POST /chat_tokenize`). Both are TGI routes; other OpenAI-compatible
servers (vLLM, SGLang, llama.cpp) may lack them, and then configured defaults and a safe
estimate stand in."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import httpx2

from fathom.contract import is_simulator
from worker.prompt import Message


@dataclass(frozen=True, slots=True)
class ServerInfo:
    model_id: str
    max_total_tokens: int
    max_input_tokens: int | None
    simulated: bool
    """The server says it is the fathom simulator, not a model."""


TLS_CONTEXT = ssl.create_default_context()
"""Built once, when the pool imports the worker, and shared by every forked job: a fresh
httpx client would otherwise load the CA bundle again (~40 ms per client, per job)."""


async def _read_error_body(response: httpx2.Response) -> None:
    """Read an error answer's body even on a stream, so the raised error can quote it."""
    if response.status_code >= 400:
        await response.aread()


def http_client(timeout: float | None = None) -> httpx2.AsyncClient:
    """An HTTP client for the model server (also huggingface_hub's client factory)."""
    return httpx2.AsyncClient(
        verify=TLS_CONTEXT,
        follow_redirects=True,
        timeout=timeout,
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


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


async def server_info(
    http: httpx2.AsyncClient, base_url: str, default_model_id: str, default_context: int
) -> ServerInfo:
    """The server's limits from /info.

    Raises httpx2 transport errors (connection refused while the server loads) to the caller,
    which retries; a server without /info gets the configured defaults.
    """
    body = _json_body(await http.get(f"{base_url}/info"))
    if not isinstance(body, dict):
        return ServerInfo(default_model_id, default_context, None, simulated=False)
    model_id = str(body.get("model_id") or default_model_id)
    return ServerInfo(
        model_id=model_id,
        max_total_tokens=_int_or_none(body.get("max_total_tokens")) or default_context,
        max_input_tokens=_int_or_none(body.get("max_input_tokens")),
        simulated=is_simulator(model_id),
    )


async def count_prompt_tokens(
    http: httpx2.AsyncClient, base_url: str, messages: list[Message]
) -> int | None:
    """Tokens of the templated prompt from TGI's /chat_tokenize; None where the server has no
    such route (or no tokenizer), so the caller estimates."""
    body = _json_body(await http.post(f"{base_url}/chat_tokenize", json={"messages": messages}))
    tokens = body.get("tokenize_response") if isinstance(body, dict) else None
    return len(tokens) if isinstance(tokens, list) else None
