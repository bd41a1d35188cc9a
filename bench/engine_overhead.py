"""Benchmark H: what the worker costs per token against a real engine. llama.cpp's own
llama-server (devtools.llamacpp) serves a random-weight Fathom-shaped GGUF (devtools.tiny_gguf);
the same questions, seeds, sampling and max_tokens go to it through two paths, in alternating
rounds of the same run:

- direct: `AsyncInferenceClient.chat_completion(stream=True)`, one lane per slot, each lane a
  process of its own (as each worker's job runs in a work horse of its own);
- worker: `fathom.queue.enqueue_solve` → Redis/RQ → a `fathom worker` pool with one worker per
  slot → the solve job (discovery, prompt count, stream, tracking, progress events, parse,
  result stored).

Per token: each answer's generation time (first token → end of stream, as the worker stores it
in `SolveResult.timings.generation_s`) over its tokens; the worker's overhead is the ratio of the
two paths' per-token times. Throughput (tokens over wall time) includes the per-job costs too.

    .venv/bin/python -m bench.engine_overhead --rounds 6          # the tiny test model
    .venv/bin/python -m bench.engine_overhead --model small --threads 1 --rounds 4 --requests 4

A throwaway redis-server of its own; the engine is built on first use (bin/test builds it).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import httpx2
import redis
from huggingface_hub import AsyncInferenceClient, ChatCompletionInputStreamOptions

from bench.throughput import percentile, process, questions, wait_until
from devtools.llamacpp import llama_server
from devtools.redis_server import throwaway_redis
from devtools.tiny_gguf import TinySpec, tiny_gguf_path
from fathom import keys
from fathom.contract import Origin, SolveRequest, SolveResult
from fathom.events import decode_entries, load_result
from fathom.queue import enqueue_solve, solve_workers
from fathom.settings import FATHOM_INSTRUCTION, Settings
from worker.model_server import LLAMACPP_FIELDS
from worker.prompt import Message, build_messages

MODELS = {
    "tiny": TinySpec(),
    "small": TinySpec(n_layer=8, n_embd=256, n_head=4, n_head_kv=2, n_ff=768),
}


@dataclass
class Answer:
    tokens: int
    generation_s: float


@dataclass
class PathRun:
    answers: list[Answer] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """CPU time of the client side: the lanes' processes for the direct client; for the worker the
    whole pool (supervisor, workers, their work horses, the monitor) less what it spends idle."""

    @property
    def tokens(self) -> int:
        return sum(a.tokens for a in self.answers)

    @property
    def per_token_ms(self) -> float:
        """Generation time per token over all answers (ms)."""
        return 1000 * sum(a.generation_s for a in self.answers) / self.tokens

    def per_token_ms_each(self) -> list[float]:
        return [1000 * a.generation_s / a.tokens for a in self.answers if a.tokens]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def cpu_us_per_token(self) -> float:
        return 1e6 * self.cpu_s / self.tokens


TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int, *, children: bool) -> float:
    """User + system CPU seconds of a process (and of its children it has reaped)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return TICK_S * (utime + stime + (cutime + cstime if children else 0))


