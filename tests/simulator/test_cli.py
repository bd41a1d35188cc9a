"""`fathom fake-tgi` as an operator starts it."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx2

from tests.conftest import free_port


def test_fake_tgi_command_serves_health_and_says_it_is_a_simulator() -> None:
    port = free_port()
    command = [sys.executable, "-m", "cli", "fake-tgi", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--tokens-per-s", "5000", "--ttft", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx2.ConnectError:
                assert proc.poll() is None, "fathom fake-tgi exited"
                assert time.monotonic() < deadline, "fathom fake-tgi never listened"
                time.sleep(0.1)
        assert health.status_code == 200
        info = httpx2.get(f"http://127.0.0.1:{port}/info", timeout=5).json()
        assert info["model_id"] == "fathom-simulator"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0  # SIGTERM shuts it down cleanly
    assert "SIMULATOR, not a model" in output


def test_fake_tgi_speaks_llamacpp_when_asked() -> None:
    port = free_port()
    command = [sys.executable, "-m", "cli", "fake-tgi", "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--dialect", "llama.cpp", "--max-batch-size", "2", "--loading", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                # llama.cpp listens at once and says it is loading
                loading = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx2.ConnectError:
                assert proc.poll() is None, "fathom fake-tgi exited"
                assert time.monotonic() < deadline, "fathom fake-tgi never listened"
                time.sleep(0.1)
        assert loading.status_code == 503
        assert loading.json()["error"]["message"] == "Loading model"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "2 slots of 16384 tokens (llama.cpp dialect)" in output
    assert "503 Loading model for 30s" in output


def test_fake_tgi_rejects_a_bad_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli", "fake-tgi", "--tokens-per-s", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "tokens_per_s" in result.stdout
