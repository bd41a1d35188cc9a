"""The `fathom` command. Each subcommand imports its implementation only when it runs, so
`fathom --help` stays fast and the bot never imports the worker (or the other way round)."""

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
    ask.add_argument("--timeout", type=float, default=None, help="seconds to wait for the result")
    ask.set_defaults(target="fathom.ask:run")

    worker = sub.add_parser(
        "worker",
        help="run the pool of RQ workers (solve + render)",
        description="Start a pool of RQ workers sized for the model server's concurrency.",
    )
    worker.add_argument("-n", "--workers", type=int, default=None, help="solve workers")
    worker.add_argument("--render-workers", type=int, default=None, help="render workers")
    worker.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    worker.set_defaults(target="worker.pool:run")

    fake_tgi = sub.add_parser(
        "fake-tgi",
        help="run the TGI simulator (for tests, development and benchmarks; not a model)",
    )
    fake_tgi.add_argument("--host", default="127.0.0.1")
    fake_tgi.add_argument("--port", type=int, default=8080)
    fake_tgi.set_defaults(target="simulator.cli:run")

    render = sub.add_parser("render", help="render LaTeX or a Markdown solution to images")
    render.set_defaults(target="worker.render.cli:run")

    bot = sub.add_parser("bot", help="run the Discord bot")
    bot.set_defaults(target="bot.main:run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = args.target.split(":")
    run = getattr(importlib.import_module(module_name), func_name)
    code: int = run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
