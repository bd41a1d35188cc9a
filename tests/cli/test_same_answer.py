"""`fathom same-answer` as a shell runs it: the installed console script, its output and exit
status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FATHOM = Path(sys.executable).with_name("fathom")


def same_answer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(FATHOM), "same-answer", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (r"\frac{1}{2}", "0.5"),
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
        ("x=2", "2"),
        (r"\text{(B)}", "B"),
    ],
)
def test_same_prints_same_and_exits_0(a: str, b: str) -> None:
    done = same_answer(a, b)
    assert (done.stdout, done.returncode) == ("same\n", 0)


def test_different_prints_different_and_exits_1() -> None:
    done = same_answer("(0,1)", "[0,1]")
    assert (done.stdout, done.returncode) == ("different\n", 1)


def test_a_hanging_pair_ends_within_its_limit_as_different() -> None:
    done = same_answer(r"2^{2^{2^{2^{2^{2}}}}}", "5", "--timeout", "1")
    assert (done.stdout, done.returncode) == ("different\n", 1)
    assert "not compared (timed out)" in done.stderr


def test_an_empty_answer_is_refused() -> None:
    done = same_answer(" ", "5")
    assert done.returncode == 2
    assert "non-empty" in done.stderr
