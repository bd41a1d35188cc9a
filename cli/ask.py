"""`fathom ask "QUESTION"`: one question through the real queue and workers, from a shell.

On a fresh machine it brings what is missing for the duration: the TGI simulator when no
FATHOM_MODEL_URL is set (announced as a SIMULATION, never passed off as the model), and a
temporary worker when none listens on the queue. With FATHOM_MODEL_URL pointing at a real
server and the worker pool running, it is the operator's smoke test of the whole path.

Exit status: 0 solved; 3 finished without a final answer (truncated or no `\\boxed{}`);
1 failed, cancelled or could not run; 2 bad input.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis
from rq import Queue, Worker
from rq.job import JobStatus
from rq.serializers import JSONSerializer

from fathom.consensus import ended_samples, load_record
from fathom.contract import (
    Consensus,
    Origin,
    Phase,
    ProgressEvent,
    SolveRequest,
    SolveResult,
    SolveStatus,
)
from fathom.events import job_entries, load_result
from fathom.queue import (
    cancel_job,
    enqueue_consensus,
    enqueue_solve,
    fetch_job,
    queue_position,
    render_queue,
    solve_queue,
    solve_workers,
)
from fathom.settings import Settings, get_settings

EXIT_SOLVED, EXIT_FAILED, EXIT_USAGE, EXIT_NO_ANSWER = 0, 1, 2, 3
SIMULATOR_SPEED = 10.0
"""The simulator answers ten times faster than a real 40 tokens/s sequence, so a demo takes
seconds (it is still a simulation)."""
POLL_S = 0.2
WAIT_MARGIN_S = 60.0
"""Waited beyond the job's own time limit by default (queueing, worker start)."""


class AskError(Exception):
    """Ends `fathom ask` with a one-line reason."""


def say(message: str) -> None:
    print(f"fathom ask: {message}", file=sys.stderr, flush=True)


def announce_simulation() -> None:
    line = "*" * 72
    say(line)
    say("FATHOM_MODEL_URL is not set: this is a SIMULATION, not the model.")
    say("A local TGI simulator recites canned solutions (MATH-500 and a few handwritten);")
    say("nothing below comes from Fathom-R1-14B. Set FATHOM_MODEL_URL to ask the model.")
    say(line)


@dataclass
class Helpers:
    """What `fathom ask` started for itself, to be stopped when it ends."""

    settings: Settings
    worker: subprocess.Popen[bytes] | None = None
    worker_log: Path | None = None
    failed: bool = False
    """The temporary worker left without a result (its log is kept)."""

    def worker_exited(self) -> bool:
        return self.worker is not None and self.worker.poll() is not None


@contextlib.contextmanager
def _simulator() -> Iterator[str]:
    from simulator.server import SimulatorConfig, SimulatorServer

    with SimulatorServer(SimulatorConfig(speed=SIMULATOR_SPEED)) as server:
        yield server.url


@contextlib.contextmanager
def _temporary_worker(
    settings: Settings, model_url: str, log: IO[bytes], samples: int
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        "FATHOM_MODEL_URL": model_url,
        "FATHOM_SOLVE_QUEUE": settings.solve_queue,
        "FATHOM_RENDER_QUEUE": settings.render_queue,
        "FATHOM_REDIS_URL": settings.redis_url,
    }
    # A consensus runs its samples side by side, then its vote on a render worker (in burst
    # mode the render pool starts once the solve pool is done).
    sizes = ["-n", str(samples), f"--render-workers={1 if samples > 1 else 0}"]
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "worker", "--burst", *sizes],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def model_server(
    settings: Settings, conn: redis.Redis, stack: contextlib.ExitStack
) -> tuple[Settings, str, bool]:
    """The settings to enqueue with, the model URL and whether a worker must be started: the
    simulator (on a queue of our own) where no model server is configured."""
    if settings.model_url is None:
        announce_simulation()
        model_url = stack.enter_context(_simulator())
        # Workers already running have no simulator to talk to: use queues of our own.
        tag = uuid.uuid4().hex[:8]
        settings = settings.model_copy(
            update={
                "solve_queue": f"{settings.solve_queue}-ask-{tag}",
                "render_queue": f"{settings.render_queue}-ask-{tag}",
            }
        )
        stack.callback(solve_queue(conn, settings).delete, delete_jobs=False)
        stack.callback(render_queue(conn, settings).delete, delete_jobs=False)
        say("starting a temporary worker for the simulation")
        return settings, model_url, True
    if solve_workers(conn, settings) == 0:
        say(f"no worker listens on queue {settings.solve_queue!r}; starting a temporary one")
        return settings, settings.model_url, True
    return settings, settings.model_url, False


