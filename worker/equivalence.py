"""Are two final answers the same? Equivalence classes of sampled answers for majority voting.

Two final answers (the LaTeX inside `\\boxed{...}`) are the same when Hugging Face's math-verify
says so in BOTH directions: `verify(parse(a), parse(b))` and `verify(parse(b), parse(a))`, since
`verify` treats its first argument as the gold answer and is not symmetric (an equation in the
prediction is unwrapped to its right-hand side, not one in the gold). Each answer is handed to
`parse` as `\\boxed{answer}`, which points math-verify's LaTeX extractor at exactly that text;
bare LaTeX is read badly (`1,2` as 1.2, `\\{1,2\\}` not at all). Sets and relations are compared
both ways round (`allow_set_relation_comp`), so `1 \\le x \\le 3` and `[1,3]` agree whichever
comes first.

Before math-verify, `normalise` makes a few rewrites that keep an answer's meaning, each for a
failure measured on the test table or on MATH-500 (bench/equivalence_math500.py): digit groups
separated by TeX spaces (`1\\,000` is read as `1*0`, which would make it "the same" as `0`) or
written `10,\\!080` (with `x = ` in front, read as a list), repeating decimals
(`0.\\overline{3}` is not parsed at all), and `x = value` reduced to the value where the value
has no letters (math-verify unwraps it only in the second argument's direction, and its grammar
takes 10-100 ms on a relation). Answers whose normalised strings are identical are the same
without asking math-verify (the common case when voting: samples agree character for
character).

Limitations of math-verify kept as they are (tests/worker/test_equivalence.py pins them):
- Percentages: `12\\%` is the same as both `12` and `0.12` (its grading convention), although
  `12` and `0.12` differ, so the relation is not transitive there.
- Decimals are rounded before comparing, here to 10 places (math-verify's default of 6 makes
  `.0000672` the same as `.0000673`): `0.3333333333` is the same as `\\frac{1}{3}`, `0.333333`
  is not.
- Unbraced multi-letter words are products of symbols: `Evelyn` is `E*e*l*n*v*y`; `\\text{...}`
  words are compared as words.
- Huge numbers written differently (`2^{2^{2^{2^{2}}}}` and `2^{65536}`) come out different.

Hazards handled here:
- math-verify's own time limits use `signal.alarm` and then `signal.alarm(0)`, which would
  cancel the caller's alarm (RQ's job timeout is a SIGALRM), and they raise outside the main
  thread. They are switched off (`parsing_timeout=0`, `timeout_seconds=0`) and every comparison
  runs in a worker process instead, so the calling process's signals are never touched.
- Some inputs never finish in sympy (power towers such as `2^{2^{2^{2^{2^{2}}}}}`, huge
  factorials such as `(10^{10})!`). Each pair gets a hard time limit; a worker past it is killed
  and replaced, and the pair is `TIMED_OUT` (unknown, counted as different). Answers over
  `max_chars` are compared by normalised string only.

The killable pool is pebble's `ProcessPool` (maintained, typed, pure Python): `schedule(...,
timeout=)` starts a task's clock when a worker takes it, kills only that worker when it runs
over and starts a replacement, and fails the task's future with `TimeoutError`. The standard
library has no per-task limit: `concurrent.futures.ProcessPoolExecutor` can only be shut down as
a whole (a killed worker breaks it) and `multiprocessing.Pool` cannot stop a running task.
Workers are spawned (not forked: they inherit no threads, locks or signal handlers from the
caller), import math-verify once when they start and compare one throwaway pair, so the pool is
warm after its start; it starts on the first pair that needs it.
"""

from __future__ import annotations

import enum
import functools
import logging
import multiprocessing
import re
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType

from pebble import ProcessPool

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 2.0
DEFAULT_WORKERS = 2
DEFAULT_MAX_CHARS = 500


class Verdict(enum.Enum):
    IDENTICAL = "identical"
    """The normalised strings are equal (math-verify not asked)."""
    EQUIVALENT = "equivalent"
    """math-verify says same in both directions."""
    DIFFERENT = "different"
    """math-verify says different in at least one direction."""
    TOO_LONG = "too long"
    """An answer is over the size limit and the normalised strings differ (not compared)."""
    TIMED_OUT = "timed out"
    """The comparison ran past the time limit; its worker was killed. Unknown: different."""
    FAILED = "failed"
    """The worker died while comparing, or the pool broke twice. Unknown: different."""

    @property
    def same(self) -> bool:
        return self in (Verdict.IDENTICAL, Verdict.EQUIVALENT)


