"""Benchmark (issue F): the hostile-input corpus at full size — every case every way in.

    .venv/bin/python -m bench.hostile              # ~25 min on the 2-core box
    .venv/bin/python -m bench.hostile --only dm    # one way in

tests/bot/test_hostile_input.py tries each case of tests/bot/hostile_inputs.json the way it names;
this tries each question case as a /solve, a DM, through the context menu, as a follow-up, as
/solve in a DM and with private (moderators' cases as their command), against the real bot,
workers and simulator (devtools/hostile.py). A text Discord itself would not carry that way (a
DM over 4,000 characters, an empty message) is counted as such, not tried. Prints the figures
docs/reliability.md records; exits 1 if any try broke a promise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

from devtools.fakediscord.errors import DiscordError
from devtools.hostile import Verdict, Way, hostile_stage, load_corpus, try_case
from devtools.redis_server import throwaway_redis


async def run_all(only: Way | None) -> tuple[list[Verdict], Counter[str]]:
    verdicts: list[Verdict] = []
    impossible: Counter[str] = Counter()
    cases = load_corpus()
    with throwaway_redis() as redis_server:
        async with hostile_stage(redis_server.url()) as stage:
            for case in cases:
                for way in case.ways():
                    if only is not None and way != only:
                        continue
                    try:
                        verdicts.append(await try_case(stage, case, way))
                    except (DiscordError, ValueError) as exc:
                        impossible[f"{way}: {type(exc).__name__}"] += 1
                        print(f"  {case.name} by {way}: Discord would not carry it ({exc})")
    return verdicts, impossible


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", choices=["slash", "dm", "context", "followup", "dm_slash", "private", "moderator"]
    )
    args = parser.parse_args()
    started = time.monotonic()
    verdicts, impossible = asyncio.run(run_all(args.only))
    broken = [v for v in verdicts if not v.kept]
    outcomes = Counter(v.outcome for v in verdicts)
    by_way = Counter(v.via for v in verdicts)
    print(f"cases: {len(load_corpus())}; tries: {len(verdicts)} ({dict(sorted(by_way.items()))})")
    carried_not = sum(impossible.values())
    print(
        f"answered {outcomes['answered']}, refused with a reason {outcomes['refused']}, "
        f"silent {outcomes['silent']}; not carried by Discord that way {carried_not}"
    )
    print(
        f"pings sent {sum(v.pings for v in verdicts)}; promises broken {len(broken)}; "
        f"{time.monotonic() - started:.0f} s"
    )
    for verdict in broken:
        print(f"BROKEN {verdict.case} by {verdict.via}: {verdict.problems}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
