"""One attempt against the model server: its engine and limits and the prompt's size, then the
answer streamed to the end and parsed."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Coroutine
from typing import Any, TypeVar

import httpx2
from huggingface_hub import (
    AsyncInferenceClient,
    ChatCompletionInputStreamOptions,
    ChatCompletionStreamOutput,
    ChatCompletionStreamOutputDelta,
)

from fathom.contract import Phase, SolveResult
from worker.errors import RetryLater, Trouble, too_long
from worker.model_server import (
    Engine,
    ServerInfo,
    count_prompt_tokens,
    count_with_chat_tokenize,
    discover,
    engine_fields,
)
from worker.parse import parse_completion
from worker.prompt import Message, answer_budget, estimate_prompt_tokens
from worker.state import SolveRun

log = logging.getLogger(__name__)

SLOT_WAIT_NOTE_S = 5.0
"""After this long without even the response's headers (or the stall limit, if shorter) the
asker is told the job waits for a free slot: llama.cpp answers a request only once a slot
takes it, and sends nothing at all before."""
WAITING_FOR_SLOT = "waiting for a free slot on the model server"

_T = TypeVar("_T")


async def _limits(
    run: SolveRun, http: httpx2.AsyncClient, base_url: str, messages: list[Message]
) -> tuple[ServerInfo, int]:
    """The server's limits and the prompt's token count. TGI's /chat_tokenize goes out beside
    the discovery, so TGI costs one round trip; other engines count once discovery has said
    which engine it is. Every request has ended before an error is raised, so none is left
    running behind a retry."""
    settings = run.settings
    info = run.fresh_info()
    counted: int | None
    if info is None:
        found, tgi_count = await asyncio.gather(
            discover(
                http,
                base_url,
                default_model_id=settings.model_id,
                default_context=settings.context_tokens,
            ),
            count_with_chat_tokenize(http, base_url, messages),
            return_exceptions=True,
        )
        if isinstance(found, BaseException):
            raise found
        if isinstance(tgi_count, BaseException):
            raise tgi_count
        info = found
        run.info, run.info_at = info, time.monotonic()
        if info.engine in (Engine.TGI, None):
            counted = tgi_count
        else:
            counted = await count_prompt_tokens(http, base_url, info, messages)
    else:
        counted = await count_prompt_tokens(http, base_url, info, messages)
    if counted is None:
        counted = estimate_prompt_tokens(messages, settings.chars_per_token_estimate)
    return info, counted


async def _opened(run: SolveRun, engine: Engine | None, opening: Coroutine[Any, Any, _T]) -> _T:
    """The response, once the server starts it. TGI and vLLM start at once (and keep a queued
    request alive inside the stream): silence beyond the stall limit is a stall. llama.cpp
    sends nothing, not even headers, while every slot is busy: that wait is bounded by the
    job's time limit alone, and the asker is told about it."""
    read_timeout_s = run.settings.read_timeout_s
    if engine is not Engine.LLAMA_CPP:
        async with asyncio.timeout(read_timeout_s):
            return await opening
    task = asyncio.ensure_future(opening)
    try:
        done, _ = await asyncio.wait({task}, timeout=min(SLOT_WAIT_NOTE_S, read_timeout_s))
        if not done:
            log.info("job %s: %s", run.job_id, WAITING_FOR_SLOT)
            run.publish(Phase.THINKING, note=WAITING_FOR_SLOT)
        return await task
    finally:
        if not task.done():
            task.cancel()


def _reasoning_of(delta: ChatCompletionStreamOutputDelta) -> str | None:
    """Reasoning a server sent apart from the content: llama.cpp and older vLLM call it
    `reasoning_content` (huggingface_hub keeps it as an extra attribute), newer vLLM
    `reasoning`."""
    extra = getattr(delta, "reasoning_content", None)
    if isinstance(extra, str) and extra:
        return extra
    return delta.reasoning or None


async def attempt(run: SolveRun, http: httpx2.AsyncClient, messages: list[Message]) -> SolveResult:
    """One request to the model server, streamed to the end. Raises what the client raised,
    JobFailed, or RetryLater for an answer cut short."""
    settings = run.settings
    base_url = (settings.model_url or "").rstrip("/")
    info, prompt_tokens = await _limits(run, http, base_url, messages)
    run.prompt_tokens = prompt_tokens
    budget = answer_budget(prompt_tokens, info.context_tokens, info.max_input_tokens)
    if budget is None:
        raise too_long(prompt_tokens, info.context_tokens, follow_up=bool(run.request.history))
    run.budget = budget
    run.restart_text()
    run.publish(Phase.THINKING)

    api_key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    finish_reason: str | None = None
    usage_prompt: int | None = None
    usage_completion: int | None = None
    sent = time.monotonic()
    run.prepare_s = sent - run.picked_up
    first: float | None = None
    # No client timeout: _opened bounds the wait for the response, the stall clock the stream.
    async with AsyncInferenceClient(base_url=base_url, timeout=None, api_key=api_key) as client:
        stream: AsyncIterable[ChatCompletionStreamOutput] = await _opened(
            run,
            info.engine,
            client.chat_completion(
                messages,
                stream=True,
                stream_options=ChatCompletionInputStreamOptions(include_usage=True),
                temperature=settings.temperature,
                top_p=settings.top_p,
                seed=run.seed,
                max_tokens=budget,
                extra_body=engine_fields(info),
            ),
        )
        # A stalled TGI still sends keep-alive comments every 15 s (llama.cpp every 30 s),
        # which the client skips: the stall clock restarts only when text arrives, or, from
        # llama.cpp, a report of its progress through a long prompt.
        async with asyncio.timeout(settings.read_timeout_s) as stall_clock:
            async for chunk in stream:
                progress = getattr(chunk, "prompt_progress", None) is not None
                if progress:
                    stall_clock.reschedule(
                        asyncio.get_running_loop().time() + settings.read_timeout_s
                    )
                if chunk.usage is not None:
                    usage_prompt = chunk.usage.prompt_tokens
                    usage_completion = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    reasoning = _reasoning_of(choice.delta)
                    text = choice.delta.content
                    if reasoning:
                        run.tracker.feed_reasoning(reasoning)
                    if text:
                        run.tracker.feed(text)
                    if (reasoning or text) and not progress:
                        # A progress chunk may carry the `<think>\n` that ends the prompt:
                        # text, but no token generated yet.
                        stall_clock.reschedule(
                            asyncio.get_running_loop().time() + settings.read_timeout_s
                        )
                        if first is None:
                            first = time.monotonic()
                            run.ttft_s = first - sent
                        run.tokens += 1
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                if run.tokens and run.throttle.due(run.phase):
                    run.publish(run.phase)
    if finish_reason is None:
        raise RetryLater(Trouble.DROPPED, "the model server ended the answer early, retrying")
    if first is not None:
        run.generation_s = time.monotonic() - first
    parsed = parse_completion(run.tracker.text, finish_reason)
    return run.result(
        parsed.status,
        answer=parsed.answer,
        solution=parsed.solution,
        reasoning=parsed.reasoning,
        finish_reason=finish_reason,
        prompt_tokens=usage_prompt if usage_prompt is not None else prompt_tokens,
        completion_tokens=usage_completion if usage_completion is not None else run.tokens,
    )