# `\,` `\;` `\:` `\!` `\ ` `~` or plain spaces between a digit and a group of exactly three.
_DIGIT_GROUP_SPACE = re.compile(r"(?<=\d)(?:\\[,;:! ]|~|\s)+(?=\d{3}(?!\d))")
# Thousands the TeX way: a comma and a negative thin space (`10,\!080`) or a braced comma.
_TEX_THOUSANDS = re.compile(r"(?<=\d)(?:,\\!\s*|\{,\})(?=\d{3}(?!\d))")
# A whole answer that is one number with comma-separated thousands (`58,500`).
_COMMA_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_REPEATING_DECIMAL = re.compile(r"(\d*)\.(\d*)\\overline\s*(?:\{(\d+)\}|(\d))")
_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*\.?")
_SMALL_FRACTION = re.compile(r"\\[dt]frac(?![A-Za-z])")
# `x = 5`: one unknown and its value (no other `=`).
_ASSIGNMENT = re.compile(r"^[A-Za-z]\s*=\s*([^=]+)$")
_COMMAND = re.compile(r"\\[A-Za-z]+")
# Whitespace is dropped unless it separates two letters or digits (`\pi r`, `\frac 12`, `2 3`)
# or follows a backslash (the control space `\ `).
_SPACE = re.compile(r"(?<![A-Za-z0-9\\])\s+|(?<!\\)\s+(?![A-Za-z0-9])")
_SPACES = re.compile(r"\s+")


def _repeating_to_fraction(match: re.Match[str]) -> str:
    whole, fixed, repeat = match[1], match[2], match[3] or match[4]
    value = int(whole or "0") + Fraction(
        int(fixed + repeat) - int(fixed or "0"), 10 ** len(fixed) * (10 ** len(repeat) - 1)
    )
    if value.denominator == 1:
        return str(value.numerator)
    return f"\\frac{{{value.numerator}}}{{{value.denominator}}}"


def normalise(answer: str) -> str:
    """Rewrite an answer without changing its meaning: `\\left`/`\\right` and `\\dfrac`/`\\tfrac`
    to plain forms, digit groups joined (TeX-spaced, `10,\\!080`, `1{,}000`, and a whole answer
    `58,500`), repeating decimals as fractions, the unknown dropped from `x = value` where the
    value has no letters of its own, whitespace dropped where it separates nothing. Used as the
    fast-path key and as math-verify's input."""
    text = _LEFT_RIGHT.sub("", answer.strip())
    text = _SMALL_FRACTION.sub(r"\\frac", text)
    text = _DIGIT_GROUP_SPACE.sub("", text)
    text = _TEX_THOUSANDS.sub("", text)
    text = _REPEATING_DECIMAL.sub(_repeating_to_fraction, text)
    text = _SPACE.sub("", _SPACES.sub(" ", text))
    assigned = _ASSIGNMENT.match(text)
    if assigned and not re.search("[A-Za-z]", _COMMAND.sub("", assigned[1])):
        text = assigned[1]
    if _COMMA_NUMBER.fullmatch(text):
        text = text.replace(",", "")
    return text


FLOAT_ROUNDING = 10
"""Decimal places math-verify rounds numbers to before comparing (its default, 6, makes
`.0000672` and `.0000673` the same answer)."""
PARSE_CACHE_SIZE = 4096
"""Parsed answers a pool worker keeps: when voting, each new answer is compared with every
class's first answer, which is then parsed once instead of every time."""
WARM_UP = (
    r"\frac{1}{2}",
    "0.5",
    "-3",
    "x=2",
    "y=2x+3",
    r"x^2+2x+1",
    "(a+5)(b+2)",
    r"(3,\frac{\pi}{2})",
    "(1,2,3)",
    "[0,1)",
    r"(-\infty,2]\cup(3,\infty)",
    r"[\frac{\pi^2}{8},\frac{5\pi^2}{4}]",
    r"\{1,2,3\}",
    "1,2",
    r"1\le x\le 3",
    r"\frac{3}{5}<x\le\frac{8}{3}",
    "x>2",
    r"x\in[1,3]",
    r"30^\circ",
    r"50\%",
    r"\$5",
    r"5\text{cm}",
    r"\text{(B)}",
    r"\text{Evelyn}",
    r"2\sqrt{3}+1",
    r"\frac{\sqrt{3}}{3}",
    r"1\pm\sqrt{5}",
    r"\pi/2",
    "3+4i",
    r"\begin{pmatrix}1\\2\end{pmatrix}",
    r"\log_2 8",
    r"\binom{5}{2}",
    "5!",
    r"\cos\theta",
    "52_8",
)
"""Answers of the usual shapes, parsed by each pool worker when it starts: math-verify's LaTeX
grammar (ANTLR) builds its prediction tables on first use of each construct, which makes a first
interval or tuple take 50-150 ms; afterwards the same shapes take a few ms."""


