"""Smoke tests against a real llama.cpp server: the calls the worker makes, through the client it
uses (huggingface_hub's AsyncInferenceClient), and the llama.cpp endpoints that stand in for
TGI's /info and /chat_tokenize. What they assert is what llama-server really sends (see
docs/notes/llamacpp-wire.md); the tiny model's text is noise, its shape is not."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest
from huggingface_hub import (
    AsyncInferenceClient,
    ChatCompletionInputStreamOptions,
    ChatCompletionStreamOutput,
)
from huggingface_hub.errors import BadRequestError

import devtools.llamacpp as llamacpp
from devtools.tiny_gguf import ASSISTANT, BOS, CHAT_TEMPLATE, EOS, THINK_OPEN, USER, build_vocab
from tests.engine.conftest import CTX_SIZE, HERE

QUESTION = "What is 2+2? Please reason step by step, and put your final answer within \\boxed{}."


async def _get(url: str, path: str) -> Any:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.get(url + path)
    assert response.status_code == 200, response.text
    return response.json()


async def _post(url: str, path: str, body: dict[str, Any]) -> Any:
    async with httpx2.AsyncClient(timeout=10) as http:
        response = await http.post(url + path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def test_streamed_chat_completion_as_the_worker_asks(llama_url: str) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    rendered = await _post(llama_url, "/apply-template", {"messages": messages})
    prompt_ids = await _post(
        llama_url, "/tokenize", {"content": rendered["prompt"], "add_special": True}
    )
    chunks: list[ChatCompletionStreamOutput] = []
    async with AsyncInferenceClient(base_url=llama_url, timeout=30) as client:
        stream = await client.chat_completion(
            messages,
            stream=True,
            stream_options=ChatCompletionInputStreamOptions(include_usage=True),
            temperature=0.6,
            top_p=0.95,
            seed=1234,
            max_tokens=32,
        )
        async for chunk in stream:
            chunks.append(chunk)

    *choice_chunks, usage_chunk = chunks
    assert all(len(c.choices) == 1 and c.usage is None for c in choice_chunks)
    first, *text_chunks, last = choice_chunks
    # role "assistant" comes once, in an opening chunk that carries no text
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content is None
    assert all(c.choices[0].delta.role is None for c in [*text_chunks, last])
    # the tiny model never picks EOS (it is biased away), so the answer runs to max_tokens
    assert last.choices[0].finish_reason == "length"
    assert last.choices[0].delta.content is None
    assert all(c.choices[0].finish_reason is None for c in text_chunks)
    contents = [c.choices[0].delta.content for c in text_chunks]
    assert all(isinstance(text, str) and text for text in contents)
    # one chunk per token (all the model's tokens are whole printable text); none holds a
    # reasoning_content field: --reasoning-format none keeps the think markers in content...
    assert 1 <= len(contents) <= 32
    assert not any(hasattr(c.choices[0].delta, "reasoning_content") for c in text_chunks)
    # ...and puts the `<think>\n` that ends the prompt at the head of the first content chunk
    text = "".join(str(t) for t in contents)
    assert text.startswith(THINK_OPEN + "\n")
    # include_usage: a last chunk with no choices and the counts
    assert usage_chunk.choices == []
    usage = usage_chunk.usage
    assert usage is not None
    assert usage.completion_tokens == 32
    assert usage.prompt_tokens == len(prompt_ids["tokens"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert len({c.id for c in chunks}) == 1


async def test_props_models_and_health_shapes(llama_url: str) -> None:
    health = await _get(llama_url, "/health")
    assert health == {"status": "ok"}

    props = await _get(llama_url, "/props")
    # n_ctx is per slot (--ctx-size divided by --parallel); there is no max_input_tokens
    assert props["default_generation_settings"]["n_ctx"] == CTX_SIZE
    assert props["total_slots"] == 1
    assert props["chat_template"] == CHAT_TEMPLATE
    assert (props["bos_token"], props["eos_token"]) == (BOS, EOS)
    assert props["build_info"].endswith(llamacpp.LLAMA_CPP_COMMIT)

    models = await _get(llama_url, "/v1/models")
    assert models["object"] == "list"
    [model] = models["data"]
    assert model["object"] == "model"
    assert model["owned_by"] == "llamacpp"
    assert model["id"].endswith(".gguf")  # the model path unless --alias is given
    meta = model["meta"]
    assert meta["n_ctx"] == CTX_SIZE
    assert meta["n_ctx_train"] == 16384
    assert meta["n_vocab"] == len(build_vocab().tokens)
    assert "max_model_len" not in model  # vLLM's field; llama.cpp has meta.n_ctx instead


async def test_template_and_tokenizer_are_the_r1_ones(llama_url: str) -> None:
    history = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": "reasoning...</think>\n\nA1"},
        {"role": "user", "content": "Q2"},
    ]
    rendered = await _post(llama_url, "/apply-template", {"messages": history})
    # llama.cpp drops the template's leading BOS here and adds it again when tokenizing
    assert rendered["prompt"] == (
        f"{USER}Q1{ASSISTANT}\n\nA1{EOS}{USER}Q2{ASSISTANT}{THINK_OPEN}\n"
    )
    vocab = build_vocab()
    with_bos = await _post(llama_url, "/tokenize", {"content": "x", "add_special": True})
    assert with_bos["tokens"] == [vocab.bos_id, vocab.tokens.index("x")]
    think = await _post(llama_url, "/tokenize", {"content": "<think>a</think>"})
    assert think["tokens"] == [
        vocab.tokens.index("<think>"),
        vocab.tokens.index("a"),
        vocab.tokens.index("</think>"),
    ]


async def test_prompt_longer_than_the_context_is_a_400_before_any_stream(llama_url: str) -> None:
    async with AsyncInferenceClient(base_url=llama_url, timeout=30) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.chat_completion(
                [{"role": "user", "content": "a " * CTX_SIZE}],
                stream=True,
                temperature=0.6,
                top_p=0.95,
                max_tokens=8,
            )
    assert caught.value.response is not None
    assert caught.value.response.status_code == 400
    error = caught.value.response.json()["error"]
    assert error["type"] == "exceed_context_size_error"
    assert error["n_ctx"] == CTX_SIZE
    assert error["n_prompt_tokens"] > CTX_SIZE


# --- the build cache, without building --------------------------------------------------------


def test_concurrent_ensure_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FATHOM_CACHE_DIR", str(tmp_path))
    builds: list[int] = []

    def fake_build(directory: Path, version: str, jobs: int, *, quiet: bool) -> Path:
        builds.append(jobs)
        time.sleep(0.3)  # long enough for the other callers to be waiting on the lock
        binary = directory / "bin" / llamacpp.CMAKE_TARGET
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
        marker = {"config": llamacpp._build_config(version)}
        (directory / llamacpp.MARKER).write_text(json.dumps(marker))
        return binary

    monkeypatch.setattr(llamacpp, "_build", fake_build)
    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(llamacpp.ensure_llama_server(jobs=1)))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == [1]
    assert len(results) == 3
    assert len(set(results)) == 1
    assert llamacpp.cached_llama_server() == results[0]


def test_missing_build_tools_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(llamacpp.LlamaCppError, match=r"cmake .*apt-get install cmake g\+\+ make"):
        llamacpp.check_build_tools()


def test_the_compose_profile_runs_the_release_the_tests_build() -> None:
    root = HERE.parent.parent
    compose = (root / "docker-compose.yml").read_text()
    cuda = (root / "docker-compose.llamacpp-cuda.yml").read_text()
    assert f"image: ghcr.io/ggml-org/llama.cpp:server-{llamacpp.LLAMA_CPP_RELEASE}\n" in compose
    assert f"image: ghcr.io/ggml-org/llama.cpp:server-cuda-{llamacpp.LLAMA_CPP_RELEASE}\n" in cuda
