"""`fathom doctor`: checks a deployment end to end and says what is wrong in plain words, one
line per check (ok / PROBLEM, and how to fix it). Exit 0 only when every check passes.

Inside docker compose it is the smoke test: `docker compose exec worker fathom doctor`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

import httpx2
import redis
from rq import Worker
from rq.suspension import is_suspended

from fathom.queue import render_queue, solve_queue
from fathom.settings import Settings, get_settings

EXIT_OK, EXIT_PROBLEMS = 0, 1
TIMEOUT_S = 10.0
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str | None = None

    def line(self) -> str:
        mark = "ok     " if self.ok else "PROBLEM"
        text = f"{mark} {self.check}: {self.detail}"
        return text if self.fix is None else f"{text}\n        → {self.fix}"


def ok(check: str, detail: str) -> Finding:
    return Finding(check, True, detail)


def problem(check: str, detail: str, fix: str) -> Finding:
    return Finding(check, False, detail, fix)


def check_redis(conn: redis.Redis, settings: Settings) -> list[Finding]:
    try:
        conn.ping()
    except redis.RedisError as exc:
        return [
            problem(
                "Redis",
                f"no answer at {settings.redis_url} ({exc})",
                "start Redis, or point FATHOM_REDIS_URL at it (with its password)",
            )
        ]
    try:
        conn.set("fathom:doctor:probe", b"1", ex=10)
        conn.delete("fathom:doctor:probe")
    except redis.RedisError as exc:
        return [problem("Redis", f"not writable ({exc})", "check the user's rights and disk")]
    try:
        config = conn.config_get("appendonly")
        aof = str(config.get("appendonly", "unknown"))
    except redis.RedisError:
        aof = "unknown (CONFIG is disabled)"
    if aof == "no":
        return [
            problem(
                "Redis",
                "reachable and writable, but append-only file off: queued questions and "
                "undelivered answers are lost when Redis restarts",
                "run redis-server with --appendonly yes (docker-compose.yml does)",
            )
        ]
    return [ok("Redis", f"reachable and writable, append-only file {aof}")]


def check_workers(conn: redis.Redis, settings: Settings) -> list[Finding]:
    findings = []
    if is_suspended(conn):
        findings.append(
            problem(
                "workers",
                "paused by an operator: no new question is taken",
                "fathom queue resume",
            )
        )
    for queue, role in (
        (solve_queue(conn, settings), "solve"),
        (render_queue(conn, settings), "render"),
    ):
        workers = Worker.all(connection=conn, queue=queue)
        if not workers:
            findings.append(
                problem(
                    f"{role} workers",
                    f"no worker listens on {queue.name!r}",
                    "start `fathom worker` (docker compose: the worker service)"
                    + (" with --render-workers 1 or more" if role == "render" else ""),
                )
            )
        else:
            busy = sum(1 for w in workers if w.get_state() == "busy")
            findings.append(ok(f"{role} workers", f"{len(workers)} alive, {busy} busy"))
    return findings


def check_model(settings: Settings) -> list[Finding]:
    url = settings.model_url
    if not url:
        return [
            problem(
                "model server",
                "FATHOM_MODEL_URL is not set",
                "point it at TGI, vLLM or llama.cpp (e.g. http://tgi:80)",
            )
        ]
    base = url.rstrip("/")
    try:
        with httpx2.Client(timeout=TIMEOUT_S) as http:
            health = http.get(f"{base}/health")
    except httpx2.ConnectError as exc:
        return [
            problem(
                "model server",
                f"nothing answers at {url} ({exc}): down, not started, or still downloading and "
                "loading its weights (TGI listens only once they are loaded)",
                "docker compose logs tgi (or your server's log); wait for the download",
            )
        ]
    except httpx2.HTTPError as exc:
        return [problem("model server", f"{url} does not answer ({exc})", "check the server")]
    if health.status_code == 503:
        return [
            problem(
                "model server",
                f"{url} answers but is not ready (503: loading, or its backend is down)",
                "wait for it to finish loading; if it stays so, see its log",
            )
        ]
    if health.status_code != 200:
        return [
            problem("model server", f"{url}/health answered {health.status_code}", "see its log")
        ]
    return [ok("model server", f"healthy at {url}"), *asyncio.run(_check_model_serving(settings))]


async def _check_model_serving(settings: Settings) -> list[Finding]:
    from huggingface_hub import AsyncInferenceClient

    from worker.model_server import Engine, ModelServerLoading, discover_configured

    base = (settings.model_url or "").rstrip("/")
    api_key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    try:
        info = await discover_configured(settings, TIMEOUT_S)
    except (httpx2.HTTPError, ModelServerLoading) as exc:
        return [problem("engine", f"its limits could not be read ({exc})", "see its log")]
    findings = [ok("engine", info.describe())]
    if info.model_id != settings.model_id:
        findings.append(
            problem(
                "model",
                f"the server serves {info.model_id!r}, not {settings.model_id!r}",
                "start the server with the right model, or set FATHOM_MODEL_ID to what it serves",
            )
        )
    else:
        findings.append(ok("model", f"serves {info.model_id}"))
    unit = "per slot" if info.engine is Engine.LLAMA_CPP else "per sequence"
    if info.context_tokens < settings.context_tokens:
        findings.append(
            problem(
                "context",
                f"{info.context_tokens:,} tokens {unit}; Fathom-R1-14B needs "
                f"{settings.context_tokens:,} (it reasons at length)",
                "TGI: --max-total-tokens 16384; vLLM: --max-model-len 16384; llama.cpp: "
                "--ctx-size 16384 x --parallel (16,384 per slot)",
            )
        )
    else:
        findings.append(ok("context", f"{info.context_tokens:,} tokens {unit}"))
    if info.slots is not None and info.slots < settings.workers:
        findings.append(
            problem(
                "slots",
                f"{info.slots} slots for {settings.workers} solve workers: the rest wait in the "
                "server's queue",
                f"give the server --parallel {settings.workers}, or set FATHOM_WORKERS="
                f"{info.slots}",
            )
        )
    started = time.monotonic()
    try:
        async with AsyncInferenceClient(
            base_url=base, timeout=settings.read_timeout_s, api_key=api_key
        ) as client:
            answer = await client.chat_completion(
                [{"role": "user", "content": "1+1?"}],
                max_tokens=1,
                temperature=settings.temperature,
                top_p=settings.top_p,
            )
    except Exception as exc:  # any failure of the round trip is the finding
        findings.append(
            problem(
                "generation",
                f"a one-token request failed ({type(exc).__name__}: {str(exc)[:200]})",
                "see the model server's log; check FATHOM_MODEL_API_KEY",
            )
        )
        return findings
    took_ms = (time.monotonic() - started) * 1000
    reason = answer.choices[0].finish_reason if answer.choices else "none"
    findings.append(ok("generation", f"a one-token answer in {took_ms:.0f} ms ({reason})"))
    return findings


def check_renderer() -> list[Finding]:
    from worker.render import mathjax
    from worker.render.errors import RenderError

    if not mathjax.installed():
        return [
            problem(
                "renderer",
                "node + MathJax are not installed: math is drawn by the matplotlib fallback, "
                "which draws fewer formulas (about 97 % of MATH-500's, against 99.98 %)",
                "install Node.js 18 or newer and run `npm ci` in worker/render/mathjax "
                "(`bin/setup` does; the Docker image has both)",
            )
        ]
    engine = mathjax.MathJaxEngine()
    try:
        png = engine.formula(r"\frac{1}{2} + \sqrt{x}", display=True)
    except RenderError as exc:
        return [
            problem(
                "renderer",
                f"MathJax cannot draw ({exc}); math falls back to matplotlib",
                "check that `node` runs (FATHOM_NODE) and `npm ci` in worker/render/mathjax",
            )
        ]
    finally:
        engine.close()
    return [ok("renderer", f"MathJax in node draws a formula ({len(png):,} bytes of PNG)")]


def check_discord(settings: Settings) -> list[Finding]:
    token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    if not token:
        return [ok("Discord", "no token given (FATHOM_DISCORD_TOKEN): not checked")]
    from bot.main import unreachable

    base = settings.discord_api_url.rstrip("/")
    headers = {"Authorization": f"Bot {token}"}
    try:
        with httpx2.Client(timeout=TIMEOUT_S, headers=headers) as http:
            me = http.get(f"{base}/users/@me")
            if me.status_code == 401:
                return [
                    problem(
                        "Discord",
                        "the token is refused (401)",
                        "copy it again: developer portal → Bot → Reset Token",
                    )
                ]
            me.raise_for_status()
            app = http.get(f"{base}/applications/@me")
            app.raise_for_status()
    except httpx2.HTTPError as exc:
        return [problem("Discord", f"{base}: {exc}", "check this host's network and DNS")]
    except OSError as exc:
        return [problem("Discord", unreachable(exc, base), "check the network")]
    name = me.json().get("username", "?")
    findings = [ok("Discord", f"the token is valid (the bot is {name})")]
    flags = int(app.json().get("flags") or 0)
    content = flags & (GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED)
    if settings.discord_message_content_intent and not content:
        findings.append(
            problem(
                "intents",
                "the Message Content intent is off in the developer portal, so the bot cannot "
                "start",
                "tick Bot → Privileged Gateway Intents → MESSAGE CONTENT INTENT, or set "
                "FATHOM_DISCORD_MESSAGE_CONTENT_INTENT=false",
            )
        )
    else:
        findings.append(ok("intents", "what the bot asks for is enabled"))
    return findings


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    conn = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)
    findings = check_redis(conn, settings)
    if _reachable(conn):
        findings += check_workers(conn, settings)
    findings += check_model(settings)
    findings += check_renderer()
    findings += check_discord(settings)
    for finding in findings:
        print(finding.line())
    bad = [f for f in findings if not f.ok]
    print(f"\n{len(findings) - len(bad)} ok, {len(bad)} problem{'s' if len(bad) != 1 else ''}")
    return EXIT_OK if not bad else EXIT_PROBLEMS


def _reachable(conn: redis.Redis) -> bool:
    try:
        return bool(conn.ping())
    except redis.RedisError:
        return False
