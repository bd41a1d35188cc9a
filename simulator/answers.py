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
    question: str,
    bank: ProblemBank,
    *,
    seed: int,
    target_tokens: int,
    wrong_rate: float = 0.0,
    rewrite_rate: float = 0.0,
    echo: bool = False,
) -> Completion:
    """An R1-style completion of about `target_tokens` tokens (at least the honest note and a
    short solution). The same question and seed give the same text.

    Like a sampled model, different seeds may end on different answers: with probability
    `wrong_rate` the final answer is one of two wrong answers kept for the question (so wrong
    samples can agree with each other), with probability `rewrite_rate` the right answer
    written another way (`3/4` for `\\frac{3}{4}`, `x = 5` for `5`), else the reference.
    `echo`: the question itself is the solution and the boxed answer."""
    matched = bank.match(question)
    problem = matched or bank.pick(question)
    rng = random.Random(f"{seed}\x00{question}")
    answer = _sampled_answer(problem, bank, seed, question, wrong_rate, rewrite_rate)
    if echo:
        problem = Problem("echo", question, question, question)
        answer = question
        note = "(Note: this text comes from the Fathom TGI simulator, repeating the question.)"
        solution = question
    elif matched:
        note = (
            "(Note: this text comes from the Fathom TGI simulator, not from a language model: it"
            f" recites the reference solution of {problem.unique_id}.)"
        )
        solution = _with_answer(_clean(problem.solution), problem.answer, answer)
    else:
        note = (
            "(Note: this text comes from the Fathom TGI simulator, not from a language model. It"
            " has no solution for this question, so what follows is a canned solution to a"
            f" different problem, {problem.unique_id}: {_shorten(problem.problem, 120)})"
        )
        solution = (
            "*Simulated answer: this is the solution of a different problem, not of the"
            f" question asked.*\n\n{_with_answer(_clean(problem.solution), problem.answer, answer)}"
        )
    solution += f"\n\n**Final Answer**\n\\[\n\\boxed{{{answer}}}\n\\]"
    closing = f"\n\nSo the final answer is {answer}.\n{THINK_CLOSE}\n\n"

    budget = target_tokens - count_tokens(note + closing + solution)
    if budget < 0:
        # Too short a target for the full written solution: keep the note and the answer.
        solution = f"The answer is $\\boxed{{{answer}}}$."
        budget = target_tokens - count_tokens(note + closing + solution)
    reasoning = note + "\n\n" + _reasoning(problem, rng, budget)
    return Completion(reasoning + closing + solution, problem, matched is not None)


_FRACTION = re.compile(r"^(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}$")
_DEGREES = re.compile(r"^(\d+)\^\\circ$")


def _sampled_answer(
    problem: Problem,
    bank: ProblemBank,
    seed: int,
    question: str,
    wrong_rate: float,
    rewrite_rate: float,
) -> str:
    """This seed's final answer: wrong, right but written otherwise, or the reference."""
    draw = random.Random(f"answer\x00{seed}\x00{question}").random()
    if draw < wrong_rate:
        wrong = _wrong_answers(problem, bank)
        return wrong[0] if draw < wrong_rate / 2 else wrong[1]
    if draw < wrong_rate + rewrite_rate:
        return _rewritten(problem.answer)
    return problem.answer


def _wrong_answers(problem: Problem, bank: ProblemBank) -> tuple[str, str]:
    """Two wrong answers for a problem, always the same ones: an integer off by a little, or
    the answers of other problems."""
    answer = problem.answer.strip()
    if re.fullmatch(r"-?\d+", answer):
        value = int(answer)
        return str(value + 1), str(value * 2 if value not in (0, 2) else value + 3)
    rng = random.Random(f"wrong\x00{problem.unique_id}")
    others = [p.answer for p in bank.problems if p.answer.strip() != answer]
    if len(others) < 2:
        return f"{answer} + 1", f"2({answer})"
    first, second = rng.sample(others, 2)
    return first, second


def _rewritten(answer: str) -> str:
    """The same answer written another way, where there is an obvious one."""
    text = answer.strip()
    fraction = _FRACTION.match(text)
    if fraction:
        return f"{fraction[1]}{fraction[2]}/{fraction[3]}"
    degrees = _DEGREES.match(text)
    if degrees:
        return degrees[1]
    if re.fullmatch(r"\d+", text):
        return f"{int(text):,}".replace(",", "{,}") if int(text) >= 1000 else f"x = {text}"
    return text


def _with_answer(solution: str, reference: str, answer: str) -> str:
    """The written solution ending on `answer` instead of the reference's box."""
    if answer == reference:
        return solution
    return solution.replace(f"\\boxed{{{reference}}}", f"\\boxed{{{answer}}}")


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
