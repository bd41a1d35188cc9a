"""The Fathom prompt and its token budget (pure)."""

from __future__ import annotations

import math

from fathom.contract import SolveRequest

Message = dict[str, str]

MIN_ANSWER_TOKENS = 512
"""Fewer tokens than this left for the answer cannot hold any reasoning: refuse the question."""
TEMPLATE_TOKENS_PER_MESSAGE = 8
"""Role markers and separators the chat template adds per message (R1 uses about 3)."""
TEMPLATE_TOKENS_FIXED = 8
"""Begin-of-sentence and the `<｜Assistant｜><think>\\n` generation prompt."""


def user_turn(question: str, instruction: str) -> str:
    return f"{question.strip()}\n\n{instruction}" if instruction else question.strip()


def build_messages(request: SolveRequest, instruction: str) -> list[Message]:
    """User turns carry the question plus the instruction; no system prompt (DeepSeek's advice
    for R1 models). Earlier turns send back only the written solution, never the reasoning."""
    messages: list[Message] = []
    for turn in request.history:
        messages.append({"role": "user", "content": user_turn(turn.question, instruction)})
        messages.append({"role": "assistant", "content": turn.solution})
    messages.append({"role": "user", "content": user_turn(request.question, instruction)})
    return messages


def estimate_prompt_tokens(messages: list[Message], chars_per_token: float) -> int:
    """A pessimistic token count for servers without a tokenizer endpoint: a low chars/token
    ratio plus the template's own tokens, so the budget errs on the short side."""
    chars = sum(len(message["content"]) for message in messages)
    template = TEMPLATE_TOKENS_FIXED + TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
    return math.ceil(chars / chars_per_token) + template


def answer_budget(
    prompt_tokens: int, max_total_tokens: int, max_input_tokens: int | None
) -> int | None:
    """max_tokens for the completion: the context left after the prompt. None when the prompt
    does not fit the server's input limit or leaves less than MIN_ANSWER_TOKENS to answer."""
    if max_input_tokens is not None and prompt_tokens > max_input_tokens:
        return None
    budget = max_total_tokens - prompt_tokens
    return budget if budget >= MIN_ANSWER_TOKENS else None