def start_worker(
    settings: Settings, model_url: str, stack: contextlib.ExitStack, samples: int = 1
) -> Helpers:
    """A pool in burst mode (one worker, or one per sample): it leaves once the queues are
    empty, so it cannot outlive `fathom ask` for long even if this process is killed."""
    descriptor, log_name = tempfile.mkstemp(prefix="fathom-ask-worker-", suffix=".log")
    found = Helpers(settings, worker_log=Path(log_name))
    log_file = stack.enter_context(os.fdopen(descriptor, "wb"))
    found.worker = stack.enter_context(_temporary_worker(settings, model_url, log_file, samples))
    return found


class ProgressDisplay:
    """Progress on stderr: one line rewritten in place on a terminal, otherwise a line per
    phase change or note."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.live = stream.isatty()
        self.last: tuple[Phase, str | None] | None = None

    def show(self, event: ProgressEvent) -> None:
        budget = f"/{event.budget_tokens:,}" if event.budget_tokens else ""
        text = f"{event.phase.value}: {event.tokens:,}{budget} tokens, {event.elapsed_s:.0f} s"
        if event.samples:
            text += f", {event.samples_done}/{event.samples} samples done"
        if event.note:
            text += f" ({event.note})"
        if self.live:
            self.stream.write(f"\r\x1b[Kfathom ask: {text}")
        elif self.last != (event.phase, event.note):
            self.stream.write(f"fathom ask: {text}\n")
        self.last = (event.phase, event.note)
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.last is not None:
            self.stream.write("\n")
            self.stream.flush()


def wait_for_result(
    conn: redis.Redis, job_id: str, timeout_s: float, found: Helpers, display: ProgressDisplay
) -> SolveResult:
    """Follow the job's progress stream until its outcome is stored, wherever it runs: the
    temporary worker may leave at once because a pool worker took the job."""
    last_id: bytes | None = None
    deadline = time.monotonic() + timeout_s
    while True:
        result = load_result(conn, job_id)
        if result is not None and result.final:
            return result
        if time.monotonic() > deadline:
            raise AskError(f"no result after {timeout_s:.0f} s (job {job_id}); gave up")
        if found.worker_exited() and not _in_hand(conn, job_id, found.settings):
            found.failed = True
            raise AskError(f"the temporary worker exited early (its log: {found.worker_log})")
        for entry in job_entries(conn, job_id, after=last_id):
            last_id = entry.entry_id
            if entry.event is not None:
                display.show(_with_queue_position(conn, entry.event))
        time.sleep(POLL_S)


def _in_hand(conn: redis.Redis, job_id: str, settings: Settings) -> bool:
    """Whether a worker is solving the job, or one listens on its queue to take it, or its
    outcome has just been stored. A consensus job still sampling is in hand while one of its
    unfinished samples is."""
    job = fetch_job(conn, job_id)
    if job is None:
        if load_result(conn, job_id) is not None:
            return True
        record = load_record(conn, job_id)
        if record is None:
            return False
        ended = ended_samples(conn, job_id)
        waiting = [s for i, s in enumerate(record.sample_ids) if i not in ended]
        return not waiting or any(_in_hand(conn, sample, settings) for sample in waiting)
    status = job.get_status()
    if status is JobStatus.STARTED or load_result(conn, job_id) is not None:
        return True
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        queue = Queue(job.origin, connection=conn, serializer=JSONSerializer)
        return Worker.count(connection=conn, queue=queue) > 0
    return False


def _with_queue_position(conn: redis.Redis, event: ProgressEvent) -> ProgressEvent:
    if event.phase is not Phase.QUEUED or event.note is not None:
        return event
    position = queue_position(conn, event.job_id)
    return event.model_copy(update={"note": f"{position} ahead"}) if position else event


def consensus_summary(consensus: Consensus) -> str:
    """How the samples voted, in a few plain lines."""
    lines = [f"Samples: {consensus.votes} of {consensus.samples} agree"]
    if consensus.tied:
        lines[0] += " (tied with another answer; the first to appear is shown)"
    elif consensus.votes and consensus.low_agreement:
        lines[0] += " — the samples disagree, treat this answer with care"
    for votes in consensus.answers:
        lines.append(f"  {votes.votes:>3} × {votes.answer}")
    if consensus.no_answer:
        lines.append(f"  {consensus.no_answer:>3} × (no final answer)")
    if consensus.failed:
        lines.append(f"  {consensus.failed:>3} × (failed)")
    return "\n".join(lines)


def print_result(result: SolveResult, as_json: bool, reasoning: bool) -> int:
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        if reasoning and result.reasoning:
            print("--- reasoning ---")
            print(result.reasoning)
            print("--- solution ---")
        if result.solution:
            print(result.solution)
        if result.answer is not None:
            print(f"\nAnswer: {result.answer}")
        if result.consensus is not None:
            print(consensus_summary(result.consensus))
    if result.simulated:
        say("(SIMULATED: this text came from the TGI simulator, not from the model)")
    if result.status is SolveStatus.SOLVED:
        return EXIT_SOLVED
    if result.status is SolveStatus.TRUNCATED:
        say(f"the model used its whole {result.budget_tokens} token budget without finishing")
        return EXIT_NO_ANSWER
    if result.status is SolveStatus.NO_ANSWER:
        say("the model finished without a final \\boxed{} answer")
        return EXIT_NO_ANSWER
    reason = result.failure.message if result.failure else result.status.value
    say(f"{result.status.value}: {reason}")
    return EXIT_FAILED


def ask(args: argparse.Namespace, settings: Settings) -> int:
    question = args.question.strip()
    if not question:
        say("the question is empty")
        return EXIT_USAGE
    if len(question) > settings.max_question_chars:
        limit = settings.max_question_chars
        say(f"the question is {len(question)} characters long; the limit is {limit}")
        return EXIT_USAGE
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=10)
    try:
        conn.ping()
    except redis.RedisError as exc:
        raise AskError(
            f"cannot reach Redis at {settings.redis_url} ({exc}); start redis-server or set "
            "FATHOM_REDIS_URL"
        ) from exc
    samples = args.samples
    if not 1 <= samples <= settings.max_samples:
        say(f"--samples must be between 1 and {settings.max_samples} (FATHOM_MAX_SAMPLES)")
        return EXIT_USAGE
    request = SolveRequest(
        question=question,
        seed=args.seed,
        render=False,
        origin=Origin(source="cli"),
    )
    timeout_s = args.timeout if args.timeout is not None else settings.job_timeout_s + WAIT_MARGIN_S
    display = ProgressDisplay(sys.stderr)
    with contextlib.ExitStack() as stack:
        settings, model_url, need_worker = model_server(settings, conn, stack)
        if samples > 1:
            job_id = enqueue_consensus(conn, request, samples, settings)
            say(f"job {job_id} queued on {settings.solve_queue!r} as {samples} samples")
        else:
            job_id = enqueue_solve(conn, request, settings)
            say(f"job {job_id} queued on {settings.solve_queue!r}")
        found = (
            start_worker(settings, model_url, stack, samples) if need_worker else Helpers(settings)
        )
        try:
            result = wait_for_result(conn, job_id, timeout_s, found, display)
        except (AskError, KeyboardInterrupt):
            display.close()
            cancel_job(conn, job_id, settings)
            raise
        display.close()
        if found.worker_log is not None and not found.failed:
            found.worker_log.unlink(missing_ok=True)
    return print_result(result, args.json, args.reasoning)


def run(args: argparse.Namespace) -> int:
    try:
        return ask(args, get_settings())
    except AskError as exc:
        say(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        say("interrupted; the job was cancelled")
        return EXIT_FAILED
    except redis.RedisError as exc:
        say(f"lost Redis: {exc}")
        return EXIT_FAILED