def _start_worker(warm_up: bool) -> None:
    """Pool worker start: import math-verify and compare a first pair (and, for a long-lived
    pool, parse the warm-up answers), so its grammar is loaded before any pair's time limit
    runs."""
    # With its own time limits off math-verify warns once per process that we must enforce
    # them ourselves, as the pool does.
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    _math_verify_both_ways("\\frac{1}{2}", "0.5")
    if warm_up:
        for answer in WARM_UP:
            _parsed(answer)
        _parsed.cache_clear()


@functools.lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parsed(answer: str) -> list[object]:
    """math-verify's reading of one answer (in a pool worker only). Given as `\\boxed{answer}`
    and read with the LaTeX extractor alone: the plain-expression extractor finds nothing more
    in a boxed answer."""
    from math_verify import LatexExtractionConfig, parse

    found: list[object] = parse(
        f"\\boxed{{{answer}}}", extraction_config=[LatexExtractionConfig()], parsing_timeout=0
    )
    return found


def _math_verify_both_ways(a: str, b: str) -> bool:
    """Runs in a pool worker only (math-verify is imported there, never in the caller)."""
    from math_verify import verify

    parsed_a, parsed_b = _parsed(a), _parsed(b)
    return all(
        verify(
            gold,
            target,
            float_rounding=FLOAT_ROUNDING,
            timeout_seconds=0,
            allow_set_relation_comp=True,
        )
        for gold, target in ((parsed_a, parsed_b), (parsed_b, parsed_a))
    )


