"""worker/equivalence.py: the answer table (both orders), the killable pool, the caller's
SIGALRM, grouping and voting."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from worker.equivalence import (
    AnswerChecker,
    Verdict,
    Vote,
    group_answers,
    normalise,
    vote,
)

SAME = [
    (r"\frac{1}{2}", "0.5"),
    (r"\frac{1}{2}", "1/2"),
    ("0.5", "1/2"),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
    ("x=2", "2"),
    ("x = -1", "-1"),
    (r"\{1,2,3\}", r"\{3,2,1\}"),
    ("1, 2, 3", "3, 2, 1"),
    ("2,4,6", r"\{2,4,6\}"),
    (r"\pm 1", r"\{-1, 1\}"),
    ("-2, 3", "x = -2, x = 3"),
    ("[0,1)", "[0, 1)"),
    (r"(-\infty, 2]", r"(-\infty,2]"),
    (r"(-\infty, 0) \cup (1, \infty)", r"(-\infty,0)\cup(1,\infty)"),
    (r"1 \le x \le 3", "[1,3]"),
    ("x > 2", r"(2, \infty)"),
    (r"x \in [1, 3]", "[1,3]"),
    (r"30^\circ", "30"),
    (r"90^{\circ}", "90"),
    ("1,000", "1000"),
    ("10{,}000", "10000"),
    ("1{,}000{,}000", "10^6"),
    (r"1\,000", "1000"),
    (r"1\,000\,000", "1000000"),
    (r"x = 10,\!080", "10080"),
    ("58,500", "x = 58500"),
    ("x = (3, 4]", "(3,4]"),
    (r"\text{(B)}", "B"),
    (r"\textbf{(C)}", "C"),
    (r"\mbox{(D)}", "D"),
    ("(A)", "A"),
    (r"\dfrac{3}{4}", r"\frac{3}{4}"),
    (r"\tfrac{3}{4}", "0.75"),
    ("2^{10}", "1024"),
    ("10^{3}", "1000"),
    (r"\sqrt{8}", r"2\sqrt{2}"),
    (r"6\sqrt{2}", r"\sqrt{72}"),
    (r"\frac{\sqrt{3}}{2}", r"\frac{1}{2}\sqrt{3}"),
    (r"\frac{1}{\sqrt{2}}", r"\frac{\sqrt{2}}{2}"),
    (r"\sqrt{3}/3", r"\frac{\sqrt{3}}{3}"),
    (r"\sqrt[3]{27}", "3"),
    (r"\pi/2", r"\frac{\pi}{2}"),
    (r"\frac{9}{4}\pi", r"\frac{9\pi}{4}"),
    (r"2\pi", r"2 \pi"),
    ("x^2+2x+1", "(x+1)^2"),
    (r"\frac{x+1}{2}", r"\frac{1}{2}x + \frac{1}{2}"),
    ("y = 2x + 3", "y=2x+3"),
    ("3 + 4i", "4i + 3"),
    (r"-\frac{1}{3}", r"\frac{-1}{3}"),
    (r"\frac{-1}{2}", "-0.5"),
    ("1.5", r"\frac32"),
    (r"3\frac{1}{2}", r"\frac{7}{2}"),
    ("4.0", "4"),
    (".5", "0.5"),
    (r"0.\overline{3}", r"\frac{1}{3}"),
    (r"1.2\overline{36}", r"\frac{68}{55}"),
    (r"\log_2 8", "3"),
    (r"\binom{5}{2}", "10"),
    ("5!", "120"),
    (r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\begin{pmatrix}1\\2\end{pmatrix}"),
    (r"\$5", "5"),
    (r"\$1.50", "1.5"),
    (r"5\text{ cm}", "5"),
    (r"12\text{ inches}", "12"),
    (r"\text{Evelyn}", "Evelyn"),
    (r"\text{east}", r"\text{East}"),
    (r"\cos \theta", r"\cos(\theta)"),
    ("50\\%", "50"),
]

DIFFERENT = [
    ("(0,1)", "[0,1]"),
    ("(1, 2)", "[1, 2]"),
    ("[0,1)", "(0,1]"),
    (r"\pi", "3.14"),
    ("2^{10}", "1000"),
    ("(1,2)", "(2,1)"),
    ("(1,2,3)", "(1,2)"),
    ("5", "-5"),
    (r"\sqrt{2}", "1.414"),
    ("B", "C"),
    (r"\text{(A)}", r"\text{(B)}"),
    ("x=2", "x=3"),
    ("y=2x+3", "y=3x+2"),
    (r"\{1,2\}", r"\{1,2,3\}"),
    ("2", r"\{2, 3\}"),
    ("0.333", r"\frac{1}{3}"),
    ("10", "100"),
    ("x^2", "2x"),
    ("x+1", "x-1"),
    (r"\frac{1}{2}", "2"),
    (r"2\sqrt{3}", r"3\sqrt{2}"),
    ("i", "-i"),
    (r"\infty", r"-\infty"),
    ("1,001", "1000"),
    ("1,2", "1.2"),
    (r"1\,000", "0"),
    ("3.14", "3.141"),
    ("0.5", "0.05"),
    ("e", "2.718"),
    (r"\frac{\pi}{4}", "45"),
    (r"\sin x", r"\cos x"),
    ("0", r"\emptyset"),
    (r"\text{Evelyn}", r"\text{Emily}"),
    ("5", "5!"),
    (".0000672", ".0000673"),
    ("0.333333", r"\frac{1}{3}"),
    ("x = 5", "y = 6"),
    ("x > 2", r"[2, \infty)"),
]

# What math-verify 0.9.0 says that a reader would not: pinned so that a change shows up here.
KNOWN_LIMITS = [
    ("12\\%", "0.12", True),  # with 12% ~ 12 (SAME above): not transitive
    ("12", "0.12", False),
    ("0.3333333333", r"\frac{1}{3}", True),  # decimals rounded to 10 places
    ("Dean", "Dane", True),  # bare words are products of letters
    (r"\text{Dean}", r"\text{Dane}", False),
    (r"2^{2^{2^{2^{2}}}}", "2^{65536}", False),  # equal huge numbers come out different
]

POWER_TOWER = r"2^{2^{2^{2^{2^{2}}}}}"  # math-verify never returns on it


def both_orders(pairs: list[tuple[str, str]]) -> list[object]:
    return [pytest.param(a, b, id=f"{a} ~ {b}") for x, y in pairs for a, b in ((x, y), (y, x))]


@pytest.fixture(scope="module")
def checker() -> Iterator[AnswerChecker]:
    with AnswerChecker() as shared:
        yield shared


def test_the_table_has_at_least_sixty_pairs() -> None:
    assert len(SAME) + len(DIFFERENT) >= 60


@pytest.mark.parametrize(("a", "b"), both_orders(SAME))
def test_same(checker: AnswerChecker, a: str, b: str) -> None:
    assert checker.compare(a, b).same


@pytest.mark.parametrize(("a", "b"), both_orders(DIFFERENT))
def test_different(checker: AnswerChecker, a: str, b: str) -> None:
    assert checker.compare(a, b) is Verdict.DIFFERENT


@pytest.mark.parametrize(
    ("a", "b", "same"), [pytest.param(a, b, s, id=f"{a} ~ {b}") for a, b, s in KNOWN_LIMITS]
)
def test_known_math_verify_limits(checker: AnswerChecker, a: str, b: str, same: bool) -> None:
    assert checker.same(a, b) is same
    assert checker.same(b, a) is same


@pytest.mark.parametrize(
    ("answer", "normalised"),
    [
        (r" \left( 3, \dfrac{\pi}{2} \right) ", r"(3,\frac{\pi}{2})"),
        (r"\left\{ 1 \right.", r"\{1"),
        (r"1\,000\,000", "1000000"),
        ("3.141 592", "3.141592"),
        ("2 3", "2 3"),  # a product, not a digit group
        (r"\pi r", r"\pi r"),
        (r"5\ \text{cm}", r"5\ \text{cm}"),
        (r"\text{a  b}", r"\text{a b}"),
        (r"0.\overline{3}", r"\frac{1}{3}"),
        (r"-0.\overline{142857}", r"-\frac{1}{7}"),
        (r"0.\overline9", "1"),
        (r"10,\! 080", "10080"),
        ("1{,}000{,}000", "1000000"),
        ("58,500", "58500"),
        ("1,2", "1,2"),
        ("x = 5", "5"),
        (r"x = \frac{\pi}{2}", r"\frac{\pi}{2}"),
        ("y = 2x + 3", "y=2x+3"),  # an equation, not a value
        (r"x = 5\text{ cm}", r"x=5\text{cm}"),
    ],
)
def test_normalise(answer: str, normalised: str) -> None:
    assert normalise(answer) == normalised


def test_identical_strings_skip_math_verify(checker: AnswerChecker) -> None:
    assert checker.compare(r"\left(1, 2\right)", "(1,2)") is Verdict.IDENTICAL
    # math-verify says `\ldots` differs from itself; the fast path never asks it.
    assert checker.verify_many(r"\ldots", [r"\ldots"]) == [Verdict.DIFFERENT]
    assert checker.compare(r"\ldots", r" \ldots") is Verdict.IDENTICAL


def test_long_answers_are_compared_as_strings_only() -> None:
    with AnswerChecker(max_chars=20) as short:
        long_half = r"\frac{1}{2}" + " " * 30
        assert short.compare(long_half, r"\frac{1}{2}") is Verdict.IDENTICAL
        assert short.compare("1" * 21, "1" * 20 + "2") is Verdict.TOO_LONG
        assert short.compare(r"\frac{1}{2}", "0.5") is Verdict.EQUIVALENT


def test_a_hanging_pair_times_out_and_the_pool_recovers() -> None:
    with AnswerChecker(timeout_s=1.0) as quick:
        assert quick.compare(r"\frac{1}{2}", "0.5") is Verdict.EQUIVALENT  # pool started
        start = time.monotonic()
        assert quick.compare(POWER_TOWER, "5") is Verdict.TIMED_OUT
        assert time.monotonic() - start < 2.5
        assert quick.compare_many(r"\frac{1}{2}", ["0.5", POWER_TOWER, "2"]) == [
            Verdict.EQUIVALENT,
            Verdict.TIMED_OUT,
            Verdict.DIFFERENT,
        ]
        assert quick.compare(r"\frac{1}{2}", "0.5") is Verdict.EQUIVALENT


def test_a_pool_broken_by_an_idle_worker_dying_is_replaced() -> None:
    before = {child.pid for child in multiprocessing.active_children()}
    with AnswerChecker() as checker:
        assert checker.compare(r"\frac{1}{2}", "0.5") is Verdict.EQUIVALENT
        workers = [
            c.pid for c in multiprocessing.active_children() if c.pid and c.pid not in before
        ]
        assert len(workers) == checker.workers
        os.kill(workers[0], signal.SIGKILL)  # pebble then ends the whole pool
        assert checker.compare(r"\frac{1}{2}", "0.5") is Verdict.EQUIVALENT
        assert checker.compare(r"\frac{1}{3}", "0.5") is Verdict.DIFFERENT


def test_the_callers_alarm_and_handler_are_left_alone() -> None:
    fired: list[int] = []

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        fired.append(signum)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 60)
        with AnswerChecker(timeout_s=1.0) as fresh:  # the pool starts inside the alarm window
            assert fresh.compare(r"\frac{1}{2}", "0.5") is Verdict.EQUIVALENT
            assert fresh.compare(POWER_TOWER, "5") is Verdict.TIMED_OUT
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 50 < remaining <= 60
        assert signal.getsignal(signal.SIGALRM) is on_alarm
        assert not fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def compare_then_overrun(seconds: float) -> str:
    """An RQ job: a comparison that hangs (and is killed), then more work than the job's time
    limit allows."""
    with AnswerChecker(timeout_s=1.0, warm_up=False) as quick:
        verdict = quick.compare(POWER_TOWER, "5")
    time.sleep(seconds)
    return verdict.value


def test_a_hanging_pair_inside_an_rq_job_leaves_its_job_timeout_working(
    redis_conn: redis.Redis,
) -> None:
    queue = Queue("equivalence-test", connection=redis_conn, serializer=JSONSerializer)
    job = queue.enqueue(compare_then_overrun, 120, job_timeout=4)
    # A SimpleWorker in the main thread: RQ's timeout is its SIGALRM death penalty.
    SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True)
    assert job.get_status() is JobStatus.FAILED
    result = job.latest_result()
    assert result is not None
    assert "JobTimeoutException" in (result.exc_string or "")


def test_math_verify_own_timeout_would_cancel_the_callers_alarm() -> None:
    """Why the checker switches math-verify's time limits off: they end with `alarm(0)`."""
    from math_verify import parse

    previous = signal.signal(signal.SIGALRM, lambda signum, frame: None)
    try:
        signal.setitimer(signal.ITIMER_REAL, 60)
        parse(r"\boxed{1}", parsing_timeout=5)
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_works_from_a_thread(checker: AnswerChecker) -> None:
    verdicts: list[Verdict] = []
    thread = threading.Thread(
        target=lambda: verdicts.append(checker.compare(r"\frac{1}{2}", "0.5"))
    )
    thread.start()
    thread.join(timeout=30)
    assert verdicts == [Verdict.EQUIVALENT]


