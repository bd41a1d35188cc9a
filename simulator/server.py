"""The TGI simulator: an aiohttp server speaking TGI 3.3.x's wire format, with fault injection;
with `SimulatorConfig(dialect="llama.cpp")` it speaks llama.cpp's `llama-server` instead
(simulator.llamacpp), on the same scheduler and answers.

It is a simulator, not a model (see `simulator/__init__.py`): `/info` says `model_id:
"fathom-simulator"`, and every answer's reasoning says where its text comes from.

Routes, as TGI 3.3.7 serves them: `POST /v1/chat/completions` (stream or not), `POST /generate`,
`POST /generate_stream`, `POST /` (the compat route: `stream` in the body), `GET /health`,
`GET /info`, `GET /v1/models`, `POST /tokenize`, `POST /chat_tokenize`, `GET /metrics`.

Wire behaviour copied from TGI's router (v3.3.7 source), not from the docs:
- A streaming request is always answered `200 text/event-stream`; every error, overload and
  validation included, arrives inside the stream. Chat: `data: {"error": {"message": "Model is
  overloaded", "http_status_code": 422}}` then `data: [DONE]` (the code is 422 whatever the
  error). /generate_stream: `data: {"error": "...", "error_type": "..."}` and no [DONE].
- Non-streaming errors: `{"error", "error_type"}` with 429 overloaded, 422 validation, 424
  generation; a body that is not the expected JSON: 400/422 plain text, as axum answers.
- Overload (more than max_concurrent_requests in flight) is checked before validation.
- Validation: `inputs` tokens + min(max_new_tokens, 1024) must be <= max_total_tokens (TGI
  checks the first 1,024-token chunk, then stops generation at the context end with "length");
  max_tokens omitted means the rest of max_total_tokens; top_p in (0, 1); temperature > 0
  (chat: 0 means greedy, omitted means 1.0); at most max_stop_sequences stops.
- A generation ending on EOS sends a last token `<｜end▁of▁sentence｜>` (special: chat content
  "") and counts it in completion tokens. Chat echoes the request's `model` (unless absent or
  "tgi"), so tell the simulator from a model by `/info`, not by a chunk's `model`.
- `POST /` returns the prompt in front of the text unless `return_full_text` is false (TGI's
  default for text-generation models).
- A `:` keep-alive comment goes out when a stream has been silent for `keepalive_s` (15 s as in
  TGI), also while generation stalls: a stalled TGI still sends these, so a client's per-read
  timeout longer than 15 s never fires on a stall.
- A client that disconnects frees its slot at once: generation for it stops.
- Stop sequences end the text only where it ends with them, and stay in the text; the token
  budget is checked first, so a budget reached on EOS finishes as "length".

What huggingface_hub 2.4 raises against it (as against TGI): an in-stream chat error ->
`UnknownError` (message holds the error dict; overload says "overloaded"); non-stream chat
errors -> `HfHubHTTPError` (`.response.status_code` 429/422); text_generation ->
`OverloadedError`/`ValidationError`/`GenerationError`; a cut connection ->
`httpx2.RemoteProtocolError`; a silent stream past the client's timeout -> `httpx2.ReadTimeout`
(raw, not InferenceTimeoutError); nothing listening -> `httpx2.ConnectError`.

Use from tests (a background thread, a free loopback port):

    from simulator.server import SimulatorServer, fast_config

    with SimulatorServer(fast_config(completion_tokens=200)) as sim:
        client = AsyncInferenceClient(base_url=sim.url)
        ...
        sim.config.drop_after_tokens = 5     # config fields are read per request: flip faults
        sim.config.fault_requests = 1        # ...for the next request only
        sim.set_loading(True)                # stop listening: connection refused
        await sim.wait_until_async(lambda s: s.active_requests == 0)   # counters: sim.stats

`tests/conftest.py` has a `fake_tgi` fixture yielding a started `fast_config()` server. From a
shell: `fathom fake-tgi --port 8080 --tokens-per-s 40 --speed 10` (`fathom fake-tgi --help`).
Time compression (`speed`) scales the simulated GPU (rates, ttft), not the fault delays
(`stall_s`, `loading_s`) nor keep-alives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager as AsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from simulator import SIMULATOR_MODEL_ID, SIMULATOR_VERSION, is_simulator
from simulator.answers import (
    ChatTurn,
    ProblemBank,
    build_completion,
    default_dataset_path,
    question_of,
    render_chat,
)
from simulator.metrics import Metrics
from simulator.tokenizer import Piece, count_tokens, eos_piece, tokenize

__all__ = [
    "SIMULATOR_MODEL_ID",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorStats",
    "fast_config",
    "is_simulator",
    "serve",
]

log = logging.getLogger("fathom.simulator")

CHUNK_TOKENS = 1024
GUARDED_ROUTES = frozenset({"/v1/chat/completions", "/generate", "/generate_stream", "/"})
"""What TGI's --api-key guards: generation."""
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROMPTS_KEPT = 256
"""TGI's DEFAULT_GENERATION_LENGTH: validation counts at most this many new tokens."""
MAX_TOP_N_TOKENS = 5


Dialect = Literal["tgi", "llama.cpp"]