class AnswerChecker:
    """A long-lived pool of math-verify workers, each comparison under a hard time limit.

    Use it as a context manager or call `close()`. The pool starts on the first pair that the
    fast path cannot settle. Meant for one thread at a time. The calling program's main module
    must be safe to import (the usual `if __name__ == "__main__":` guard), as for any spawned
    multiprocessing worker.
    """

    def __init__(
        self,
        *,
        workers: int = DEFAULT_WORKERS,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_chars: int = DEFAULT_MAX_CHARS,
        warm_up: bool = True,
    ) -> None:
        """`warm_up`: each worker parses answers of the usual shapes when it starts (about a
        second), for a long-lived pool; a one-off comparison goes without."""
        self.workers = workers
        self.warm_up = warm_up
        self.timeout_s = timeout_s
        self.max_chars = max_chars
        self._pool: ProcessPool | None = None

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Start the pool now (its workers load math-verify and warm up in the background)
        instead of on the first pair that needs it."""
        self._running_pool()

    def close(self) -> None:
        """Stop the workers (a comparison still running is abandoned)."""
        if self._pool is not None:
            self._pool.stop()  # type: ignore[no-untyped-call]  # pebble leaves it unannotated
            self._pool.join()
            self._pool = None

    def same(self, a: str, b: str) -> bool:
        return self.compare(a, b).same

    def compare(self, a: str, b: str) -> Verdict:
        return self.compare_many(a, [b])[0]

    def compare_many(self, answer: str, others: Sequence[str]) -> list[Verdict]:
        """Compare one answer with each of others; the pairs math-verify must settle run in
        parallel on the pool."""
        key = normalise(answer)
        verdicts: list[Verdict | None] = []
        pending: list[tuple[int, str]] = []
        for i, other in enumerate(others):
            if normalise(other) == key:
                verdicts.append(Verdict.IDENTICAL)
            elif max(len(answer), len(other)) > self.max_chars:
                verdicts.append(Verdict.TOO_LONG)
            else:
                verdicts.append(None)
                pending.append((i, other))
        settled = self.verify_many(answer, [other for _, other in pending])
        for (i, _), verdict in zip(pending, settled, strict=True):
            verdicts[i] = verdict
        return [v for v in verdicts if v is not None]

    def verify_many(self, answer: str, others: Sequence[str]) -> list[Verdict]:
        """math-verify on each pair, in the pool, without the fast path or the size limit.

        pebble ends the whole pool when a worker dies while idle (killed from outside, out of
        memory): the pairs then run once more on a new pool."""
        if not others:
            return []
        for _ in range(2):
            try:
                return self._verify_on_pool(answer, others)
            except BrokenProcessPool:
                log.warning("the answer-checking pool broke; starting a new one", exc_info=True)
        return [Verdict.FAILED] * len(others)

    def _verify_on_pool(self, answer: str, others: Sequence[str]) -> list[Verdict]:
        pool = self._running_pool()
        first = normalise(answer)
        futures = [
            pool.schedule(
                _math_verify_both_ways, args=(first, normalise(o)), timeout=self.timeout_s
            )
            for o in others
        ]
        return [
            self._verdict(future, answer, other)
            for future, other in zip(futures, others, strict=True)
        ]

    def _running_pool(self) -> ProcessPool:
        if self._pool is None or not self._pool.active:
            self.close()
            self._pool = ProcessPool(
                max_workers=self.workers,
                initializer=_start_worker,
                initargs=(self.warm_up,),
                context=multiprocessing.get_context("spawn"),
            )
        return self._pool

    def _verdict(self, future: Future[bool], a: str, b: str) -> Verdict:
        try:
            return Verdict.EQUIVALENT if future.result() else Verdict.DIFFERENT
        except BrokenProcessPool:
            raise
        except TimeoutError:
            log.warning(
                "answer comparison timed out after %s s: %.80r vs %.80r", self.timeout_s, a, b
            )
            return Verdict.TIMED_OUT
        except Exception:
            log.warning("answer comparison failed: %.80r vs %.80r", a, b, exc_info=True)
            return Verdict.FAILED


def same_answer(a: str, b: str) -> bool:
    """One comparison from a short-lived command: starts a one-worker pool only if needed."""
    with AnswerChecker(workers=1, warm_up=False) as checker:
        return checker.same(a, b)


def group_answers(
    answers: Sequence[str | None], checker: AnswerChecker, *, deadline: float | None = None
) -> list[list[int]]:
    """Indices of answers in equivalence classes, in order of first appearance; None (no final
    answer) is never grouped. Each new answer is compared with the first member of every class
    so far (the relation is assumed transitive, which math-verify's is only nearly: see the
    module notes) and joins the first class it matches; answers with the same normalised
    string share one comparison. Past `deadline` (a `time.monotonic()` value) math-verify is no
    longer asked: an answer then joins a class only by its normalised string."""
    groups: list[list[int]] = []
    representatives: list[str] = []
    class_of: dict[str, int] = {}
    for index, answer in enumerate(answers):
        if answer is None:
            continue
        key = normalise(answer)
        group = class_of.get(key)
        if group is None:
            if deadline is None or time.monotonic() < deadline:
                verdicts = checker.compare_many(answer, representatives)
                group = next((g for g, v in enumerate(verdicts) if v.same), len(groups))
            else:
                group = len(groups)
            if group == len(groups):
                groups.append([])
                representatives.append(answer)
            class_of[key] = group
        groups[group].append(index)
    return groups


@dataclass(frozen=True, slots=True)
class Vote:
    winners: tuple[tuple[int, ...], ...]
    """Every class with the most votes, in order of first appearance (several when tied, none
    when no sample has an answer)."""
    votes: int
    """The size of each winning class (0 when there is none)."""
    answered: int
    unanswered: int
    """Samples without a final answer."""

    @property
    def tied(self) -> bool:
        return len(self.winners) > 1


def vote(groups: Sequence[Sequence[int]], samples: int) -> Vote:
    """Plurality vote over equivalence classes (from `group_answers`) of `samples` samples.
    The winner need not be a strict majority; ties are reported, not broken."""
    answered = sum(len(group) for group in groups)
    if answered > samples:
        raise ValueError(f"{answered} grouped answers but only {samples} samples")
    most = max((len(group) for group in groups), default=0)
    winners = tuple(tuple(g) for g in groups if most and len(g) == most)
    return Vote(winners, most, answered, samples - answered)
