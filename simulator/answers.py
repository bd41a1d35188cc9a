"""What the simulator says: the R1 chat template, the problem bank and R1-style completions.

A completion looks like Fathom-R1-14B's: the prompt ends with `<｜Assistant｜><think>\\n`, so the
text starts straight with reasoning, then `</think>`, then a Markdown+LaTeX solution ending in
`\\boxed{...}`. The solutions are MATH-500's human-written ones. A question found in the bank
gets its own solution; any other gets a canned solution to a different problem, and the text
says so: the simulator never passes itself off as a model that solved the question.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from simulator.tokenizer import ASSISTANT, BOS, EOS, THINK_CLOSE, THINK_OPEN, USER, count_tokens

DATASET_ENV = "FATHOM_SIM_DATASET"


def default_dataset_path() -> Path:
    """MATH-500 beside the checkout (`../shared/datasets/fathom-eval/math_test.jsonl`), or the
    file named by FATHOM_SIM_DATASET."""
    if env := os.environ.get(DATASET_ENV):
        return Path(env)
    from fathom.settings import REPO_ROOT

    return REPO_ROOT.parent / "shared" / "datasets" / "fathom-eval" / "math_test.jsonl"


# --- the chat template ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatTurn:
    role: str
    content: str


def render_chat(turns: Sequence[ChatTurn]) -> str:
    """The DeepSeek-R1-Distill chat template with the generation prompt: system text first,
    user turns after `<｜User｜>`, assistant turns with their reasoning cut off (only what follows
    the last `</think>`), ending with `<｜Assistant｜><think>\\n`."""
    system = "".join(turn.content for turn in turns if turn.role == "system")
    parts = [BOS, system]
    for turn in turns:
        if turn.role == "user":
            parts.append(USER + turn.content)
        elif turn.role == "assistant":
            answer = turn.content.split(THINK_CLOSE)[-1]
            parts.append(ASSISTANT + answer + EOS)
    parts.append(ASSISTANT + THINK_OPEN + "\n")
    return "".join(parts)


_INSTRUCTION = re.compile(r"please reason step by step.*?\\boxed\{\}\.?", re.IGNORECASE | re.DOTALL)


def question_of(prompt: str) -> str:
    """The question inside a rendered prompt (the last user turn) or a raw /generate input,
    without the Fathom instruction."""
    if USER in prompt:
        prompt = prompt.rsplit(USER, 1)[1].split(ASSISTANT, 1)[0]
    return _INSTRUCTION.sub("", prompt).strip()


def _normalize(text: str) -> str:
    return " ".join(text.split()).lower()


# --- the problem bank -----------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    unique_id: str
    problem: str
    solution: str
    answer: str


class ProblemBank:
    def __init__(self, problems: Sequence[Problem], source: str) -> None:
        if not problems:
            raise ValueError("a problem bank needs at least one problem")
        self.problems = list(problems)
        self.source = source
        self._by_text = {_normalize(p.problem): p for p in self.problems}

    @classmethod
    def load(cls, path: Path | None) -> ProblemBank:
        """The JSONL file at `path` (MATH-500 fields: problem, solution, answer, unique_id) plus
        the handwritten problems shipped with the package (alone when there is no such file)."""
        if path is not None and path.is_file():
            return _load_jsonl(path.resolve())
        return cls(_builtin_problems(), "the simulator's built-in problems")

    def match(self, question: str) -> Problem | None:
        """The bank's problem when the question is one of them (whitespace and case aside)."""
        wanted = _normalize(question)
        if not wanted:
            return None
        if found := self._by_text.get(wanted):
            return found
        # A question wrapped in other words (a greeting, an instruction) still counts.
        candidates = [p for text, p in self._by_text.items() if len(text) >= 20 and text in wanted]
        return max(candidates, key=lambda p: len(p.problem), default=None)

    def pick(self, key: str) -> Problem:
        """A problem chosen by a stable hash of `key` (the same question gets the same one)."""
        return self.problems[random.Random(key).randrange(len(self.problems))]


def _problem(row: dict[str, object], fallback_id: str) -> Problem:
    return Problem(
        unique_id=str(row.get("unique_id") or row.get("id") or fallback_id),
        problem=str(row["problem"]),
        solution=str(row.get("solution") or f"The answer is $\\boxed{{{row['answer']}}}$."),
        answer=str(row["answer"]),
    )


@lru_cache(maxsize=4)
def _load_jsonl(path: Path) -> ProblemBank:
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    problems = [_problem(row, f"{path.name}/{i}") for i, row in enumerate(rows)]
    return ProblemBank(problems + _builtin_problems(), f"{path} and built-in problems")


