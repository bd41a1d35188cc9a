"""Benchmark (issue F): the chaos run at full size.

    .venv/bin/python -m bench.chaos                 # 200 questions, ~10 min on the 2-core box
    .venv/bin/python -m bench.chaos --questions 50  # smaller

200 questions from four servers through the fake Discord, the real bot and a real worker pool on
the TGI simulator and a throwaway Redis with its append-only file on, while workers and work
horses are SIGKILLed, the bot crashes (also between Discord storing a message and the bot hearing
back), Redis restarts, the model server refuses connections, answers overloaded and drops
streams, and moderators cancel, pause and clear (devtools/chaos.py). Prints the report that
docs/reliability.md records; exits 1 if a question was lost, duplicated or left unanswered, or
someone was pinged.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from devtools.chaos import ChaosPlan, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=ChaosPlan.questions)
    parser.add_argument("--seed", type=int, default=ChaosPlan.seed)
    parser.add_argument("--logs", type=Path, help="keep the pool's and the bot's logs here")
    args = parser.parse_args()
    plan = replace(ChaosPlan(), questions=args.questions, seed=args.seed)
    # Questions arrive over a time that grows with their number, faster than the workers
    # answer them (4 workers, 2 s an answer: 2 a second), so the chaos meets a queue.
    plan = replace(plan, submit_over_s=max(15.0, plan.questions * 0.4))
    with tempfile.TemporaryDirectory(prefix="fathom-chaos-") as scratch:
        workdir = args.logs or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(run(plan, workdir))
    print(f"plan: {plan}")
    for line in report.lines():
        print(line)
    kept = (
        report.lost == 0
        and report.duplicates == 0
        and report.unanswered == 0
        and report.pings == 0
        and not report.secrets_logged
        and report.solutions + report.failures == report.accepted
    )
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
