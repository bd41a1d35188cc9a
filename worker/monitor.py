"""One look at the model server: its health, load, engine and model (worker.observe looks every
WATCH_INTERVAL_S and publishes it for the moderators' `/queue status` and the operator's
`fathom queue status`; the bot never talks to the model server itself). The engine and model
come from the same discovery the jobs use.

What each engine says about its load, from its Prometheus `/metrics`:
TGI `tgi_queue_size` / `tgi_batch_current_size`; vLLM `vllm:num_requests_waiting` /
`vllm:num_requests_running`; llama.cpp (with `--metrics`) `llamacpp:requests_deferred` /
`llamacpp:requests_processing`. An engine that exposes none of them has an unknown load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from fathom.admin import ModelView
from fathom.settings import Settings
from worker.model_server import Engine, ModelServerLoading, discover

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 15.0
REQUEST_TIMEOUT_S = 5.0

QUEUE_GAUGES = ("tgi_queue_size", "vllm:num_requests_waiting", "llamacpp:requests_deferred")
BATCH_GAUGES = (
    "tgi_batch_current_size",
    "vllm:num_requests_running",
    "llamacpp:requests_processing",
)
ENGINE_OF = {"tgi": "TGI", "vllm": "vLLM", "llamacpp": "llama.cpp"}


@dataclass(frozen=True, slots=True)
class Load:
    engine: str | None = None
    queue_size: float | None = None
    batch_size: float | None = None


def load_from_metrics(text: str) -> Load:
    """The engine and its queue / batch gauges from a Prometheus exposition (pure)."""
    values: dict[str, float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    except ValueError:
        return Load()
    queue = next((values[name] for name in QUEUE_GAUGES if name in values), None)
    batch = next((values[name] for name in BATCH_GAUGES if name in values), None)
    prefixes = {name.split(":")[0].split("_")[0] for name in values}
    engine = next((label for prefix, label in ENGINE_OF.items() if prefix in prefixes), None)
    return Load(engine, queue, batch)


def server_name(model_url: str) -> str:
    parts = urlsplit(model_url)
    return parts.netloc or model_url


async def look(http: httpx2.AsyncClient, settings: Settings) -> ModelView:
    """One look at the model server: /health, the engine and model (worker.model_server's
    discovery), /metrics for the load."""
    model_url = settings.model_url or ""
    base = model_url.rstrip("/")
    name = server_name(model_url)
    try:
        health = await http.get(f"{base}/health")
    except httpx2.HTTPError:
        return ModelView(name=name, healthy=False, updated_at=time.time())
    load = Load()
    model_id = engine = None
    try:
        metrics = await http.get(f"{base}/metrics")
        if metrics.status_code == 200:
            load = load_from_metrics(metrics.text)
        info = await discover(
            http,
            base,
            default_model_id=settings.model_id,
            default_context=settings.context_tokens,
        )
        if info.engine not in (None, Engine.OTHER):
            model_id, engine = info.model_id, str(info.engine)
    except (httpx2.HTTPError, ModelServerLoading) as exc:
        log.info("model server %s: no metrics or limits (%s)", name, exc)
    return ModelView(
        name=name,
        engine=load.engine or engine,
        healthy=health.status_code == 200,
        queue_size=load.queue_size,
        batch_size=load.batch_size,
        model_id=model_id,
        updated_at=time.time(),
    )