def pool_cpu_s(pool_pid: int) -> float:
    """CPU seconds of the pool so far: the supervisor, and each of its processes (workers,
    monitor) with the work horses they have reaped."""
    kids = [
        int(child)
        for task in Path(f"/proc/{pool_pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]
    return _cpu_of(pool_pid, children=False) + sum(_cpu_of(kid, children=True) for kid in kids)


# --- the direct client ------------------------------------------------------------------------


async def prompt_tokens(url: str, messages: list[Message]) -> int:
    """The prompt as the engine counts it (what the worker asks too)."""
    async with httpx2.AsyncClient(timeout=30) as http:
        rendered = (await http.post(f"{url}/apply-template", json={"messages": messages})).json()
        body = {"content": rendered["prompt"], "add_special": True}
        return len((await http.post(f"{url}/tokenize", json=body)).json()["tokens"])


async def direct_one(url: str, messages: list[Message], seed: int, max_tokens: int) -> Answer:
    async with AsyncInferenceClient(base_url=url, timeout=None) as client:
        stream = await client.chat_completion(
            messages,
            stream=True,
            stream_options=ChatCompletionInputStreamOptions(include_usage=True),
            temperature=0.6,
            top_p=0.95,
            seed=seed,
            max_tokens=max_tokens,
            extra_body=dict(LLAMACPP_FIELDS),
        )
        first: float | None = None
        tokens = 0
        async for chunk in stream:
            progress = getattr(chunk, "prompt_progress", None) is not None
            if first is None and not progress and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic()
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        assert first is not None
        return Answer(tokens, time.monotonic() - first)


def _direct_lane(url: str, items: list[tuple[int, str, int]]) -> tuple[list[Answer], float]:
    """One lane in a process of its own, as each worker runs its job in its own work horse:
    its answers and the CPU it spent."""

    async def ask_all() -> list[Answer]:
        answers = []
        for seed, question, max_tokens in items:
            messages = build_messages(SolveRequest(question=question), FATHOM_INSTRUCTION)
            answers.append(await direct_one(url, messages, seed, max_tokens))
        return answers

    cpu = time.process_time()
    answers = asyncio.run(ask_all())
    return answers, time.process_time() - cpu


def run_direct(url: str, work: list[tuple[int, str, int]], lanes: int) -> PathRun:
    """Closed loop: one process per lane (the same number of client processes as the worker
    path has busy work horses), each asking its share of the questions in turn."""
    run = PathRun()
    shares = [work[lane::lanes] for lane in range(lanes)]
    context = multiprocessing.get_context("fork")
    start = time.monotonic()
    with ProcessPoolExecutor(max_workers=lanes, mp_context=context) as executor:
        for answers, cpu_s in executor.map(_direct_lane, [url] * lanes, shares):
            run.answers += answers
            run.cpu_s += cpu_s
    run.wall_s = time.monotonic() - start
    return run


# --- through the worker -------------------------------------------------------------------


def run_worker(
    conn: redis.Redis, settings: Settings, work: list[tuple[int, str, int]], lanes: int
) -> tuple[PathRun, list[SolveResult]]:
    """Closed loop: each lane enqueues its next question when its answer's terminal event
    arrives."""
    run = PathRun()
    results: list[SolveResult] = []
    last_id = (
        conn.xinfo_stream(keys.EVENTS_STREAM)["last-generated-id"]
        if conn.exists(keys.EVENTS_STREAM)
        else "0"
    )
    pending = iter(work)
    in_flight: set[str] = set()

    def enqueue_next() -> None:
        item = next(pending, None)
        if item is not None:
            seed, question, _max_tokens = item
            request = SolveRequest(
                question=question, seed=seed, render=False, origin=Origin(source="bench")
            )
            in_flight.add(enqueue_solve(conn, request, settings))

    start = time.monotonic()
    for _ in range(lanes):
        enqueue_next()
    while in_flight:
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
                    results.append(result)
                    enqueue_next()
    run.wall_s = time.monotonic() - start
    for result in results:
        assert result.completion_tokens is not None
        assert result.timings.generation_s is not None
        run.answers.append(Answer(result.completion_tokens, result.timings.generation_s))
    return run, results


# --- the run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="tiny")
    parser.add_argument("--slots", type=int, default=2, help="llama-server --parallel = lanes")
    parser.add_argument("--ctx-per-slot", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=2, help="llama-server --threads")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds per path")
    parser.add_argument("--requests", type=int, default=8, help="questions per round")
    parser.add_argument(
        "--idle-s", type=float, default=20.0, help="seconds to measure the idle pool's CPU"
    )
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "fathom-bench")
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    with throwaway_redis() as server:
        return run(args, server.url())


def run(args: argparse.Namespace, redis_url: str) -> int:
    spec = MODELS[args.model]
    model = tiny_gguf_path(spec)
    with llama_server(
        model,
        ctx_size=args.ctx_per_slot * args.slots,
        parallel=args.slots,
        threads=args.threads,
        extra_args=["--alias", f"bench-{args.model}-random"],
        log_path=args.logs / "llama-server.log",
    ) as url:
        env = {
            "FATHOM_REDIS_URL": redis_url,
            "FATHOM_MODEL_URL": url,
            "FATHOM_WORKERS": str(args.slots),
            "FATHOM_RENDER_WORKERS": "0",
        }
        os.environ.update(env)
        settings = Settings()
        conn = redis.Redis.from_url(redis_url)
        total = args.rounds * args.requests
        asked = questions(total)
        counts = asyncio.run(
            _counts(
                url, [build_messages(SolveRequest(question=q), FATHOM_INSTRUCTION) for q in asked]
            )
        )
        # The worker's budget: the slot's context minus the prompt; the direct client asks the
        # same, so both paths generate the same tokens.
        work = [
            (i, q, args.ctx_per_slot - n)
            for i, (q, n) in enumerate(zip(asked, counts, strict=True))
        ]
        direct, worker = PathRun(), PathRun()
        results: list[SolveResult] = []
        fathom = [sys.executable, "-m", "cli"]
        with process([*fathom, "worker"], env, args.logs / "pool.log") as pool:
            wait_until(lambda: solve_workers(conn, settings) == args.slots, 60, "the workers")
            # What the pool spends doing nothing (heartbeats, the model server watch), to tell
            # it from what answers cost.
            cpu, start = pool_cpu_s(pool.pid), time.monotonic()
            time.sleep(args.idle_s)
            idle_cpu_per_s = (pool_cpu_s(pool.pid) - cpu) / (time.monotonic() - start)
            for index in range(args.rounds):
                chunk = work[index * args.requests : (index + 1) * args.requests]
                one = run_direct(url, chunk, args.slots)
                direct.cpu_s += one.cpu_s
                direct.answers += one.answers
                direct.wall_s += one.wall_s
                cpu, start = pool_cpu_s(pool.pid), time.monotonic()
                other, done = run_worker(conn, settings, chunk, args.slots)
                time.sleep(1.0)  # the last work horses exit and are reaped
                spent = pool_cpu_s(pool.pid) - cpu
                worker.cpu_s += spent - idle_cpu_per_s * (time.monotonic() - start)
                worker.answers += other.answers
                worker.wall_s += other.wall_s
                results += done
                print(
                    f"round {index + 1}: direct {one.per_token_ms:.4f} ms/token, "
                    f"worker {other.per_token_ms:.4f} ms/token",
                    file=sys.stderr,
                )
    print(report(args, spec, direct, worker, results))
    print(f"idle pool: {1000 * idle_cpu_per_s:.1f} ms of CPU per second (subtracted)")
    return 0


async def _counts(url: str, prompts: list[list[Message]]) -> list[int]:
    return [await prompt_tokens(url, messages) for messages in prompts]


def report(
    args: argparse.Namespace,
    spec: TinySpec,
    direct: PathRun,
    worker: PathRun,
    results: list[SolveResult],
) -> str:
    statuses = sorted({str(r.status) for r in results})
    shape = {k: v for k, v in dataclasses.asdict(spec).items() if k.startswith("n_")}
    d_each, w_each = direct.per_token_ms_each(), worker.per_token_ms_each()
    lines = [
        f"llama-server (llama.cpp 0c1e570, CPU, --threads {args.threads}), {args.slots} slots of "
        f"{args.ctx_per_slot} tokens; model '{args.model}' {shape}; {args.rounds} alternating "
        f"rounds of {args.requests} questions per path, {args.slots} in flight; worker "
        f"statuses {statuses}",
        "",
        "| path | answers | tokens | ms/token (all) | ms/token p50 | p90 | tokens/s (wall) "
        "| client CPU µs/token |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, path, each in (("direct client", direct, d_each), ("worker", worker, w_each)):
        lines.append(
            f"| {name} | {len(path.answers)} | {path.tokens} | {path.per_token_ms:.4f} "
            f"| {statistics.median(each):.4f} | {percentile(each, 90):.4f} "
            f"| {path.tokens_per_s:.0f} | {path.cpu_us_per_token:.0f} |"
        )
    lines += [
        "",
        f"per-token time ratio worker / direct: {worker.per_token_ms / direct.per_token_ms:.3f} "
        f"(p50 {statistics.median(w_each) / statistics.median(d_each):.3f}); "
        f"{1000 * (worker.per_token_ms - direct.per_token_ms):.1f} µs/token more",
        f"client CPU per token ratio worker / direct: "
        f"{worker.cpu_us_per_token / direct.cpu_us_per_token:.3f}",
        f"throughput ratio worker / direct: {worker.tokens_per_s / direct.tokens_per_s:.3f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
