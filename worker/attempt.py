"""One attempt against the model server: its limits and the prompt's size, then the answer
streamed to the end and parsed."""

from __future__ import annotations

import asyncio
import time

import httpx2
from huggingface_hub import AsyncInferenceClient, ChatCompletionInputStreamOptions

from fathom.contract import Phase, SolveResult
from worker.errors import RetryLater, Trouble, too_long
from worker.model_server import ServerInfo, count_prompt_tokens, server_info
from worker.parse import parse_completion
from worker.prompt import Message, answer_budget, estimate_prompt_tokens
from worker.state import SolveRun


async def _limits(
    run: SolveRun, http: httpx2.AsyncClient, base_url: str, messages: list[Message]
) -> tuple[ServerInfo, int]:
    """The server's limits and the prompt's token count, asked at once (a few ms each); both
    requests end before an error is raised, so none is left running behind a retry."""
    settings = run.settings
    fresh = run.fresh_info()
    info_request = (
        server_info(http, base_url, settings.model_id, settings.context_tokens)
        if fresh is None
        else _known(fresh)
    )
    info, counted = await asyncio.gather(
        info_request, count_prompt_tokens(http, base_url, messages), return_exceptions=True
    )
    if isinstance(info, BaseException):
        raise info
    if isinstance(counted, BaseException):
        raise counted
    if fresh is None:
        run.info, run.info_at = info, time.monotonic()
    if counted is None:
        counted = estimate_prompt_tokens(messages, settings.chars_per_token_estimate)
    return info, counted


async def _known(info: ServerInfo) -> ServerInfo:
    return info


async def attempt(run: SolveRun, http: httpx2.AsyncClient, messages: list[Message]) -> SolveResult:
    """One request to the model server, streamed to the end. Raises what the client raised,
    JobFailed, or RetryLater for an answer cut short."""
    settings = run.settings
    base_url = (settings.model_url or "").rstrip("/")
    info, prompt_tokens = await _limits(run, http, base_url, messages)
    run.prompt_tokens = prompt_tokens
    budget = answer_budget(prompt_tokens, info.max_total_tokens, info.max_input_tokens)
    if budget is None:
        raise too_long(prompt_tokens, info.max_total_tokens, follow_up=bool(run.request.history))
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
    async with AsyncInferenceClient(
        base_url=base_url, timeout=settings.read_timeout_s, api_key=api_key
    ) as client:
        stream = await client.chat_completion(
            messages,
            stream=True,
            stream_options=ChatCompletionInputStreamOptions(include_usage=True),
            temperature=settings.temperature,
            top_p=settings.top_p,
            seed=run.seed,
            max_tokens=budget,
        )
        # A stalled TGI still sends keep-alive comments every 15 s, which reset the client's
        # per-read timeout: the stall clock here restarts only when text arrives.
        async with asyncio.timeout(settings.read_timeout_s) as stall_clock:
            async for chunk in stream:
                stall_clock.reschedule(asyncio.get_running_loop().time() + settings.read_timeout_s)
                if chunk.usage is not None:
                    usage_prompt = chunk.usage.prompt_tokens
                    usage_completion = chunk.usage.completion_tokens
                for choice in chunk.choices:
                    text = choice.delta.content
                    if text:
                        if first is None:
                            first = time.monotonic()
                            run.ttft_s = first - sent
                        run.tokens += 1
                        run.tracker.feed(text)
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