class SimulatorConfig(BaseModel):
    """Everything tunable. Mutable: handlers read it per request (per token for speeds), so a
    test can change a field of a running server."""

    model_config = ConfigDict(validate_assignment=True, extra="forbid")

    dialect: Dialect = "tgi"
    """Whose wire format to speak: TGI 3.3.x, or llama.cpp's `llama-server` (simulator.llamacpp:
    /props instead of /info, the per-slot context as the limit, requests queued silently when
    every slot is busy, loading answered with 503, llama.cpp's chunks and error bodies). Read
    when the server starts."""

    # --- limits, as TGI's launcher flags ----------------------------------------------------
    max_concurrent_requests: int = Field(128, ge=1)
    """In-flight generation requests; one more is rejected at once as overloaded."""
    max_input_tokens: int = Field(16383, ge=1)
    max_total_tokens: int = Field(16384, ge=2)
    max_stop_sequences: int = Field(4, ge=0)
    max_batch_size: int | None = Field(None, ge=1)
    """Sequences decoded at once; admitted requests beyond it wait in the queue. None: all.
    llama.cpp: its slots (`--parallel`); each slot's context is max_total_tokens."""
    reasoning_format: Literal["auto", "none"] = "auto"
    """llama.cpp only: the server's `--reasoning-format` (a request's `reasoning_format`
    overrides it). "auto", llama.cpp's default, sends the reasoning as `reasoning_content`;
    "none" leaves `<think>\n`...`</think>` in the content."""

    # --- speed --------------------------------------------------------------------------------
    tokens_per_s: float = Field(40.0, gt=0)
    """Decode rate of one sequence alone in the batch."""
    batch_slowdown: float = Field(0.01, ge=0)
    """Continuous batching: each sequence runs at tokens_per_s / (1 + k * (batch size - 1))."""
    ttft_s: float = Field(0.25, ge=0)
    """Time to first token (queueing aside)."""
    speed: float = Field(1.0, gt=0)
    """Time compression: rates are multiplied and ttft divided by it (fault delays are not)."""
    completion_tokens: int = Field(600, ge=1)
    """Target length of a full answer (reasoning + solution), before max_tokens cuts it."""
    wrong_answer_rate: float = Field(0.2, ge=0, le=1)
    """Share of sampled answers (by seed) ending on a wrong final answer, as a model's do (one
    of two per question, so wrong samples can agree); greedy answers are always right."""
    rewritten_answer_rate: float = Field(0.2, ge=0, le=1)
    """Share of sampled answers giving the right answer written another way (`3/4`, `x = 5`)."""
    keepalive_s: float = Field(15.0, gt=0)
    """TGI's keep-alive comment interval (llama.cpp's `--sse-ping-interval` is 30 s)."""
    dataset: Path | None = None
    """JSONL problem bank (MATH-500 fields); None: $FATHOM_SIM_DATASET or MATH-500 beside the
    checkout; the package's handwritten problems when that file is missing."""

    # --- faults ---------------------------------------------------------------------------------
    loading_s: float = Field(0.0, ge=0)
    """At start, stay not listening (connection refused) for this many seconds; llama.cpp
    listens at once and answers every route 503 "Loading model" meanwhile."""
    healthy: bool = True
    """False: /health answers 503 as TGI does when its backend is down."""
    overloaded: bool = False
    """Reject generation requests as overloaded whatever the load (TGI only: llama.cpp has no
    such answer, it queues)."""
    drop_after_tokens: int | None = Field(None, ge=0)
    """Close the connection abruptly after this many tokens of a response."""
    stall_after_tokens: int | None = Field(None, ge=0)
    """Pause generation for stall_s seconds after this many tokens (keep-alives continue)."""
    stall_s: float = Field(0.0, ge=0)
    fail_after_tokens: int | None = Field(None, ge=0)
    """Fail with a generation error after this many tokens."""
    fault_requests: int | None = Field(None, ge=0)
    """Apply the faults above (overloaded, drop, stall, fail) to the next N generation requests
    only, counting down; None: to all of them."""

    # --- access -------------------------------------------------------------------------------
    api_key: str | None = None
    """Like TGI's --api-key: generation wants `Authorization: Bearer <key>`; None: open."""

    # --- what it says -------------------------------------------------------------------------
    echo_questions: bool = False
    """Answer every question with the question itself, as the solution and inside the final
    \\boxed{}: what an asker wrote reaches the parser and the renderer as model output (for
    hostile-input tests)."""


def fast_config(**overrides: Any) -> SimulatorConfig:
    """A configuration for tests: answers of ~120 tokens at 20,000 tokens/s, no time to first
    token, no batching slowdown, so a whole answer takes a few milliseconds."""
    settings: dict[str, Any] = {
        "tokens_per_s": 20000.0,
        "ttft_s": 0.0,
        "batch_slowdown": 0.0,
        "completion_tokens": 120,
    }
    return SimulatorConfig(**(settings | overrides))


def sequence_rate(config: SimulatorConfig, batch_size: int) -> float:
    """Tokens/s of one sequence in a batch of `batch_size` (continuous batching slows each
    sequence as the batch grows, while the total still rises)."""
    slowdown = 1.0 + config.batch_slowdown * (max(1, batch_size) - 1)
    return config.tokens_per_s * config.speed / slowdown


@dataclass
class SimulatorStats:
    """Live counters (read them from tests; the server's thread writes them)."""

    requests: int = 0
    """Generation requests that reached the scheduler."""
    active_requests: int = 0
    """Requests holding a slot (queued or generating): what max_concurrent_requests bounds."""
    active_streams: int = 0
    running: int = 0
    queued: int = 0
    completed: int = 0
    generated_tokens: int = 0
    overloaded: int = 0
    validation_errors: int = 0
    disconnects: int = 0
    """Clients that went away before their response ended."""
    dropped: int = 0
    stalls: int = 0
    failed: int = 0
    prompts: deque[str] = field(default_factory=lambda: deque(maxlen=PROMPTS_KEPT))
    """The latest prompts as the model would read them (chat rendered by the template)."""


