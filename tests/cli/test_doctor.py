"""`fathom doctor` against real parts, healthy and broken one at a time."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools.fakediscord import FakeDiscord
from devtools.redis_server import RedisServer, throwaway_redis
from simulator.server import SimulatorServer
from tests.conftest import free_port
from tests.worker.conftest import Configure, wait_for, worker_pool


async def doctor(**env: str) -> tuple[int, str]:
    """`fathom doctor` in a subprocess with these FATHOM_* variables; exit code and output."""
    variables = {**os.environ, **{f"FATHOM_{name}": value for name, value in env.items()}}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "doctor",
        env=variables,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode is not None
    return process.returncode, out.decode()


def line_of(output: str, check: str) -> str:
    return next(line for line in output.splitlines() if f" {check}:" in line)


@pytest.fixture
def aof_redis() -> Iterator[RedisServer]:
    with throwaway_redis(appendonly=True) as server:
        yield server


async def test_a_healthy_stack_passes_every_check(
    aof_redis: RedisServer,
    configure: Configure,
    fake_tgi: SimulatorServer,
    fake_discord: FakeDiscord,
    tmp_path: Path,
) -> None:
    env = {
        "REDIS_URL": aof_redis.url(),
        "MODEL_URL": fake_tgi.url,
        "MODEL_ID": "fathom-simulator",
        "DISCORD_TOKEN": fake_discord.token,
        "DISCORD_API_URL": fake_discord.env()["FATHOM_DISCORD_API_URL"],
    }
    configure(**env)
    conn = redis.Redis.from_url(aof_redis.url())
    with worker_pool(tmp_path, "-n", "1", "--render-workers", "1"):
        await asyncio.to_thread(
            wait_for, lambda: len(conn.smembers("rq:workers")) == 2, 30, "the pool's workers"
        )
        code, output = await doctor(**env)
    assert code == 0, output
    for check in (
        "Redis",
        "solve workers",
        "render workers",
        "model server",
        "model",
        "context",
        "generation",
        "renderer",
        "Discord",
        "intents",
    ):
        assert line_of(output, check).startswith("ok"), output
    assert "0 problems" in output


async def test_no_redis_is_a_problem_with_a_fix() -> None:
    code, output = await doctor(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert code == 1
    assert line_of(output, "Redis").startswith("PROBLEM Redis: no answer at redis://127.0.0.1:")
    assert "→ start Redis, or point FATHOM_REDIS_URL at it" in output


async def test_no_workers_and_no_append_only_file_are_problems(
    redis_conn: redis.Redis, fake_tgi: SimulatorServer
) -> None:
    code, output = await doctor(MODEL_URL=fake_tgi.url, MODEL_ID="fathom-simulator")
    assert code == 1
    assert "append-only file off" in line_of(output, "Redis")
    assert line_of(output, "solve workers").startswith("PROBLEM")
    assert line_of(output, "render workers").startswith("PROBLEM")
    assert line_of(output, "generation").startswith("ok")


@pytest.mark.parametrize(
    ("fault", "check", "words"),
    [
        ("down", "model server", "nothing answers at"),
        ("unhealthy", "model server", "not ready (503"),
        (
            "wrong model",
            "model",
            "serves 'fathom-simulator', not 'FractalAIResearch/Fathom-R1-14B'",
        ),
        ("short context", "context", "8,192 tokens per sequence; Fathom-R1-14B needs 16,384"),
    ],
)
async def test_each_model_server_fault_is_named(
    redis_conn: redis.Redis, fake_tgi: SimulatorServer, fault: str, check: str, words: str
) -> None:
    env = {"MODEL_URL": fake_tgi.url, "MODEL_ID": "fathom-simulator"}
    if fault == "down":
        env["MODEL_URL"] = f"http://127.0.0.1:{free_port()}"
    elif fault == "unhealthy":
        fake_tgi.config.healthy = False
    elif fault == "wrong model":
        del env["MODEL_ID"]
    else:
        fake_tgi.config.max_total_tokens = 8192
        fake_tgi.config.max_input_tokens = 8191
    code, output = await doctor(**env)
    assert code == 1
    assert line_of(output, check).startswith("PROBLEM"), output
    assert words in line_of(output, check)


async def test_a_missing_renderer_is_named(redis_conn: redis.Redis) -> None:
    code, output = await doctor(NODE="/nonexistent/node")
    assert code == 1
    assert line_of(output, "renderer").startswith("PROBLEM renderer: MathJax cannot draw")


async def test_a_refused_token_and_a_missing_intent_are_named(
    redis_conn: redis.Redis, fake_discord: FakeDiscord
) -> None:
    api = fake_discord.env()["FATHOM_DISCORD_API_URL"]
    _, refused = await doctor(DISCORD_TOKEN="wrong", DISCORD_API_URL=api)
    fake_discord.privileged_intents_enabled = 0
    _, no_intent = await doctor(DISCORD_TOKEN=fake_discord.token, DISCORD_API_URL=api)
    assert line_of(refused, "Discord").startswith("PROBLEM Discord: the token is refused")
    assert line_of(no_intent, "Discord").startswith("ok")
    assert line_of(no_intent, "intents").startswith("PROBLEM intents: the Message Content")


async def test_on_llama_cpp_the_engine_and_its_slots_are_checked(
    redis_conn: redis.Redis, fake_llamacpp: SimulatorServer
) -> None:
    fake_llamacpp.config.max_batch_size = 2
    code, output = await doctor(
        MODEL_URL=fake_llamacpp.url, MODEL_ID="fathom-simulator", WORKERS="4"
    )
    assert code == 1
    engine = line_of(output, "engine")
    assert engine.startswith("ok"), output
    assert "llama.cpp /props: 16384-token context per slot, 2 slots" in engine
    assert line_of(output, "context").startswith("ok")
    assert "16,384 tokens per slot" in line_of(output, "context")
    assert line_of(output, "slots").startswith("PROBLEM")
    assert "2 slots for 4 solve workers" in line_of(output, "slots")
    assert line_of(output, "generation").startswith("ok")
