"""The `fathom` command. Each subcommand imports its side only when it runs, so `fathom --help`
stays fast and a bot process never loads the worker (or the other way round)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fathom", description="Fathom: a Discord math tutor on Fathom-R1-14B."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ask = sub.add_parser(
        "ask",
        help="solve one question through the real queue and workers",
        description="Put a question on the queue, wait for a worker to solve it and print the "
        "solution. With no FATHOM_MODEL_URL it runs against the local simulator (and says so); "
        "with no worker listening it starts one for the duration.",
    )
    ask.add_argument("question", help="the math question")
    ask.add_argument("--json", action="store_true", help="print the structured result as JSON")
    ask.add_argument("--reasoning", action="store_true", help="also print the reasoning")
    ask.add_argument("--seed", type=int, default=None, help="sampling seed")
    ask.add_argument(
        "--samples",
        type=int,
        default=1,
        metavar="K",
        help="solve K times (different seeds) and give the answer most samples agree on",
    )
    ask.add_argument("--timeout", type=float, default=None, help="seconds to wait for the result")
    ask.set_defaults(target="cli.ask:run")

    worker = sub.add_parser(
        "worker",
        help="run the pool of RQ workers (solve + render)",
        description="Start a pool of RQ workers sized for the model server's concurrency.",
    )
    worker.add_argument("-n", "--workers", type=int, default=None, help="solve workers")
    worker.add_argument("--render-workers", type=int, default=None, help="render workers")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(target="cli.main:run_worker")

    fake_tgi = sub.add_parser(
        "fake-tgi",
        help="run the TGI simulator (for tests, development and benchmarks; not a model)",
        description="Serve TGI 3.3.x's HTTP API with canned R1-style answers (MATH-500 "
        "solutions), paced like a GPU, with fault injection. It reports itself as "
        "'fathom-simulator' and is never a model. Options left out keep the defaults of "
        "simulator.server.SimulatorConfig.",
    )
    fake_tgi.add_argument("--host", default="127.0.0.1")
    fake_tgi.add_argument("--port", type=int, default=8080)
    fake_tgi.add_argument(
        "--dialect",
        choices=["tgi", "llama.cpp"],
        help="whose wire format to speak (tgi); llama.cpp: /props, slots of --max-total-tokens "
        "(--max-batch-size of them), requests queued silently, 503 while --loading, 30 s pings",
    )
    fake_tgi.add_argument(
        "--reasoning-format",
        choices=["auto", "none"],
        help="llama.cpp dialect: the server's --reasoning-format (auto)",
    )
    speed = fake_tgi.add_argument_group("speed and size")
    speed.add_argument("--tokens-per-s", type=float, help="decode rate of one sequence (40)")
    speed.add_argument(
        "--batch-slowdown",
        type=float,
        help="k in rate = tokens_per_s / (1 + k * (batch - 1)) (0.01)",
    )
    speed.add_argument("--ttft", type=float, help="time to first token, seconds (0.25)")
    speed.add_argument(
        "--speed", type=float, help="time compression: x10 runs ten times faster (1)"
    )
    speed.add_argument("--completion-tokens", type=int, help="target answer length in tokens (600)")
    speed.add_argument("--max-concurrent-requests", type=int, help="beyond: overloaded (128)")
    speed.add_argument("--max-input-tokens", type=int, help="(16383)")
    speed.add_argument("--max-total-tokens", type=int, help="(16384)")
    speed.add_argument("--max-batch-size", type=int, help="sequences decoded at once (all)")
    speed.add_argument("--keepalive", type=float, help="SSE keep-alive interval, seconds (15)")
    speed.add_argument(
        "--dataset", help="JSONL problem bank (default: $FATHOM_SIM_DATASET or MATH-500)"
    )
    speed.add_argument(
        "--wrong-answers", type=float, help="share of sampled answers that are wrong (0.2)"
    )
    speed.add_argument(
        "--rewritten-answers",
        type=float,
        help="share of sampled answers right but written another way (0.2)",
    )
    faults = fake_tgi.add_argument_group("fault injection")
    faults.add_argument(
        "--loading", type=float, help="refuse connections for this many seconds at start"
    )
    faults.add_argument("--unhealthy", action="store_true", help="/health answers 503")
    faults.add_argument(
        "--overloaded", action="store_true", help="reject every request as overloaded"
    )
    faults.add_argument("--drop-after", type=int, help="cut the connection after N tokens")
    faults.add_argument("--stall-after", type=int, help="stall after N tokens...")
    faults.add_argument("--stall", type=float, help="...for this many seconds")
    faults.add_argument("--fail-after", type=int, help="generation error after N tokens")
    faults.add_argument(
        "--fault-requests", type=int, help="apply the faults to the first N requests only"
    )
    fake_tgi.set_defaults(target="cli.fake_tgi:run")

    render = sub.add_parser(
        "render",
        help="render LaTeX or a Markdown solution to images",
        description="Render one formula to a PNG (fathom render 'LATEX' -o out.png), or draw "
        "a Markdown + LaTeX solution (fathom render --markdown FILE --out DIR: DIR gets the "
        "pictures, the drawn document.json, and messages.json: the Discord messages the bot "
        "would post).",
    )
    render.add_argument("latex", nargs="?", help="a formula (without $ delimiters)")
    render.add_argument("-o", "--output", help="PNG file to write the formula to")
    render.add_argument("--inline", action="store_true", help="render in inline (text) style")
    render.add_argument("--markdown", metavar="FILE", help="a solution in Markdown + LaTeX")
    render.add_argument("--out", metavar="DIR", help="directory for the laid-out solution")
    render.add_argument(
        "--answer", help="the final answer (default: the last \\boxed{} of the solution)"
    )
    render.add_argument("--reasoning", metavar="FILE", help="attach this reasoning as Markdown")
    render.set_defaults(target="cli.render:run")

    same = sub.add_parser(
        "same-answer",
        help="are two final answers the same? (prints same or different; exit 0 or 1)",
        description="Compare two final answers (the LaTeX inside \\boxed{}) as consensus "
        "voting does: math-verify in both directions, in a separate process under a time "
        "limit. Prints `same` (exit 0) or `different` (exit 1).",
    )
    same.add_argument("a", help="one answer, e.g. '\\frac{1}{2}'")
    same.add_argument("b", help="the other answer, e.g. '0.5'")
    same.add_argument(
        "--timeout", type=float, default=2.0, help="seconds allowed for the comparison (2)"
    )
    same.set_defaults(target="cli.same_answer:run")

    add_queue_parser(sub)

    doctor = sub.add_parser(
        "doctor",
        help="check a deployment end to end (the smoke test)",
        description="Check Redis, the workers, the model server (health, model, context, a "
        "one-token round trip), the renderer and the Discord token; one line per check, with "
        "how to fix what is wrong. Exit 0 only when every check passes. In docker compose: "
        "docker compose exec worker fathom doctor.",
    )
    doctor.set_defaults(target="cli.doctor:run")

    bot = sub.add_parser("bot", help="run the Discord bot")
    bot.set_defaults(target="cli.main:run_bot")
    return parser


def add_queue_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser(
        "queue",
        help="steer the queue from a shell (what moderators do with /queue)",
        description="Look at and steer the queue: the same actions as the moderators' /queue "
        "commands, recorded in the same audit log.",
    )
    actions = queue.add_subparsers(dest="action", required=True, metavar="ACTION")

    status = actions.add_parser("status", help="jobs, workers and model servers")
    status.add_argument("--guild", type=int, help="one server's jobs (default: everyone's)")
    status.add_argument("--json", action="store_true", help="print the status as JSON")

    for name, what in (("pause", "stop taking"), ("resume", "take again")):
        action = actions.add_parser(
            name,
            help=f"{what} one server's questions, or (without --guild) every worker's new jobs",
        )
        action.add_argument("--guild", type=int)

    cancel = actions.add_parser("cancel", help="cancel jobs, or every job of a member")
    cancel.add_argument("jobs", nargs="*", help="job ids")
    cancel.add_argument("--guild", type=int)
    cancel.add_argument("--member", type=int, help="a member's user id (with --guild)")

    clear = actions.add_parser("clear", help="drop a server's waiting jobs")
    clear.add_argument("--guild", type=int, required=True)
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    failed = actions.add_parser("failed", help="a server's recent failures and why")
    failed.add_argument("--guild", type=int, required=True)
    failed.add_argument("--hours", type=float, default=24.0)
    failed.add_argument("--json", action="store_true")

    retry = actions.add_parser("retry", help="run a finished job again (delivered where it was)")
    retry.add_argument("job")

    audit = actions.add_parser("audit", help="the moderators' and operators' actions")
    audit.add_argument("--guild", type=int)
    audit.add_argument("--limit", type=int, default=50)
    audit.add_argument("--json", action="store_true")

    stats = actions.add_parser("stats", help="a server's last 24 hours as a chart (PNG)")
    stats.add_argument("--guild", type=int, required=True)
    stats.add_argument("-o", "--output", required=True, help="the PNG file to write")
    queue.set_defaults(target="cli.queue:run")


def run_worker(args: argparse.Namespace) -> int:
    from worker.pool import run_pool

    return run_pool(workers=args.workers, render_workers=args.render_workers, burst=args.burst)


def run_bot(_args: argparse.Namespace) -> int:
    from bot.main import run_bot as run

    return run()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = args.target.split(":")
    run = getattr(importlib.import_module(module_name), func_name)
    code: int = run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
