"""The simulator's llama.cpp dialect (`fathom fake-tgi --dialect llama.cpp`): the wire format of
llama.cpp's own `llama-server` as observed from the build the tests run (llama.cpp 0c1e570,
release b11312; docs/notes/llamacpp-wire.md), on the simulator's scheduler and answers.

What differs from TGI, and is spoken here:
- Routes: `GET /props` (the per-slot context `default_generation_settings.n_ctx`,
  `total_slots`, `model_alias`) and an OpenAI `GET /v1/models` with `meta.n_ctx` instead of
  TGI's `/info`; `POST /apply-template` and `POST /tokenize` instead of `/chat_tokenize`;
  `/metrics` with `llamacpp:requests_processing` and `llamacpp:requests_deferred`. Every
  other path answers `404 {"error": {"message": "File Not Found", ...}}`.
- Slots: `max_batch_size` slots of `max_total_tokens` each. A request waits for a free slot
  before anything is sent, response headers included; nothing is ever refused as overloaded.
- A prompt that fills its slot is an immediate `400 exceed_context_size_error` with
  `n_prompt_tokens` and `n_ctx`, streaming or not. A prompt that fits but leaves less room than
  `max_tokens` is no error: generation stops at the slot's end with "length".
- Chunks: role only in an opening chunk without text (`"content": null`), then content-only
  deltas, the finish in a chunk with an empty delta, no `"usage": null` keys, an id
  `chatcmpl-...` shared by all chunks, `timings` on the last event. `reasoning_format` "auto"
  (the server default) sends the reasoning as `reasoning_content` and swallows `</think>`;
  "none" leaves it in the content, which then starts with the prompt's `<think>\\n`.
  `return_progress` adds prompt-progress chunks. Finish reasons are "stop" (EOS or a stop
  string, which is cut from the text) and "length"; there is no "stop_sequence".
- An error after the stream began: `data: {"error": {"code", "message", "type"}}` and the
  stream ends without `[DONE]`. Error bodies are `{"error": {"code", "message", "type"}}`;
  a body that is not JSON is a 500.
- Keep-alive `:` lines once a response has started (llama.cpp: every 30 s of silence, the
  `keepalive_s` setting here). While loading the server listens and answers every route
  `503 {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}`.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import string
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

from aiohttp import web
from pydantic import ValidationError

from simulator import SIMULATOR_MODEL_ID
from simulator.answers import ChatTurn, build_completion, question_of, render_chat
from simulator.server import (
    ChatMessage,
    ChatRequest,
    InferError,
    Simulator,
    TokenEvent,
    _Body,
    _Faults,
    _json,
    _Plan,
)
from simulator.tokenizer import BOS, EOS, THINK_CLOSE, THINK_OPEN, count_tokens, eos_piece, tokenize

BUILD_INFO = "b1-fathom-simulator"
"""What the simulator says where llama-server says its build ("b1-0c1e570" from the sdist)."""

HEADERS = {
    "Server": "llama.cpp",
    "Access-Control-Allow-Origin": "",
    "X-Accel-Buffering": "no",
    "Content-Type": "text/event-stream",
}

# The R1-Distill chat template as /props shows it (the simulator renders it in Python:
# simulator.answers.render_chat).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}"
    "{% endif %}{% endfor %}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '<｜User｜>' + m['content'] }}{% elif m['role'] == 'assistant' %}"
    "{{ '<｜Assistant｜>' + m['content'].split('</think>')[-1] + eos_token }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<｜Assistant｜><think>\\n' }}{% endif %}"
)

ReasoningFormat = Literal["auto", "none", "deepseek", "deepseek-legacy"]


class LlamaError(Exception):
    """An error llama-server answers as `{"error": {"code", "message", "type", ...}}`."""

    def __init__(self, status: int, message: str, kind: str, **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.extra = extra

    def body(self) -> dict[str, object]:
        return {"error": {"code": self.status, "message": self.message, "type": self.kind}}

    def response(self) -> web.Response:
        payload = self.body()
        error = payload["error"]
        assert isinstance(error, dict)
        error.update(self.extra)
        return web.json_response(payload, status=self.status, dumps=_json)


LOADING = LlamaError(503, "Loading model", "unavailable_error")
NOT_FOUND = LlamaError(404, "File Not Found", "not_found_error")


class LlamaChatRequest(ChatRequest):
    """The chat fields llama-server reads beyond the OpenAI ones the simulator already knows."""

    n: int | None = None
    reasoning_format: ReasoningFormat | None = None
    return_progress: bool = False
    top_k: int | None = None
    min_p: float | None = None


class ApplyTemplateRequest(_Body):
    messages: list[ChatMessage]


class TokenizeRequest(_Body):
    content: str
    add_special: bool = False
    with_pieces: bool = False


class _Progress(_Body):
    total: int
    cache: int = 0
    processed: int = 0
    time_ms: int = 0


def _completion_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "chatcmpl-" + "".join(secrets.choice(alphabet) for _ in range(32))


def _finish(reason: str) -> str:
    return "length" if reason == "length" else "stop"


class _Chunks:
    """llama-server's chat.completion(.chunk) objects, keys in its order."""

    def __init__(self) -> None:
        self.id = _completion_id()
        self.created = int(time.time())

    def _tail(self, kind: str) -> dict[str, object]:
        return {
            "created": self.created,
            "id": self.id,
            "model": SIMULATOR_MODEL_ID,
            "system_fingerprint": BUILD_INFO,
            "object": kind,
        }

    def chunk(
        self, delta: Mapping[str, object], finish: str | None = None, **extra: object
    ) -> dict[str, object]:
        choice = {"finish_reason": finish, "index": 0, "delta": delta}
        return {"choices": [choice], **self._tail("chat.completion.chunk"), **extra}

    def usage(self, prompt: int, completion: int) -> dict[str, object]:
        return {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        }

    def usage_chunk(self, prompt: int, completion: int, timings: object) -> dict[str, object]:
        return {
            "choices": [],
            **self._tail("chat.completion.chunk"),
            "usage": self.usage(prompt, completion),
            "timings": timings,
        }

    def complete(
        self, content: str, reasoning: str | None, finish: str, prompt: int, completion: int
    ) -> dict[str, object]:
        message: dict[str, object] = {"role": "assistant", "content": content}
        if reasoning is not None:
            message["reasoning_content"] = reasoning
        choice = {"finish_reason": finish, "index": 0, "message": message}
        tail = self._tail("chat.completion")
        del tail["id"]  # a whole completion puts its id after the usage
        return {
            "choices": [choice],
            **tail,
            "usage": self.usage(prompt, completion),
            "id": self.id,
            "timings": _timings(prompt, completion, 0.0),
        }


