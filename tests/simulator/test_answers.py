"""What the simulator writes: tokenizer, chat template, problem bank, R1-style completions."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from fathom.settings import FATHOM_INSTRUCTION
from simulator import is_simulator
from simulator.answers import (
    ChatTurn,
    ProblemBank,
    build_completion,
    default_dataset_path,
    question_of,
    render_chat,
)
from simulator.server import SimulatorConfig, sequence_rate
from simulator.tokenizer import THINK_CLOSE, count_tokens, tokenize

MATH_500 = default_dataset_path()
needs_math_500 = pytest.mark.skipif(not MATH_500.is_file(), reason="MATH-500 not beside the clone")


def test_tokenizer_round_trips_and_keeps_markers_whole() -> None:
    text = "Okay.</think>\n\nSo $\\frac{1}{2}$ is 0.5 — done <｜end▁of▁sentence｜>"
    pieces = tokenize(text)
    assert "".join(p.text for p in pieces) == text
    assert THINK_CLOSE in [p.text for p in pieces]
    assert next(p for p in pieces if p.special).text == "<｜end▁of▁sentence｜>"
    assert count_tokens(text) == len(pieces)
    assert pieces[-1].stop == len(text.encode())
    assert all(a.stop == b.start for a, b in itertools.pairwise(pieces))


def test_render_chat_is_the_r1_template() -> None:
    prompt = render_chat(
        [
            ChatTurn("user", "Q1"),
            ChatTurn("assistant", "thinking...</think>\n\nA1"),
            ChatTurn("user", "Q2"),
        ]
    )
    assert prompt == (
        "<｜begin▁of▁sentence｜><｜User｜>Q1<｜Assistant｜>\n\nA1<｜end▁of▁sentence｜>"
        "<｜User｜>Q2<｜Assistant｜><think>\n"
    )
    assert question_of(prompt) == "Q2"
    assert question_of(f"What is 2+2? {FATHOM_INSTRUCTION}") == "What is 2+2?"


def test_builtin_bank_when_no_dataset(tmp_path: Path) -> None:
    bank = ProblemBank.load(tmp_path / "missing.jsonl")
    assert len(bank.problems) >= 3
    found = bank.match("  what is the SUM of the first 100 positive integers? ")
    assert found is not None
    assert found.answer == "5050"


def test_bank_from_a_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "bank.jsonl"
    row = {"problem": "Compute $2^{10}$.", "solution": "It is $\\boxed{1024}$.", "answer": "1024"}
    path.write_text(json.dumps(row) + "\n")
    bank = ProblemBank.load(path)
    assert bank.match("Compute $2^{10}$.") == bank.problems[0]


@needs_math_500
def test_a_math_500_question_gets_its_own_solution() -> None:
    bank = ProblemBank.load(MATH_500)
    problem = bank.problems[0]
    completion = build_completion(problem.problem, bank, seed=1, target_tokens=3000)
    reasoning, solution = completion.text.rsplit(THINK_CLOSE, 1)
    assert completion.matched
    assert "<think>" not in reasoning
    assert "[asy]" not in completion.text
    assert solution.rstrip().endswith(f"\\boxed{{{problem.answer}}}\n\\]")
    # The reasoning is padded out to about the target length.
    assert 2800 <= count_tokens(completion.text) <= 3300


def test_other_questions_get_a_labelled_canned_solution(tmp_path: Path) -> None:
    bank = ProblemBank.load(tmp_path / "missing.jsonl")
    completion = build_completion("Why is the sky blue?", bank, seed=1, target_tokens=100)
    assert not completion.matched
    reasoning, solution = completion.text.rsplit(THINK_CLOSE, 1)
    assert "not from a language model" in reasoning
    assert completion.problem.unique_id in reasoning
    assert "\\boxed{" in solution
    again = build_completion("Why is the sky blue?", bank, seed=2, target_tokens=100)
    assert again.problem == completion.problem  # chosen by the question, not the seed


def test_continuous_batching_slows_each_sequence() -> None:
    config = SimulatorConfig(tokens_per_s=40, batch_slowdown=0.02, speed=10)
    assert sequence_rate(config, 1) == 400
    assert sequence_rate(config, 0) == 400
    assert sequence_rate(config, 11) == pytest.approx(400 / 1.2)
    assert 32 * sequence_rate(config, 32) > 16 * sequence_rate(config, 16)


def test_is_simulator() -> None:
    assert is_simulator("fathom-simulator")
    assert not is_simulator("FractalAIResearch/Fathom-R1-14B")


def test_dataset_path_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FATHOM_SIM_DATASET", str(tmp_path / "mine.jsonl"))
    assert default_dataset_path() == tmp_path / "mine.jsonl"
    monkeypatch.delenv("FATHOM_SIM_DATASET")
    assert default_dataset_path().parts[-4:] == (
        "shared",
        "datasets",
        "fathom-eval",
        "math_test.jsonl",
    )


@needs_math_500
def test_sampled_answers_differ_by_seed_like_a_model() -> None:
    bank = ProblemBank.load(MATH_500)
    problem = next(p for p in bank.problems if p.answer == r"\frac{14}{3}")

    def final(seed: int, rate: float = 0.3) -> str:
        text = build_completion(
            problem.problem,
            bank,
            seed=seed,
            target_tokens=200,
            wrong_rate=rate,
            rewrite_rate=rate,
        ).text
        answer = text.rsplit("\\boxed{", 1)[1]
        return answer[: answer.rindex("}")]

    answers = [final(seed) for seed in range(200)]
    assert answers == [final(seed) for seed in range(200)]  # the same seed, the same answer
    counts = {answer: answers.count(answer) for answer in set(answers)}
    assert counts[r"\frac{14}{3}"] > 60
    assert counts["14/3"] > 40  # right, written another way
    wrong = {a for a in counts if a not in (r"\frac{14}{3}", "14/3")}
    assert len(wrong) == 2  # wrong samples agree on one of two wrong answers
    assert {final(seed, rate=0.0) for seed in range(20)} == {r"\frac{14}{3}"}  # greedy
