"""Benchmark (issue A): is the queue free? Tokens/s delivered through enqueue → Redis/RQ → a
pool worker → the TGI simulator, against a direct closed-loop client at the same concurrency
on the same simulator; the overhead outside generation; memory per worker process.

    .venv/bin/python -m bench.throughput --concurrency 32 --requests 64 \\
        --tokens-per-s 40 --speed 2 --completion-tokens 3000

Runs the simulator (`fathom fake-tgi`) and the pool (`fathom worker`) as subprocesses, on
A throwaway redis-server of its own. MATH-500 questions, the same
sequence and seeds on both paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis
from huggingface_hub import AsyncInferenceClient, ChatCompletionInputStreamOptions

from devtools.redis_server import throwaway_redis
from fathom import keys
from fathom.contract import Origin, SolveRequest, SolveResult
from fathom.events import decode_entries, load_result
from fathom.queue import enqueue_solve, solve_workers
from fathom.settings import FATHOM_INSTRUCTION, Settings
from simulator.answers import default_dataset_path
from worker.prompt import build_messages

MAX_TOKENS = 12_000
"""The direct client's budget: above any simulated answer, so both paths stop on EOS."""


def questions(count: int) -> list[str]:
    with default_dataset_path().open() as rows:
        problems = [json.loads(line)["problem"] for line in rows if line.strip()]
    return [problems[i % len(problems)] for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class PathRun:
    wall_s: float = 0.0
    tokens: int = 0
    ttft_s: list[float] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


# --- the direct client ------------------------------------------------------------------------


async def _direct_one(url: str, question: str, seed: int, run: PathRun) -> None:
    messages = build_messages(SolveRequest(question=question), FATHOM_INSTRUCTION)
    async with AsyncInferenceClient(base_url=url, timeout=120) as client:
        sent = time.monotonic()
        stream = await client.chat_completion(
            messages,
            stream=True,
            stream_options=ChatCompletionInputStreamOptions(include_usage=True),
            temperature=0.6,
            top_p=0.95,
            seed=seed,
            max_tokens=MAX_TOKENS,
        )
        first: float | None = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic()
                run.ttft_s.append(first - sent)
            if chunk.usage is not None:
                run.tokens += chunk.usage.completion_tokens


async def run_direct(url: str, prompts: list[str], concurrency: int, ramp_s: float) -> PathRun:
    run = PathRun()
    pending = iter(enumerate(prompts))

    async def lane(index: int) -> None:
        await asyncio.sleep(index * ramp_s / concurrency)
        for seed, question in pending:
            await _direct_one(url, question, seed, run)

    start = time.monotonic()
    await asyncio.gather(*(lane(index) for index in range(concurrency)))
    run.wall_s = time.monotonic() - start
    return run


# --- through the queue -------------------------------------------------------------------------


@dataclass
class QueuedRun(PathRun):
    results: list[SolveResult] = field(default_factory=list)
    memory: list[dict[str, float]] = field(default_factory=list)


def memory_of(pid: int) -> dict[str, float] | None:
    """RSS, PSS and USS (private pages) of a process, in MB."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    kb = {
        line.split(":")[0]: int(line.split()[1])
        for line in text.splitlines()[1:]
        if line.split()[-1] == "kB"
    }
    uss = kb.get("Private_Clean", 0) + kb.get("Private_Dirty", 0)
    return {"pid": pid, "rss": kb["Rss"] / 1024, "pss": kb["Pss"] / 1024, "uss": uss / 1024}


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        for child in map(int, children):
            found.append(child)
            found.extend(descendants(child))
    return found


def run_queued(
    conn: redis.Redis,
    settings: Settings,
    prompts: list[str],
    concurrency: int,
    pool_pid: int,
    sample_after_s: float,
    ramp_s: float,
) -> QueuedRun:
    run = QueuedRun()
    last_id = (
        conn.xinfo_stream(keys.EVENTS_STREAM)["last-generated-id"]
        if conn.exists(keys.EVENTS_STREAM)
        else "0"
    )
    pending = iter(enumerate(prompts))
    in_flight: set[str] = set()

    def enqueue_next() -> None:
        item = next(pending, None)
        if item is not None:
            seed, question = item
            request = SolveRequest(
                question=question, seed=seed, render=False, origin=Origin(source="bench")
            )
            in_flight.add(enqueue_solve(conn, request, settings))

    start = time.monotonic()
    lane_starts = [start + index * ramp_s / concurrency for index in range(concurrency)]
    sampled = False
    while in_flight or lane_starts:
        while lane_starts and lane_starts[0] <= time.monotonic():
            lane_starts.pop(0)
            enqueue_next()
        streams = cast(
            "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
            conn.xread({keys.EVENTS_STREAM: last_id}, block=20, count=500) or [],
        )
        for _stream, items in streams:
            for entry in decode_entries(items):
                last_id = entry.entry_id
                event = entry.event
                if event is not None and event.job_id in in_flight and event.phase.terminal:
                    in_flight.discard(event.job_id)
                    result = load_result(conn, event.job_id)
                    assert result is not None
                    run.results.append(result)
                    enqueue_next()
        if not sampled and time.monotonic() - start > sample_after_s:
            # Mid-run, every worker busy: each worker process and its work horse.
            run.memory = [m for pid in descendants(pool_pid) if (m := memory_of(pid))]
            sampled = True
    run.wall_s = time.monotonic() - start
    run.tokens = sum(r.completion_tokens or 0 for r in run.results)
    run.ttft_s = [r.timings.ttft_s for r in run.results if r.timings.ttft_s is not None]
    return run


# --- processes ---------------------------------------------------------------------------


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=out)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: object, timeout: float, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.2)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--tokens-per-s", type=float, default=40.0)
    parser.add_argument("--speed", type=float, default=2.0)
    parser.add_argument("--completion-tokens", type=int, default=3000)
    parser.add_argument("--port", type=int, default=18431)
    parser.add_argument(
        "--sample-after", type=float, default=10.0, help="seconds into the run to sample memory"
    )
    parser.add_argument("--logs", type=Path, default=Path("/tmp/fathom-bench"))
    parser.add_argument(
        "--ramp-s",
        type=float,
        default=None,
        help="spread the first requests over this many seconds, as arrivals in steady state "
        "are (default: one answer's duration; 0 starts them all at once)",
    )
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    answer_s = args.completion_tokens / (args.tokens_per_s * args.speed)
    ramp_s = answer_s if args.ramp_s is None else args.ramp_s
    args.ramp_s_used = ramp_s

    with throwaway_redis() as server:
        return run(args, server.url(), ramp_s)


def run(args: argparse.Namespace, redis_url: str, ramp_s: float) -> int:
    url = f"http://127.0.0.1:{args.port}"
    env = {
        "FATHOM_REDIS_URL": redis_url,
        "FATHOM_MODEL_URL": url,
        "FATHOM_WORKERS": str(args.concurrency),
        "FATHOM_RENDER_WORKERS": "0",
    }
    os.environ.update(env)
    settings = Settings()
    conn = redis.Redis.from_url(redis_url)
    prompts = questions(args.requests)
    fathom = [sys.executable, "-m", "cli"]
    simulator = [
        *fathom,
        "fake-tgi",
        f"--port={args.port}",
        f"--tokens-per-s={args.tokens_per_s}",
        f"--speed={args.speed}",
        f"--completion-tokens={args.completion_tokens}",
    ]
    with process(simulator, env, args.logs / "simulator.log"):
        wait_until(lambda: healthy(url), 30, "the simulator")
        direct = asyncio.run(run_direct(url, prompts, args.concurrency, ramp_s))
        print(f"direct: {direct.tokens} tokens in {direct.wall_s:.1f} s", file=sys.stderr)
        with process([*fathom, "worker"], env, args.logs / "pool.log") as pool:
            wait_until(lambda: solve_workers(conn, settings) == args.concurrency, 60, "the workers")
            queued = run_queued(
                conn, settings, prompts, args.concurrency, pool.pid, args.sample_after, ramp_s
            )
    print(report(args, direct, queued))
    return 0


def report(args: argparse.Namespace, direct: PathRun, queued: QueuedRun) -> str:
    pre = [(r.timings.queued_s or 0) + (r.timings.prepare_s or 0) for r in queued.results]
    post = [
        (r.timings.total_s or 0)
        - (r.timings.queued_s or 0)
        - (r.timings.prepare_s or 0)
        - (r.timings.ttft_s or 0)
        - (r.timings.generation_s or 0)
        for r in queued.results
    ]
    statuses = {str(r.status) for r in queued.results}
    workers = [m for m in queued.memory]
    lines = [
        f"simulator: {args.tokens_per_s:g} tok/s per sequence x speed {args.speed:g}, "
        f"answers ~{args.completion_tokens} tokens; {args.concurrency} concurrent, "
        f"{args.requests} requests per path, first ones spread over {args.ramp_s_used:.0f} s; "
        f"statuses through the queue: {sorted(statuses)}",
        "",
        "| path | tokens | wall s | tokens/s | TTFT p50 s |",
        "|---|---|---|---|---|",
        f"| direct client | {direct.tokens} | {direct.wall_s:.1f} | {direct.tokens_per_s:.0f} "
        f"| {statistics.median(direct.ttft_s):.3f} |",
        f"| enqueue → RQ → worker | {queued.tokens} | {queued.wall_s:.1f} | "
        f"{queued.tokens_per_s:.0f} | {statistics.median(queued.ttft_s):.3f} |",
        "",
        f"ratio (queued / direct tokens/s): {queued.tokens_per_s / direct.tokens_per_s:.3f}",
        "",
        "| overhead | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|",
        f"| enqueue → request sent to the model | {percentile(pre, 50) * 1000:.1f} "
        f"| {percentile(pre, 99) * 1000:.1f} | {max(pre) * 1000:.1f} |",
        f"| last token → result stored | {percentile(post, 50) * 1000:.1f} "
        f"| {percentile(post, 99) * 1000:.1f} | {max(post) * 1000:.1f} |",
        *(
            f"| (of which {name}) | {percentile(values, 50) * 1000:.1f} "
            f"| {percentile(values, 99) * 1000:.1f} | {max(values) * 1000:.1f} |"
            for name, values in (
                ("enqueue → picked up", [r.timings.queued_s or 0 for r in queued.results]),
                ("picked up → request sent", [r.timings.prepare_s or 0 for r in queued.results]),
            )
        ),
        "",
        f"memory of {len(workers)} pool processes mid-run (supervisor, workers, work horses), MB:",
        f"RSS max {max(m['rss'] for m in workers):.1f}, "
        f"PSS max {max(m['pss'] for m in workers):.1f}, "
        f"USS max {max(m['uss'] for m in workers):.1f}, "
        f"USS median {statistics.median(m['uss'] for m in workers):.1f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
