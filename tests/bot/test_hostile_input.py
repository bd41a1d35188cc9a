"""The hostile-input corpus (hostile_inputs.json, devtools/hostile.py): each case through its own
way in gets a clear answer or a clear refusal, pings nobody, leaks no token, sends the model
nothing invisible, and leaves the bot and the workers answering. One bot serves the whole
module, as one bot serves a server all day. bench/hostile.py tries every case every way in."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis

from devtools.hostile import Case, Stage, hostile_stage, load_corpus, try_case
from devtools.redis_server import RedisServer

CASES = load_corpus()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stage(redis_server: RedisServer) -> AsyncIterator[Stage]:
    conn = redis.Redis.from_url(redis_server.url())
    conn.flushall()  # the suite's own throwaway server: earlier tests' leftovers go
    try:
        async with hostile_stage(redis_server.url()) as staged:
            yield staged
    finally:
        conn.flushall()
        conn.close()


def test_the_corpus_is_large_and_covers_every_way_in() -> None:
    assert len(CASES) >= 80
    assert {case.via for case in CASES} == {
        "slash",
        "dm",
        "context",
        "followup",
        "dm_slash",
        "private",
        "moderator",
    }
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input(case: Case, stage: Stage) -> None:
    verdict = await try_case(stage, case)
    assert verdict.kept, verdict.problems