def _timings(prompt: int, predicted: int, seconds: float) -> dict[str, object]:
    ms = round(seconds * 1000, 3)
    return {
        "cache_n": 0,
        "prompt_n": prompt,
        "prompt_ms": 0.0,
        "prompt_per_token_ms": 0.0,
        "prompt_per_second": 0.0,
        "predicted_n": predicted,
        "predicted_ms": ms,
        "predicted_per_token_ms": ms / predicted if predicted else 0.0,
        "predicted_per_second": predicted / seconds if seconds > 0 else 0.0,
    }


class _Splitter:
    """Token texts to deltas as llama.cpp's chat layer emits them for one reasoning format."""

    def __init__(self, reasoning_format: ReasoningFormat, progress: bool) -> None:
        self.separate = reasoning_format != "none"
        self.thinking = True
        # The `<think>\n` that ends the prompt: "none" sends it with the first token, or with
        # the prompt progress when asked for; "auto" sends its "\n" as the first reasoning.
        if self.separate:
            self.prefix = "\n"
        else:
            self.prefix = "" if progress else THINK_OPEN + "\n"

    def delta(self, text: str) -> dict[str, object] | None:
        if self.separate and self.thinking and text == THINK_CLOSE:
            self.thinking = False
            return None
        text, self.prefix = self.prefix + text, ""
        if not text:
            return None
        key = "reasoning_content" if self.separate and self.thinking else "content"
        return {key: text}