# --- request bodies (the fields TGI reads) --------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


_B = TypeVar("_B", bound=_Body)
_R = TypeVar("_R")


class GenerateParameters(_Body):
    best_of: int | None = Field(None, ge=0)
    temperature: float | None = None
    repetition_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    typical_p: float | None = None
    do_sample: bool = False
    max_new_tokens: int | None = Field(None, ge=0)
    return_full_text: bool | None = None
    stop: list[str] = Field(default_factory=list)
    truncate: int | None = Field(None, ge=0)
    details: bool = False
    decoder_input_details: bool = False
    seed: int | None = Field(None, ge=0)
    top_n_tokens: int | None = Field(None, ge=0)


class GenerateRequest(_Body):
    inputs: str
    parameters: GenerateParameters = Field(
        default_factory=lambda: GenerateParameters(do_sample=True)
    )


class CompatGenerateRequest(GenerateRequest):
    stream: bool = False


class _ContentChunk(_Body):
    type: str
    text: str | None = None


class ChatMessage(_Body):
    role: str
    content: str | list[_ContentChunk] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(chunk.text or "" for chunk in self.content if chunk.type == "text")
        return self.content or ""


class StreamOptions(_Body):
    include_usage: bool = False


class ChatRequest(_Body):
    messages: list[ChatMessage]
    model: str | None = None
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    seed: int | None = Field(None, ge=0)
    stop: list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0)
    tools: list[Any] | None = None
    response_format: Any = None

    def turns(self) -> list[ChatTurn]:
        return [ChatTurn(m.role, m.text()) for m in self.messages]


# --- generation ---------------------------------------------------------------------------

ErrorType = Literal["overloaded", "validation", "generation", "incomplete_generation_stream"]
_STATUS = {"overloaded": 429, "validation": 422, "generation": 424}


