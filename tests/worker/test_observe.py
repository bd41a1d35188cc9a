"""The pool's `/metrics` and `/healthz` as Prometheus and a healthcheck see them: a real pool,
real Redis, the simulator."""

from __future__ import annotations

from pathlib import Path

import httpx2
import redis
from prometheus_client.parser import text_string_to_metric_families

from devtools.redis_server import throwaway_redis
from fathom.contract import SolveRequest
from fathom.events import load_result
from fathom.queue import enqueue_solve
from simulator.server import SimulatorServer
from tests.conftest import free_port
from tests.worker.conftest import Configure, wait_for, worker_pool
from worker.monitor import load_from_metrics

NAMED = {
    "fathom_queue_jobs",
    "fathom_queue_oldest_wait_seconds",
    "fathom_workers",
    "fathom_jobs",
    "fathom_tokens_generated",
    "fathom_job_wait_seconds",
    "fathom_job_solve_seconds",
    "fathom_render_seconds",
    "fathom_model_server_up",
}


def scrape(url: str) -> dict[str, float]:
    """Every sample, keyed `name{label=value,...}`."""
    text = httpx2.get(f"{url}/metrics", timeout=5).text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}"] = sample.value
    return samples


def families(url: str) -> set[str]:
    text = httpx2.get(f"{url}/metrics", timeout=5).text
    return {family.name for family in text_string_to_metric_families(text)}


def test_metrics_count_what_jobs_do_and_healthz_follows_redis(
    configure: Configure, fake_tgi: SimulatorServer, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with throwaway_redis() as server:
        settings = configure(
            REDIS_URL=server.url(), MODEL_URL=fake_tgi.url, WORKER_HTTP_PORT=str(port)
        )
        conn = redis.Redis.from_url(server.url())
        with worker_pool(tmp_path, "-n", "1", "--render-workers", "1"):
            wait_for(lambda: _healthz(url) == 200, 30, "a healthy pool")
            before = scrape(url)
            job_ids = [
                enqueue_solve(conn, SolveRequest(question=f"What is {n}+{n}?"), settings)
                for n in range(2)
            ]
            wait_for(
                lambda: all(
                    (r := load_result(conn, job_id)) is not None and r.final for job_id in job_ids
                ),
                30,
                "both answers drawn",
            )
            after = scrape(url)
            assert families(url) >= NAMED
            server.stop()
            wait_for(lambda: _healthz(url) == 503, 10, "an unhealthy pool")
            server.start()
    solved = "fathom_jobs_total{outcome=solved,reason=none}"
    assert before.get(solved, 0.0) == 0.0
    assert after[solved] == 2.0
    assert after["fathom_tokens_generated_total{}"] > 0
    assert after["fathom_render_seconds_count{}"] == 2.0
    assert after["fathom_job_solve_seconds_count{}"] == 2.0
    assert after["fathom_workers{queue=fathom-solve,state=idle}"] == 1.0
    assert after["fathom_model_server_up{server=" + fake_tgi.url.split("//")[1] + "}"] == 1.0


def _healthz(url: str) -> int:
    try:
        return httpx2.get(f"{url}/healthz", timeout=2).status_code
    except httpx2.HTTPError:
        return 0


def test_each_engine_s_load_is_read_from_its_metrics() -> None:
    tgi = load_from_metrics("tgi_queue_size 3\ntgi_batch_current_size 7\n")
    vllm = load_from_metrics(
        'vllm:num_requests_waiting{model_name="m"} 2\nvllm:num_requests_running{model_name="m"} 5\n'
    )
    llama = load_from_metrics("llamacpp:requests_deferred 1\nllamacpp:requests_processing 4\n")
    other = load_from_metrics("process_cpu_seconds_total 12\n")
    assert (tgi.engine, tgi.queue_size, tgi.batch_size) == ("TGI", 3.0, 7.0)
    assert (vllm.engine, vllm.queue_size, vllm.batch_size) == ("vLLM", 2.0, 5.0)
    assert (llama.engine, llama.queue_size, llama.batch_size) == ("llama.cpp", 1.0, 4.0)
    assert (other.engine, other.queue_size, other.batch_size) == (None, None, None)