class LlamaCppDialect:
    """The llama.cpp routes, on the simulator's state, scheduler and answers."""

    def __init__(self, simulator: Simulator) -> None:
        self.sim = simulator

    @property
    def n_ctx(self) -> int:
        return self.sim.config.max_total_tokens

    def app(self) -> web.Application:
        app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[self._middleware])
        app.add_routes(
            [
                web.post("/v1/chat/completions", self.chat_completions),
                web.post("/chat/completions", self.chat_completions),
                web.get("/health", self.health),
                web.get("/props", self.props),
                web.get("/v1/models", self.models),
                web.get("/models", self.models),
                web.post("/apply-template", self.apply_template),
                web.post("/tokenize", self.tokenize),
                web.get("/metrics", self.prometheus),
            ]
        )
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if self.sim.loading:
            return LOADING.response()
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
            return NOT_FOUND.response()
        except LlamaError as error:
            return error.response()

    # --- plain routes ---------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        if not self.sim.config.healthy:
            return LOADING.response()
        return web.json_response({"status": "ok"}, dumps=_json)

    async def props(self, request: web.Request) -> web.Response:
        cfg = self.sim.config
        params = {
            "seed": 4294967295,
            "temperature": 0.8,
            "top_k": 40,
            "top_p": 0.95,
            "min_p": 0.05,
            "max_tokens": -1,
            "n_predict": -1,
            "stream": True,
            "reasoning_format": cfg.reasoning_format,
        }
        payload = {
            "default_generation_settings": {"params": params, "n_ctx": self.n_ctx},
            "total_slots": cfg.max_batch_size or 1,
            "model_alias": SIMULATOR_MODEL_ID,
            "model_ftype": "simulated",
            "model_path": SIMULATOR_MODEL_ID,
            "modalities": {"vision": False, "video": False, "audio": False},
            "endpoint_slots": True,
            "endpoint_props": False,
            "endpoint_metrics": True,
            "chat_template": CHAT_TEMPLATE,
            "bos_token": BOS,
            "eos_token": EOS,
            "build_info": BUILD_INFO,
            "is_sleeping": False,
        }
        return web.json_response(payload, dumps=_json)

    async def models(self, request: web.Request) -> web.Response:
        meta = {
            "vocab_type": 2,
            "n_vocab": 151665,
            "n_ctx": self.n_ctx,
            "n_ctx_train": 131072,
            "n_embd": 5120,
            "n_params": 14770033664,
            "size": 0,
            "ftype": "simulated",
        }
        model = {
            "id": SIMULATOR_MODEL_ID,
            "aliases": [SIMULATOR_MODEL_ID],
            "tags": [],
            "object": "model",
            "created": int(time.time()),
            "owned_by": "llamacpp",
            "meta": meta,
        }
        ollama = {
            "name": SIMULATOR_MODEL_ID,
            "model": SIMULATOR_MODEL_ID,
            "type": "model",
            "capabilities": ["completion"],
        }
        payload = {"models": [ollama], "object": "list", "data": [model]}
        return web.json_response(payload, dumps=_json)

    async def prometheus(self, request: web.Request) -> web.Response:
        gauges = {
            "requests_processing": ("Number of requests processing", self.sim.stats.running),
            "requests_deferred": ("Number of requests deferred", self.sim.stats.queued),
        }
        counters = {
            "tokens_predicted_total": (
                "Number of generation tokens processed",
                self.sim.stats.generated_tokens,
            )
        }
        lines: list[str] = []
        for kind, family in (("counter", counters), ("gauge", gauges)):
            for name, (text, value) in family.items():
                lines += [
                    f"# HELP llamacpp:{name} {text}",
                    f"# TYPE llamacpp:{name} {kind}",
                    f"llamacpp:{name} {value}",
                ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def apply_template(self, request: web.Request) -> web.Response:
        body = await _parse(request, ApplyTemplateRequest)
        prompt = render_chat([ChatTurn(m.role, m.text()) for m in body.messages])
        # llama.cpp leaves out the BOS that tokenizing with add_special puts back.
        return web.json_response({"prompt": prompt.removeprefix(BOS)}, dumps=_json)

    async def tokenize(self, request: web.Request) -> web.Response:
        body = await _parse(request, TokenizeRequest)
        pieces = tokenize(body.content, add_bos=body.add_special)
        tokens: list[Any] = (
            [{"id": p.id, "piece": p.text} for p in pieces]
            if body.with_pieces
            else [p.id for p in pieces]
        )
        return web.json_response({"tokens": tokens}, dumps=_json)

    # --- chat -------------------------------------------------------------------------------

    def _plan(self, body: LlamaChatRequest, prompt: str) -> _Plan:
        """The tokens to send, or a 400 when the prompt alone fills a slot."""
        input_length = count_tokens(prompt)
        if input_length >= self.n_ctx:
            self.sim.stats.validation_errors += 1
            raise LlamaError(
                400,
                f"request ({input_length} tokens) exceeds the available context size "
                f"({self.n_ctx} tokens), try increasing it",
                "exceed_context_size_error",
                n_prompt_tokens=input_length,
                n_ctx=self.n_ctx,
            )
        room = self.n_ctx - input_length
        wanted = body.max_tokens if body.max_tokens is not None else body.max_completion_tokens
        max_new = room if wanted is None or wanted < 0 else min(wanted, room)
        seed = body.seed if body.seed is not None else random.getrandbits(32)
        completion = build_completion(
            question_of(prompt),
            self.sim.bank,
            seed=seed,
            target_tokens=self.sim.config.completion_tokens,
        )
        pieces = []
        generated = ""
        finish: Literal["length", "eos_token", "stop_sequence"] = "eos_token"
        for piece in [*tokenize(completion.text), eos_piece()]:
            pieces.append(piece)
            if piece.special:
                break  # EOS ends the answer, even as the last token of the budget
            generated += piece.text
            if any(stop and stop in generated for stop in body.stop or []):
                finish = "stop_sequence"
                break
            if len(pieces) >= max_new:
                finish = "length"
                break
        return _Plan(pieces, [0.0] * len(pieces), finish, seed, input_length)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        body = await _parse(request, LlamaChatRequest)
        if body.n not in (None, 1):
            raise LlamaError(
                400,
                f"Field 'n': Value must be between 1 <= value <= 1, but got {body.n}",
                "invalid_request_error",
            )
        received = asyncio.get_running_loop().time()
        prompt = render_chat(body.turns())
        plan = self._plan(body, prompt)
        reasoning_format = body.reasoning_format or self.sim.config.reasoning_format
        faults = self.sim.take_faults()
        stats = self.sim.stats
        stats.requests += 1
        stats.active_requests += 1
        try:
            # Nothing at all is sent while every slot is busy.
            async with self.sim.batch_slot():
                texts = _visible_texts(plan, body.stop or [])
                if body.stream:
                    return await self._stream(
                        request, body, plan, texts, faults, received, reasoning_format
                    )
                return await self._complete(plan, texts, faults, received, reasoning_format)
        finally:
            stats.active_requests -= 1

    async def _complete(
        self,
        plan: _Plan,
        texts: list[str],
        faults: _Faults,
        received: float,
        reasoning_format: ReasoningFormat,
    ) -> web.Response:
        chunks = _Chunks()
        splitter = _Splitter(reasoning_format, progress=False)
        content: list[str] = []
        reasoning: list[str] = []
        try:
            events = [event async for event in self.sim.run_plan(plan, faults, received)]
        except InferError as error:
            raise LlamaError(500, error.message, "server_error") from None
        for event in events:
            delta = splitter.delta(texts[event.index - 1])
            for key, value in (delta or {}).items():
                (content if key == "content" else reasoning).append(str(value))
        finish = _finish(plan.finish_reason)
        completion = len(plan.pieces)
        payload = chunks.complete(
            "".join(content),
            "".join(reasoning) if splitter.separate else None,
            finish,
            plan.input_length,
            completion,
        )
        return web.json_response(payload, dumps=_json)

    async def _stream(
        self,
        request: web.Request,
        body: LlamaChatRequest,
        plan: _Plan,
        texts: list[str],
        faults: _Faults,
        received: float,
        reasoning_format: ReasoningFormat,
    ) -> web.StreamResponse:
        chunks = _Chunks()
        role: dict[str, object] = {"role": "assistant", "content": None}
        include_usage = body.stream_options is not None and body.stream_options.include_usage
        splitter = _Splitter(reasoning_format, progress=body.return_progress)
        async with self.sim.event_stream(request, HEADERS) as sse:

            async def send(payload: dict[str, object]) -> None:
                await sse.send(_json(payload))

            if body.return_progress:
                total = plan.input_length
                start = _Progress(total=total).model_dump()
                if splitter.separate:
                    await send(chunks.chunk(role, prompt_progress=start))
                else:
                    await send(chunks.chunk(role))
                    opening = {"content": THINK_OPEN + "\n"}
                    await send(chunks.chunk(opening, prompt_progress=start))
                done = _Progress(total=total, processed=total).model_dump()
                await send(chunks.chunk(role, prompt_progress=done))
            started = time.monotonic()
            last: TokenEvent | None = None
            try:
                async for event in self.sim.run_plan(plan, faults, received):
                    if last is None:
                        await send(chunks.chunk(role))
                    last = event
                    delta = splitter.delta(texts[event.index - 1])
                    if delta is not None:
                        await send(chunks.chunk(delta))
            except InferError as error:
                # After the stream began: the error as an event, then the end, no [DONE].
                await send(LlamaError(500, error.message, "server_error").body())
                return sse.response
            assert last is not None
            assert last.finish is not None
            completion = last.finish.generated_tokens
            timings = _timings(plan.input_length, completion, time.monotonic() - started)
            finish = _finish(plan.finish_reason)
            if include_usage:
                await send(chunks.chunk({}, finish))
                await send(chunks.usage_chunk(plan.input_length, completion, timings))
            else:
                await send(chunks.chunk({}, finish, timings=timings))
            await sse.send("[DONE]")
        return sse.response


def _visible_texts(plan: _Plan, stops: list[str]) -> list[str]:
    """The text each planned token shows: none for EOS, and nothing from the stop string that
    ended the answer on (its tokens still count)."""
    texts = ["" if piece.special else piece.text for piece in plan.pieces]
    if plan.finish_reason != "stop_sequence":
        return texts
    generated = "".join(texts)
    end = min(generated.find(stop) for stop in stops if stop and stop in generated)
    shown: list[str] = []
    for text in texts:
        shown.append(text[: max(0, end)])
        end -= len(text)
    return shown


async def _parse(request: web.Request, model: type[Any]) -> Any:
    """The JSON body as `model`; llama-server answers a body that is not JSON with 500 and a
    field of the wrong shape with 400."""
    raw = await request.read()
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise LlamaError(500, f"[json.exception.parse_error.101] {error}", "server_error") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise LlamaError(
            400, f"Field '{where}': {problem['msg']}", "invalid_request_error"
        ) from None


def llamacpp_app(simulator: Simulator) -> web.Application:
    return LlamaCppDialect(simulator).app()