class InferError(Exception):
    """An error TGI reports as `{"error": message, "error_type": kind}`."""

    def __init__(self, kind: ErrorType, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    @property
    def status(self) -> int:
        return _STATUS.get(self.kind, 500)


class _Drop(Exception):
    """Fault injection: the connection is to be cut now."""


@dataclass(frozen=True)
class InferRequest:
    inputs: str
    parameters: GenerateParameters
    add_bos: bool


@dataclass(frozen=True)
class Finish:
    generated_text: str
    finish_reason: Literal["length", "eos_token", "stop_sequence"]
    generated_tokens: int
    seed: int | None
    input_length: int


@dataclass(frozen=True)
class TokenEvent:
    index: int
    piece: Piece
    logprob: float
    finish: Finish | None


@dataclass(frozen=True)
class _Faults:
    overloaded: bool = False
    drop_after: int | None = None
    stall_after: int | None = None
    stall_s: float = 0.0
    fail_after: int | None = None


@dataclass(frozen=True)
class _Plan:
    pieces: list[Piece]
    logprobs: list[float]
    finish_reason: Literal["length", "eos_token", "stop_sequence"]
    seed: int | None
    input_length: int


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Simulator:
    """The state and the aiohttp application; runs in whatever loop serves it."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.stats = SimulatorStats()
        self.metrics = Metrics(config.max_input_tokens, config.max_total_tokens)
        self.bank = ProblemBank.load(config.dataset or default_dataset_path())
        self._slot_freed = asyncio.Event()
        self.loading = False
        """llama.cpp dialect: listening, but every route answers 503 "Loading model"."""

    # --- the application ------------------------------------------------------------------

    def app(self) -> web.Application:
        if self.config.dialect == "llama.cpp":
            from simulator.llamacpp import llamacpp_app  # it builds on this module

            return llamacpp_app(self)
        app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[self.guard])
        app.add_routes(
            [
                web.post("/v1/chat/completions", self.chat_completions),
                web.post("/generate", self.generate),
                web.post("/generate_stream", self.generate_stream),
                web.post("/", self.compat_generate),
                web.get("/health", self.health),
                web.get("/info", self.info),
                web.get("/v1/models", self.models),
                web.post("/tokenize", self.tokenize),
                web.post("/chat_tokenize", self.chat_tokenize),
                web.get("/metrics", self.prometheus),
            ]
        )
        return app

    @web.middleware
    async def guard(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """TGI's --api-key: the generation routes want `Authorization: Bearer <key>` (a bare
        401 otherwise); health, info, tokenizing and metrics stay open."""
        key = self.config.api_key
        guarded = key is not None and request.method == "POST" and request.path in GUARDED_ROUTES
        if guarded and request.headers.get("Authorization") != f"Bearer {key}":
            return web.Response(status=401)
        return await handler(request)

    def info_payload(self) -> dict[str, object]:
        cfg = self.config
        return {
            "model_id": SIMULATOR_MODEL_ID,
            "model_sha": None,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": cfg.max_concurrent_requests,
            "max_best_of": 1,
            "max_stop_sequences": cfg.max_stop_sequences,
            "max_input_tokens": cfg.max_input_tokens,
            "max_total_tokens": cfg.max_total_tokens,
            "validation_workers": 1,
            "max_client_batch_size": 1,
            "router": "fathom-simulator",
            "version": SIMULATOR_VERSION,
            "sha": None,
            "docker_label": None,
        }

    # --- plain routes ---------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        if self.config.healthy:
            return web.Response(status=200)
        return _error_response(503, "unhealthy", "healthcheck")

    async def info(self, request: web.Request) -> web.Response:
        return web.json_response(self.info_payload(), dumps=_json)

    async def models(self, request: web.Request) -> web.Response:
        model = {"id": SIMULATOR_MODEL_ID, "object": "model", "created": 0}
        model["owned_by"] = SIMULATOR_MODEL_ID
        return web.json_response({"object": "list", "data": [model]}, dumps=_json)

    async def prometheus(self, request: web.Request) -> web.Response:
        self.metrics.gauges["tgi_queue_size"] = self.stats.queued
        self.metrics.gauges["tgi_batch_current_size"] = self.stats.running
        return web.Response(text=self.metrics.render(), content_type="text/plain")

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await _parse(request, GenerateRequest)
        return web.json_response(_simple_tokens(tokenize(body.inputs, add_bos=True)), dumps=_json)

    async def chat_tokenize(self, request: web.Request) -> web.Response:
        body = await _parse(request, ChatRequest)
        self.metrics.count("tgi_request_count")
        prompt = render_chat(body.turns())
        payload = {"tokenize_response": _simple_tokens(tokenize(prompt)), "templated_text": prompt}
        return web.json_response(payload, dumps=_json)

    # --- generation routes ------------------------------------------------------------------

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await _parse(request, ChatRequest)
        # TGI counts a chat request twice: in the chat handler and in the generate one below it.
        self.metrics.count("tgi_request_count")
        self.metrics.count("tgi_request_count")
        if body.tools or body.response_format is not None:
            return _error_response(
                422, "Tool error: the Fathom simulator supports no tools or grammars", "tool_error"
            )
        prompt = render_chat(body.turns())
        temperature = body.temperature
        params = GenerateParameters(
            temperature=None if temperature == 0 else temperature,
            do_sample=temperature != 0,
            top_p=body.top_p,
            frequency_penalty=body.frequency_penalty,
            repetition_penalty=None if body.presence_penalty is None else body.presence_penalty + 2,
            max_new_tokens=body.max_tokens
            if body.max_tokens is not None
            else body.max_completion_tokens,
            stop=body.stop or [],
            details=True,
            seed=body.seed,
            top_n_tokens=body.top_logprobs,
        )
        infer = InferRequest(prompt, params, add_bos=False)
        model = body.model if body.model not in (None, "tgi") else SIMULATOR_MODEL_ID
        chat = _ChatFormat(model or SIMULATOR_MODEL_ID, bool(body.logprobs))
        if body.stream:
            include_usage = body.stream_options is not None and body.stream_options.include_usage
            return await self._chat_stream(request, infer, chat, include_usage)
        try:
            events = await self._collect(infer)
        except InferError as err:
            return _error_response(err.status, err.message, err.kind)
        except _Drop:
            return _cut(request)
        return web.json_response(chat.complete(events), dumps=_json)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = await _parse(request, GenerateRequest)
        return await self._generate(
            request, InferRequest(body.inputs, body.parameters, add_bos=True)
        )

    async def generate_stream(self, request: web.Request) -> web.StreamResponse:
        body = await _parse(request, GenerateRequest)
        infer = InferRequest(body.inputs, body.parameters, add_bos=True)
        return await self._generate_stream(request, infer)

    async def compat_generate(self, request: web.Request) -> web.StreamResponse:
        body = await _parse(request, CompatGenerateRequest)
        params = body.parameters
        if params.return_full_text is None:
            params = params.model_copy(update={"return_full_text": True})
        infer = InferRequest(body.inputs, params, add_bos=True)
        if body.stream:
            return await self._generate_stream(request, infer)
        response = await self._generate(request, infer)
        if isinstance(response, web.Response) and response.status == 200 and response.text:
            # The compat route wraps the generation in a list, as api-inference does.
            response.text = f"[{response.text}]"
        return response

    async def _generate(self, request: web.Request, infer: InferRequest) -> web.Response:
        self.metrics.count("tgi_request_count")
        if (infer.parameters.best_of or 1) > 1:
            self.stats.validation_errors += 1
            self.metrics.fail("validation")
            err = InferError(
                "validation", _invalid("`best_of` != 1 is not allowed for this endpoint")
            )
            return _error_response(err.status, err.message, err.kind)
        try:
            events = await self._collect(infer)
        except InferError as err:
            return _error_response(err.status, err.message, err.kind)
        except _Drop:
            return _cut(request)
        finish = events[-1].finish
        assert finish is not None
        payload: dict[str, object] = {"generated_text": _full_text(infer, finish)}
        if infer.parameters.details or infer.parameters.decoder_input_details:
            payload["details"] = {
                "finish_reason": finish.finish_reason,
                "generated_tokens": finish.generated_tokens,
                "seed": finish.seed,
                "prefill": [],
                "tokens": [_token(e) for e in events],
            }
        headers = {
            "x-compute-type": "fathom-simulator",
            "x-prompt-tokens": str(finish.input_length),
            "x-generated-tokens": str(finish.generated_tokens),
        }
        return web.json_response(payload, dumps=_json, headers=headers)

    async def _generate_stream(
        self, request: web.Request, infer: InferRequest
    ) -> web.StreamResponse:
        params = infer.parameters
        self.metrics.count("tgi_request_count")
        async with self._sse(request, infer) as sse:
            try:
                if (params.best_of or 1) != 1 or params.decoder_input_details:
                    self.stats.validation_errors += 1
                    self.metrics.fail("validation")
                    reason = (
                        "`best_of` != 1 is not supported when streaming tokens"
                        if (params.best_of or 1) != 1
                        else "`decoder_input_details` == true is not supported when streaming"
                        " tokens"
                    )
                    raise InferError("validation", _invalid(reason))
                async with contextlib.aclosing(self.infer(infer)) as events:
                    async for event in events:
                        payload: dict[str, object] = {
                            "index": event.index,
                            "token": _token(event),
                            "generated_text": None,
                            "details": None,
                        }
                        if event.finish is not None:
                            payload["generated_text"] = _full_text(infer, event.finish)
                            if params.details:
                                payload["details"] = {
                                    "finish_reason": event.finish.finish_reason,
                                    "generated_tokens": event.finish.generated_tokens,
                                    "seed": event.finish.seed,
                                    "input_length": event.finish.input_length,
                                }
                        await sse.send(_json(payload))
            except InferError as err:
                await sse.send(_json({"error": err.message, "error_type": err.kind}))
        return sse.response

    async def _chat_stream(
        self, request: web.Request, infer: InferRequest, chat: _ChatFormat, include_usage: bool
    ) -> web.StreamResponse:
        async with self._sse(request, infer) as sse:
            try:
                async with contextlib.aclosing(self.infer(infer)) as events:
                    async for event in events:
                        await sse.send(_json(chat.chunk(event)))
                        if event.finish is not None and include_usage:
                            await sse.send(_json(chat.usage_chunk(event.finish)))
            except InferError as err:
                error = {"error": {"message": err.message, "http_status_code": 422}}
                await sse.send(_json(error))
            await sse.send("[DONE]")
        return sse.response

    def _sse(self, request: web.Request, infer: InferRequest) -> AsyncContextManager[_SseStream]:
        headers = {
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "x-compute-type": "fathom-simulator",
            "x-compute-characters": str(len(infer.inputs)),
        }
        return self.event_stream(request, headers)

    @contextlib.asynccontextmanager
    async def event_stream(
        self, request: web.Request, headers: dict[str, str]
    ) -> AsyncIterator[_SseStream]:
        """An open event stream; counts a client that goes away and cuts the connection on an
        injected drop."""
        sse = _SseStream(web.StreamResponse(headers=headers), lambda: self.config.keepalive_s)
        self.stats.active_streams += 1
        try:
            await sse.open(request)
            yield sse
            await sse.close()
        except _Drop:
            _cut(request)
        except (asyncio.CancelledError, ConnectionResetError):
            self.stats.disconnects += 1
            raise
        finally:
            sse.stop_keepalive()
            self.stats.active_streams -= 1

    async def _collect(self, infer: InferRequest) -> list[TokenEvent]:
        """A whole generation, for non-streaming routes."""
        try:
            async with contextlib.aclosing(self.infer(infer)) as events:
                return [event async for event in events]
        except asyncio.CancelledError:
            self.stats.disconnects += 1
            raise

    # --- the scheduler --------------------------------------------------------------------

    async def infer(self, infer: InferRequest) -> AsyncGenerator[TokenEvent, None]:
        """Admit, validate, queue for a batch slot and generate, paced like a GPU would be.
        Raises InferError (overloaded, validation, generation) or _Drop (injected)."""
        loop = asyncio.get_running_loop()
        received = loop.time()
        self.stats.requests += 1
        faults = self.take_faults()
        cfg = self.config
        if faults.overloaded or self.stats.active_requests >= cfg.max_concurrent_requests:
            self.stats.overloaded += 1
            self.metrics.fail("overloaded")
            raise InferError("overloaded", "Model is overloaded")
        self.stats.active_requests += 1
        try:
            plan = self._plan(infer)
            self.metrics.observe("tgi_request_input_length", plan.input_length)
            async with (
                self.batch_slot(),
                contextlib.aclosing(self.run_plan(plan, faults, received)) as events,
            ):
                async for event in events:
                    yield event
        finally:
            self.stats.active_requests -= 1

    async def run_plan(
        self, plan: _Plan, faults: _Faults, received: float
    ) -> AsyncGenerator[TokenEvent, None]:
        """The planned tokens, paced like a GPU would, with the injected faults; runs in a
        batch slot the caller holds."""
        loop = asyncio.get_running_loop()
        cfg = self.config
        started = loop.time()
        due = started + cfg.ttft_s / cfg.speed
        text: list[str] = []
        for i, (piece, logprob) in enumerate(zip(plan.pieces, plan.logprobs, strict=True)):
            if i == faults.stall_after:
                self.stats.stalls += 1
                await asyncio.sleep(faults.stall_s)
                due = max(due, loop.time())
            if i == faults.drop_after:
                self.stats.dropped += 1
                raise _Drop
            if i == faults.fail_after:
                self.stats.failed += 1
                self.metrics.fail("generation")
                raise InferError("generation", "Request failed during generation: simulated fault")
            await asyncio.sleep(max(0.0, due - loop.time()))
            due += 1.0 / sequence_rate(cfg, self.stats.running)
            if not piece.special:
                text.append(piece.text)
            self.stats.generated_tokens += 1
            finish = None
            if i == len(plan.pieces) - 1:
                finish = Finish(
                    "".join(text),
                    plan.finish_reason,
                    len(plan.pieces),
                    plan.seed,
                    plan.input_length,
                )
                self._record_success(received, started, loop.time(), len(plan.pieces))
            yield TokenEvent(i + 1, piece, logprob, finish)

    def take_faults(self) -> _Faults:
        cfg = self.config
        armed = (
            cfg.overloaded
            or cfg.drop_after_tokens is not None
            or cfg.stall_after_tokens is not None
            or cfg.fail_after_tokens is not None
        )
        if not armed:
            return _Faults()
        if cfg.fault_requests is not None:
            if cfg.fault_requests == 0:
                return _Faults()
            cfg.fault_requests -= 1
        return _Faults(
            cfg.overloaded,
            cfg.drop_after_tokens,
            cfg.stall_after_tokens,
            cfg.stall_s,
            cfg.fail_after_tokens,
        )

    @contextlib.asynccontextmanager
    async def batch_slot(self) -> AsyncIterator[None]:
        self.stats.queued += 1
        try:
            while (limit := self.config.max_batch_size) is not None and self.stats.running >= limit:
                self._slot_freed.clear()
                await self._slot_freed.wait()
        finally:
            self.stats.queued -= 1
        self.stats.running += 1
        try:
            yield
        finally:
            self.stats.running -= 1
            self._slot_freed.set()

    def _record_success(self, received: float, started: float, ended: float, tokens: int) -> None:
        self.stats.completed += 1
        self.metrics.count("tgi_request_success")
        self.metrics.observe("tgi_request_duration", ended - received)
        self.metrics.observe("tgi_request_queue_duration", started - received)
        self.metrics.observe("tgi_request_inference_duration", ended - started)
        self.metrics.observe("tgi_request_mean_time_per_token_duration", (ended - started) / tokens)
        self.metrics.observe("tgi_request_generated_tokens", tokens)

    def _plan(self, infer: InferRequest) -> _Plan:
        """Validate as TGI does (same checks, order and messages), then decide the tokens."""
        try:
            return self._plan_valid(infer)
        except InferError:
            self.stats.validation_errors += 1
            self.metrics.fail("validation")
            raise

    def _plan_valid(self, infer: InferRequest) -> _Plan:
        cfg = self.config
        p = infer.parameters
        sampling = (
            p.do_sample
            or p.temperature is not None
            or p.top_k is not None
            or p.top_p is not None
            or p.typical_p is not None
        )
        checks: list[tuple[bool, str]] = [
            (
                p.temperature is not None and p.temperature <= 0,
                "`temperature` must be strictly positive",
            ),
            (
                p.repetition_penalty is not None and p.repetition_penalty <= 0,
                "`repetition_penalty` must be strictly positive",
            ),
            (
                p.frequency_penalty is not None and not -2.0 <= p.frequency_penalty <= 2.0,
                "`frequency_penalty` must be >= -2.0 and <= 2.0",
            ),
            (p.top_p is not None and not 0.0 < p.top_p < 1.0, "`top_p` must be > 0.0 and < 1.0"),
            (
                p.typical_p is not None and not 0.0 < p.typical_p < 1.0,
                "`typical_p` must be > 0.0 and < 1.0",
            ),
            (p.top_k is not None and p.top_k <= 0, "`top_k` must be strictly positive"),
            (p.max_new_tokens == 0, "`max_new_tokens` must be strictly positive"),
            (
                len(p.stop) > cfg.max_stop_sequences,
                f"`stop` supports up to {cfg.max_stop_sequences} stop sequences. "
                f"Given: {len(p.stop)}",
            ),
            (
                (p.top_n_tokens or 0) > MAX_TOP_N_TOKENS,
                f"`top_n_tokens` must be >= 0 and <= {MAX_TOP_N_TOKENS}. Given: {p.top_n_tokens}",
            ),
            (not infer.inputs, "`inputs` cannot be empty"),
            (
                p.truncate is not None and not 0 < p.truncate <= cfg.max_input_tokens,
                "`truncate` must be strictly positive and less than "
                f"{cfg.max_input_tokens}. Given: {p.truncate}",
            ),
        ]
        for failed, message in checks:
            if failed:
                raise InferError("validation", _invalid(message))

        input_length = count_tokens(infer.inputs, add_bos=infer.add_bos)
        if p.truncate is not None:
            input_length = min(input_length, p.truncate)
        room = max(0, cfg.max_total_tokens - input_length)
        max_new = p.max_new_tokens if p.max_new_tokens is not None else room
        first_chunk = min(max_new, CHUNK_TOKENS)
        if input_length + first_chunk > cfg.max_total_tokens:
            raise InferError(
                "validation",
                _invalid(
                    f"`inputs` tokens + `max_new_tokens` must be <= {cfg.max_total_tokens}. "
                    f"Given: {input_length} `inputs` tokens and {first_chunk} `max_new_tokens`"
                ),
            )
        if input_length > cfg.max_input_tokens:
            raise InferError(
                "validation",
                _invalid(
                    f"`inputs` must have less than {cfg.max_input_tokens} tokens. "
                    f"Given: {input_length}"
                ),
            )
        max_new = min(max_new, room)

        seed = p.seed if p.seed is not None else random.getrandbits(63)
        self.stats.prompts.append(infer.inputs)
        completion = build_completion(
            question_of(infer.inputs),
            self.bank,
            seed=seed if sampling else 0,
            target_tokens=cfg.completion_tokens,
            echo=cfg.echo_questions,
            wrong_rate=cfg.wrong_answer_rate if sampling else 0.0,
            rewrite_rate=cfg.rewritten_answer_rate if sampling else 0.0,
        )
        # TGI's StoppingCriteria, in its order: the token budget first (even on EOS), then
        # EOS, then a stop sequence at the very end of the text.
        pieces: list[Piece] = []
        generated = ""
        finish: Literal["length", "eos_token", "stop_sequence"] = "eos_token"
        for piece in [*tokenize(completion.text), eos_piece()]:
            pieces.append(piece)
            if len(pieces) >= max_new:
                finish = "length"
                break
            if piece.special:
                break
            generated += piece.text
            if any(stop and generated.endswith(stop) for stop in p.stop):
                finish = "stop_sequence"
                break
        rng = random.Random(seed)
        logprobs = [round(-(rng.random() ** 3) * 2.0, 4) for _ in pieces]
        return _Plan(pieces, logprobs, finish, seed if sampling else None, input_length)


class _ChatFormat:
    """ChatCompletion / ChatCompletionChunk as TGI serialises them (same key order)."""

    def __init__(self, model: str, logprobs: bool) -> None:
        self.model = model
        self.logprobs = logprobs
        self.created = int(time.time())
        self.fingerprint = f"{SIMULATOR_VERSION}-native"

    def _head(self, kind: str) -> dict[str, object]:
        return {
            "object": kind,
            "id": "",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
        }

    def _logprobs(self, events: list[TokenEvent]) -> dict[str, object] | None:
        if not self.logprobs:
            return None
        content = [
            {"token": e.piece.text, "logprob": e.logprob, "top_logprobs": []} for e in events
        ]
        return {"content": content}

    def chunk(self, event: TokenEvent) -> dict[str, object]:
        content = "" if event.piece.special else event.piece.text
        finish = None if event.finish is None else _chat_finish(event.finish.finish_reason)
        choice = {
            "index": 0,
            "delta": {"role": "assistant", "content": content},
            "logprobs": self._logprobs([event]),
            "finish_reason": finish,
        }
        return {**self._head("chat.completion.chunk"), "choices": [choice], "usage": None}

    def usage_chunk(self, finish: Finish) -> dict[str, object]:
        return {**self._head("chat.completion.chunk"), "choices": [], "usage": _usage(finish)}

    def complete(self, events: list[TokenEvent]) -> dict[str, object]:
        finish = events[-1].finish
        assert finish is not None
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": finish.generated_text},
            "logprobs": self._logprobs(events),
            "finish_reason": _chat_finish(finish.finish_reason),
        }
        return {**self._head("chat.completion"), "choices": [choice], "usage": _usage(finish)}


def _chat_finish(reason: str) -> str:
    return "stop" if reason == "eos_token" else reason


def _usage(finish: Finish) -> dict[str, int]:
    return {
        "prompt_tokens": finish.input_length,
        "completion_tokens": finish.generated_tokens,
        "total_tokens": finish.input_length + finish.generated_tokens,
    }


def _token(event: TokenEvent) -> dict[str, object]:
    piece = event.piece
    return {"id": piece.id, "text": piece.text, "logprob": event.logprob, "special": piece.special}


def _full_text(infer: InferRequest, finish: Finish) -> str:
    if infer.parameters.return_full_text:
        return infer.inputs + finish.generated_text
    return finish.generated_text


def _simple_tokens(pieces: list[Piece]) -> list[dict[str, object]]:
    return [{"id": p.id, "text": p.text, "start": p.start, "stop": p.stop} for p in pieces]


def _invalid(reason: str) -> str:
    return f"Input validation error: {reason}"


def _cut(request: web.Request) -> web.Response:
    """Fault injection: close the connection without an answer (the returned response is never
    sent; aiohttp ignores the failed write)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response()