def _builtin_problems() -> list[Problem]:
    text = resources.files("simulator").joinpath("fallback_problems.json").read_text("utf-8")
    return [_problem(row, f"built-in/{i}") for i, row in enumerate(json.loads(text))]


# --- completions ----------------------------------------------------------------------------

_ASY = re.compile(r"\n*\[asy\].*?\[/asy\]\n*", re.DOTALL)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z$\\])|\n\s*\n")

_OPENERS = (
    "Okay, so I need to solve this problem: {q} Let me think about it step by step.",
    "Alright, let's see. The problem says: {q} Let me work through it carefully.",
    "Hmm, let me start by reading the problem again: {q}",
)
_CONNECTIVES = ("First, ", "So ", "Then ", "Now, ", "Next, ", "Okay, ", "Right, ", "Also, ")
_CONNECTIVE_WORDS = {c.strip(" ,") for c in _CONNECTIVES} | {"Thus", "Therefore", "Hence"}
_CHECKS = (
    "Wait, let me double-check that step.",
    "Hmm, does that make sense? Let me verify it another way.",
    "Let me make sure I didn't make an arithmetic mistake there.",
    "Actually, let me re-derive this more carefully to be sure.",
    "Is there another approach? Let me try it and compare.",
)


@dataclass(frozen=True)
class Completion:
    """A full completion: `reasoning + "</think>" + solution`."""

    text: str
    problem: Problem
    matched: bool


def build_completion(
    question: str, bank: ProblemBank, *, seed: int, target_tokens: int, echo: bool = False
) -> Completion:
    """An R1-style completion of about `target_tokens` tokens (at least the honest note and a
    short solution). The same question and seed give the same text. `echo`: the question
    itself is the solution and the boxed answer."""
    matched = bank.match(question)
    problem = matched or bank.pick(question)
    rng = random.Random(f"{seed}\x00{question}")
    if echo:
        problem = Problem("echo", question, question, question)
        note = "(Note: this text comes from the Fathom TGI simulator, repeating the question.)"
        solution = question
    elif matched:
        note = (
            "(Note: this text comes from the Fathom TGI simulator, not from a language model: it"
            f" recites the reference solution of {problem.unique_id}.)"
        )
        solution = _clean(problem.solution)
    else:
        note = (
            "(Note: this text comes from the Fathom TGI simulator, not from a language model. It"
            " has no solution for this question, so what follows is a canned solution to a"
            f" different problem, {problem.unique_id}: {_shorten(problem.problem, 120)})"
        )
        solution = (
            "*Simulated answer: this is the solution of a different problem, not of the"
            f" question asked.*\n\n{_clean(problem.solution)}"
        )
    solution += f"\n\n**Final Answer**\n\\[\n\\boxed{{{problem.answer}}}\n\\]"
    closing = f"\n\nSo the final answer is {problem.answer}.\n{THINK_CLOSE}\n\n"

    budget = target_tokens - count_tokens(note + closing + solution)
    if budget < 0:
        # Too short a target for the full written solution: keep the note and the answer.
        solution = f"The answer is $\\boxed{{{problem.answer}}}$."
        budget = target_tokens - count_tokens(note + closing + solution)
    reasoning = note + "\n\n" + _reasoning(problem, rng, budget)
    return Completion(reasoning + closing + solution, problem, matched is not None)


def _reasoning(problem: Problem, rng: random.Random, budget: int) -> str:
    """Paragraphs walking through the solution's sentences with R1-like asides, repeated as
    re-checks until about `budget` tokens."""
    sentences = [s for s in _SENTENCE.split(_clean(problem.solution)) if s.strip()] or ["..."]
    paragraphs = [rng.choice(_OPENERS).format(q=_shorten(problem.problem, 150))]
    used = count_tokens(paragraphs[0])
    position = 0
    while used < budget:
        sentence = sentences[position % len(sentences)]
        position += 1
        connective = rng.choice(_CONNECTIVES)
        if sentence.split(maxsplit=1)[0].rstrip(",") in _CONNECTIVE_WORDS:
            text = sentence
        else:
            text = connective + sentence[:1].lower() + sentence[1:]
        if position % len(sentences) == 0 or rng.random() < 0.25:
            text += " " + rng.choice(_CHECKS)
        size = count_tokens(text) + 1
        if used + size - budget > budget - used:
            # This paragraph would overshoot more than stopping short: close with a short one.
            text = rng.choice(_CHECKS)
            size = count_tokens(text) + 1
        paragraphs.append(text)
        used += size
    return "\n\n".join(paragraphs)


def _clean(solution: str) -> str:
    """A solution without Asymptote drawings (a model writes none)."""
    return _ASY.sub("\n\n", solution).strip()


def _shorten(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
