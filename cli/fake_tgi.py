"""`fathom fake-tgi`: serve the TGI simulator in the foreground until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from pydantic import ValidationError

from simulator.server import SimulatorConfig, serve

LLAMACPP_PING_S = 30.0
"""llama-server's default --sse-ping-interval."""

# `fathom fake-tgi` option (argparse dest) -> SimulatorConfig field, for options given.
CONFIG_OPTIONS = {
    "dialect": "dialect",
    "reasoning_format": "reasoning_format",
    "tokens_per_s": "tokens_per_s",
    "batch_slowdown": "batch_slowdown",
    "ttft": "ttft_s",
    "speed": "speed",
    "completion_tokens": "completion_tokens",
    "max_concurrent_requests": "max_concurrent_requests",
    "max_input_tokens": "max_input_tokens",
    "max_total_tokens": "max_total_tokens",
    "max_batch_size": "max_batch_size",
    "keepalive": "keepalive_s",
    "dataset": "dataset",
    "wrong_answers": "wrong_answer_rate",
    "rewritten_answers": "rewritten_answer_rate",
    "loading": "loading_s",
    "overloaded": "overloaded",
    "drop_after": "drop_after_tokens",
    "stall_after": "stall_after_tokens",
    "stall": "stall_s",
    "fail_after": "fail_after_tokens",
    "fault_requests": "fault_requests",
}


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    given = {
        field: getattr(args, option)
        for option, field in CONFIG_OPTIONS.items()
        if getattr(args, option, None) not in (None, False)
    }
    if getattr(args, "unhealthy", False):
        given["healthy"] = False
    if given.get("dialect") == "llama.cpp":
        given.setdefault("keepalive_s", LLAMACPP_PING_S)
    return SimulatorConfig(**given)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
    except ValidationError as err:
        print(f"fathom fake-tgi: invalid option: {err}")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signalled(config, args.host, args.port))
    return 0


async def _serve_until_signalled(config: SimulatorConfig, host: str, port: int) -> None:
    """Serve until SIGTERM (docker stop) or SIGINT, then shut down cleanly."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await serve(config, host, port)
