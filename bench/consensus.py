"""Benchmark (issue G): how much longer a consensus of k samples takes than one sample, when the
model server has free batch slots.

    .venv/bin/python -m bench.consensus [--samples 8] [--rounds 8] [--tokens-per-s 40]
        [--speed 10] [--completion-tokens 600]

The TGI simulator (`fathom fake-tgi`, which answers differently per seed) and the real pool
(`fathom worker -n K --render-workers 1`: forking solve workers, a render worker with its warm
answer-checking pool) run as subprocesses on a throwaway Redis. Each round asks one MATH-500
question twice, in alternating order: as one sample (solve, then its render job) and as a
consensus of K samples (K solve jobs side by side, then the vote, which groups the answers and
draws the chosen solution). Timed from enqueue to the job's end being stored, as the bot waits
for it. One untimed warm-up of each first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import redis
from rq import Queue, Worker

from bench.throughput import healthy, process, questions, wait_until
from devtools.redis_server import throwaway_redis
from fathom.consensus import sample_id
from fathom.contract import Origin, SolveRequest, SolveResult
from fathom.events import load_result
from fathom.queue import enqueue_consensus, enqueue_solve, solve_workers
from fathom.settings import Settings


def wait_for_end(conn: redis.Redis, job_id: str, timeout_s: float = 300.0) -> SolveResult:
    deadline = time.monotonic() + timeout_s
    while True:
        result = load_result(conn, job_id)
        if result is not None and result.final:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: job {job_id} did not end within {timeout_s:.0f} s")
        time.sleep(0.005)


def timed(
    conn: redis.Redis, settings: Settings, question: str, samples: int
) -> tuple[float, SolveResult]:
    request = SolveRequest(question=question, origin=Origin(source="bench"))
    start = time.monotonic()
    if samples > 1:
        job_id = enqueue_consensus(conn, request, samples, settings)
    else:
        job_id = enqueue_solve(conn, request, settings)
    result = wait_for_end(conn, job_id)
    return time.monotonic() - start, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--tokens-per-s", type=float, default=40.0)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--completion-tokens", type=int, default=600)
    parser.add_argument("--port", type=int, default=18433)
    parser.add_argument("--logs", type=Path, default=Path("/tmp/fathom-bench-consensus"))
    args = parser.parse_args(argv)
    args.logs.mkdir(parents=True, exist_ok=True)
    with throwaway_redis() as server:
        return run(args, server.url())


def run(args: argparse.Namespace, redis_url: str) -> int:
    url = f"http://127.0.0.1:{args.port}"
    env = {
        "FATHOM_REDIS_URL": redis_url,
        "FATHOM_MODEL_URL": url,
        "FATHOM_WORKERS": str(args.samples),
        "FATHOM_RENDER_WORKERS": "1",
        "FATHOM_MAX_SAMPLES": str(max(args.samples, 2)),
    }
    os.environ.update(env)
    settings = Settings()
    conn = redis.Redis.from_url(redis_url)
    fathom = [sys.executable, "-m", "cli"]
    simulator = [
        *fathom,
        "fake-tgi",
        f"--port={args.port}",
        f"--tokens-per-s={args.tokens_per_s}",
        f"--speed={args.speed}",
        f"--completion-tokens={args.completion_tokens}",
    ]
    prompts = questions(args.rounds + 1)
    render = Queue(settings.render_queue, connection=conn)
    with process(simulator, env, args.logs / "simulator.log"):
        wait_until(lambda: healthy(url), 30, "the simulator")
        with process([*fathom, "worker"], env, args.logs / "pool.log"):
            wait_until(lambda: solve_workers(conn, settings) == args.samples, 60, "the workers")
            wait_until(lambda: Worker.count(connection=conn, queue=render) == 1, 60, "render")
            timed(conn, settings, prompts[0], 1)  # warm-up: MathJax, the checker's pool
            timed(conn, settings, prompts[0], args.samples)
            rows: list[dict[str, object]] = []
            one: list[float] = []
            many: list[float] = []
            for index, question in enumerate(prompts[1:]):
                order = (1, args.samples) if index % 2 == 0 else (args.samples, 1)
                times: dict[int, float] = {}
                results: dict[int, SolveResult] = {}
                for samples in order:
                    times[samples], results[samples] = timed(conn, settings, question, samples)
                whole = results[args.samples]
                consensus = whole.consensus
                assert consensus is not None
                parts = [load_result(conn, sample_id(whole.job_id, i)) for i in range(args.samples)]
                last = max(part.finished_at for part in parts if part is not None)
                one.append(times[1])
                many.append(times[args.samples])
                rows.append(
                    {
                        "one_s": round(times[1], 3),
                        "consensus_s": round(times[args.samples], 3),
                        "ratio": round(times[args.samples] / times[1], 3),
                        "sampling_s": round(last - (whole.enqueued_at or last), 3),
                        "vote_and_draw_s": round(whole.finished_at - last, 3),
                        "agree": f"{consensus.votes}/{consensus.samples}",
                        "classes": len(consensus.answers),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
    ratios = [b / a for a, b in zip(one, many, strict=True)]
    report = {
        "samples": args.samples,
        "answer_tokens": args.completion_tokens,
        "sequence_tokens_per_s": args.tokens_per_s * args.speed,
        "one_sample_median_s": round(statistics.median(one), 3),
        "consensus_median_s": round(statistics.median(many), 3),
        "ratio_of_medians": round(statistics.median(many) / statistics.median(one), 3),
        "ratio_median": round(statistics.median(ratios), 3),
        "ratio_max": round(max(ratios), 3),
        "rounds": rows,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