def test_same_answer_from_a_short_lived_command() -> None:
    code = (
        "import sys\n"
        "from worker.equivalence import same_answer\n"
        "sys.exit(0 if same_answer(r'\\frac{1}{2}', '0.5') and not same_answer('5', '-5') else 1)"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == 0


def test_group_answers(checker: AnswerChecker) -> None:
    answers = [r"\frac{1}{2}", "0.5", None, "2", "1/2", "x=2", None, r"\frac12", "3"]
    assert group_answers(answers, checker) == [[0, 1, 4, 7], [3, 5], [8]]


def test_past_the_deadline_answers_group_by_their_strings_only(checker: AnswerChecker) -> None:
    answers = [r"\frac{1}{2}", "0.5", r"\dfrac{1}{2}", "0.5"]
    assert group_answers(answers, checker, deadline=time.monotonic() - 1) == [[0, 2], [1, 3]]
    assert group_answers(answers, checker, deadline=time.monotonic() + 60) == [[0, 1, 2, 3]]


def test_group_answers_with_no_answers(checker: AnswerChecker) -> None:
    assert group_answers([None, None], checker) == []
    assert group_answers([], checker) == []


def test_grouped_samples_vote_for_the_equivalent_majority(checker: AnswerChecker) -> None:
    samples = [r"\dfrac{3}{4}", "0.75", None, r"\frac{4}{3}", "3/4", r"\frac{4}{3}", None]
    result = vote(group_answers(samples, checker), len(samples))
    assert result == Vote(winners=((0, 1, 4),), votes=3, answered=5, unanswered=2)
    assert not result.tied


def test_vote_majority() -> None:
    assert vote([[0, 2], [1, 3, 4], [5]], 7) == Vote(((1, 3, 4),), 3, 6, 1)


def test_vote_reports_every_tied_class() -> None:
    result = vote([[0, 3], [1], [2, 4]], 6)
    assert result.tied
    assert result == Vote(((0, 3), (2, 4)), 2, 5, 1)


def test_vote_when_every_sample_failed() -> None:
    result = vote([], 8)
    assert result == Vote((), 0, 0, 8)
    assert not result.tied


def test_vote_single_answer() -> None:
    assert vote([[3]], 4) == Vote(((3,),), 1, 1, 3)


def test_vote_rejects_more_answers_than_samples() -> None:
    with pytest.raises(ValueError, match="3 grouped answers but only 2 samples"):
        vote([[0, 1, 2]], 2)
