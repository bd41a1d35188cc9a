from __future__ import annotations

import random

from fathom.contract import Phase, SolveRequest, Turn
from fathom.settings import FATHOM_INSTRUCTION
from worker.errors import Backoff
from worker.progress import ProgressThrottle
from worker.prompt import (
    MIN_ANSWER_TOKENS,
    answer_budget,
    build_messages,
    estimate_prompt_tokens,
)
from worker.run import time_limit


def test_single_question_is_one_user_turn_with_the_instruction() -> None:
    messages = build_messages(SolveRequest(question="  What is 2+2? "), FATHOM_INSTRUCTION)
    assert messages == [
        {
            "role": "user",
            "content": "What is 2+2?\n\nPlease reason step by step, and put your final answer "
            "within \\boxed{}.",
        }
    ]


def test_follow_up_sends_earlier_solutions_never_reasoning() -> None:
    request = SolveRequest(
        question="And for 3+3?",
        history=[Turn(question="What is 2+2?", solution="$2+2=\\boxed{4}$")],
    )
    messages = build_messages(request, "INSTR")
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[0]["content"] == "What is 2+2?\n\nINSTR"
    assert messages[1]["content"] == "$2+2=\\boxed{4}$"
    assert messages[2]["content"] == "And for 3+3?\n\nINSTR"
    assert all(m["role"] != "system" for m in messages)


def test_estimate_errs_on_the_high_side() -> None:
    messages = [{"role": "user", "content": "x" * 1000}]
    # 1000 chars at a pessimistic 2.5 chars/token, plus the template's tokens.
    assert estimate_prompt_tokens(messages, 2.5) >= 400
    assert estimate_prompt_tokens(messages * 2, 2.5) > 2 * 400


def test_budget_is_the_context_left_after_the_prompt() -> None:
    assert answer_budget(100, 16384, None) == 16284
    assert answer_budget(100, 16384, 16000) == 16284
    assert answer_budget(16001, 16384, 16000) is None  # over the server's input limit
    assert answer_budget(16384, 16384, None) is None  # nothing left
    assert answer_budget(16384 - MIN_ANSWER_TOKENS, 16384, None) == MIN_ANSWER_TOKENS
    assert answer_budget(16384 - MIN_ANSWER_TOKENS + 1, 16384, None) is None


def test_throttle_lets_phase_changes_through_and_spaces_the_rest() -> None:
    now = [0.0]
    throttle = ProgressThrottle(1.0, clock=lambda: now[0])
    assert throttle.due(Phase.THINKING)
    now[0] = 0.5
    assert not throttle.due(Phase.THINKING)
    assert throttle.due(Phase.WRITING)  # a new phase goes out at once
    now[0] = 1.2
    assert not throttle.due(Phase.WRITING)
    now[0] = 1.6
    assert throttle.due(Phase.WRITING)


def test_backoff_grows_to_its_cap_with_jitter() -> None:
    rng = random.Random(1)
    backoff = Backoff(attempts=9, base_s=1.0, cap_s=15.0)
    delays = [backoff.delay(n, rng) for n in range(1, 9)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(7.5 <= d <= 15.0 for d in delays[5:])


def test_own_deadline_is_a_little_under_rq_limit() -> None:
    assert time_limit(1800, 1800) == 1770
    assert time_limit(60, 1800) == 57
    assert time_limit(None, 100) == 95
    assert time_limit(-1, 100) == 95
    assert time_limit(1, 100) == 1.0
