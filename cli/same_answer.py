"""`fathom same-answer 'A' 'B'`: whether two final answers are the same, as consensus voting
decides it (worker.equivalence: math-verify both ways, in a killable process with a time limit).

Prints `same` or `different`; exit status 0 for same, 1 for different (also when the pair could
not be settled: too long, or past the time limit, which stderr says), 2 for bad input.
"""

from __future__ import annotations

import argparse
import logging
import sys

EXIT_SAME, EXIT_DIFFERENT, EXIT_USAGE = 0, 1, 2


def run(args: argparse.Namespace) -> int:
    from worker.equivalence import AnswerChecker, Verdict

    logging.getLogger("worker.equivalence").setLevel(logging.ERROR)  # stderr says it once
    if not args.a.strip() or not args.b.strip():
        print("fathom same-answer: both answers must be non-empty", file=sys.stderr)
        return EXIT_USAGE
    with AnswerChecker(workers=1, timeout_s=args.timeout, warm_up=False) as checker:
        verdict = checker.compare(args.a, args.b)
    print("same" if verdict.same else "different")
    if verdict in (Verdict.TOO_LONG, Verdict.TIMED_OUT, Verdict.FAILED):
        print(f"fathom same-answer: not compared ({verdict.value})", file=sys.stderr)
    return EXIT_SAME if verdict.same else EXIT_DIFFERENT