def _error_response(status: int, error: str, error_type: str) -> web.Response:
    return web.json_response({"error": error, "error_type": error_type}, status=status, dumps=_json)


async def _parse(request: web.Request, model: type[_B]) -> _B:
    """The JSON body as `model`, rejected as axum's Json extractor rejects it."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text="Expected request with `Content-Type: application/json`"
        )
    raw = await request.read()
    try:
        data = json.loads(raw)
    except ValueError as err:
        raise web.HTTPBadRequest(text=f"Failed to parse the request body as JSON: {err}") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise web.HTTPUnprocessableEntity(
            text="Failed to deserialize the JSON body into the target type: "
            f"{where}: {problem['msg']}"
        ) from None


# --- serving ----------------------------------------------------------------------------------


class _SseStream:
    """A server-sent event stream with TGI's keep-alive: a `:` comment line whenever nothing
    has been written for keepalive seconds."""

    def __init__(self, response: web.StreamResponse, keepalive_s: Callable[[], float]) -> None:
        self.response = response
        self._keepalive_s = keepalive_s
        self._lock = asyncio.Lock()
        self._last_write = 0.0
        self._keepalive: asyncio.Task[None] | None = None

    async def open(self, request: web.Request) -> None:
        await self.response.prepare(request)
        self._last_write = asyncio.get_running_loop().time()
        self._keepalive = asyncio.create_task(self._keep_alive())

    async def send(self, data: str) -> None:
        await self._write(f"data: {data}\n\n".encode())

    async def close(self) -> None:
        self.stop_keepalive()
        await self.response.write_eof()

    def stop_keepalive(self) -> None:
        if self._keepalive is not None:
            self._keepalive.cancel()

    async def _write(self, data: bytes) -> None:
        async with self._lock:
            await self.response.write(data)
            self._last_write = asyncio.get_running_loop().time()

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wait = self._last_write + self._keepalive_s() - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            try:
                await self._write(b":\n\n")
            except ConnectionResetError:
                return


class _Listener:
    """The server socket. While "loading" it is bound but not listening, so connections are
    refused (as TGI's are while it loads weights) and the port stays reserved."""

    def __init__(self, host: str, port: int) -> None:
        family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        self._family = family
        self._address = address
        self._sock: socket.socket | None = self._bind(port)
        self.port: int = self._sock.getsockname()[1]
        self._server: asyncio.Server | None = None

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._address[0], port, *self._address[2:]))
        sock.setblocking(False)
        return sock

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def listen(self, protocol_factory: Callable[[], asyncio.BaseProtocol]) -> None:
        if self._server is not None:
            return
        sock = self._sock if self._sock is not None else self._bind(self.port)
        self._sock = None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(protocol_factory, sock=sock, backlog=1024)

    def stop_listening(self) -> None:
        """Close the listening socket (open connections go on) and hold the port unlistened."""
        if self._server is None:
            return
        self._server.close()
        self._server = None
        self._sock = self._bind(self.port)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class _Runtime:
    """One simulator served in the running loop."""

    def __init__(self, config: SimulatorConfig, host: str, port: int) -> None:
        self.simulator = Simulator(config)
        self.listener = _Listener(host, port)
        self._runner = web.AppRunner(
            self.simulator.app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0
        )
        self._loading: asyncio.Task[None] | None = None

    @property
    def _answers_while_loading(self) -> bool:
        """llama.cpp listens at once and answers 503 until the model is loaded; TGI does not
        listen at all before."""
        return self.simulator.config.dialect == "llama.cpp"

    async def start(self) -> None:
        await self._runner.setup()
        loading_s = self.simulator.config.loading_s
        if loading_s > 0 and self._answers_while_loading:
            self.simulator.loading = True
            await self._listen()
            self._loading = asyncio.create_task(self._finish_loading(loading_s))
        elif loading_s > 0:
            self._loading = asyncio.create_task(self._finish_loading(loading_s))
        else:
            await self._listen()

    async def _listen(self) -> None:
        server = self._runner.server
        assert server is not None
        await self.listener.listen(server)

    async def _finish_loading(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.simulator.loading = False
        await self._listen()
        log.info("simulated loading finished: listening on port %d", self.listener.port)

    async def set_loading(self, loading: bool) -> None:
        if self._loading is not None:
            self._loading.cancel()
            self._loading = None
        if self._answers_while_loading:
            self.simulator.loading = loading
        elif loading:
            self.listener.stop_listening()
        else:
            await self._listen()

    async def stop(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
        self.listener.close()
        await self._runner.cleanup()


def banner(config: SimulatorConfig, url: str, bank: ProblemBank) -> str:
    if config.dialect == "llama.cpp":
        slots = config.max_batch_size or "unlimited"
        limits = f"{slots} slots of {config.max_total_tokens} tokens (llama.cpp dialect)"
    else:
        limits = f"up to {config.max_concurrent_requests} concurrent requests"
    return (
        f"Fathom TGI simulator on {url}: a SIMULATOR, not a model (model_id "
        f"{SIMULATOR_MODEL_ID!r}); canned R1-style answers from {bank.source} "
        f"({len(bank.problems)} problems); {config.tokens_per_s:g} tokens/s per sequence, "
        f"speed x{config.speed:g}, {limits}"
    )


async def serve(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until cancelled (the `fathom fake-tgi` command)."""
    runtime = _Runtime(config, host, port)
    await runtime.start()
    url = f"http://{host}:{runtime.listener.port}"
    log.warning("%s", banner(config, url, runtime.simulator.bank))
    if config.loading_s > 0:
        refused = "503 Loading model" if config.dialect == "llama.cpp" else "connections refused"
        log.warning("simulating model loading: %s for %gs", refused, config.loading_s)
    try:
        await asyncio.Event().wait()
    finally:
        await runtime.stop()


class SimulatorServer:
    """The simulator in a background thread on a loopback port, for tests and tools.

    `config` is the live configuration (change fields at any time); `stats` the live counters.
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runtime: _Runtime | None = None

    @property
    def port(self) -> int:
        return self._require().listener.port

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:40123 (what FATHOM_MODEL_URL would hold)."""
        return f"http://{self.host}:{self.port}"

    @property
    def stats(self) -> SimulatorStats:
        return self._require().simulator.stats

    @property
    def listening(self) -> bool:
        return self._require().listener.listening

    def start(self) -> Self:
        if self._runtime is not None:
            return self
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fathom-simulator", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

        async def create() -> _Runtime:
            runtime = _Runtime(self.config, self.host, self._port)
            await runtime.start()
            return runtime

        try:
            self._runtime = self._call(create())
        except BaseException:
            self._shutdown_loop()
            raise
        log.info("%s", banner(self.config, self.url, self._runtime.simulator.bank))
        return self

    def stop(self) -> None:
        if self._runtime is None:
            return
        try:
            self._call(self._runtime.stop())
        finally:
            self._runtime = None
            self._shutdown_loop()

    def set_loading(self, loading: bool) -> None:
        """True: close the listening socket (new connections refused, open streams go on);
        False: listen again on the same port. llama.cpp dialect: keep listening and answer
        every new request 503 "Loading model" while True."""
        self._call(self._require().set_loading(loading))

    def wait_until(self, predicate: Callable[[SimulatorStats], bool], timeout: float = 5.0) -> bool:
        """Poll the counters until `predicate` holds; False if it still fails after timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self.stats):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    async def wait_until_async(
        self, predicate: Callable[[SimulatorStats], bool], within_s: float = 5.0
    ) -> bool:
        """`wait_until` for async tests (does not block their loop)."""
        deadline = time.monotonic() + within_s
        while not predicate(self.stats):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _require(self) -> _Runtime:
        if self._runtime is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return self._runtime

    def _call(self, coro: Coroutine[Any, Any, _R]) -> _R:
        if self._loop is None:
            raise RuntimeError("the simulator is not running: call start() first")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def _shutdown_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
